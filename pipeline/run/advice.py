"""What to do about what the service answered: one clause per kind of refusal, for the line a
stopped run ends with (the refusal breaker in pipeline.run.control, the canary in
pipeline.run.canary). Wording only: whether to stop is decided where these are read.
"""

from __future__ import annotations

from .. import wire


def describe(status: int | None, code: object) -> str:
    """A refusal's identity as a user reads it: `HTTP 400, error_code 400000`."""
    parts = [f"HTTP {status}" if status is not None else "no HTTP status"]
    if code is not None:
        parts.append(f"error_code {code}")
    return ", ".join(parts)


def is_balance(status: int | None, code: object) -> bool:
    """Insufficient balance: error_code 400002, or HTTP 402 (Payment Required)."""
    return str(code) == str(wire.ERROR_CODE_NO_BALANCE) or status == 402


def for_refusal(status: int | None, code: object, message: str, *, data_uri: bool) -> str:
    """What to do about a submit the API refused for good."""
    text = message.lower()
    if is_balance(status, code):
        return "top up your RunComfy balance, then run again to resume"
    if data_uri and ("data:" in text or "data uri" in text or "base64" in text
                     or "image" in text or "url" in text):
        return ("the service seems to refuse local images sent as data: URIs: set "
                "`run.local_images: refuse` and give the images as https URLs")
    if str(code) == str(wire.ERROR_CODE_BAD_MODEL):
        return ("the service does not know this model id: check `model` "
                "(`pipeline models check` compares it with the service)")
    if status == 422 or str(code) == str(wire.ERROR_CODE_VALIDATION):
        return ("the service rejects the request body: fix the field it names (`pipeline models "
                "check` compares the bundled schema with the service's); cells it failed run "
                "again with --retry-failed")
    return ("read the service's message above, fix the cause, then run again (cells it failed "
            "run again with --retry-failed)")
