"""The report's data: one JSON-able dict built from a job folder's state files, nothing else.

`build_report(folder)` reads `state.jsonl` (replayed by pipeline.state) and `plan.json` (every
cell of the job, also those never sent) and writes nothing. Its shape is `schemas/report.schema.json`
(format FORMAT); bump FORMAT on any change a reader could notice.

Times: a queue time is first seen in_progress − submitted; a generation time is the result −
first seen in_progress (− submitted when in_progress was never seen, so it then includes the
queue). Queue percentiles cover every attempt seen running; generation percentiles every
succeeded attempt. Percentiles interpolate linearly between the closest ranks.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from .. import cost as costs
from ..errors import PipelineError, StateError
from ..state import (DONE, DOWNLOADING, FAILED, JOURNAL, ORPHANED, PENDING, RETRY, STATES,
                     UNKNOWN, Attempt, CellRecord, JobState, read_state)

FORMAT = 1
DEFAULT_MAX_ATTEMPTS = 3  # the manifest's default, when nothing says otherwise
PLAN = "plan.json"


def build_report(folder: Path) -> dict[str, Any]:
    """The report of the job whose output folder is `folder` (reads only; no network)."""
    folder = Path(folder)
    state = read_state(folder)
    plan = _read_plan(folder)
    if plan is None and not state.runs and not state.cells:
        raise StateError(f"nothing to report in {folder}: no {JOURNAL} or {PLAN} there (the job "
                         "has not run yet; run it first with `pipeline run MANIFEST`)")
    plan = plan or {}
    header = state.header
    max_attempts = _max_attempts(header, plan)
    price = header.get("price")
    if "cells" in plan:
        planned = plan["cells"]
    else:  # no plan.json (written by older versions): the journal's cells are the job
        planned = [{"id": cid, "label": rec.label, "values": rec.values, "request": rec.request}
                   for cid, rec in state.cells.items()]
    known_ids = {c["id"] for c in planned}
    cells = [_cell(c, state.cells.get(c["id"]), folder, max_attempts, price) for c in planned]
    for cid, rec in state.cells.items():  # in the journal but no longer in the manifest
        if cid not in known_ids:
            item = _cell({"id": cid, "label": rec.label, "values": rec.values,
                          "request": rec.request}, rec, folder, max_attempts, price)
            item["state"] = ORPHANED
            cells.append(item)
    runs = _runs(state)
    by_state = dict.fromkeys(STATES, 0)
    for c in cells:
        by_state[c["state"]] += 1
    queue = [a["queue_s"] for c in cells for a in c["attempts"] if a["queue_s"] is not None]
    gen = [a["generation_s"] for c in cells for a in c["attempts"]
           if a["generation_s"] is not None and a["result"] == "succeeded"]
    calls = [c["status_calls"] for c in cells if c["attempts"]]
    estimated = [c["estimated_cost_usd"] for c in cells if c["state"] != ORPHANED]
    actual = [c["cost_usd"] for c in cells if c["cost_usd"] is not None]
    files = [f for c in cells for f in c["files"]]
    return {
        "format": FORMAT,
        "generated_at": _iso(time.time()),
        "job": plan.get("job") or header.get("job"),
        "model": plan.get("model") or header.get("model"),
        "backend": header.get("backend") or plan.get("backend"),
        "manifest": header.get("manifest") or plan.get("manifest"),
        "manifest_sha256": header.get("manifest_sha256") or plan.get("manifest_sha256"),
        "schema_sha256": header.get("schema_sha256") or plan.get("schema_sha256"),
        "max_attempts": max_attempts,
        "axes": _axes(cells),
        "runs": runs,
        "totals": {
            "cells": len(cells),
            "by_state": by_state,
            "attempts": sum(len(c["attempts"]) for c in cells),
            "files": len(files),
            "missing_files": sum(1 for f in files if not f["exists"]),
            "media_problems": sum(1 for f in files if f["check"] and not f["check"].get("ok")),
        },
        "cost": {
            "estimated_usd": None if None in estimated or not estimated
            else round(sum(estimated), 4),
            "unpriced_cells": sum(1 for x in estimated if x is None),
            "actual_usd": round(sum(actual), 4) if actual else None,
            "price": price,
            "budget_usd": header.get("budget"),
        },
        "timings": {
            "queue_s": _spread(queue),
            "generation_s": _spread(gen),
            "wall_s": _round(sum(r["wall_s"] for r in runs if r["wall_s"] is not None))
            if runs else None,
        },
        "status_calls": {
            "total": sum(calls),
            "per_cell_mean": _round(sum(calls) / len(calls)) if calls else None,
        },
        "cells": cells,
        "failures": [_brief(c) for c in cells if c["state"] in (FAILED, RETRY, "cancelled")
                     or (c["state"] == PENDING and c["reason"])],
        "unknown": [_brief(c) for c in cells if c["state"] == UNKNOWN],
        "resume": _resume(header, folder, by_state),
    }


def _max_attempts(header: dict, plan: dict) -> int:
    """From the run header or plan.json when they carry it; else from the manifest the run
    named, if it is still there unchanged; else the default."""
    for source in (header, plan):
        if isinstance(source.get("max_attempts"), int):
            return source["max_attempts"]
    path, digest = header.get("manifest"), header.get("manifest_sha256")
    if path and digest:
        try:
            if hashlib.sha256(Path(path).read_bytes()).hexdigest() == digest:
                from ..manifest import load_manifest

                return load_manifest(path).run.max_attempts
        except (OSError, PipelineError):
            pass
    return DEFAULT_MAX_ATTEMPTS


def _read_plan(folder: Path) -> dict | None:
    try:
        with open(folder / PLAN, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StateError(f"cannot read {folder / PLAN}: {exc}; run the job again to rewrite "
                         "it") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells", []), list):
        raise StateError(f"{folder / PLAN} is not a plan (no list of cells); run the job again "
                         "to rewrite it")
    return data


def _cell(planned: dict, rec: CellRecord | None, folder: Path, max_attempts: int,
          price: dict | None) -> dict[str, Any]:
    request = planned.get("request") or (rec.request if rec else {}) or {}
    estimate = planned.get("estimated_cost")
    if estimate is None:
        estimate = costs.cell_cost(price, request)
    attempts = [_attempt(a) for a in rec.attempts] if rec else []
    won = rec.succeeded() if rec else None
    final = next((x for x in reversed(attempts) if x["result"] == "succeeded"), None) or \
        next((x for x in reversed(attempts) if x["request_id"]), None)
    state = rec.state(max_attempts) if rec else PENDING
    files = []
    if rec is not None and won is not None:
        for url in won.outputs:
            f = rec.files.get(url)
            if f is None:
                files.append({"path": None, "exists": False, "size": None, "sha256": None,
                              "probe": None, "check": None})
                continue
            files.append({"path": f.path, "exists": (folder / f.path).is_file(), "size": f.size,
                          "sha256": f.sha256, "probe": f.probe, "check": f.check})
    last = rec.last if rec else None
    held_since = _iso(last.intent_at) if state == UNKNOWN and last else None
    reason = rec.reason() if rec and state != DONE else ""
    if state == DOWNLOADING and rec and rec.download_errors:
        reason = f"download failed: {rec.download_errors[-1]['error']}"
    if state == UNKNOWN and not reason:
        reason = "the process stopped during the submit"
    return {
        "id": planned["id"],
        "label": planned.get("label") or (rec.label if rec else ""),
        "values": planned.get("values") or (rec.values if rec else {}) or {},
        "prompt": request.get("prompt"),
        "seed": request.get("seed"),
        "state": state,
        "reason": reason or None,
        "attempts": attempts,
        "request_ids": [a["request_id"] for a in attempts if a["request_id"]],
        "queue_s": final["queue_s"] if final else None,
        "generation_s": final["generation_s"] if final else None,
        "status_calls": sum(a["status_calls"] for a in attempts),
        "estimated_cost_usd": _round(estimate, 4),
        "cost_usd": _round(rec.cost(), 4) if rec else None,
        "files": files,
        "download_errors": [{"at": _iso(e["t"]), "error": e["error"]}
                            for e in (rec.download_errors if rec else [])],
        "held_since": held_since,
        "held_s": _round(time.time() - last.intent_at) if held_since and last else None,
    }


def _attempt(a: Attempt) -> dict[str, Any]:
    running = a.first_seen.get("in_progress")
    queue = running - a.submitted_at if running and a.submitted_at else None
    start = running or a.submitted_at
    generation = None
    if a.result in ("succeeded", "failed") and a.result_at and start:
        generation = a.result_at - start
    return {
        "n": a.n,
        "request_id": a.request_id,
        "intent_at": _iso(a.intent_at),
        "submitted_at": _iso(a.submitted_at),
        "submit_error": a.submit_error,
        "submit_kind": a.submit_kind,
        "result": a.result,
        "result_at": _iso(a.result_at),
        "error": a.error,
        "queue_s": _round(max(0.0, queue)) if queue is not None else None,
        "generation_s": _round(max(0.0, generation)) if generation is not None else None,
        "status_calls": a.status_calls,
        "cost_usd": a.cost,
        "cancel_outcome": a.cancel_outcome,
    }


def _axes(cells: list[dict]) -> list[dict[str, Any]]:
    """Matrix axes in plan order, each with its distinct values in first-seen order."""
    axes: dict[str, list] = {}
    for c in cells:
        for key, value in c["values"].items():
            seen = axes.setdefault(key, [])
            if value not in seen:
                seen.append(value)
    return [{"name": k, "values": v} for k, v in axes.items()]


def _runs(state: JobState) -> list[dict[str, Any]]:
    """Each run's start and end; a run killed before its end event ends at its last event."""
    out = []
    starts = [r.get("t", 0.0) for r in state.runs]
    times = sorted(t for rec in state.cells.values() for a in rec.attempts
                   for t in (a.intent_at, a.submitted_at, a.result_at, *a.first_seen.values())
                   if t)
    for i, run in enumerate(state.runs):
        start = starts[i]
        stop = starts[i + 1] if i + 1 < len(starts) else float("inf")
        end = next((e for e in state.ends if start <= e.get("t", 0.0) < stop), None)
        if end is not None:
            ended = end.get("t")
        else:
            inside = [t for t in times if start <= t < stop]
            ended = inside[-1] if inside else None
        out.append({
            "started_at": _iso(start),
            "ended_at": _iso(ended),
            "wall_s": _round(ended - start) if ended else None,
            "exit": end.get("exit") if end else None,
            "stopped": end.get("stopped") if end else None,
            "finished": end is not None,
            "backend": run.get("backend"),
            "concurrency": run.get("concurrency"),
            "cells": run.get("cells"),
        })
    return out


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0..100), linear between closest ranks; None for no values."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _spread(values: list[float]) -> dict[str, Any]:
    return {"n": len(values), "p50": _round(percentile(values, 50)),
            "p95": _round(percentile(values, 95)), "max": _round(max(values) if values else None)}


def _brief(c: dict) -> dict[str, Any]:
    return {"id": c["id"], "label": c["label"], "state": c["state"],
            "attempts": len(c["attempts"]), "reason": c["reason"] or "no reason recorded",
            "held_since": c["held_since"]}


def _resume(header: dict, folder: Path, by_state: dict[str, int]) -> dict[str, Any]:
    manifest = header.get("manifest") or "MANIFEST"
    command = f"pipeline run {manifest} --out {os.fspath(folder)}"
    hints = []
    if by_state.get(FAILED):
        hints.append("add --retry-failed to give failed cells more attempts")
    if by_state.get(UNKNOWN):
        hints.append("check the RunComfy dashboard first, then add --resubmit-unknown to send "
                     "unknown cells again (they may be billed twice)")
    left = sum(v for k, v in by_state.items() if k not in (DONE, ORPHANED))
    return {"needed": left > 0, "command": command, "hints": hints}


def _iso(t: float | None) -> str | None:
    if not t:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _round(x: float | None, digits: int = 3) -> float | None:
    return None if x is None else round(x, digits)
