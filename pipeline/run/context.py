"""What the steps of one run share: plain data handed to `submit`, `poll` and `collect`.

The session builds it (pipeline.run.session); the runner drives it. Nothing here decides
anything: the job's truth is in the journal and its Tally, the mechanism in Control.
"""

from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..client import RunComfyClient
from ..job.folder import JobFolder
from ..job.journal import JobState
from ..job.journal_writer import JournalWriter
from ..job.price import Prices
from ..job.tally import Tally
from ..models.catalogue import Model
from ..prepare.expand import Cell
from ..prepare.plan import Plan
from .control import Control
from .policy import Retries
from .watch import Watch

# Test hook (RocksDB-style kill points): PIPELINE_CRASH_AT=point[:n] SIGKILLs this process the
# n-th time (default 1st) it passes `point`. Points: after_intent, after_submit, after_download.
_CRASH_AT = os.environ.get("PIPELINE_CRASH_AT", "")
_crash_passes: dict[str, int] = {}


def crash_point(name: str) -> None:
    if not _CRASH_AT:
        return
    point, _, nth = _CRASH_AT.partition(":")
    if point != name:
        return
    _crash_passes[name] = _crash_passes.get(name, 0) + 1
    if _crash_passes[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass(frozen=True)
class RunOptions:
    """Command-line choices that override or extend the manifest's `run` block."""

    backend: str | None = None
    concurrency: int | None = None
    auto: bool = False  # --concurrency auto
    only: tuple[tuple[str, str], ...] = ()
    retry_failed: bool = False
    resubmit_unknown: bool = False
    cancel_on_interrupt: bool = False
    out: Path | None = None
    allow_schema_change: bool = False
    allow_unknown_price: bool = False
    progress: bool | str | None = None  # a mode of pipeline.run.progress; None: bar on a tty
    no_canary: bool = False  # --no-canary: this run proves no cell first (see run.canary)
    sim: Any = None  # a pipeline.sim.SimConfig for --backend sim
    ledger: str | None = None  # a team ledger's postgresql:// URL (else PIPELINE_LEDGER)
    retries: Retries = Retries()  # how often the run tries again (pipeline.run.policy)
    ignore_balance: bool = False  # --ignore-balance: a short wallet does not stop the run


@dataclass
class RunSummary:
    """How a run ended: the job's figures (as `status` shows them) and why it stopped."""

    out_dir: Path
    figures: dict[str, Any]
    exit_code: int
    stopped: str | None = None  # why submitting stopped early, if it did
    interrupted: bool = False
    cancelled: Any = None  # a pipeline.run.cancel.CancelOutcome after --cancel-on-interrupt
    reports: list[Path] = field(default_factory=list)
    cell_events: int = -1

    @property
    def counts(self) -> dict[str, int]:
        return self.figures["counts"]

    @property
    def spent(self) -> float | None:
        return self.figures["spent_usd"]


@dataclass
class RunContext:
    """One run of one job, as its steps see it."""

    plan: Plan
    cells: list[Cell]  # the cells this run may work on (--only selects them)
    folder: JobFolder
    client: RunComfyClient
    journal: JournalWriter
    tally: Tally
    control: Control
    planner: Any  # a pipeline.run.poll.PollPlanner, shared by every cell's poller
    price: Prices
    backend: str
    max_attempts: int
    timeout: float  # seconds a request may stay live (polling.timeout)
    watch: Watch  # what the canary's cells showed (pipeline.run.canary)
    downloads: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(8))
    team: Any = None  # a pipeline.run.team.TeamSlots when a team ledger is named
    previews: Any = None  # a pipeline.media.strips.Previews: frame strips and posters
    # per model, how many of its cells the canary proves first (pipeline.job.next_run.canary_needs)
    canary_needs: dict[str, int] = field(default_factory=dict)
    retries: Retries = Retries()  # submits, download rounds, ledger outages (RunOptions')
    unknown_words: set[str] = field(default_factory=set)  # status words shown as unknown
    wallet: Any = None  # a pipeline.run.wallet.WalletCheck (the balance read before submits)

    @property
    def state(self) -> JobState:
        return self.journal.state

    def model_of(self, cell: Cell) -> Model:
        """The model a cell's request is for."""
        return self.plan.manifest.sweep.models[cell.model or self.plan.manifest.model.id]

    def estimate(self, cell_id: str) -> float | None:
        planned = self.tally.planned.get(cell_id)
        return planned.estimate if planned else None

    def write(self, event: dict[str, Any]) -> dict[str, Any]:
        return self.journal.write(event)
