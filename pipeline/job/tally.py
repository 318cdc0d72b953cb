"""The totals every command shows: counts by state, money, work left and ETA of a job.

A `Tally` holds, per cell, its state, what a run does with it, its money and whether its
duration was measured, with the totals kept as they change; the runner updates it on every
journal event (O(1)), and `status`, `plan` and the report build one from the replayed journal
(O(cells)). `figures()` is the one dict of totals that the progress line, the run's last line,
`pipeline status`, report.json, report.md and report.html all show, so at any instant they say
the same thing.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..prepare import cost
from .journal import JobState
from .ledger import MICRO, Ledger, micros
from .records import (DONE, FAILED, LIVE, ORPHANED, PENDING, STATES, SUBMIT, UNKNOWN,
                      CellRecord, ResumeOptions, money, resume_action, slot_seconds)
from .timing import Timings, duration_key, eta


def resume_for(state: JobState, *, running: bool = False, retry_failed: bool = False,
               resubmit_unknown: bool = False, new_simulator: bool = False) -> ResumeOptions:
    """What a run started now would do with the job's cells. Requests of the built-in
    simulator die with the run that started it: every attempt made before now is lost once no
    run is going (or when a run starts a new simulator)."""
    lost = None
    if new_simulator:
        lost = time.time()
    elif state.header.get("backend") == "sim" and not running:
        lost = float("inf")
    return ResumeOptions(retry_failed, resubmit_unknown, lost)


@dataclass(frozen=True, slots=True)
class PlannedCell:
    """A cell of the job's plan as the tally needs it."""

    id: str
    label: str
    estimate: float | None  # USD at the job's price; None when unknown
    key: str  # its duration key (pipeline.job.timing)


def planned_cells(cells: Iterable[Any], model: str, sheet: dict | None,
                  fps: int = cost.DEFAULT_FPS) -> list[PlannedCell]:
    """PlannedCells from plan cells (objects or plan.json dicts with id, label, request)."""
    out = []
    shared: dict[Any, Any] = {}  # one float object per distinct estimate, not one per cell
    for c in cells:
        if isinstance(c, Mapping):
            cid, label, request = c["id"], c.get("label", ""), c.get("request") or {}
        else:
            cid, label, request = c.id, c.label, c.request
        usd = cost.cell_cost(sheet, request, fps)
        out.append(PlannedCell(cid, label, shared.setdefault(usd, usd),
                               duration_key(model, request)))
    return out


_ENTRIES: dict[tuple, tuple] = {}


class Tally:
    """Counts by state, money, work left and measured durations of a job's cells."""

    def __init__(self, planned: Iterable[PlannedCell], *, max_attempts: int,
                 budget: float | None = None, live_since: float | None = None,
                 resume: ResumeOptions = ResumeOptions(), typical: float | None = None):
        self.planned = {c.id: c for c in planned}
        self.max_attempts = max_attempts
        self.ledger = Ledger(budget)
        self._reset(live_since, resume, typical)

    def _reset(self, live_since: float | None, resume: ResumeOptions,
               typical: float | None) -> None:
        self.live_since = live_since
        self.resume = resume
        self.counts = dict.fromkeys(STATES, 0)
        self.counts[PENDING] = len(self.planned)
        self.timings = Timings(typical)
        self.todo: Counter[str] = Counter()  # cells a run would submit, by duration key
        self.to_go = 0  # their estimates, in micro-dollars (as the Ledger counts)
        self.to_go_unpriced = 0
        self.live: dict[str, tuple[str, float | None]] = {}  # cell -> (key, submitted at)
        self.listed: dict[str, str] = {}  # failed and unknown cells -> state
        self._cells: dict[str, tuple[str, bool, bool]] = {}  # state, to do, measured
        for c in self.planned.values():
            self._add_todo(c, 1)

    def recount(self, state: JobState, *, live_since: float | None,
                resume: ResumeOptions) -> None:
        """Count every cell again under other choices (in place: a second tally of a
        100,000-cell job would double the memory it takes)."""
        self._reset(live_since, resume, self.timings.typical)
        self.count(state)

    @classmethod
    def of(cls, state: JobState, planned: Iterable[PlannedCell], **options: Any) -> Tally:
        """The tally of a replayed journal."""
        tally = cls(planned, **options)
        tally.count(state)
        return tally

    def count(self, state: JobState) -> None:
        """Count the cells of a replayed journal into a tally that has counted none yet."""
        for cid, rec in state.cells.items():
            self.update(cid, rec)

    def _add_todo(self, c: PlannedCell, sign: int) -> None:
        self.todo[c.key] += sign
        if c.estimate is None:
            self.to_go_unpriced += sign
        else:
            self.to_go += sign * micros(c.estimate)

    def update(self, cid: str, rec: CellRecord) -> None:
        """Recount one cell after an event about it."""
        planned = self.planned.get(cid)
        if planned is None:
            new, todo = ORPHANED, False
        else:
            new = rec.state(self.max_attempts, self.live_since)
            todo = resume_action(rec, new, self.max_attempts, self.resume).does == SUBMIT
        old, was_todo, measured = self._cells.get(cid, (PENDING, True, False)) \
            if planned is not None else self._cells.get(cid, (None, False, False))
        if old is not None:
            self.counts[old] -= 1
        self.counts[new] += 1
        if planned is not None and todo != was_todo:
            self._add_todo(planned, 1 if todo else -1)
        if new in LIVE and planned is not None:
            a = rec.last  # a live cell has an attempt
            self.live[cid] = (planned.key, a.submitted_at or a.intent_at)
        else:
            self.live.pop(cid, None)
        if new in (FAILED, UNKNOWN):
            self.listed[cid] = new
        else:
            self.listed.pop(cid, None)
        if new == DONE and not measured and planned is not None:
            seconds = slot_seconds(rec)
            if seconds is not None:
                self.timings.add(planned.key, seconds)
                measured = True
        self.ledger.settle(cid, money(rec, planned.estimate if planned else None),
                           orphaned=planned is None)
        entry = (new, todo, measured)
        self._cells[cid] = _ENTRIES.setdefault(entry, entry)  # a few dozen distinct ones

    def state_of(self, cid: str) -> str:
        """A cell's state as last counted (planned cells never seen are pending)."""
        found = self._cells.get(cid)
        return found[0] if found else (PENDING if cid in self.planned else ORPHANED)

    def eta(self, concurrency: int, now: float | None = None) -> float | None:
        return eta(self.todo, self.live.values(), concurrency, self.timings,
                   time.time() if now is None else now)

    def figures(self, concurrency: int, now: float | None = None) -> dict[str, Any]:
        """The totals every command shows (the contract names of status --json)."""
        ledger = self.ledger
        left = sum(self.todo.values())
        return {
            "total": len(self.planned),
            "counts": dict(self.counts),
            "spent_usd": round(ledger.spent, 4),
            "spent_orphaned_usd": round(ledger.spent_orphaned, 4),
            "spent_estimated": ledger.estimated_cells > 0,
            "committed_usd": round(ledger.committed, 4),
            "unpriced_cells": ledger.unpriced_cells,
            "to_go_usd": None if self.to_go_unpriced else round(self.to_go / MICRO, 4),
            "to_do": left,
            "eta_s": _round(self.eta(concurrency, now), 1),
            "per_cell_s": _round(self.timings.per_cell(""), 2) if self.timings.count else
            _round(self.timings.typical, 2),
            "duration_source": self.timings.source(),
        }


def figures_line(f: Mapping[str, Any]) -> str:
    """The totals as one line: the progress line, the run's last line and status's second."""
    counts = f["counts"]
    spent = cost.money(f["spent_usd"])
    if f.get("spent_estimated"):
        spent += " (partly estimated)"
    if f.get("unpriced_cells"):
        spent += f" (+{f['unpriced_cells']} cells at an unknown price)"
    text = (f"{counts[DONE]}/{f['total']} done" + "".join(
        f", {k} {v}" for k, v in counts.items() if v and k != DONE)
        + f"; spent {spent}, committed {cost.money(f['committed_usd'])}")
    if f.get("spent_orphaned_usd"):
        text += f" ({cost.money(f['spent_orphaned_usd'])} on orphaned cells)"
    if f["to_do"] or f["counts"].get("queued") or f["counts"].get("running"):
        eta_text = cost.span(f["eta_s"]) if f["eta_s"] is not None else "unknown"
        text += f", to go {cost.money(f['to_go_usd'])}, ETA {eta_text}"
    return text


def _round(x: float | None, digits: int) -> float | None:
    return None if x is None else round(x, digits)
