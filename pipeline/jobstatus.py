"""What a job's state says: counts, spend, ETA, failures; and what a rerun would do per cell.

Read-only: works from another terminal while a run holds the job's lock.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

from . import cost as costs
from .manifest import Manifest, load_manifest
from .state import (CANCELLED, DONE, DOWNLOADING, FAILED, JOURNAL, LIVE, ORPHANED, PENDING,
                    QUEUED, RETRY, RUNNING, STATES, UNKNOWN, JobState, read_state)


def job_folder(m: Manifest, out: Path | None = None) -> Path:
    if out is not None:
        return Path(out)
    return Path(m.run.output) if m.run.output else Path("outputs") / m.name


def action(state: str, rec: Any, max_attempts: int) -> str:
    """What `pipeline run` would do with a cell in this state, and why."""
    if rec is None or state == PENDING:
        return "new: submit"
    return {
        DONE: "done: skip",
        QUEUED: "in flight: re-poll",
        RUNNING: "in flight: re-poll",
        DOWNLOADING: "generated: download",
        RETRY: f"retry: attempt {rec.failures() + 1} of {max_attempts}",
        FAILED: "failed: skip (retry with --retry-failed)",
        UNKNOWN: "unknown: held (check the RunComfy dashboard; --resubmit-unknown to resend)",
        CANCELLED: "cancelled: submit again",
    }.get(state, state)


def typical_generation(state: JobState) -> float | None:
    times = []
    for rec in state.cells.values():
        for a in rec.attempts:
            if a.result and a.result_at and a.request_id:
                start = a.first_seen.get("in_progress") or a.submitted_at
                if start and a.result_at > start:
                    times.append(a.result_at - start)
    return statistics.median(times) if times else None


def snapshot_cells(folder: Path) -> list[dict] | None:
    try:
        with open(folder / "plan.json", encoding="utf-8") as fh:
            return json.load(fh)["cells"]
    except (OSError, ValueError, KeyError):
        return None


def is_running(folder: Path) -> bool:
    """True while some process holds the job's lock."""
    import filelock

    if not (folder / ".lock").exists():
        return False
    lock = filelock.FileLock(str(folder / ".lock"), timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        return True
    lock.release()
    return False


SUMMARY = "status.json"


def job_status(manifest_path: str | Path, out: Path | None = None, *,
               allow_outside: bool = False) -> dict:
    """The summary `pipeline status --json` prints.

    A run leaves `status.json` beside the journal when it ends; while nothing has been appended
    to the journal since, that summary is the answer (fast on a 100,000-cell job). Otherwise
    (a run is going, or one was killed) the journal is replayed."""
    m = load_manifest(manifest_path, allow_outside=allow_outside)
    folder = job_folder(m, out)
    running = is_running(folder)
    try:
        summary = json.loads((folder / SUMMARY).read_text(encoding="utf-8"))
        if not running and summary.get("journal_bytes") == (folder / JOURNAL).stat().st_size:
            summary["running"] = False
            return summary
    except (OSError, ValueError):
        pass
    state = read_state(folder)
    cells = snapshot_cells(folder)
    if cells is None:  # never run: every cell of the plan is pending
        from .plan import build_plan

        plan = build_plan(manifest_path, fetch_remote=False, allow_outside=allow_outside)
        cells = [{"id": c.id, "label": c.label, "request": c.request} for c in plan.cells]
    return summarize(m, folder, state, cells, running)


def summarize(m: Manifest, folder: Path, state: JobState, cells: list, running: bool) -> dict:
    """The status of a job from its replayed state and its cells (dicts with id/label/request)."""
    ids = [c["id"] for c in cells]
    known = set(ids)
    max_attempts = m.run.max_attempts
    counts = dict.fromkeys(STATES, 0)
    counts["submitting"] = 0
    run_started = state.header.get("t", 0.0)
    failed, unknown, status_calls = [], [], []
    spent_known, spent_any = 0.0, False
    for c in cells:
        rec = state.cells.get(c["id"])
        st = rec.state(max_attempts) if rec else PENDING
        if st == UNKNOWN and running and rec.last.submit_kind is None and \
                rec.last.intent_at >= run_started:
            st = "submitting"  # the live run is sending it right now
        counts[st] += 1
        if rec is None:
            continue
        if rec.compacted:
            status_calls.append(rec.done_calls)
        else:
            status_calls.extend(a.status_calls for a in rec.attempts if a.request_id)
        cost = rec.cost()
        if cost is not None:
            spent_known += cost
            spent_any = True
        if st == FAILED:
            failed.append({"id": rec.id, "label": rec.label, "attempts": len(rec.attempts),
                           "reason": rec.reason()})
        elif st == UNKNOWN:
            unknown.append({"id": rec.id, "label": rec.label, "since": _iso(rec.last.intent_at),
                            "reason": rec.reason() or "the process stopped during the submit"})
    counts[ORPHANED] = sum(1 for cid in state.cells if cid not in known)
    header = state.header
    price = header.get("price")
    remaining = [c for c in cells if (state.cells.get(c["id"]) is None or state.cells[c["id"]]
                                      .state(max_attempts) in (PENDING, RETRY, CANCELLED)
                                      or state.cells[c["id"]].state(max_attempts) in LIVE)]
    to_go = [costs.cell_cost(price, c["request"]) for c in remaining] if price else [None]
    typical = typical_generation(state) or m.model.meta.get("generation_seconds", {}).get(
        "typical")
    concurrency = header.get("concurrency") or m.run.concurrency
    eta = None
    if typical and remaining:
        eta = -(-len(remaining) // max(1, concurrency)) * typical
    return {
        "job": m.name,
        "model": m.model.id,
        "out": str(folder),
        "running": running,
        "total": len(cells),
        "counts": counts,
        "spent_usd": round(spent_known, 4) if spent_any else None,
        "to_go_usd": None if None in to_go and remaining else round(sum(x or 0 for x in to_go), 4),
        "eta_s": round(eta, 1) if eta is not None else None,
        "typical_generation_s": round(typical, 2) if typical else None,
        "status_calls_per_cell": round(statistics.mean(status_calls), 2) if status_calls
        else None,
        "failed": failed,
        "unknown": unknown,
        "torn_tail": state.torn_tail,
        "journal_bytes": state.valid_bytes,
        "cell_events": state.cell_events,
        "last_run": _iso(header.get("t")) if header else None,
    }


def status_text(s: dict) -> str:
    lines = [f"job {s['job']} ({s['out']}){': a run is going' if s['running'] else ''}",
             f"{s['counts'][DONE]}/{s['total']} done" + "".join(
                 f", {k} {v}" for k, v in s["counts"].items() if v and k != DONE)]
    lines.append(f"spent {costs.money(s['spent_usd'])}, to go {costs.money(s['to_go_usd'])}, "
                 f"ETA {costs.span(s['eta_s']) if s['eta_s'] is not None else 'n/a'}"
                 + (f", {s['status_calls_per_cell']} status calls per cell"
                    if s["status_calls_per_cell"] else ""))
    for f in s["failed"]:
        lines.append(f"failed  {f['id']}  {f['label']}: {f['reason']} ({f['attempts']} attempts)")
    for u in s["unknown"]:
        lines.append(f"unknown {u['id']}  {u['label']}: since {u['since']}: {u['reason']}")
    if s["unknown"]:
        lines.append("  unknown cells may have been accepted (and billed): check the RunComfy "
                     "dashboard, then rerun with --resubmit-unknown to send them again")
    return "\n".join(lines)


def _iso(t: float | None) -> str | None:
    if not t:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
