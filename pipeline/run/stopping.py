"""Stopping a run: why submitting stopped, the first fatal error, and the policies that decide.

`Stopping` is the mechanism: `halt` stops submitting (live requests are still polled and
collected), `fail` stops everything and the run raises the error at its end. *Whether* to stop
is policy kept apart and passed in: `FailureLimits` (fail_fast, max_failures), `RefusalBreaker`
(the same refusal on several submits in a row), the client errors that end a run
(pipeline.run.policy.FATAL) and the full disk (pipeline.run.policy.disk_full); the Ledger's
budget verdict (pipeline.job.money) and the canary's (pipeline.run.canary) halt through it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..errors import PipelineError
from . import advice, policy
from .policy import FATAL, Fatal

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


class Stopping:
    """The stop flags of one run (stop submitting; stop everything), why, and its first
    fatal error. `wake` is called whenever submitting stops (waiters for a slot look again)."""

    def __init__(self, limits: FailureLimits | None = None, *,
                 refusals: RefusalBreaker | None = None,
                 fatal: Mapping[type[Exception], Fatal] = FATAL,
                 wake: Callable[[], None] = lambda: None):
        self.limits = limits or FailureLimits()
        self.refusals = refusals or RefusalBreaker()
        self.rules = fatal
        self.wake = wake
        self.everything = asyncio.Event()  # set: stop submitting and polling (interrupt, fatal)
        self.stopped: str | None = None  # why submitting stopped early
        self.fatal: PipelineError | None = None
        self.crash: BaseException | None = None
        self.interrupted = False
        self.failed = 0  # cells failed in this run
        self._refusals_said: str | None = None  # the reason the refusal breaker gave

    @property
    def submitting_stopped(self) -> bool:
        return self.stopped is not None

    def halt(self, reason: str, *, quiet: bool = False) -> None:
        """Stop submitting (live requests are still polled and collected)."""
        if not self.stopped:
            self.stopped = reason
            if not quiet:
                log.warning("not submitting more cells: %s", reason)
        self.wake()

    def fail(self, exc: BaseException, reason: str | None = None) -> None:
        """A fatal error: stop submitting and polling; the run raises `exc` at its end."""
        if isinstance(exc, PipelineError):
            self.fatal = self.fatal or exc
        else:
            self.crash = self.crash or exc
        self.halt(reason or f"stopped: {exc}", quiet=isinstance(exc, PipelineError))
        self.everything.set()  # a user error is the run's one line; a bug still says it stopped

    def fail_on(self, exc: BaseException | None) -> bool:
        """Fail the run when `exc` is a client error that ends it (policy.FATAL); True if so."""
        rule = policy.fatal_of(exc, self.rules)
        if rule is None or exc is None:
            return False
        self.fail(exc, rule.reason)
        return True

    @property
    def finish_with(self) -> PipelineError | None:
        """The run's fatal error when it is one after which the job's end is still recorded
        (policy.Fatal.finish), else None."""
        rule = policy.fatal_of(self.fatal, self.rules)
        return self.fatal if rule is not None and rule.finish else None

    def disk_full(self, where: object) -> None:
        """The journal writer spent its ballast: stop before a paid request could be lost."""
        if self.fatal is None:
            self.fail(policy.disk_full(where), policy.DISK_FULL)

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
        if row is None:
            return
        reason = (f"{row} submits in a row were refused with {what} ({row} cells failed): "
                  f"{message}; {todo}")
        if self.stopped is None:
            self.halt(reason)
        elif self.stopped == self._refusals_said:  # submits already under way when it stopped:
            self.stopped = reason  # the reason counts every cell the row failed
        self._refusals_said = reason

    def cell_failed(self) -> None:
        """A cell failed for good in this run: apply the failure limits."""
        self.failed += 1
        reason = self.limits.verdict(self.failed)
        if reason:
            self.halt(reason)

    async def sleep(self, seconds: float) -> bool:
        """Sleep, or wake early when the run stops; True when stopping."""
        if self.everything.is_set():
            return True
        try:
            await asyncio.wait_for(self.everything.wait(), timeout=max(0.0, seconds))
            return True
        except asyncio.TimeoutError:
            return self.everything.is_set()

    def raise_if_failed(self) -> None:
        if self.crash is not None:
            raise self.crash
        if self.fatal is not None:
            raise self.fatal
