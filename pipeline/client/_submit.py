"""How a failed submit is classified. The POST has no idempotency key, so it is never retried here.

NOT_ACCEPTED means the API surely did not take the request (safe to send again); OUTCOME_UNKNOWN
means it may have (sending again may pay twice: the caller must check before resubmitting).
When unsure we say OUTCOME_UNKNOWN: a wrong "unknown" costs a check, a wrong "not accepted" money.
"""

from __future__ import annotations

import httpx

from ._types import NOT_ACCEPTED, OUTCOME_UNKNOWN

# (what the client saw, classification, why) -- quoted by the README.
SUBMIT_TABLE: tuple[tuple[str, str, str], ...] = (
    ("httpx.ConnectError (refused, DNS, TLS handshake)", NOT_ACCEPTED,
     "no connection was made, nothing was sent"),
    ("httpx.ConnectTimeout", NOT_ACCEPTED, "the connection was never established"),
    ("httpx.PoolTimeout", NOT_ACCEPTED, "no connection became free; nothing was sent"),
    ("httpx.UnsupportedProtocol / InvalidURL / LocalProtocolError", NOT_ACCEPTED,
     "refused by our side before sending"),
    ("httpx.WriteError / WriteTimeout", OUTCOME_UNKNOWN,
     "part or all of the body may be in the server's hands: the kernel may already have "
     "delivered every byte when a later write fails, and a full JSON body can be processed"),
    ("httpx.ReadError / ReadTimeout / RemoteProtocolError", OUTCOME_UNKNOWN,
     "the whole request was sent; the answer was lost"),
    ("any other transport error", OUTCOME_UNKNOWN, "cannot tell how far it got"),
    ("HTTP 408, 429", NOT_ACCEPTED, "the server says it did not process the request"),
    ("HTTP 400-499 (incl. 401/403/400004 auth, 400001, 400002, 404, 422)", NOT_ACCEPTED,
     "rejected as invalid: sending the same body again fails the same way"),
    ("HTTP 500, 502, 504 (and any other 5xx)", OUTCOME_UNKNOWN,
     "the server or a gateway failed, possibly after the work was queued"),
    ("HTTP 503", OUTCOME_UNKNOWN,
     "usually 'not accepted' (overload, no backend), but gateways such as Envoy also answer 503 "
     "when the upstream reset after reading the request; conservative"),
    ("HTTP 3xx", OUTCOME_UNKNOWN, "a 303 after a POST means it was processed"),
    ("HTTP 2xx with error_code 4xxxxx", NOT_ACCEPTED, "the API's own rejection, 200-quirk"),
    ("HTTP 2xx with another error_code", OUTCOME_UNKNOWN, "an error of unknown meaning"),
    ("HTTP 2xx, body unreadable or without request_id", OUTCOME_UNKNOWN,
     "accepted or not, we cannot track it"),
)

# Refusals that may go away by themselves (beside 408, 429, 5xx): 409 conflict, 425 too early.
TRANSIENT_REFUSALS = frozenset({409, 425})

_NOT_ACCEPTED_EXC = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout,
                     httpx.UnsupportedProtocol, httpx.InvalidURL, httpx.LocalProtocolError)


def classify_exception(exc: BaseException) -> str:
    """The classification of a transport failure of the submit POST."""
    if isinstance(exc, _NOT_ACCEPTED_EXC):
        return NOT_ACCEPTED
    return OUTCOME_UNKNOWN  # WriteError/Timeout, ReadError/Timeout, RemoteProtocolError, others


def classify_status(status_code: int, error_code: object = None) -> str:
    """The classification of an error answer to the submit POST."""
    if 200 <= status_code < 300:
        code = str(error_code) if error_code is not None else ""
        return NOT_ACCEPTED if (len(code) == 6 and code.startswith("4")) else OUTCOME_UNKNOWN
    if 400 <= status_code < 500:
        return NOT_ACCEPTED
    return OUTCOME_UNKNOWN


def table_markdown() -> str:
    """SUBMIT_TABLE as a markdown table."""
    rows = ["| what the client saw | classification | why |", "|---|---|---|"]
    rows += [f"| {a} | {b} | {c} |" for a, b, c in SUBMIT_TABLE]
    return "\n".join(rows)
