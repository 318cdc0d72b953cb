"""The run's mechanism for slots and stopping, with the policies it applies passed in.

`Control` owns the slots, the stop flags (stop submitting; stop everything) and why submitting
stopped. How many requests may be live now is said in one place, `Control.limit()`: the
concurrency, narrowed to the canary's cells until they are proven (pipeline.run.canary). What
ends a run early is policy kept apart: `FailureLimits` (fail_fast, max_failures),
`RefusalBreaker` (the same refusal on several submits in a row) and the Ledger's budget
verdict (pipeline.job.money) say *whether* to stop; Control only carries it out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import PipelineError
from . import advice
from .auto import QUEUED, AutoConcurrency

log = logging.getLogger("pipeline.run")


@dataclass(frozen=True)
class FailureLimits:
    """When failed cells stop a run from submitting more (pure policy)."""

    fail_fast: bool = False
    max_failures: int | None = None

    def verdict(self, failed: int) -> str | None:
        """Why submitting stops after `failed` cells failed in this run, or None."""
        if failed and self.fail_fast:
            return "a cell failed and fail_fast is set"
        if self.max_failures and failed >= self.max_failures:
            return f"{failed} cells failed (max_failures {self.max_failures})"
        return None


@dataclass
class RefusalBreaker:
    """When refusals stop a run from submitting (pure policy): the same refusal, by HTTP status
    and error code, answering `limit` submits in a row (0: never). Any other answer to a
    submit breaks the row."""

    limit: int = 3
    key: tuple[int | None, str | None] | None = None
    row: int = 0

    def refused(self, status: int | None, code: object) -> int | None:
        """Count one refusal; the length of the row once it reaches the limit, else None."""
        key = (status, str(code) if code is not None else None)
        self.row = self.row + 1 if key == self.key else 1
        self.key = key
        return self.row if self.limit and self.row >= self.limit else None

    def answered(self) -> None:
        """A submit was answered otherwise (accepted, or not refused for good)."""
        self.key, self.row = None, 0


class Control:
    """Slots, stop flags and the first fatal error of one run."""

    def __init__(self, concurrency: int, limits: FailureLimits = FailureLimits(), *,
                 canary: int = 0, refusals: RefusalBreaker | None = None,
                 auto: AutoConcurrency | None = None):
        self.concurrency = concurrency
        self.auto = auto  # `concurrency: auto`: the limit is learnt (pipeline.run.auto)
        self.order: dict[str, None] = {}  # cells with a request live, in the order sent
        # called with the capacity whenever `auto` finds a new one
        self.on_capacity: Callable[[int], None] | None = None
        self._asked: set[str] = set()  # cells of `order` whose request has answered a status
        self.waited_until: dict[str, float] = {}  # when a live request was last seen waiting
        self.limits = limits
        self.canary = canary  # cells still to see done before more than these may be live
        self.refusals = refusals or RefusalBreaker()
        self.live = 0  # slots taken: requests live on the server (or being submitted)
        self._slot_free = asyncio.Condition()
        self.stop = asyncio.Event()  # set: stop submitting and polling (interrupt, fatal)
        self.learned = asyncio.Event()  # set at the first finish: pollers re-plan
        self.eager = asyncio.Event()  # set when nothing is left to submit: pollers re-plan
        self.stopped: str | None = None  # why submitting stopped early
        self.fatal: PipelineError | None = None
        self.crash: BaseException | None = None
        self.interrupted = False
        self.failed = 0  # cells failed in this run

    @property
    def submitting_stopped(self) -> bool:
        return self.stopped is not None

    def limit(self) -> int:
        """How many requests may be live now (the one place that says it): the concurrency
        (with `auto`, what it has learnt), or while a canary is unproven only its cells, which
        keep their slots until judged."""
        base = self.auto.limit if self.auto is not None else self.concurrency
        return min(base, self.canary) if self.canary else base

    @property
    def slots(self) -> int:
        """The concurrency an ETA assumes: with `auto`, the capacity found (requests beyond it
        wait, they do not run), else `concurrency`."""
        if self.auto is not None and self.auto.capacity is not None:
            return self.auto.capacity
        return self.concurrency

    # --- what `auto` learns from (pipeline.run.auto) ---------------------------------------
    def sent(self, cell: str) -> None:
        """A request of `cell` is live on the server (accepted now, or found by a resume)."""
        self.order[cell] = None

    def seen(self, cell: str, status: str, queue_position: int | None, now: float) -> None:
        """A status answer for `cell`'s live request (from its poller or the queue watch)."""
        if self.auto is None or cell not in self.order:
            return
        first = cell not in self._asked
        self._asked.add(cell)
        before = self.auto.limit, self.auto.capacity
        ahead = []
        for other in self.order:
            if other == cell:
                break
            ahead.append(other)
        if status == QUEUED and queue_position:  # first in, first out: those just before it
            for other in [*ahead[len(ahead) - queue_position + 1:], cell]:  # wait too
                self.waited_until[other] = now
        self.auto.seen(cell, status, queue_position, ahead=ahead, live=len(self.order),
                       first=first, now=now)
        self._learnt(before)

    def ended(self, cell: str, finished_at: float | None) -> None:
        """`cell`'s request ended (`finished_at`: when, on our clock, if the server said)."""
        self._asked.discard(cell)
        self.waited_until.pop(cell, None)
        if self.order.pop(cell, 0) is None and self.auto is not None:
            before = self.auto.limit, self.auto.capacity
            self.auto.ended(cell, finished_at)
            self._learnt(before)

    def rate_limited(self, now: float) -> None:
        """A submit was answered 429: with `auto`, ask for fewer."""
        if self.auto is not None:
            before = self.auto.limit, self.auto.capacity
            self.auto.rate_limited(len(self.order), now)
            self._learnt(before)

    def _learnt(self, before: tuple[int, int | None]) -> None:
        assert self.auto is not None
        if self.auto.capacity != before[1] and self.auto.capacity is not None and \
                self.on_capacity is not None:
            self.on_capacity(self.auto.capacity)
        if self.auto.limit > before[0]:
            asyncio.get_running_loop().create_task(self._wake())

    async def canary_proven(self) -> None:
        """One canary cell is done: one fewer to wait for; at none, open every slot."""
        async with self._slot_free:
            self.canary = max(0, self.canary - 1)
            self._slot_free.notify_all()

    async def take_slot(self) -> bool:
        """Wait for a free slot; False when submitting has stopped."""
        async with self._slot_free:
            while self.live >= self.limit() and not self.stopped:
                await self._slot_free.wait()
            if self.stopped:
                return False
            self.live += 1
            return True

    def hold_slot(self) -> None:
        """Count a request already live (resumed) as holding a slot."""
        self.live += 1

    async def give_slot(self) -> None:
        async with self._slot_free:
            self.live -= 1
            self._slot_free.notify_all()

    def halt(self, reason: str, *, quiet: bool = False) -> None:
        """Stop submitting (live requests are still polled and collected)."""
        if not self.stopped:
            self.stopped = reason
            if not quiet:
                log.warning("not submitting more cells: %s", reason)
        asyncio.get_running_loop().create_task(self._wake())

    async def _wake(self) -> None:
        async with self._slot_free:
            self._slot_free.notify_all()

    def fail(self, exc: BaseException, reason: str | None = None) -> None:
        """A fatal error: stop submitting and polling; the run raises `exc` at its end."""
        if isinstance(exc, PipelineError):
            self.fatal = self.fatal or exc
        else:
            self.crash = self.crash or exc
        self.halt(reason or f"stopped: {exc}", quiet=isinstance(exc, PipelineError))
        self.stop.set()  # a user error is the run's one line; a bug still says it stopped

    def refused(self, status: int | None, code: object, message: str, todo: str) -> None:
        """A submit was refused for good (`todo`: what to do about it, pipeline.run.advice):
        insufficient balance stops submitting at once; the same refusal on
        `stop_after_refusals` submits in a row stops it too."""
        what = advice.describe(status, code)
        if advice.is_balance(status, code):
            self.halt(f"the API refused a submit for insufficient balance ({what}: {message}); "
                      f"{todo}")
            return
        row = self.refusals.refused(status, code)
        if row is not None:
            self.halt(f"{row} submits in a row were refused with {what} ({row} cells failed): "
                      f"{message}; {todo}")

    def cell_failed(self) -> None:
        """A cell failed for good in this run: apply the failure limits."""
        self.failed += 1
        reason = self.limits.verdict(self.failed)
        if reason:
            self.halt(reason)

    async def sleep(self, seconds: float) -> bool:
        """Sleep, or wake early when the run stops; True when stopping."""
        if self.stop.is_set():
            return True
        try:
            await asyncio.wait_for(self.stop.wait(), timeout=max(0.0, seconds))
            return True
        except asyncio.TimeoutError:
            return self.stop.is_set()

    def raise_if_failed(self) -> None:
        if self.crash is not None:
            raise self.crash
        if self.fatal is not None:
            raise self.fatal


class Slot:
    """One cell's hold on a slot: taken once a slot is free, given back at most once."""

    def __init__(self, control: Control, held: bool = True):
        self.control = control
        self.held = held

    async def take(self) -> bool:
        self.held = await self.control.take_slot()
        return self.held

    async def give(self) -> None:
        if self.held:
            self.held = False
            await self.control.give_slot()
