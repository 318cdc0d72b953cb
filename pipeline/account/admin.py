"""`pipeline account init|set|status|sweep|release`: the team ledger as its administrator sees
it.

Each function is one short transaction on the ledger (sweep also asks the API, free of charge,
how the requests it still counts as live have ended).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import Any

from .. import text
from ..errors import LedgerError, UsageError
from ..job.money import MICRO, micros
from . import KEEP, PERIODS
from .connecting import connect, translate
from .holds import BILLED, LIVE, RELEASED, Full, Hold
from .store import WAITER_STALE, TeamLedger, migrate, recount

log = logging.getLogger("pipeline.account")

DEFAULT_CONCURRENCY = 4  # as run.concurrency's default


def init(url: str, concurrency: int | None = None, budget: Any = KEEP,
         period: str | None = None) -> dict[str, Any]:
    """Create the ledger's tables (or bring them up to date) and its account; its status."""
    async def go() -> None:

        TeamLedger(url)  # checks the URL's form
        try:
            conn = await connect(url)
            async with conn, conn.transaction(), conn.cursor() as cur:
                await migrate(cur, url)
                await cur.execute(
                    "INSERT INTO account (id, concurrency) VALUES (1, %s) ON CONFLICT DO NOTHING",
                    (concurrency or DEFAULT_CONCURRENCY,))
        except LedgerError:
            raise
        except Exception as exc:
            raise translate(exc, url) from None

    asyncio.run(go())
    if concurrency is not None or budget is not KEEP or period is not None:
        return configure(url, concurrency=concurrency, budget=budget, period=period)
    return status(url)


def configure(url: str, *, concurrency: int | None = None, budget: Any = KEEP,
              period: str | None = None) -> dict[str, Any]:
    """`pipeline account set`: change the account's limits; its status after."""
    if concurrency is not None and concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    if period is not None and period not in PERIODS:
        raise UsageError(f"--period must be one of {', '.join(PERIODS)}")
    if isinstance(budget, (int, float)) and budget < 0:
        raise UsageError("--budget must be 0 or more (or `none`)")

    async def body(cur: Any, acct: dict) -> None:
        if concurrency is not None:
            await cur.execute("UPDATE account SET concurrency = %s WHERE id = 1", (concurrency,))
        if budget is not KEEP:
            await cur.execute("UPDATE account SET budget_micros = %s WHERE id = 1",
                              (None if budget is None else micros(float(budget)),))
        if period is not None and period != acct["period"]:
            if period == "total":  # everything ever spent counts again
                await cur.execute("UPDATE account SET period = 'total', period_start = NULL")
                await cur.execute("UPDATE holds SET period = NULL")
            else:  # today's holds and those still live count toward today
                await cur.execute("UPDATE account SET period = 'day', period_start = "
                                  "(now() AT TIME ZONE 'UTC')::date")
                await cur.execute("UPDATE holds SET period = (now() AT TIME ZONE 'UTC')::date "
                                  "WHERE state = 'live' OR created_at >= "
                                  "date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'")
            await recount(cur)

    _run(url, body)
    return status(url)


def status(url: str) -> dict[str, Any]:
    """The account now: limits, live requests, money of the period, and who holds slots."""
    async def body(cur: Any, acct: dict) -> dict[str, Any]:
        await cur.execute(
            "SELECT job, host, count(*), count(*) FILTER (WHERE request_id IS NULL) FROM holds "
            "WHERE state = 'live' GROUP BY job, host ORDER BY job, host")
        holders = [{"job": j, "host": h, "live": n, "unknown": u}
                   for j, h, n, u in await cur.fetchall()]
        await cur.execute(
            "SELECT job, host, pid, extract(epoch FROM clock_timestamp() - since) FROM waiters "
            "WHERE seen >= clock_timestamp() - make_interval(secs => %s) ORDER BY since, runner",
            (WAITER_STALE,))
        waiting = [{"job": j, "host": h, "pid": p, "waiting_s": round(float(s), 1)}
                   for j, h, p, s in await cur.fetchall()]
        budget = acct["budget_micros"]
        return {
            "concurrency": acct["concurrency"],
            "live": acct["live"],
            "committed_usd": acct["committed_micros"] / MICRO,
            "spent_usd": acct["spent_micros"] / MICRO,
            "budget_usd": None if budget is None else budget / MICRO,
            "period": acct["period"],
            "period_start": None if acct["period_start"] is None else
            acct["period_start"].isoformat(),
            "holders": holders,
            "waiting": waiting,  # runners waiting for a slot, first in line first
        }

    return _run(url, body)


def status_text(st: dict[str, Any]) -> str:
    budget = "none" if st["budget_usd"] is None else f"${st['budget_usd']:,.2f}"
    period = "in total" if st["period"] == "total" else f"on {st['period_start']} (UTC)"
    lines = [f"live {st['live']} of {st['concurrency']}; committed ${st['committed_usd']:,.2f}, "
             f"spent ${st['spent_usd']:,.2f} {period}; budget {budget}"]
    for h in st["holders"]:
        extra = f" ({h['unknown']} of unknown outcome)" if h["unknown"] else ""
        lines.append(f"  {h['job']} on {h['host']}: {h['live']} live{extra}")
    held = ", ".join(f"{h['job']} ({h['live']})" for h in
                     sorted(st["holders"], key=lambda h: (-h["live"], h["job"])))
    for i, w in enumerate(st.get("waiting") or []):
        place = "first in line" if i == 0 else f"{_ordinal(i + 1)} in line"
        lines.append(f"  {w['job']} on {w['host']}: waiting for a team slot for "
                     f"{text.span(w['waiting_s'])} ({place}): {st['live']}/"
                     f"{st['concurrency']} held" + (f" by {held}" if held else ""))
    return "\n".join(lines)


def _ordinal(n: int) -> str:
    return {2: "2nd", 3: "3rd"}.get(n, f"{n}th")


def sweep(url: str, client: Any) -> list[str]:
    """Ask the API how each request the ledger counts as live on `client`'s server has ended,
    and free the slots of those that have. Holds of unknown outcome (no request id) stay: the
    user decides them with `pipeline run MANIFEST --resubmit-unknown` (or `release`)."""
    async def go() -> list[str]:
        ledger = TeamLedger(url)
        try:
            holds = await ledger.live_holds()
            base = client.base_url.rstrip("/")
            ended: list[Hold] = []
            lines: list[str] = []
            for hold in holds:
                if hold.request_id is None or hold.base_url.rstrip("/") != base:
                    continue
                info = await client.status(hold.request_id)
                if not info.finished:
                    continue
                result = await client.result(hold.request_id)
                state = RELEASED if result.status == "cancelled" else BILLED
                cost = None if result.cost is None else micros(result.cost)
                ended.append(Hold(**{**hold.__dict__, "state": state, "cost_micros": cost}))
                lines.append(f"freed {hold.job} cell {hold.cell} attempt {hold.attempt}: "
                             f"{result.status}")
            await ledger.mirror(ended)
            unknown = sum(1 for h in holds if h.request_id is None)
            other = sum(1 for h in holds if h.request_id is not None and
                        h.base_url.rstrip("/") != base)
            still = len(holds) - len(ended) - unknown - other
            lines.append(f"swept: freed {len(ended)}, still live {still}"
                         + (f", unknown outcome {unknown} (pipeline run MANIFEST "
                            "--resubmit-unknown decides them, or pipeline account release "
                            "JOB for a job you abandon)" if unknown else "")
                         + (f", on another server {other}" if other else ""))
            return lines
        finally:
            await ledger.close()
            await client.aclose()

    return asyncio.run(go())


def release(url: str, job: str, cells: list[str] | None = None) -> list[str]:
    """Free the slots held for `job`'s submits of unknown outcome (no request id: the runner
    died or lost the answer before it learnt one), after the user has seen on the RunComfy
    dashboard that they are not running: the ledger cannot ask the server about a request it
    has no id for. `cells`: only those (ids or unique prefixes). Holds with a request id are
    left to `sweep`, which asks the server; a hold of a runner alive on this machine is never
    released (it may be submitting right now)."""
    async def go() -> list[str]:
        ledger = TeamLedger(url)
        try:
            holds = [h for h in await ledger.live_holds() if h.job == job]
            if not holds:
                return [f"job {job} holds no slot on the team ledger (pipeline account status "
                        "lists the jobs that do)"]
            unknown = [h for h in holds if h.request_id is None and
                       (not cells or any(h.cell.startswith(c) for c in cells))]
            mine = [h for h in unknown if h.host == socket.gethostname() and _alive(h.pid)]
            if mine:
                raise UsageError(f"job {job} is running on this machine (pid {mine[0].pid}): "
                                 "stop it first; its own next run frees what was never sent")
            await ledger.mirror([Hold(**{**h.__dict__, "state": RELEASED}) for h in unknown])
            lines = [f"released {job} cell {h.cell} attempt {h.attempt} (host {h.host})"
                     for h in unknown]
            sent = sum(1 for h in holds if h.request_id is not None)
            lines.append(f"released {len(unknown)} slot{'s' if len(unknown) != 1 else ''} of "
                         f"job {job}" + (f"; {sent} with a request id stay live until the "
                                         "server says they ended (pipeline account sweep asks)"
                                         if sent else ""))
            return lines
        finally:
            await ledger.close()

    return asyncio.run(go())


def job_news(url: str, folder: Any) -> dict[str, Any]:
    """What the team ledger knows of one job that its journal does not say (for `pipeline
    status`): the requests the journal counts as live that the ledger has seen end (`pipeline
    account sweep` asked the API, or another runner saw them), and whether a run of this job is
    waiting for a slot now. `{"error": ...}` when the ledger cannot be asked."""
    from ..job.journal import read_state

    state = read_state(folder, lean=True)
    uid = state.uid or ""
    live = {f"{uid}:{rec.id}:{a.n}" for rec in state.cells.values() for a in rec.attempts
            if a.live}

    async def body(cur: Any, acct: dict) -> dict[str, Any]:
        await cur.execute("SELECT state, coalesce(cost_micros, estimate_micros) FROM holds "
                          "WHERE key = ANY(%s) AND state <> 'live'", (sorted(live),))
        ended = await cur.fetchall()
        billed = [usd for st, usd in ended if st == BILLED]
        news: dict[str, Any] = {"ended": len(ended), "billed": len(billed),
                                "billed_usd": sum(billed) / MICRO, "waiting": None}
        await cur.execute("SELECT 1 FROM waiters WHERE runner LIKE %s AND seen >= "
                          "clock_timestamp() - make_interval(secs => %s)",
                          (f"{uid}:%", WAITER_STALE))
        if uid and await cur.fetchone() is not None:
            await cur.execute("SELECT job, count(*) FROM holds WHERE state = 'live' GROUP BY "
                              "job ORDER BY count(*) DESC, job")
            full = Full(acct["live"], acct["concurrency"],
                        tuple((j, n) for j, n in await cur.fetchall()))
            news["waiting"] = f"waiting for a team slot: {full}"
        return news

    try:
        return _run(url, body)
    except LedgerError as exc:
        return {"error": str(exc)}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's process: alive
        return True
    return True


def _run(url: str, body: Any) -> Any:
    async def go() -> Any:
        ledger = TeamLedger(url)
        try:
            return await ledger.transaction(body)
        finally:
            await ledger.close()

    return asyncio.run(go())


__all__ = ["LIVE", "LedgerError", "configure", "init", "job_news", "release",
           "status", "status_text", "sweep"]
