"""Retry policy on top of stamina: what is transient, full-jitter backoff, `Retry-After`.

stamina does the looping, the attempt/time budget and its testing mode
(`stamina.set_testing(True, attempts=N)` makes every wait zero). We only give it a backoff hook:
for a transient failure the hook returns the wait, either the server's `Retry-After` or
`RetryPolicy.backoff(n)`, `uniform(0, min(wait_max, wait_initial * 2**n))` ("full jitter");
for anything else False. `backoff` is the one backoff of the project: the runner waits with it
too (between not-accepted submits and between download rounds), so testing mode reaches every
wait.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import stamina

from .. import wire
from ..errors import DownloadError, _HttpAnswerError

# Failures that cannot get better by trying again, whatever the call.
_PERMANENT_TRANSPORT = (httpx.UnsupportedProtocol, httpx.LocalProtocolError)
RETRY_STATUSES = frozenset({408, 429})


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` value (seconds or an HTTP date); None if unusable."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN / inf
        return None
    return max(0.0, seconds)


def retry_after_of(response: httpx.Response) -> float | None:
    """The `Retry-After` hint of a response, in seconds."""
    return retry_after_seconds(response.headers.get(wire.RETRY_AFTER_HEADER))


def retryable_status(status: int | None) -> bool:
    """408, 429 and every 5xx are worth another try on an idempotent call."""
    return status is not None and (status in RETRY_STATUSES or 500 <= status < 600)


def api_transient(exc: Exception) -> tuple[bool, float | None]:
    """(retry?, Retry-After hint) for a failed GET or cancel."""
    if isinstance(exc, httpx.TransportError):
        return not isinstance(exc, _PERMANENT_TRANSPORT), None
    if isinstance(exc, _HttpAnswerError):
        status = getattr(exc, "effective_status", exc.status_code)
        return retryable_status(status), exc.retry_after
    return False, None


def download_transient(not_found_retries: int, not_found_wait: float
                       ) -> Callable[[Exception], tuple[bool, float | None]]:
    """Like api_transient for downloads, plus DownloadError.transient and up to N retries on 404.

    An output that 404s may simply not be there yet, so 404 waits grow from `not_found_wait`
    (doubling: 0.5 + 1 + 2 s by default) whatever the general backoff is.
    """
    seen = 0

    def judge(exc: Exception) -> tuple[bool, float | None]:
        nonlocal seen
        if isinstance(exc, DownloadError):
            if exc.status_code == 404:
                seen += 1
                wait = exc.retry_after if exc.retry_after is not None else (
                    not_found_wait * 2 ** (seen - 1))
                return seen <= not_found_retries, wait
            return exc.transient, exc.retry_after
        return api_transient(exc)

    return judge


@dataclass(frozen=True)
class RetryPolicy:
    """Budget and waits of one retried call (attempts include the first try)."""

    attempts: int = 6
    timeout: float = 60.0
    wait_initial: float = 0.5
    wait_max: float = 10.0

    def backoff(self, tries: int, hint: float | None = None) -> float:
        """Seconds to wait before retry number `tries` (1-based): the server's hint when it
        gave one, else full jitter; 0 in stamina's testing mode."""
        if stamina.is_testing():
            return 0.0
        if hint is not None:
            return float(hint)
        return random.uniform(0.0, min(self.wait_max, self.wait_initial * 2 ** (tries - 1)))

    def hook(self, judge: Callable[[Exception], tuple[bool, float | None]],
             cap: Callable[[float], float] | None = None
             ) -> Callable[[BaseException], bool | float]:
        """A fresh stamina backoff hook for one call (it counts that call's retries); `cap`
        may shorten each wait (the client's Outage does, so as not to delay giving up).
        (It takes any BaseException, as stamina 26.2 types its `on`; only an Exception may
        be retried.)"""
        tries = 0

        def backoff(exc: BaseException) -> bool | float:
            nonlocal tries
            if not isinstance(exc, Exception):
                return False
            retry, hint = judge(exc)
            if not retry:
                return False
            if hint is not None and hint > self.timeout:
                return False  # longer than our whole budget: give up, the caller can wait
            tries += 1
            wait = self.backoff(tries, hint)
            return cap(wait) if cap is not None else wait

        return backoff
