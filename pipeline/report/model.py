"""The report's data: one JSON-able dict built from a job folder's state files, nothing else.

`build_report(folder)` reads `state.jsonl` and `plan.json` (every cell of the job, also those
never sent) through pipeline.job.status, so its totals, states and money are the very figures
`pipeline status` prints, and writes nothing. Its shape is `schemas/report.schema.json`
(format FORMAT); bump FORMAT on any change a reader could notice.

Times: a queue time is first seen in_progress − submitted; a generation time is the result −
first seen in_progress (− submitted when in_progress was never seen, so it then includes the
queue). Queue percentiles cover every attempt seen running; generation percentiles every
succeeded attempt. Percentiles interpolate linearly between the closest ranks.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from ..errors import StateError
from ..job.folder import JobFolder
from ..job.records import (DONE, DOWNLOADING, FAILED, ORPHANED, PENDING, RETRY, UNKNOWN,
                           Attempt, CellRecord, money)
from ..job.journal import JobState
from ..job.status import view_job
from ..prepare.select import Only

FORMAT = 2


def build_report(folder: JobFolder | Path, only: Only = ()) -> dict[str, Any]:
    """The report of the job whose folder is `folder` (reads only; no network); `only`: of
    the cells it selects (pipeline.prepare.select), the report then says so in `selection`."""
    folder = JobFolder.at(folder)
    if not folder.journal.exists() and not folder.plan.exists():
        raise StateError(f"nothing to report in {folder}: no {folder.journal.name} or "
                         f"{folder.plan.name} there (the job has not run yet; run it first "
                         "with `pipeline run MANIFEST`)")
    view = view_job(folder, only=only)
    state, plan, tally = view.state, view.plan, view.tally
    header = state.header
    figures = view.summary()
    planned = plan["cells"]
    cells = [_cell(c, state.cells.get(c["id"]), folder.path, tally.state_of(c["id"]),
                   tally.planned[c["id"]].estimate, tally.planned[c["id"]].model)
             for c in planned]
    default_model = plan.get("model") or header.get("model")
    for cid, rec in state.cells.items():  # in the journal but no longer in the manifest
        if cid not in tally.planned:
            cells.append(_cell({"id": cid, "label": rec.label, "values": rec.values,
                                "request": rec.request}, rec, folder.path, ORPHANED, None,
                               (rec.values or {}).get("model") or default_model))
    runs = _runs(state)
    queue = [a["queue_s"] for c in cells for a in c["attempts"] if a["queue_s"] is not None]
    gen = [a["generation_s"] for c in cells for a in c["attempts"]
           if a["generation_s"] is not None and a["result"] == "succeeded"]
    calls = [c["status_calls"] for c in cells if c["attempts"]]
    estimated = [c["estimated_cost_usd"] for c in cells if c["state"] != ORPHANED]
    files = [f for c in cells for f in c["files"]]
    price = plan.get("price") or {}
    return {
        "format": FORMAT,
        "generated_at": _iso(time.time()),
        "job": plan.get("job") or header.get("job"),
        "model": plan.get("model") or header.get("model"),
        "backend": header.get("backend") or plan.get("backend"),
        "manifest": header.get("manifest") or plan.get("manifest"),
        "manifest_sha256": header.get("manifest_sha256") or plan.get("manifest_sha256"),
        "schema_sha256": header.get("schema_sha256") or plan.get("schema_sha256"),
        "max_attempts": tally.max_attempts,
        "running": view.running,
        "axes": _axes(cells),
        "models": _models(plan, tally, cells),
        "runs": runs,
        "totals": {
            "cells": figures["total"],
            "by_state": figures["counts"],
            "attempts": sum(len(c["attempts"]) for c in cells),
            "files": len(files),
            "missing_files": sum(1 for f in files if not f["exists"]),
            "media_problems": sum(1 for f in files if f["check"] and not f["check"].get("ok")),
        },
        "cost": {
            "estimated_usd": None if None in estimated or not estimated
            else round(sum(estimated), 4),
            "unpriced_cells": sum(1 for x in estimated if x is None),
            "actual_usd": figures["spent_usd"],
            "spent_usd": figures["spent_usd"],
            "spent_estimated": figures["spent_estimated"],
            "spent_orphaned_usd": figures["spent_orphaned_usd"],
            "committed_usd": figures["committed_usd"],
            "to_go_usd": figures["to_go_usd"],
            "price": price.get("sheet") if price else header.get("price"),
            "price_source": figures["price_source"],
            "budget_usd": figures["budget_usd"],
        },
        "timings": {
            "queue_s": _spread(queue),
            "generation_s": _spread(gen),
            "wall_s": _round(sum(r["wall_s"] for r in runs if r["wall_s"] is not None))
            if runs else None,
            "eta_s": figures["eta_s"],
            "per_cell_s": figures["per_cell_s"],
            "duration_source": figures["duration_source"],
        },
        "status_calls": {
            "total": sum(calls),
            "per_cell_mean": _round(sum(calls) / len(calls)) if calls else None,
        },
        "cells": cells,
        "failures": [_brief(c) for c in cells if c["state"] in (FAILED, RETRY, "cancelled")
                     or (c["state"] == PENDING and c["reason"])],
        "unknown": [_brief(c) for c in cells if c["state"] == UNKNOWN],
        "resume": _resume(header, folder.path, figures["counts"]),
        **({"selection": plan["selection"]} if plan.get("selection") else {}),
    }


def _models(plan: dict, tally: Any, cells: list[dict]) -> list[dict[str, Any]]:
    """Per model of the plan: its cells by state, failures, money (the tally's figures, as
    `status` shows them), generation times of its succeeded attempts, and its price."""
    prices = {x["id"]: x.get("price") or {} for x in plan.get("models") or []
              if isinstance(x, dict) and "id" in x}
    gen: dict[str, list[float]] = {}
    for c in cells:
        for a in c["attempts"]:
            if a["generation_s"] is not None and a["result"] == "succeeded":
                gen.setdefault(c["model"], []).append(a["generation_s"])
    out = []
    for model_id, f in tally.per_model().items():
        price = prices.get(model_id) or (plan.get("price") or {})
        out.append({
            "id": model_id,
            "cells": f["cells"],
            "by_state": f["counts"],
            "failed": f["counts"][FAILED],
            "spent_usd": f["spent_usd"],
            "estimated_usd": f["estimated_usd"],
            "to_go_usd": f["to_go_usd"],
            "generation_s": _spread(gen.get(model_id, [])),
            "per_cell_s": f["per_cell_s"],
            "price": price.get("sheet"),
            "price_source": price.get("source"),
        })
    return out


def _cell(planned: dict, rec: CellRecord | None, folder: Path, state: str,
          estimate: float | None, model: str | None = None) -> dict[str, Any]:
    request = planned.get("request") or (rec.request if rec else {}) or {}
    attempts = [_attempt(a) for a in rec.attempts] if rec else []
    won = rec.succeeded() if rec else None
    final = next((x for x in reversed(attempts) if x["result"] == "succeeded"), None) or \
        next((x for x in reversed(attempts) if x["request_id"]), None)
    spent = money(rec, estimate)
    billed = rec is not None and any(a.billed for a in rec.attempts)
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
        "model": model,
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
        "cost_usd": _round(spent.spent, 4) if billed else None,
        "cost_estimated": spent.estimated,
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
