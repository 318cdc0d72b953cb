"""When the API's host cannot be reached: what failed, what to check, and when to give up."""

from __future__ import annotations

import socket
import ssl
import time

import httpx
import pytest

from pipeline.client._reach import Outage, explain
from pipeline.errors import ApiUnreachable


def failure(cause: BaseException, kind: type = httpx.ConnectError) -> BaseException:
    """A connection failure as httpx raises it: its cause chained below it."""
    try:
        try:
            raise cause
        except BaseException as inner:
            raise kind("connect failed") from inner
    except BaseException as exc:
        return exc


@pytest.mark.parametrize(("cause", "kind", "said", "check", "hopeless"), [
    (ConnectionRefusedError(111, "Connection refused"), httpx.ConnectError,
     "connection refused", "the service is up", False),
    (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), httpx.ConnectError,
     "does not resolve", "DNS", True),
    (socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"),
     httpx.ConnectError, "does not resolve", "DNS", False),
    (ssl.SSLCertVerificationError(1, "certificate verify failed"), httpx.ConnectError,
     "TLS certificate is not trusted", "system clock", True),
    (TimeoutError("timed out"), httpx.ConnectTimeout, "no answer to connect", "firewall", False),
])
def test_each_failure_says_what_failed_and_what_to_check(cause, kind, said, check,
                                                         hopeless) -> None:
    """Refused, unresolvable, untrusted TLS and silent hosts are told apart."""
    what, hint, at_once = explain(failure(cause, kind), "api.example.com")
    assert said in what and check in hint and at_once == hopeless


def test_a_host_never_reached_is_given_up_after_first_contact_patience() -> None:
    """Failures keep being retried until the first contact's patience is spent."""
    outage = Outage("http://127.0.0.1:9", first_contact=0.3, later=60)
    refused = failure(ConnectionRefusedError(111, "Connection refused"))
    start = time.monotonic()
    assert outage.failed(refused, start) is None
    assert outage.cap(10.0) <= 0.36
    time.sleep(0.35)
    error = outage.failed(refused, time.monotonic())
    assert isinstance(error, ApiUnreachable) and error.exit_code == 2
    assert str(error).startswith("cannot reach the API at 127.0.0.1:9: connection refused")
    assert outage.retries == 1


def test_a_host_that_answered_before_gets_more_patience() -> None:
    """After an answer, a short outage (or an unresolvable name) is retried, not fatal."""
    outage = Outage("https://api.example.com", first_contact=0.0, later=60)
    outage.answered()
    nxdomain = failure(socket.gaierror(socket.EAI_NONAME, "Name or service not known"))
    assert outage.failed(nxdomain, time.monotonic()) is None
    assert outage.failed(nxdomain, time.monotonic()) is None and outage.retries == 1
    outage.answered()
    assert outage.retries == 0 and outage.left() is None and outage.cap(5.0) == 5.0
