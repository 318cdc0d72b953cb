"""How one HTTP answer of the API becomes its JSON body or the ClientError it stands for.

The one place an answer is judged: a 2xx without an error code gives its body, as it came;
anything else raises the matching `_HttpAnswerError` (AuthError, NotFound, RateLimited or
ApiError), its message masked by the `scrub` the client passes in. The API's 200-with-error_code
quirk is read here too: the code's first three digits are the status it stands for
(`effective_status`), which is what retrying and submit classification look at.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from .. import wire
from ..errors import ApiError, AuthError, ClientError, NotFound, RateLimited, _HttpAnswerError
from ._parse import parse_error_body
from ._retry import retry_after_of


def read_answer(op: str, response: httpx.Response, scrub: Callable[[str], str]) -> Any:
    """The JSON body of a good answer, as it came; raises the answer's error otherwise."""
    try:
        body = json.loads(response.text) if response.content else None
    except ValueError:
        body = None
    ok = 200 <= response.status_code < 300
    parsed = parse_error_body(body, ok_status=ok)
    if ok and parsed is None:
        return body
    code, message = parsed or (None, "")
    if not message:
        snippet = scrub(response.text).strip()[:200] if not isinstance(body, dict) else ""
        message = snippet or response.reason_phrase or "error"
    effective = response.status_code
    if ok:  # the 200-with-error_code quirk: the code's first digits say what kind of error
        text = str(code)
        effective = int(text[:3]) if len(text) == 6 and text.isdigit() else 500
    err = answer_error(op, response.status_code, effective, code,
                       scrub(message), retry_after_of(response))
    raise err


def answer_error(op: str, status: int, effective: int, code: Any, message: str,
                 retry_after: float | None) -> ClientError:
    """The error class an answer's (effective) status and error code call for, filled in."""
    if effective in (401, 403) or str(code) == str(wire.ERROR_CODE_ACCOUNT):
        cls: type[_HttpAnswerError] = AuthError
    elif effective == 404 or str(code) == str(wire.ERROR_CODE_NOT_FOUND):
        cls = NotFound
    elif effective == 429:
        cls = RateLimited
    else:
        cls = ApiError
    err = cls(message, status_code=status, error_code=code, operation=op,
              retry_after=retry_after)
    err.effective_status = effective
    return err
