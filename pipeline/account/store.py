"""The team ledger on PostgreSQL: one account's slots and budget, shared by every runner.

A slot is held by an *attempt* (a request on the server), not by a process: a hold is keyed by
`job uid:cell:attempt`, made before the submit, and stays `live` until some runner (or
`pipeline account sweep`) sees the request end. A runner killed with live requests therefore
leaves its slots held, because those requests are still running and billed. Every change is
one transaction that first locks the `account` row, so reserving is atomic: the conditional
`UPDATE account SET live = live + 1, committed = committed + estimate WHERE live < concurrency
AND committed + estimate <= budget` either takes a slot and the money or changes nothing.

Slots go to the runners that wait for them first come, first served, one slot at a time
(table `waiters`): a runner may take a free slot only when fewer runners wait ahead of it than
there are free slots; one that cannot joins the end of the line, and leaves it when it gets a
slot. So a runner that keeps many requests going never starves one that waits: every slot
freed goes to the next runner in line, in turn.

The job's journal stays the truth of its own attempts: the runner mirrors them here
(`mirror`), so the ledger can always be brought back in line with the journals (at every run
start, and after the database comes back). Nothing here knows the runner; it only stores.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..errors import LedgerError, LedgerUnavailable
from ..job.money import MICRO, over_budget
from .schema import META, MIGRATIONS, VERSION

log = logging.getLogger("pipeline.account")

LIVE, BILLED, RELEASED = "live", "billed", "released"
CHANNEL = "pipeline_ledger_slots"  # NOTIFY'd whenever a slot is given back
CONNECT_TIMEOUT = 3  # seconds: a ledger that is down (or a wrong host) is noticed quickly
WAITER_STALE = 10  # seconds: a waiter that has not asked for this long is passed over


@dataclass(frozen=True)
class Hold:
    """One attempt as the ledger keeps it."""

    key: str
    job: str
    job_uid: str
    host: str
    pid: int
    cell: str
    attempt: int
    base_url: str
    state: str  # live | billed | released
    estimate_micros: int = 0
    cost_micros: int | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class Full:
    """No slot for this runner now: `live` requests are live on the account against
    `concurrency` (`holders`: (job, live) of each job holding slots, most first), and `ahead`
    runners (their jobs) wait before it for the free ones."""

    live: int
    concurrency: int
    holders: tuple[tuple[str, int], ...] = field(default=(), compare=False)
    ahead: tuple[str, ...] = field(default=(), compare=False)

    def __str__(self) -> str:
        """`4/4 held by ta (2), tc (2)`, and `; 1 runner ahead (tb)` when others wait first."""
        held = ", ".join(f"{job} ({n})" for job, n in self.holders)
        said = f"{self.live}/{self.concurrency} held" + (f" by {held}" if held else "")
        if self.ahead:
            n = len(self.ahead)
            said += f"; {n} runner{'s' if n != 1 else ''} ahead ({', '.join(self.ahead)})"
        return said


@dataclass(frozen=True)
class OverBudget:
    """Reserving would cross the team budget; `reason` says by how much."""

    reason: str


def contribution(state: str, estimate: int, cost: int | None) -> tuple[int, int, int]:
    """(live, committed, spent) micro-figures one hold adds to the account's totals."""
    if state == LIVE:
        return 1, estimate, 0
    if state == BILLED:
        paid = cost if cost is not None else estimate
        return 0, paid, paid
    return 0, 0, 0


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


class TeamLedger:
    """A connection to one team ledger; every method is one transaction.

    A lost connection raises LedgerUnavailable and is opened again by the next call, so a
    caller that waits and calls again rides out a database restart."""

    def __init__(self, url: str):
        if not url.startswith(("postgresql://", "postgres://")):
            raise LedgerError(f"the team ledger must be a postgresql:// URL, not {safe_url(url)!r}")
        self.url = url
        self._conn: Any = None
        self._lock = asyncio.Lock()  # one transaction at a time on the one connection

    async def _connection(self) -> Any:

        if self._conn is None or self._conn.closed:
            conn = await connect(self.url, application_name="pipeline")
            try:
                async with conn.transaction(), conn.cursor() as cur:
                    await _check_version(cur, self.url)
            except BaseException:
                await conn.close()
                raise
            self._conn = conn
        return self._conn

    async def close(self) -> None:
        if self._conn is not None:
            try:
                await self._conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail again
                pass
            self._conn = None

    async def transaction(self, body: Any) -> Any:
        """Run `body(cursor, account_row)` in one transaction holding the account row's lock."""
        async with self._lock:
            try:
                conn = await self._connection()
                async with conn.transaction(), conn.cursor() as cur:
                    row = await _locked_account(cur, self.url)
                    return await body(cur, row)
            except LedgerError:
                raise
            except Exception as exc:
                if self._conn is not None and self._conn.broken:
                    self._conn = None
                raise translate(exc, self.url) from None

    # --- what a runner asks ------------------------------------------------------------------
    async def acquire(self, hold: Hold) -> Full | OverBudget | None:
        """Take a slot and reserve `hold.estimate_micros` for it, or say why not (None: taken).
        A slot is taken only when fewer runners wait before this one than slots are free;
        otherwise this runner keeps (or takes) its place in the line (`waiters`). Asking again
        for a hold already live is answered None and changes nothing."""
        me = runner_of(hold)

        async def body(cur: Any, acct: dict) -> Full | OverBudget | None:
            await cur.execute("SELECT state FROM holds WHERE key = %s", (hold.key,))
            found = await cur.fetchone()
            if found is not None:
                if found[0] == LIVE:
                    return None
                raise RuntimeError(f"hold {hold.key} was already settled ({found[0]})")
            await cur.execute("DELETE FROM waiters WHERE seen < clock_timestamp() - "
                              "make_interval(secs => %s)", (WAITER_STALE,))
            await cur.execute(
                "SELECT job FROM waiters w WHERE runner <> %(me)s AND NOT EXISTS (SELECT 1 "
                "FROM waiters m WHERE m.runner = %(me)s AND (m.since, m.runner) < (w.since, "
                "w.runner)) ORDER BY since, runner", {"me": me})
            ahead = tuple(job for (job,) in await cur.fetchall())
            free = acct["concurrency"] - acct["live"]
            granted = None
            if free > len(ahead):
                await cur.execute(
                    "UPDATE account SET live = live + 1, committed_micros = committed_micros + "
                    "%(e)s, updated_at = now() WHERE id = 1 AND live < concurrency AND "
                    "(budget_micros IS NULL OR committed_micros + %(e)s <= budget_micros) "
                    "RETURNING period_start", {"e": hold.estimate_micros})
                granted = await cur.fetchone()
            if granted is None:
                if free <= len(ahead):
                    await cur.execute(
                        "INSERT INTO waiters (runner, job, host, pid) VALUES (%s, %s, %s, %s) "
                        "ON CONFLICT (runner) DO UPDATE SET seen = clock_timestamp()",
                        (me, hold.job, hold.host, hold.pid))
                    await cur.execute(
                        "SELECT job, count(*) FROM holds WHERE state = 'live' GROUP BY job "
                        "ORDER BY count(*) DESC, job")
                    holders = tuple((job, n) for job, n in await cur.fetchall())
                    return Full(acct["live"], acct["concurrency"], holders, ahead)
                await cur.execute("DELETE FROM waiters WHERE runner = %s", (me,))
                budget = acct["budget_micros"]
                reason = over_budget(acct["committed_micros"], hold.estimate_micros,
                                     None if budget is None else budget / MICRO, whose="team ")
                return OverBudget(reason or "the team budget has no room")
            await _insert(cur, hold, acct["period_start"])
            await cur.execute("DELETE FROM waiters WHERE runner = %s", (me,))
            if free > 1 and ahead:  # the next in line may take one of the slots still free
                await cur.execute(f"NOTIFY {CHANNEL}")
            return None

        return await self.transaction(body)

    async def leave(self, runner: str) -> None:
        """`runner` no longer waits for a slot (it got what it needed, or it stops)."""

        async def body(cur: Any, acct: dict) -> None:
            await cur.execute("DELETE FROM waiters WHERE runner = %s", (runner,))

        await self.transaction(body)

    async def check(self) -> None:
        """Connect (and check the tables' format) now: raises what `translate` says."""
        await self.transaction(_nothing)

    async def mirror(self, holds: list[Hold]) -> None:
        """Make the ledger say what the journal says of these attempts (idempotent)."""
        if not holds:
            return

        async def body(cur: Any, acct: dict) -> None:
            d_live = d_committed = d_spent = 0
            for hold in holds:
                await cur.execute("SELECT state, estimate_micros, cost_micros, period IS NOT "
                                  "DISTINCT FROM %s FROM holds WHERE key = %s FOR UPDATE",
                                  (acct["period_start"], hold.key))
                old = await cur.fetchone()
                new = contribution(hold.state, hold.estimate_micros if old is None else old[1],
                                   hold.cost_micros)
                if old is None:
                    await _insert(cur, hold, acct["period_start"])
                    counted, before = True, (0, 0, 0)
                else:
                    await cur.execute(
                        "UPDATE holds SET state = %s, request_id = coalesce(%s, request_id), "
                        "cost_micros = coalesce(%s, cost_micros), updated_at = now() "
                        "WHERE key = %s", (hold.state, hold.request_id, hold.cost_micros,
                                           hold.key))
                    counted, before = old[3], contribution(old[0], old[1], old[2])
                    if old[2] is not None and hold.cost_micros is None and hold.state == BILLED:
                        new = contribution(BILLED, old[1], old[2])
                d_live += new[0] - before[0]
                if counted:
                    d_committed += new[1] - before[1]
                    d_spent += new[2] - before[2]
            if d_live or d_committed or d_spent:
                await cur.execute(
                    "UPDATE account SET live = live + %s, committed_micros = committed_micros + "
                    "%s, spent_micros = spent_micros + %s, updated_at = now() WHERE id = 1",
                    (d_live, d_committed, d_spent))
            if d_live < 0:
                await cur.execute(f"NOTIFY {CHANNEL}")

        await self.transaction(body)

    async def live_holds(self, job_uid: str | None = None) -> list[Hold]:
        """The holds the ledger still counts as live: of one job, or of every job."""

        async def body(cur: Any, acct: dict) -> list[Hold]:
            await cur.execute(
                "SELECT key, job, job_uid, host, pid, cell, attempt, base_url, state, "
                "estimate_micros, cost_micros, request_id FROM holds WHERE state = 'live' AND "
                "(%(job)s::text IS NULL OR job_uid = %(job)s) ORDER BY created_at",
                {"job": job_uid})
            return [Hold(*row) for row in await cur.fetchall()]

        return await self.transaction(body)

    async def wait_for_slot(self, timeout: float) -> None:
        """Sleep until a slot may have been given back (a NOTIFY), at most `timeout` s."""

        try:
            async with await connect(self.url, autocommit=True) as conn:
                await conn.execute(f"LISTEN {CHANNEL}")
                async for _ in conn.notifies(timeout=timeout, stop_after=1):
                    break
        except Exception as exc:  # noqa: BLE001 - a wait that fails is a wait that ended
            log.debug("waiting for a ledger slot: %s", exc)
            await asyncio.sleep(min(timeout, 1.0))


async def connect(url: str, **options: Any) -> Any:
    """A new connection to the ledger, or an error within CONNECT_TIMEOUT s a try (psycopg
    tries each address of the host in turn: all of them within twice that)."""
    import psycopg

    return await asyncio.wait_for(psycopg.AsyncConnection.connect(
        url, connect_timeout=CONNECT_TIMEOUT, **options), 2 * CONNECT_TIMEOUT)


def runner_of(hold: Hold) -> str:
    """The runner (one process running one job) that asks for `hold`: its place in the line."""
    return f"{hold.job_uid}:{hold.host}:{hold.pid}"


async def _nothing(cur: Any, acct: dict) -> None:
    return None


async def _locked_account(cur: Any, url: str) -> dict:
    """The account row, locked for this transaction, after moving into today's period."""
    await cur.execute("SELECT concurrency, budget_micros, period, period_start, live, "
                      "committed_micros, spent_micros FROM account WHERE id = 1 FOR UPDATE")
    row = await cur.fetchone()
    if row is None:
        raise LedgerError(f"the team ledger at {safe_url(url)} has no account yet: run "
                          "`pipeline account init --concurrency N`")
    names = ("concurrency", "budget_micros", "period", "period_start", "live",
             "committed_micros", "spent_micros")
    acct = dict(zip(names, row, strict=True))
    if acct["period"] == "day":
        await cur.execute("SELECT (now() AT TIME ZONE 'UTC')::date")
        today = (await cur.fetchone())[0]
        if acct["period_start"] != today:  # a new day: live holds move into it, the rest stay
            await cur.execute("UPDATE account SET period_start = %s WHERE id = 1", (today,))
            await cur.execute("UPDATE holds SET period = %s WHERE state = 'live'", (today,))
            await recount(cur)
            return await _locked_account(cur, url)
    return acct


async def recount(cur: Any) -> None:
    """Compute the account's totals afresh from its holds (after a change of period)."""
    await cur.execute(
        "UPDATE account a SET live = s.live, committed_micros = s.committed, "
        "spent_micros = s.spent, updated_at = now() FROM (SELECT "
        " count(*) FILTER (WHERE h.state = 'live') AS live,"
        " coalesce(sum(CASE WHEN h.state = 'live' THEN h.estimate_micros"
        "   WHEN h.state = 'billed' THEN coalesce(h.cost_micros, h.estimate_micros) ELSE 0 END)"
        "   FILTER (WHERE h.period IS NOT DISTINCT FROM acc.period_start), 0) AS committed,"
        " coalesce(sum(CASE WHEN h.state = 'billed' THEN coalesce(h.cost_micros,"
        "   h.estimate_micros) ELSE 0 END)"
        "   FILTER (WHERE h.period IS NOT DISTINCT FROM acc.period_start), 0) AS spent"
        " FROM holds h, account acc WHERE acc.id = 1) s WHERE a.id = 1")


async def _insert(cur: Any, hold: Hold, period: Any) -> None:
    await cur.execute(
        "INSERT INTO holds (key, job, job_uid, host, pid, cell, attempt, base_url, request_id,"
        " state, estimate_micros, cost_micros, period) VALUES (%s, %s, %s, %s, %s, %s, %s, %s,"
        " %s, %s, %s, %s, %s)",
        (hold.key, hold.job, hold.job_uid, hold.host, hold.pid, hold.cell, hold.attempt,
         hold.base_url, hold.request_id, hold.state, hold.estimate_micros, hold.cost_micros,
         period))


async def _version(cur: Any, url: str, lock: bool = False) -> int:
    """The format the ledger's tables are in (0: none yet); newer than this code: refused."""
    await cur.execute("SELECT value FROM pipeline_ledger_meta WHERE key = 'version'"
                      + (" FOR UPDATE" if lock else ""))
    row = await cur.fetchone()
    version = int(row[0]) if row else 0
    if version > VERSION:
        raise LedgerError(f"the team ledger at {safe_url(url)} has format {version}, newer than "
                          f"this pipeline knows ({VERSION}): upgrade pipeline")
    return version


async def _check_version(cur: Any, url: str) -> None:
    await cur.execute("SELECT to_regclass('pipeline_ledger_meta')")
    if (await cur.fetchone())[0] is None:
        raise LedgerError(f"the team ledger at {safe_url(url)} is not set up: run "
                          "`pipeline account init --concurrency N` first")
    version = await _version(cur, url)
    if version < VERSION:
        raise LedgerError(f"the team ledger at {safe_url(url)} has format {version}: run "
                          "`pipeline account init` to bring it up to date")


async def migrate(cur: Any, url: str) -> int:
    """Create or bring the ledger's tables up to date; the version it is at now."""
    await cur.execute("SELECT pg_advisory_xact_lock(hashtext('pipeline_ledger_migrate'))")
    await cur.execute(META)
    for n in range(await _version(cur, url, lock=True), VERSION):
        await cur.execute(MIGRATIONS[n])
    await cur.execute("INSERT INTO pipeline_ledger_meta VALUES ('version', %s) ON CONFLICT "
                      "(key) DO UPDATE SET value = excluded.value", (str(VERSION),))
    return VERSION
