"""The run's mechanism, in three parts kept apart, with the policies they apply passed in.

- `Slots`: how many requests may be live now, said in one place (`Slots.limit()`): the
  concurrency (with `concurrency: auto`, what it has learnt), narrowed to the canary's cells
  until they are proven (pipeline.run.canary); and the waits for a free slot.
- `Stopping` (pipeline.run.stopping): the stop flags, why submitting stopped, the first fatal
  error; what ends a run early is policy passed in (FailureLimits, RefusalBreaker,
  pipeline.run.policy.FATAL).
- `LiveRequests` (pipeline.run.auto): the live requests in the order sent, which
  `concurrency: auto` learns from.

`Control` composes them for the runner, with the pollers' wake events.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

from .auto import AutoConcurrency
from .live import LiveRequests
from .policy import FATAL, Fatal
from .stopping import FailureLimits, RefusalBreaker, Stopping


class Slots:
    """Slots for live requests: at most `limit()` taken; none once submitting has stopped."""

    def __init__(self, concurrency: int, *, canary: int = 0,
                 auto: AutoConcurrency | None = None,
                 stopped: Callable[[], bool] = lambda: False):
        self.concurrency = concurrency
        self.canary = canary  # cells still to see done before more than these may be live
        self.auto = auto  # `concurrency: auto`: the limit is learnt (pipeline.run.auto)
        self.stopped = stopped
        self.live = 0  # slots taken: requests live on the server (or being submitted)
        self._free = asyncio.Condition()

    def limit(self) -> int:
        """How many requests may be live now (the one place that says it): the concurrency
        (with `auto`, what it has learnt), or while a canary is unproven only its cells, which
        keep their slots until judged."""
        base = self.auto.limit if self.auto is not None else self.concurrency
        return min(base, self.canary) if self.canary else base

    def shown(self) -> int:
        """The limit as a person is shown it: the slots `auto` lends out while the runner has
        not noticed a request's end are left out (the server would not confirm them)."""
        base = self.auto.target if self.auto is not None else self.concurrency
        return min(base, self.canary) if self.canary else base

    async def canary_proven(self) -> None:
        """One canary cell is done: one fewer to wait for; at none, open every slot."""
        async with self._free:
            self.canary = max(0, self.canary - 1)
            self._free.notify_all()

    async def take(self) -> bool:
        """Wait for a free slot; False when submitting has stopped."""
        async with self._free:
            while self.live >= self.limit() and not self.stopped():
                await self._free.wait()
            if self.stopped():
                return False
            self.live += 1
            return True

    def hold(self) -> None:
        """Count a request already live (resumed) as holding a slot."""
        self.live += 1

    async def give(self) -> None:
        async with self._free:
            self.live -= 1
            self._free.notify_all()

    def wake(self) -> None:
        """Waiters look again (the limit grew, or submitting stopped)."""
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._free:
            self._free.notify_all()


class Control:
    """One run's slots, stopping and live requests, and the pollers' wake events."""

    def __init__(self, concurrency: int, limits: FailureLimits | None = None, *,
                 canary: int = 0, refusals: RefusalBreaker | None = None,
                 auto: AutoConcurrency | None = None,
                 fatal: Mapping[type[Exception], Fatal] = FATAL):
        self.auto = auto
        self.stopping = Stopping(limits, refusals=refusals, fatal=fatal)
        self.pool = Slots(concurrency, canary=canary, auto=auto,
                          stopped=lambda: self.stopping.submitting_stopped)
        self.stopping.wake = self.pool.wake
        self.requests = LiveRequests(auto, wake=self.pool.wake)
        self.learned = asyncio.Event()  # set at the first finish: pollers re-plan
        self.eager = asyncio.Event()  # set when nothing is left to submit: pollers re-plan

    @property
    def slots(self) -> int:
        """The concurrency an ETA assumes: with `auto`, the capacity found (requests beyond it
        wait, they do not run), else `concurrency`."""
        if self.auto is not None and self.auto.capacity is not None:
            return self.auto.capacity
        return self.pool.concurrency


class Slot:
    """One cell's hold on a slot: taken once a slot is free, given back at most once."""

    def __init__(self, slots: Slots, held: bool = True):
        self.slots = slots
        self.held = held

    async def take(self) -> bool:
        self.held = await self.slots.take()
        return self.held

    async def give(self) -> None:
        if self.held:
            self.held = False
            await self.slots.give()
