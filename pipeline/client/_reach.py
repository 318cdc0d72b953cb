"""Whether the API's host can be reached at all, and when to stop trying.

A connection that cannot be made (refused, a name that does not resolve, a TLS handshake that
fails, no answer to connect) is not like a 5xx: retrying it for an hour only hides a wrong
address or a dead network. The client tells an `Outage` about every failed connection and
every answer; once the host has not been reached for `patience` seconds it gives up with one
`ApiUnreachable` saying what failed and what to check. The patience is short (`FIRST_CONTACT`)
while this client has never reached the host (a wrong address, no network: say so within
seconds) and longer (`LATER`) once it has (a network blip in the middle of a night's run
should not stop it). A name that does not exist or a certificate that is not trusted is
hopeless at first contact.
"""

from __future__ import annotations

import socket
import ssl
import time
from urllib.parse import urlparse

import httpx

from ..errors import ApiUnreachable

FIRST_CONTACT = 20.0  # seconds without reaching a host this client never reached
LATER = 300.0  # seconds without reaching a host that answered before
CONNECT_FAILURES = (httpx.ConnectError, httpx.ConnectTimeout)


class Outage:
    """Failed connections to one host since its last answer."""

    def __init__(self, base_url: str, *, first_contact: float = FIRST_CONTACT,
                 later: float = LATER):
        self.host = urlparse(base_url).netloc or base_url
        self.first_contact = first_contact
        self.later = later
        self.reached = False
        self.since: float | None = None  # when the first failed attempt started
        self.retries = 0  # connections tried again since the last answer
        self.last: BaseException | None = None

    def answered(self) -> None:
        """The host answered (whatever it said)."""
        self.reached = True
        self.since = None
        self.retries = 0
        self.last = None

    def failed(self, exc: BaseException, started: float) -> ApiUnreachable | None:
        """A connection attempt begun at `started` (time.monotonic) failed with `exc`; the
        error to give up with, or None while trying again makes sense."""
        if self.since is None:
            self.since = started
        else:
            self.retries += 1
        self.last = exc
        why, check, hopeless = explain(exc, self.host)
        waited = time.monotonic() - self.since
        if (hopeless and not self.reached) or waited >= self.patience:
            return ApiUnreachable(
                f"cannot reach the API at {self.host}: {why}" +
                (f" (tried for {waited:.0f} s)" if waited >= 1 else "") +
                f"; {check}. Cells not sent stay pending: run again to resume")
        return None

    @property
    def patience(self) -> float:
        return self.later if self.reached else self.first_contact

    def left(self) -> float | None:
        """Seconds until the client gives up on the host, while it cannot reach it."""
        if self.since is None:
            return None
        return max(0.0, self.since + self.patience - time.monotonic())

    def cap(self, wait: float) -> float:
        """A wait before trying again, cut so that giving up is not delayed by it."""
        left = self.left()
        return wait if left is None else min(wait, left + 0.05)


def is_connect_failure(exc: BaseException) -> bool:
    return isinstance(exc, CONNECT_FAILURES)


def explain(exc: BaseException, host: str) -> tuple[str, str, bool]:
    """(what failed, what to check, hopeless at once) for a failed connection."""
    cause = _root(exc)
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if isinstance(cause, socket.gaierror):
        hopeless = cause.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", None))
        return (f"the name {name!r} does not resolve ({cause.strerror or cause})",
                "check the host name (RUNCOMFY_BASE_URL) and this machine's network and DNS",
                hopeless)
    if isinstance(cause, ssl.SSLCertVerificationError):
        return (f"its TLS certificate is not trusted "
                f"({getattr(cause, 'verify_message', None) or cause})",
                "check the system clock, a proxy that intercepts TLS, or SSL_CERT_FILE", True)
    if isinstance(cause, ssl.SSLError):
        return (f"the TLS handshake failed ({getattr(cause, 'reason', None) or cause})",
                "check that RUNCOMFY_BASE_URL is an https address of the API, and any proxy",
                False)
    if isinstance(cause, ConnectionRefusedError):
        return ("connection refused",
                "check RUNCOMFY_BASE_URL and that the service is up (`--backend sim` runs "
                "offline)", False)
    if isinstance(exc, httpx.ConnectTimeout) or isinstance(cause, TimeoutError):
        return ("no answer to connect",
                "check this machine's network, a firewall, or a proxy (HTTPS_PROXY)", False)
    return (f"{type(cause).__name__}: {cause}",
            "check this machine's network and RUNCOMFY_BASE_URL", False)


def _root(exc: BaseException) -> BaseException:
    """The innermost cause of `exc` (httpx wraps httpcore, which wraps the socket error)."""
    seen = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = exc.__cause__ or exc.__context__
        if inner is None:
            break
        exc = inner
    return exc
