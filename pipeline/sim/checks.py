"""What the simulated service refuses before it queues anything: bad tokens and bad bodies.

Each check returns None when all is well, or a `Refusal` (HTTP status, error code, message,
optional `detail` list) that the app turns into an error body. A body is judged by the very
validator the client plans with (pipeline.prepare.validate: the model's schema, its image
`validations` rules and the prompt's stated limit), so the refusal path is real; validation
messages name the failing field by its location (`loc: ["body", "resolution"]`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import wire
from ..models.catalogue import Model
from ..prepare.images import FetchProblem, ImageInfo, ImageInspector, ImageProblem
from ..prepare.validate import MISSING, RequestValidator
from .config import SimConfig


@dataclass(frozen=True)
class Refusal:
    """An error answer: status, error_code, message and an optional FastAPI-style detail list."""

    status: int
    code: int
    message: str
    detail: list[dict[str, Any]] | None = None


def check_token(authorization: str | None, config: SimConfig) -> Refusal | None:
    """Any non-empty bearer token passes, unless the config pins one."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        reason = "missing bearer token"
    elif config.token is not None and token != config.token:
        reason = "invalid API token"
    else:
        return None
    return Refusal(config.auth_failure_status, wire.ERROR_CODE_ACCOUNT,
                   f"UserAccountError: {reason} (send 'Authorization: Bearer <token>')")


class ServerInspector(ImageInspector):
    """Images as the service sees them: no local files (it cannot read the client's disk), and
    an image it could not fetch is not judged (the fetch failed, not the image)."""

    def _look(self, value: str) -> ImageInfo | ImageProblem | None:
        found = super()._look(value)
        return None if isinstance(found, FetchProblem) else found


class BodyCheck:
    """Checks submitted bodies with the validator the client plans with (one per model schema):
    types, enums, required inputs, `validations` rules on images and the prompt's stated
    limit, refused server-side as the real service would."""

    MAX_REMEMBERED = 4096  # answers a validator keeps before it is started afresh

    def __init__(self, fetch_timeout: float):
        self.fetch_timeout = fetch_timeout
        self._validators: dict[tuple[str, str], RequestValidator] = {}
        self._lock = threading.Lock()

    def _validator(self, model: Model) -> RequestValidator:
        key = (model.id, model.schema_sha256)
        with self._lock:
            found = self._validators.get(key)
            if found is None or found.remembered() > self.MAX_REMEMBERED:
                inspector = ServerInspector(Path.cwd(), fetch_remote=self.fetch_timeout > 0,
                                            timeout=max(self.fetch_timeout, 0.05), files=False)
                found = self._validators[key] = RequestValidator(model, inspector)
            return found

    def fetches(self, body: Any, model: Model) -> bool:
        """Whether checking `body` may fetch a remote image (then it is checked in a thread)."""
        if self.fetch_timeout <= 0 or not isinstance(body, dict):
            return False
        for name in model.image_fields():
            value = body.get(name)
            for v in value if isinstance(value, list) else [value]:
                if isinstance(v, str) and v.startswith(("http://", "https://")):
                    return True
        return False

    def check(self, body: Any, model: Model) -> Refusal | None:
        """None for a body the model takes, else a 422 naming each refused field."""
        if not isinstance(body, dict):
            return Refusal(422, wire.ERROR_CODE_VALIDATION,
                           "Validation Error: body: not an object",
                           [{"loc": ["body"],
                             "msg": "the body must be a JSON object of model inputs",
                             "type": "type"}])
        detail: list[dict[str, Any]] = []
        texts = []
        for path, message in sorted(self._validator(model).errors(body), key=lambda e: str(e)):
            if message.startswith(MISSING):
                detail.append({"loc": ["body", *path], "msg": "field required",
                               "type": "missing"})
                texts.append(f"{'.'.join(map(str, path))}: field required")
            else:
                detail.append({"loc": ["body", *path], "msg": message, "type": "value_error"})
                texts.append(message)
        if not detail:
            return None
        return Refusal(422, wire.ERROR_CODE_VALIDATION,
                       f"Validation Error: {'; '.join(texts)}", detail)


def _data_uri_fields(value: Any, path: list[Any]) -> list[list[Any]]:
    if isinstance(value, str):
        return [path] if value.startswith("data:") else []
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _data_uri_fields(v, [*path, i])]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _data_uri_fields(v, [*path, k])]
    return []


def check_data_uris(body: dict[str, Any], config: SimConfig) -> Refusal | None:
    """When data URIs are refused, name the first field holding one."""
    if config.accept_data_uris:
        return None
    found = _data_uri_fields(body, [])
    if not found:
        return None
    name = found[0][0] + "".join(f"[{p}]" if isinstance(p, int) else f".{p}"
                                 for p in found[0][1:])
    detail = [{"loc": ["body", *p], "msg": "data URIs are not accepted", "type": "value_error"}
              for p in found]
    return Refusal(400, wire.ERROR_CODE_BAD_INPUT,
                   f"InvalidInput: {name}: data URIs are not accepted; pass a public https URL",
                   detail)
