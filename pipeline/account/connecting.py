"""Reaching the team ledger: a connection opened within a timeout, the ledger's URL without
its password, and psycopg's errors said as the user can act on them (what failed, and what to
fix in --ledger / PIPELINE_LEDGER).

Apart from `store` (the tables' operations) because more than the store reaches the ledger:
`admin` opens connections of its own and translates their failures, and the runner
(`run/team`) names the ledger in its messages. psycopg is imported only when a connection is
opened or an error is translated.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import urlsplit

from ..errors import LedgerError, LedgerUnavailable

CONNECT_TIMEOUT = 3  # seconds: a ledger that is down (or a wrong host) is noticed quickly


def translate(exc: BaseException, url: str) -> LedgerError:
    """psycopg's errors, said as the user can act on them (the URL's password never shown)."""
    import psycopg

    where = safe_url(url)
    if isinstance(exc, psycopg.errors.UndefinedTable):
        return LedgerError(f"the team ledger at {where} is not set up: run "
                           "`pipeline account init --concurrency N` first")
    if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError, OSError,
                        asyncio.TimeoutError)):
        return LedgerUnavailable(f"the team ledger at {where} cannot be reached: "
                                 f"{diagnose(exc, url)}")
    return LedgerError(f"the team ledger at {where}: {exc}")


def diagnose(exc: BaseException, url: str) -> str:
    """What failed when connecting to the ledger, and what to do about it, in one line."""
    said = " ".join(str(exc).split()) or type(exc).__name__
    parts = urlsplit(url)
    try:
        port = parts.port or 5432
    except ValueError:
        port = 5432
    at = f"{parts.hostname or 'localhost'}:{port}"
    where = "in --ledger / PIPELINE_LEDGER"
    if m := re.search(r'database "([^"]*)" does not exist', said):
        return (f'the database "{m[1]}" does not exist on {at}: create it (createdb {m[1]}) '
                f"and run `pipeline account init --concurrency N`, or fix the database {where}")
    if m := re.search(r'role "([^"]*)" does not exist', said):
        return f'{at} has no user "{m[1]}": fix the user {where}'
    if re.search(r"password authentication failed|no password supplied|authentication "
                 r"failed", said, re.I):
        return (f"{at} refused the user {parts.username or '(default)'} and its password: fix "
                f"the user and password {where}")
    if re.search(r"failed to resolve host|could not translate host name|Name or service not "
                 r"known|nodename nor servname", said, re.I):
        return f"the host {parts.hostname!r} is not known: fix the host {where}"
    if re.search(r"connection refused", said, re.I):
        return (f"nothing listens on {at} (connection refused): start PostgreSQL there, or fix "
                f"the host and port {where}")
    if isinstance(exc, asyncio.TimeoutError) or re.search(r"time(d)? ?out", said, re.I):
        return (f"no answer from {at} within {CONNECT_TIMEOUT} s: fix the host and port "
                f"{where} (or a firewall between)")
    return f"{said}: check that PostgreSQL is up there and the URL {where} is right"


def safe_url(url: str) -> str:
    """The ledger's URL without its password."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unparsable URL)"
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)


async def connect(url: str, **options: Any) -> Any:
    """A new connection to the ledger, or an error within CONNECT_TIMEOUT s a try (psycopg
    tries each address of the host in turn: all of them within twice that)."""
    import psycopg

    return await asyncio.wait_for(psycopg.AsyncConnection.connect(
        url, connect_timeout=CONNECT_TIMEOUT, **options), 2 * CONNECT_TIMEOUT)
