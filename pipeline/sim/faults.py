"""Seeded fault injection: which call fails how, and the ASGI tricks that make a failure real.

Each kind of fault draws from its own `random.Random(f"{seed}:{kind}")`, one draw per call that
could suffer it. Under a seed, the n-th call to reach the simulator therefore meets the same
faults every time; a client that makes calls one at a time sees an identical run. With
concurrent calls the *arrival order* at the server varies, so which request gets which fault
varies, while the number of faults in a long run still follows the rates.

A dropped connection is a socket closed without a single byte of answer (httpx raises
RemoteProtocolError "Server disconnected without sending a response"); a cut-short download
announces its full Content-Length, sends part of the body, then closes (httpx raises
RemoteProtocolError "peer closed connection without sending complete message body").
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .config import SimConfig

if TYPE_CHECKING:
    from starlette.types import Receive, Send

SUBMIT_ERROR_STATUSES = (500, 502, 503, 504)
ACCEPTABLE_ERROR_STATUSES = (500, 502, 504)  # 503 says "not taken"; the others are ambiguous
KINDS = ("drop", "drop_when", "slow", "rate_limit", "error", "error_status", "error_accept",
         "quirk", "download", "download_kind")


@dataclass(frozen=True)
class CallFaults:
    """What goes wrong with one API call (all False/None: nothing)."""

    drop: str | None = None  # "before" (not processed) or "after" (processed, answer lost)
    slow: bool = False
    rate_limited: bool = False
    error_status: int | None = None  # a 5xx answered instead of the real one
    process_before_error: bool = False  # the call (a submit) takes effect before its 5xx


class FaultPlan:
    """Draws faults for calls from seeded streams, one stream per kind of decision."""

    def __init__(self, config: SimConfig):
        self.config = config
        self.reset()

    def reset(self) -> None:
        seed = self.config.seed
        self._rng = {kind: random.Random(f"{seed}:{kind}") for kind in KINDS}

    def _roll(self, kind: str, p: float) -> bool:
        return self._rng[kind].random() < p

    def for_call(self, route: str) -> CallFaults:
        """The faults of one API call on `route` (submit, status, result, cancel, model)."""
        cfg = self.config
        drop = None
        if self._roll("drop", cfg.drop_rate):
            drop = "after" if self._roll("drop_when", cfg.drop_after_fraction) else "before"
        slow = self._roll("slow", cfg.slow_rate)
        if drop == "before":
            return CallFaults(drop=drop, slow=slow)
        if self._roll("rate_limit", cfg.rate_limit_rate):
            return CallFaults(slow=slow, rate_limited=True)
        if self._roll("error", cfg.error_rate):
            if route == "submit":
                status = self._rng["error_status"].choice(SUBMIT_ERROR_STATUSES)
                accept = (status in ACCEPTABLE_ERROR_STATUSES
                          and self._roll("error_accept", cfg.submit_error_accept_fraction))
            else:
                status = self._rng["error_status"].choice((500, 502, 503, 504))
                accept = route == "cancel" and self._roll("error_accept", 0.5)
            return CallFaults(slow=slow, error_status=status, process_before_error=accept)
        return CallFaults(drop=drop, slow=slow)

    def quirk(self) -> bool:
        """Whether this error answer goes out as HTTP 200 with its error_code in the body."""
        return self._roll("quirk", self.config.error_code_quirk)

    def for_download(self, outage_available: bool) -> str | None:
        """None, "outage" (404 for a while) or "truncate" (cut short) for one download."""
        if not self._roll("download", self.config.download_fault_rate):
            return None
        if outage_available and self._rng["download_kind"].random() < 0.5:
            return "outage"
        return "truncate"


def _transport(receive: Receive) -> asyncio.BaseTransport | None:
    """uvicorn's transport behind an ASGI `receive`, when the server exposes it (h11 does)."""
    owner = getattr(receive, "__self__", None)
    transport: asyncio.BaseTransport | None = getattr(owner, "transport", None)
    return transport


async def close_connection(receive: Receive, send: Send) -> None:
    """Close the client's connection without (the rest of) an answer.

    With uvicorn the socket is closed directly, then we yield so the server notices the loss
    and neither logs nor answers. Under another server, return without a complete answer:
    ASGI servers then close the connection (uvicorn logs an error line for it).
    """
    transport = _transport(receive)
    if transport is not None:
        transport.close()
        for _ in range(3):
            await asyncio.sleep(0)


async def drop(receive: Receive, send: Send) -> None:
    """Answer nothing: the client sees the connection closed without a response."""
    if _transport(receive) is None:  # no socket to close: a cut-short answer drops it too
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"100")]})
        await send({"type": "http.response.body", "body": b"{", "more_body": True})
    await close_connection(receive, send)


async def send_truncated(receive: Receive, send: Send, status: int,
                         headers: list[tuple[bytes, bytes]], body: bytes, keep: int) -> int:
    """Announce `len(body)` bytes, send only the first `keep`, then close; returns `keep`."""
    headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body[:keep], "more_body": True})
    await close_connection(receive, send)
    return keep
