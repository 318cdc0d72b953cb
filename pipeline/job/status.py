"""The summary every command prints: counts by state, money, work left and ETA of a job.

A `Tally` holds, per cell, its state, what a run does with it, its money and whether its
duration was measured, with the totals kept as they change; the runner updates it on every
journal event (O(1)), and `status`, `plan` and the report build one from the replayed journal
(O(cells)). `figures()` is the one dict of totals that the progress line, the run's last line,
`pipeline status`, report.json, report.md and report.html all show, so at any instant they say
the same thing. Read-only: `job_status` works from another terminal while a run holds the lock.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..prepare import cost
from .folder import JobFolder
from .journal import JobState, read_state
from .ledger import Ledger
from .records import (DONE, FAILED, LIVE, ORPHANED, PENDING, STATES, SUBMIT, UNKNOWN,
                      CellRecord, ResumeOptions, money, resume_action, slot_seconds)
from .timing import Timings, duration_key, eta


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
    for c in cells:
        if isinstance(c, Mapping):
            cid, label, request = c["id"], c.get("label", ""), c.get("request") or {}
        else:
            cid, label, request = c.id, c.label, c.request
        out.append(PlannedCell(cid, label, cost.cell_cost(sheet, request, fps),
                               duration_key(model, request)))
    return out


class Tally:
    """Counts by state, money, work left and measured durations of a job's cells."""

    def __init__(self, planned: Iterable[PlannedCell], *, max_attempts: int,
                 budget: float | None = None, live_since: float | None = None,
                 resume: ResumeOptions = ResumeOptions(), typical: float | None = None):
        self.planned = {c.id: c for c in planned}
        self.max_attempts = max_attempts
        self.live_since = live_since
        self.resume = resume
        self.counts = dict.fromkeys(STATES, 0)
        self.counts[PENDING] = len(self.planned)
        self.ledger = Ledger(budget)
        self.timings = Timings(typical)
        self.todo: Counter[str] = Counter()  # cells a run would submit, by duration key
        self.to_go = 0  # their estimates, in micro-dollars
        self.to_go_unpriced = 0
        self.live: dict[str, tuple[str, float | None]] = {}  # cell -> (key, submitted at)
        self.listed: dict[str, str] = {}  # failed and unknown cells -> state
        self._cells: dict[str, tuple[str, bool, bool]] = {}  # state, to do, measured
        for c in self.planned.values():
            self._add_todo(c, 1)

    @classmethod
    def of(cls, state: JobState, planned: Iterable[PlannedCell], **options: Any) -> Tally:
        """The tally of a replayed journal."""
        tally = cls(planned, **options)
        for cid, rec in state.cells.items():
            tally.update(cid, rec)
        return tally

    def _add_todo(self, c: PlannedCell, sign: int) -> None:
        self.todo[c.key] += sign
        if c.estimate is None:
            self.to_go_unpriced += sign
        else:
            self.to_go += sign * round(c.estimate * 1_000_000)

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
            a = rec.last
            self.live[cid] = (planned.key, a.submitted_at or a.intent_at if a else None)
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
        self._cells[cid] = (new, todo, measured)

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
            "to_go_usd": None if self.to_go_unpriced else round(self.to_go / 1_000_000, 4),
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


def summarize(tally: Tally, state: JobState, *, job: str, model: str, folder: JobFolder,
              running: bool, concurrency: int, price_source: str | None,
              budget: float | None, manifest_sha256: str | None = None,
              now: float | None = None) -> dict[str, Any]:
    """The status of a job (what `pipeline status --json` prints) from its tally."""
    failed, unknown = [], []
    for cid, st in tally.listed.items():
        rec = state.cells[cid]
        label = tally.planned[cid].label if cid in tally.planned else rec.label
        if st == FAILED:
            failed.append({"id": cid, "label": label, "attempts": len(rec.attempts),
                           "reason": rec.reason()})
        else:
            unknown.append({"id": cid, "label": label, "since": _iso(rec.last.intent_at),
                            "reason": rec.reason() or "the process stopped during the submit"})
    calls = [rec.status_calls() for rec in state.cells.values()
             if rec.compacted or any(a.request_id for a in rec.attempts)]
    header = state.header
    return {
        "job": job,
        "model": model,
        "manifest_sha256": manifest_sha256,
        "out": str(folder),
        "running": running,
        **tally.figures(concurrency, now),
        "budget_usd": budget,
        "price_source": price_source,
        "concurrency": concurrency,
        "status_calls_per_cell": round(statistics.mean(calls), 2) if calls else None,
        "failed": failed,
        "unknown": unknown,
        "torn_tail": state.torn_tail,
        "journal_bytes": state.valid_bytes,
        "cell_events": state.cell_events,
        "last_run": _iso(header.get("t")) if header else None,
    }


def status_text(s: Mapping[str, Any]) -> str:
    lines = [f"job {s['job']} ({s['out']}){': a run is going' if s['running'] else ''}",
             figures_line(s)]
    if s.get("manifest_changed"):
        lines.append("the manifest changed since the last run: these are the figures of the "
                     "last run's plan (`pipeline plan` shows what a run would do now)")
    details = []
    if s.get("price_source"):
        details.append(f"price: {s['price_source']}")
    if s.get("per_cell_s") is not None:
        details.append(f"{s['per_cell_s']:g} s per cell ({s['duration_source']})")
    if s.get("status_calls_per_cell"):
        details.append(f"{s['status_calls_per_cell']} status calls per cell")
    if details:
        lines.append("; ".join(details))
    for f in s["failed"]:
        lines.append(f"failed  {f['id']}  {f['label']}: {f['reason']} ({f['attempts']} attempts)")
    for u in s["unknown"]:
        lines.append(f"unknown {u['id']}  {u['label']}: since {u['since']}: {u['reason']}")
    if s["unknown"]:
        lines.append("  unknown cells may have been accepted (and billed): check the RunComfy "
                     "dashboard, then rerun with --resubmit-unknown to send them again")
    return "\n".join(lines)


# --- a job from its folder -------------------------------------------------------------------
@dataclass
class JobView:
    """A job folder read back: its replayed journal, its plan snapshot and their tally."""

    folder: JobFolder
    state: JobState
    plan: dict  # plan.json (or the journal's cells when there is none)
    tally: Tally
    running: bool
    concurrency: int
    budget: float | None
    price_source: str | None

    def summary(self, now: float | None = None) -> dict[str, Any]:
        return summarize(self.tally, self.state, job=self.plan.get("job") or
                         self.state.header.get("job"), model=self.plan.get("model") or
                         self.state.header.get("model"), folder=self.folder,
                         running=self.running, concurrency=self.concurrency,
                         price_source=self.price_source, budget=self.budget,
                         manifest_sha256=self.plan.get("manifest_sha256"), now=now)


def view_job(folder: JobFolder | Path, plan: dict | None = None, *, lean: bool = False,
             typical: float | None = None, default_max_attempts: int = 3) -> JobView:
    """Replay a job folder and tally it against its plan (plan.json unless given)."""
    folder = JobFolder.at(folder)
    running = folder.is_running()
    state = read_state(folder, lean=lean)
    plan = plan if plan is not None else folder.read_plan()
    header = state.header
    if plan is None:  # no plan.json (older versions): the journal's cells are the job
        plan = {"cells": [{"id": cid, "label": rec.label, "values": rec.values,
                           "request": rec.request} for cid, rec in state.cells.items()]}
    settings = plan.get("run") or {}
    price = plan.get("price") or {}
    sheet = price.get("sheet") if price else header.get("price")
    model = plan.get("model") or header.get("model") or ""
    max_attempts = settings.get("max_attempts") or header.get("max_attempts") or \
        default_max_attempts
    concurrency = header.get("concurrency") or settings.get("concurrency") or 1
    budget = settings.get("budget", header.get("budget"))
    live_since = header.get("t") if running and header else None
    lost_before = time.time() if header.get("backend") == "sim" and not running else None
    tally = Tally.of(state, planned_cells(plan["cells"], model, sheet,
                                          plan.get("fps") or cost.DEFAULT_FPS),
                     max_attempts=max_attempts, budget=budget, live_since=live_since,
                     resume=ResumeOptions(lost_before=lost_before),
                     typical=typical if typical is not None else plan.get("typical_s"))
    return JobView(folder, state, plan, tally, running, concurrency, budget,
                   price.get("source") if price else header.get("price_source"))


def job_status(manifest_path: str | Path, out: Path | None = None, *,
               allow_outside: bool = False) -> dict[str, Any]:
    """The summary `pipeline status --json` prints.

    A run leaves `status.json` beside the journal when it ends; while nothing has been appended
    to the journal since, that summary is the answer (fast on a 100,000-cell job). Otherwise
    (a run is going, or one was killed) the journal is replayed."""
    from ..prepare.manifest import load_manifest

    m = load_manifest(manifest_path, allow_outside=allow_outside)
    folder = JobFolder.of(m, out)
    folder.check_owner(m.path)
    running = folder.is_running()
    summary = None if running else folder.settled_summary()
    if summary is None:
        plan = folder.read_plan()
        if plan is None:  # never run: every cell of the plan is pending, as `plan` shows
            from ..prepare.plan import build_plan
            from .forecast import forecast, plan_json
            from .price import price_now

            built = build_plan(manifest_path, fetch_remote=False, allow_outside=allow_outside)
            plan = plan_json(forecast(built, price_now(m, folder)), with_state=False)
        summary = view_job(folder, plan).summary()
    summary["running"] = running
    summary["manifest_changed"] = bool(summary.get("manifest_sha256")) and \
        summary["manifest_sha256"] != m.sha256
    return summary


def _round(x: float | None, digits: int) -> float | None:
    return None if x is None else round(x, digits)


def _iso(t: float | None) -> str | None:
    if not t:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
