"""What the commands of pipeline.api answer, beside RunSummary (pipeline.run.context): plain
data, with the few lines of text the CLI prints from it.

`Planned` is `api.plan`'s (`.as_json()` is `pipeline plan --json`), `CancelResult`
`api.cancel`'s and `Picked` `api.picks`'. Each imports what its methods use when they are
called, as pipeline.api does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .job.forecast import Forecast
    from .run.cancel import CancelOutcome

__all__ = ["CancelResult", "Picked", "Planned"]


@dataclass
class Planned:
    """What a run of a manifest would do: the plan tallied against its job's state."""

    forecast: Forecast
    warnings: list[str]  # the plan's and the prices'
    selection: str = ""  # `--only` as given, when cells were selected
    balance: float | None = None  # the account's wallet, when it was read (not offline)

    def as_json(self, *, streamed: bool = False) -> dict[str, Any]:
        """What `pipeline plan --json` prints (with `balance_usd` when it was read); `streamed`:
        its cells made one at a time as pipeline.jsonio.dump_indented writes them."""
        from .job.plan_json import plan_json

        data = plan_json(self.forecast, streamed=streamed)
        if self.balance is not None:
            data["balance_usd"] = self.balance
        return data

    def balance_lines(self) -> tuple[str | None, str | None]:
        """The wallet's line for the table, and a warning when it cannot pay the run."""
        if self.balance is None:
            return None, None
        from .run.wallet import balance_lines

        tally = self.forecast.tally
        to_go, unpriced = tally.to_go_of(tally.planned)
        return balance_lines(self.balance, to_go, unpriced)


@dataclass
class CancelResult:
    """What `pipeline cancel` did: how many requests were live, and the server's answers."""

    job: str
    live: int
    outcome: CancelOutcome | None
    note: str = ""  # why nothing was asked, when nothing was
    reports: list[Path] = field(default_factory=list)  # rewritten after the answers

    def text(self) -> str:
        if self.outcome is None:
            return f"{self.job}: {self.note}"
        return (f"{self.job}: asked to cancel {self.outcome.asked} live request(s): "
                f"{self.outcome.text()}")


@dataclass
class Picked:
    """The picks written: the file, and each pick with its cell's state in the job."""

    path: Path
    picks: list[tuple[dict[str, Any], str]]
