"""The run's mechanism for slots and stopping, with the policies it applies passed in.

`Control` owns the slots (at most `concurrency` requests live on the server), the stop flags
(stop submitting; stop everything) and why submitting stopped. What ends a run early is policy
kept apart: `FailureLimits` (fail_fast, max_failures) and the Ledger's budget verdict
(pipeline.job.ledger) say *whether* to stop; Control only carries it out.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from ..errors import PipelineError

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


class Control:
    """Slots, stop flags and the first fatal error of one run."""

    def __init__(self, concurrency: int, limits: FailureLimits = FailureLimits()):
        self.concurrency = concurrency
        self.limits = limits
        self.live = 0  # slots taken: requests live on the server (or being submitted)
        self._slot_free = asyncio.Condition()
        self.stop = asyncio.Event()  # set: stop submitting and polling (interrupt, fatal)
        self.learned = asyncio.Event()  # set at the first finish: pollers re-plan
        self.stopped: str | None = None  # why submitting stopped early
        self.fatal: PipelineError | None = None
        self.crash: BaseException | None = None
        self.interrupted = False
        self.failed = 0  # cells failed in this run

    @property
    def submitting_stopped(self) -> bool:
        return self.stopped is not None

    async def take_slot(self) -> bool:
        """Wait for a free slot; False when submitting has stopped."""
        async with self._slot_free:
            while self.live >= self.concurrency and not self.stopped:
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
