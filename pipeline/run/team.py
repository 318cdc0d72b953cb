"""A run's side of the team ledger (pipeline.account): a slot and the money for each attempt
are taken from the ledger before its intent is journalled, and the ledger is kept in line with
the journal afterwards.

The journal stays the truth of this job's attempts; the ledger mirrors them. `acquire` is the
only call a submit waits on: with no answer from the database there is no slot, so a runner
whose ledger is down stops submitting (its live requests are still polled and collected) and
goes on when the database is back. Everything else the ledger learns (a request id, a result,
a cost) is queued as "this attempt changed" and mirrored by one background task, which keeps
trying through an outage; at the start, and after every outage, the whole job is mirrored
again (`reconcile`), so a hold left by a crash, or a change lost with a connection, is mended.

A ledger that cannot be reached when the run starts is the user's to fix (a wrong host, port,
database, user or password: `start` raises it, naming what failed); only one that was reached
and then went away is waited for. Every wait (for the ledger, for a slot, for a connection)
ends as soon as the run stops (Ctrl-C), and while a submit waits, `waiting` says why (the
progress line shows it: `waiting for a team slot: 4/4 held by ta (2), tc (2)`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ..account.connecting import safe_url
from ..account.holds import BILLED, LIVE, RELEASED, Full, Hold, OverBudget, runner_of
from ..account.store import TeamLedger
from ..client import RetryPolicy
from ..errors import LedgerError, LedgerUnavailable
from ..job.journal import JobState
from ..job.money import micros
from ..job.records import Attempt
from .policy import Retries
from .stopping import Stopping

log = logging.getLogger("pipeline.run")

T = TypeVar("T")

FULL_WAIT = 2.0  # seconds between asks while the account is full (a NOTIFY wakes us sooner)
CLOSE_PATIENCE = 15.0  # seconds a run that ends tries to bring the ledger up to date
INTERRUPTED_PATIENCE = 0.5  # the same for a run stopped by Ctrl-C (none if the ledger is down)


def hold_state(a: Attempt | None) -> str:
    """What the ledger keeps for an attempt: the journal's own judgement (records.Attempt)."""
    if a is None:  # a slot taken for an attempt that never reached its intent: never sent
        return RELEASED
    if a.live:
        return LIVE
    return BILLED if a.billed else RELEASED


class TeamSlots:
    """The team ledger as one run of one job uses it."""

    def __init__(self, ledger: TeamLedger, state: JobState, *, job: str, job_uid: str,
                 base_url: str, down: RetryPolicy | None = None,
                 stopping: Stopping | None = None):
        self.ledger = ledger
        self.stopping = stopping  # the run's (its interrupt shortens `close`)
        self.down = down or Retries().ledger_down  # the pauses between asks while it is down
        self.state = state
        self.job, self.job_uid, self.base_url = job, job_uid, base_url
        self.host, self.pid = socket.gethostname(), os.getpid()
        self._dirty: dict[str, Hold] = {}
        self._wake = asyncio.Event()
        self._closing = False
        self._reconciled = False
        self.down_since: float | None = None  # the ledger is unreachable since (loop time)
        self.waiting: str | None = None  # why a submit waits for the ledger, for progress
        self.on_waiting: Callable[[], None] = lambda: None  # `waiting` changed (progress)
        self._in_line = False  # this runner has a place in the ledger's line for a slot

    @property
    def runner(self) -> str:
        """This runner's name in the ledger's line for a slot."""
        return runner_of(Hold(key="", job=self.job, job_uid=self.job_uid, host=self.host,
                              pid=self.pid, cell="", attempt=0, base_url="", state=RELEASED))

    def key(self, cell: str, n: int) -> str:
        return f"{self.job_uid}:{cell}:{n}"

    def hold(self, cell: str, n: int, reserving: float | None = None) -> Hold | None:
        """The ledger's view of attempt n of a cell as the journal says it now (`reserving`:
        the attempt is about to be sent, with this estimate). None for a cell compacted by the
        run: the journal no longer has its attempts in detail (their last changes were taken
        when they happened, see `changed`)."""
        rec = self.state.cells.get(cell)
        if rec is not None and rec.compacted:
            return None
        a = next((x for x in reversed(rec.attempts) if x.n == n), None) if rec else None
        usd: float | None
        if reserving is not None:
            state, usd = LIVE, reserving
        else:
            state, usd = hold_state(a), a.estimate if a is not None else None
        return Hold(key=self.key(cell, n), job=self.job, job_uid=self.job_uid, host=self.host,
                    pid=self.pid, cell=cell, attempt=n, base_url=self.base_url, state=state,
                    estimate_micros=micros(usd or 0.0),
                    cost_micros=None if a is None or a.cost is None else micros(a.cost),
                    request_id=a.request_id if a is not None else None)

    @property
    def reconciled(self) -> bool:
        """The ledger has been brought in line with the journal since the last outage."""
        return self._reconciled

    # --- at the start ----------------------------------------------------------------------
    async def start(self) -> None:
        """Reach the ledger and bring it in line with the journal. A ledger that cannot be
        reached now is a user error (LedgerError: a wrong URL is not waited for)."""
        try:
            await self.reconcile()
        except LedgerUnavailable as exc:
            raise LedgerError(str(exc)) from None  # (not LedgerUnavailable: not waited for)

    # --- before a submit ---------------------------------------------------------------------
    async def acquire(self, cell: str, n: int, estimate: float | None,
                      stopping: Stopping) -> bool:
        """Wait for a slot and the money for attempt n; False when submitting stops (the team
        budget has no room: the run is halted, saying why)."""
        tries = 0
        hold = self.hold(cell, n, reserving=estimate or 0.0)
        assert hold is not None  # (a cell being submitted is not compacted)
        taken = False  # a slot may have been taken for it (given back unless it is sent)
        try:
            while not stopping.submitting_stopped:
                try:
                    taken = True
                    answer = await self._unless_stopped(self.ledger.acquire(hold), stopping)
                except LedgerUnavailable as exc:
                    self._down(exc)
                    self._say("waiting for the team ledger, which cannot be reached (submits "
                              "resume when it is back)")
                    tries += 1
                    if await stopping.sleep(self.down.backoff(tries)):
                        break
                    continue
                except LedgerError as exc:
                    stopping.fail(exc, "the team ledger cannot be used")
                    break
                if stopping.everything.is_set():  # no answer: the run stopped first
                    break
                self._up()
                if answer is None and not stopping.submitting_stopped:
                    self._in_line = False
                    self._say(None)
                    return True
                if answer is None:  # taken as submitting stopped: it goes back
                    break
                taken = False
                if isinstance(answer, OverBudget):
                    self._in_line = False
                    stopping.halt(answer.reason)
                    break
                assert isinstance(answer, Full)
                self._in_line = True
                self._say(f"waiting for a team slot: {answer}")
                await self._wait_for_slot(stopping)
        except BaseException:
            self.changed(cell, n)  # a slot taken just now goes back (never sent)
            raise
        if taken:
            self.changed(cell, n)
        self._say(None)
        if self._in_line and not stopping.everything.is_set():  # others need not wait for it
            try:  # (when everything stops, `close` leaves the line)
                await self._unless_stopped(self.ledger.leave(self.runner), stopping)
                self._in_line = stopping.everything.is_set()
            except LedgerError:
                pass  # (its place is passed over once it stops asking: WAITER_STALE)
        return False

    async def _unless_stopped(self, call: Awaitable[T], stopping: Stopping) -> T | None:
        """`call`'s answer, or None as soon as the run stops everything (Ctrl-C): a ledger
        that does not answer never holds a run that is asked to stop."""
        task = asyncio.ensure_future(call)
        stop = asyncio.ensure_future(stopping.everything.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if task.done():
            return task.result()
        task.cancel()
        return None

    def _say(self, why: str | None) -> None:
        if why != self.waiting:
            self.waiting = why
            self.on_waiting()

    async def _wait_for_slot(self, stopping: Stopping) -> None:
        waiter = asyncio.ensure_future(self.ledger.wait_for_slot(FULL_WAIT))
        stop = asyncio.ensure_future(stopping.everything.wait())
        try:
            await asyncio.wait({waiter, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (waiter, stop):
                task.cancel()

    def _down(self, exc: Exception) -> None:
        if self.down_since is None:
            self.down_since = asyncio.get_running_loop().time()
            log.warning("%s; not submitting until it is back (live requests are still "
                        "followed)", exc)
        self._reconciled = False

    def _up(self) -> None:
        if self.down_since is not None:
            log.warning("the team ledger at %s is back", safe_url(self.ledger.url))
            self.down_since = None

    # --- after the journal changed -----------------------------------------------------------
    def changed(self, cell: str, n: int | None) -> None:
        """Attempt n of `cell` changed in the journal (or was given up before its intent):
        its hold is taken now, while the journal has the attempt in detail."""
        if n is None:
            rec = self.state.cells.get(cell)
            if rec is None or rec.last is None:
                return
            n = rec.last.n
        hold = self.hold(cell, n)
        if hold is not None:
            self._dirty[hold.key] = hold
            self._wake.set()

    async def reconcile(self) -> None:
        """Mirror every attempt of this job the ledger or the journal holds as live."""
        keys = {(h.cell, h.attempt) for h in await self.ledger.live_holds(self.job_uid)}
        for rec in self.state.cells.values():
            keys.update((rec.id, a.n) for a in rec.attempts if a.live)
        holds = [h for c, n in keys if (h := self.hold(c, n)) is not None
                 and h.key not in self._dirty]
        await self.ledger.mirror(holds)
        self._reconciled = True

    async def flush(self) -> None:
        """Mirror what changed since the last flush (and everything, after an outage)."""
        if not self._reconciled:
            await self.reconcile()
        while self._dirty:
            batch = dict(list(self._dirty.items())[:200])
            await self.ledger.mirror(list(batch.values()))
            for key, hold in batch.items():
                if self._dirty.get(key) is hold:
                    del self._dirty[key]

    async def keep_in_line(self) -> None:
        """The background task: flush on every change, ride out outages, until `close`."""
        tries = 0
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
                self._up()
                tries = 0
            except LedgerUnavailable as exc:
                self._down(exc)
                self._wake.set()
                if self._closing:
                    return
                tries += 1
                await asyncio.sleep(self.down.backoff(tries))
            if self._closing and not self._dirty:
                return

    async def close(self, patience: float | None = None) -> None:
        """A last flush (tried for `patience` s: CLOSE_PATIENCE; when the run was interrupted
        INTERRUPTED_PATIENCE, and not at all while the ledger is down), then the connection is
        closed. What could not be mirrored is mended by the next run of this job
        (`reconcile`)."""
        self._closing = True
        if patience is None:
            patience = CLOSE_PATIENCE
            if self.stopping is not None and self.stopping.everything.is_set():
                patience = 0.0 if self.down_since is not None else INTERRUPTED_PATIENCE
        try:
            await asyncio.wait_for(self._final_flush(), patience)
        except (asyncio.TimeoutError, LedgerError) as exc:
            log.warning("the team ledger could not be brought up to date (%s); the next run "
                        "of this job, or `pipeline account sweep`, will", exc or "timed out")
        finally:
            await self.ledger.close()

    async def _final_flush(self) -> None:
        tries = 0
        while True:
            try:
                await self.flush()
                if self._in_line:  # its place in the line for a slot is given up
                    await self.ledger.leave(self.runner)
                    self._in_line = False
                return
            except LedgerUnavailable:
                self._reconciled = False
                tries += 1
                await asyncio.sleep(self.down.backoff(tries))


def open_team(url: str | None, state: JobState, *, job: str, job_uid: str,
              base_url: str, down: RetryPolicy | None = None,
              stopping: Stopping | None = None) -> TeamSlots | None:
    """The run's TeamSlots when a ledger is named (PIPELINE_LEDGER or --ledger), else None
    (`down`: the pauses between asks while it is down, pipeline.run.policy.Retries;
    `stopping`: the run's, whose interrupt ends every wait)."""
    if not url:
        return None
    return TeamSlots(TeamLedger(url), state, job=job, job_uid=job_uid, base_url=base_url,
                     down=down, stopping=stopping)


__all__ = ["TeamSlots", "hold_state", "open_team"]
