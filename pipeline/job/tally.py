"""The totals every command shows: counts by state, money, work left and ETA of a job.

A `Tally` holds, per cell, its state, what a run does with it, its money and whether its
duration was measured, with the totals kept as they change; the runner updates it on every
journal event (O(1)), and `status`, `plan` and the report build one from the replayed journal
(O(cells)). `figures()` is the one dict of totals that the progress line, the run's last line,
`pipeline status`, report.json, report.md and report.html all show, so at any instant they say
the same thing.
"""

from __future__ import annotations

import operator
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from ..text import money as usd
from ..text import span
from .journal import JobState
from .money import MICRO, Ledger, micros
from .planned import PlannedCell
from .records import (
    DONE,
    LIVE,
    ON_SERVER,
    ORPHANED,
    PENDING,
    STATES,
    STUCK,
    SUBMIT,
    CellRecord,
    ResumeOptions,
    money,
    resume_action,
    slot_seconds,
)
from .timing import Timings, eta

_KEY = operator.attrgetter("key")
_ESTIMATE = operator.attrgetter("estimate")
_MODEL_ESTIMATE = operator.attrgetter("model", "estimate")
_Entry = tuple[str, bool, bool, bool, int]  # state, to do, measured, sent, calls
_ENTRIES: dict[_Entry, _Entry] = {}
_UNSEEN: _Entry = (PENDING, True, False, False, 0)  # a planned cell the journal names not yet
_UNSEEN_ORPHAN: tuple[None, bool, bool, bool, int] = (None, False, False, False, 0)


class Tally:
    """Counts by state, money, work left and measured durations of a job's cells."""

    def __init__(self, planned: Iterable[PlannedCell], *, max_attempts: int,
                 budget: float | None = None, live_since: float | None = None,
                 resume: ResumeOptions = ResumeOptions(), typical: Any = None,
                 guess: str | None = None):
        self.planned = {c.id: c for c in planned}
        self.guess = guess  # where `typical` comes from (pipeline.job.timing.Timings.guess)
        self.max_attempts = max_attempts
        self.ledger = Ledger(budget)
        self.canary = 0  # cells that must be done before the rest start (pipeline.run.canary)
        self._reset(live_since, resume, typical)

    def _reset(self, live_since: float | None, resume: ResumeOptions,
               typical: Any) -> None:
        self.live_since = live_since
        self.resume = resume
        self.counts = dict.fromkeys(STATES, 0)
        self.counts[PENDING] = len(self.planned)
        self.timings = Timings(typical, guess=self.guess)
        self.todo: Counter[str] = Counter()  # cells a run would submit, by duration key
        self.to_go = 0  # their estimates, in micro-dollars (as the Ledger counts)
        self.to_go_unpriced = 0
        self.live: dict[str, tuple[str, float | None]] = {}  # cell -> (key, submitted at)
        self.listed: dict[str, str] = {}  # stuck cells (failed, unknown) -> state
        # per cell: state, to do, measured, accepted by the server, its status calls
        self._cells: dict[str, _Entry] = {}
        self.status_calls = 0  # of the cells the server accepted a request of
        self.sent = 0  # those cells
        self.estimate = 0  # the whole sweep at its price, in micro-dollars
        self.unpriced = 0  # cells of it at an unknown price
        # every planned cell to do, as _add_todo counts it: summed by key and by estimate
        self.todo.update(map(_KEY, self.planned.values()))
        for each, n in Counter(map(_ESTIMATE, self.planned.values())).items():
            if each is None:
                self.unpriced += n
            else:
                self.estimate += micros(each) * n
        self.to_go, self.to_go_unpriced = self.estimate, self.unpriced

    def recount(self, state: JobState, *, live_since: float | None,
                resume: ResumeOptions) -> None:
        """Count every cell again under other choices (in place: a second tally of a
        100,000-cell job would double the memory it takes)."""
        self._reset(live_since, resume, self.timings.typical)
        self.count(state)

    def reprice(self, planned: Iterable[PlannedCell], state: JobState) -> None:
        """Take new estimates for the job's cells (its price changed) and count again."""
        self.planned = {c.id: c for c in planned}
        self.recount(state, live_since=self.live_since, resume=self.resume)

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
        old, was_todo, measured, was_sent, calls_before = self._cells.get(cid, _UNSEEN) \
            if planned is not None else self._cells.get(cid, _UNSEEN_ORPHAN)
        sent = rec.sent()
        calls = rec.status_calls() if sent else 0
        self.sent += sent - was_sent
        self.status_calls += calls - calls_before
        if old is not None:
            self.counts[old] -= 1
        self.counts[new] += 1
        if planned is not None and todo != was_todo:
            self._add_todo(planned, 1 if todo else -1)
        if new in LIVE and planned is not None:
            a = rec.last  # a live cell has an attempt
            assert a is not None
            self.live[cid] = (planned.key, a.submitted_at or a.intent_at)
        else:
            self.live.pop(cid, None)
        if new in STUCK:
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
        entry = (new, todo, measured, sent, calls)
        self._cells[cid] = _ENTRIES.setdefault(entry, entry)  # a few hundred distinct ones

    def state_of(self, cid: str) -> str:
        """A cell's state as last counted (planned cells never seen are pending)."""
        found = self._cells.get(cid)
        return found[0] if found else (PENDING if cid in self.planned else ORPHANED)

    def to_submit(self, cid: str) -> bool:
        """Whether a run started now would submit the cell (its resume action)."""
        return self._cells.get(cid, _UNSEEN)[1] if cid in self.planned else False

    def to_go_of(self, ids: Iterable[str]) -> tuple[float, int]:
        """What the cells `ids` that a run would submit are estimated at (USD), and how many
        of them have no known price (O(ids): for a run's own cells under --only)."""
        total = unpriced = 0
        for cid in ids:
            planned = self.planned.get(cid)
            if planned is None or not self._cells.get(cid, _UNSEEN)[1]:
                continue
            if planned.estimate is None:
                unpriced += 1
            else:
                total += micros(planned.estimate)
        return total / MICRO, unpriced

    def status_calls_per_cell(self) -> float | None:
        """Status calls per cell the server accepted a request of (None before any was): the
        one rule for status, the run's summary, the progress line and report.json."""
        return round(self.status_calls / self.sent, 2) if self.sent else None

    def estimated_usd(self) -> float | None:
        """The whole sweep at its price (None when a cell's price is unknown): the one sum for
        plan, status and the report; what is left to pay is `to_go_usd`."""
        if self.unpriced or not self.planned:
            return None
        return round(self.estimate / MICRO, 4)

    def eta(self, concurrency: int, now: float | None = None) -> float | None:
        return eta(self.todo, self.live.values(), concurrency, self.timings,
                   time.time() if now is None else now, first=self.canary)

    def per_model(self) -> dict[str, dict[str, Any]]:
        """Per model of the plan: cells, counts by state, spent, what is left and the sweep's
        estimate at its price, and how long one of its cells takes (O(cells): for plan,
        status and the report, not for the progress line)."""
        out: dict[str, dict[str, Any]] = {}
        # every cell first as one never counted (pending, to do, nothing spent), summed by
        # model and estimate; then the cells counted or with money, one by one
        for (model, each), n in Counter(map(_MODEL_ESTIMATE, self.planned.values())).items():
            f = out.get(model)
            if f is None:
                f = out[model] = {"cells": 0, "counts": dict.fromkeys(STATES, 0),
                                  "spent": 0, "estimate": 0, "unpriced": 0, "to_do": 0,
                                  "to_go": 0, "to_go_unpriced": 0}
            f["cells"] += n
            f["counts"][PENDING] += n
            f["to_do"] += n
            if each is None:
                f["unpriced"] += n
                f["to_go_unpriced"] += n
            else:
                f["estimate"] += micros(each) * n
                f["to_go"] += micros(each) * n
        for cid, entry in self._cells.items():
            c = self.planned.get(cid)
            if c is None:
                continue
            st, todo = entry[:2]
            f = out[c.model]
            f["counts"][PENDING] -= 1
            f["counts"][st] += 1
            if not todo:
                f["to_do"] -= 1
                if c.estimate is None:
                    f["to_go_unpriced"] -= 1
                else:
                    f["to_go"] -= micros(c.estimate)
        for cid in self.ledger.cells():
            c = self.planned.get(cid)
            if c is not None:
                out[c.model]["spent"] += micros(self.ledger.money_of(cid).spent)
        return {model: {
            "cells": f["cells"],
            "counts": f["counts"],
            "spent_usd": round(f["spent"] / MICRO, 4),
            "estimated_usd": None if f["unpriced"] else round(f["estimate"] / MICRO, 4),
            "to_do": f["to_do"],
            "to_go_usd": None if f["to_go_unpriced"] else round(f["to_go"] / MICRO, 4),
            "per_cell_s": _round(self.timings.per_cell(model + "|"), 2),  # the model's
        } for model, f in out.items()}

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
            "unpriced_cells": ledger.unpriced_cells,  # billed at no known price (in spent)
            # live or being submitted at no known price (in committed; nothing billed yet)
            "committed_unpriced_cells": ledger.held_unpriced_cells,
            "to_go_usd": None if self.to_go_unpriced else round(self.to_go / MICRO, 4),
            "estimated_usd": self.estimated_usd(),
            "to_do": left,
            "eta_s": _round(self.eta(concurrency, now), 1),
            "per_cell_s": _round(self.timings.per_cell(""), 2),
            "duration_source": self.timings.source(),
            "status_calls": self.status_calls,
            "status_calls_per_cell": self.status_calls_per_cell(),
        }


def figures_line(f: Mapping[str, Any]) -> str:
    """The totals as one line: the progress line, the run's last line and status's second."""
    counts = f["counts"]
    spent = usd(f["spent_usd"])
    if f.get("spent_estimated"):
        spent += " (partly estimated)"
    if f.get("unpriced_cells"):
        spent += f" (+{f['unpriced_cells']} cells at an unknown price)"
    committed = usd(f["committed_usd"])
    if f.get("committed_unpriced_cells"):
        committed += f" (+{f['committed_unpriced_cells']} cells at an unknown price)"
    text = (f"{counts[DONE]}/{f['total']} done" + "".join(
        f", {k.replace('_', ' ')} {v}" for k, v in counts.items() if v and k != DONE)
        + f"; spent {spent}, committed {committed}")
    if f.get("spent_orphaned_usd"):
        text += f" ({usd(f['spent_orphaned_usd'])} on orphaned cells)"
    if f["to_do"] or any(f["counts"].get(k) for k in ON_SERVER):
        eta_text = span(f["eta_s"]) if f["eta_s"] is not None else "unknown"
        text += f", to go {usd(f['to_go_usd'])}, ETA {eta_text}"
    auto = f.get("capacity")
    if auto:  # concurrency: auto
        text += ("; concurrency auto: capacity " + (f"{auto['found']} found" if auto["found"]
                                                    else "not found yet")
                 + (f", limit {auto['limit']}" if auto.get("limit") else ""))
    return text


def _round(x: float | None, digits: int) -> float | None:
    return None if x is None else round(x, digits)
