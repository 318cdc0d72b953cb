"""What a run does when something goes wrong, as values: the loops only apply them.

- `FATAL`: which client errors end a run, with the reason it gives (`Stopping.fail_on` is the
  one place that asks). An error marked `finish` still has the job's end recorded (its `end`
  event, status.json) before the run raises it: an unreachable API leaves the cells not sent
  pending, with the connection's failure as their reason.
- `Retries`: how often a run tries again (submits not accepted, download rounds, a team ledger
  that is down), each wait taken from `RetryPolicy.backoff` (pipeline.client), the project's
  one backoff, so stamina's testing mode reaches every wait. The defaults are RunOptions'.
- `disk_full`: what a full disk means once the journal writer has spent its ballast
  (pipeline.job.journal_writer calls `on_full`; Stopping.disk_full applies it).

FailureLimits, RefusalBreaker (pipeline.run.control) and the Ledger's budget
(pipeline.job.money) are the other stop policies; AutoConcurrency (pipeline.run.auto) the
concurrency's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..client import RetryPolicy
from ..errors import ApiUnreachable, AuthError, StateError


@dataclass(frozen=True)
class Fatal:
    """A client error that ends the run."""

    reason: str  # why submitting stopped, as the run says it
    finish: bool = False  # the job's end is recorded before the error is raised


FATAL: Mapping[type[Exception], Fatal] = {
    AuthError: Fatal("the API refused the token"),
    ApiUnreachable: Fatal("the API cannot be reached", finish=True),
}


def fatal_of(exc: BaseException | None,
             fatal: Mapping[type[Exception], Fatal] = FATAL) -> Fatal | None:
    """The rule for `exc` when it is one that ends a run, else None."""
    if exc is None:
        return None
    return next((rule for kind, rule in fatal.items() if isinstance(exc, kind)), None)


@dataclass(frozen=True)
class Retries:
    """How many times, and how long between, a run tries again (per cell and run)."""

    # not-accepted submits (429, ...) per cell; refused connections are not counted: the
    # client gives up on an unreachable host itself (ApiUnreachable)
    submit: int = 8
    download_rounds: int = 4  # per file, on top of the client's own retries
    # the pause between asks while the team ledger is down: doubling from 0.5 s up to 5 s
    ledger_down: RetryPolicy = RetryPolicy(wait_initial=0.5, wait_max=5.0)


DISK_FULL = "the disk is full"


def disk_full(where: object) -> StateError:
    """The error a run stops with once the disk holding its job folder `where` is full."""
    return StateError(f"the disk holding {where} is full: stopped before it could lose track "
                      "of a paid request; free some space and run again to resume")
