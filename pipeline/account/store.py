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

The values it stores and answers (`Hold`, `Full`, `OverBudget`, the hold states) are in
`holds`; opening a connection and saying its failures, in `connecting`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..errors import LedgerError
from ..job.money import MICRO, over_budget
from .connecting import connect, safe_url, translate
from .holds import BILLED, LIVE, Full, Hold, OverBudget, contribution, runner_of
from .schema import META, MIGRATIONS, VERSION

log = logging.getLogger("pipeline.account")

CHANNEL = "pipeline_ledger_slots"  # NOTIFY'd whenever a slot is given back
WAITER_STALE = 10  # seconds: a waiter that has not asked for this long is passed over


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
