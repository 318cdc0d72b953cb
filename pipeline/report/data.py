"""The report's data: one JSON-able dict built from a job folder's state files, nothing else.

pipeline.report.scan builds it (`build_report`, or `scan` one cell at a time) from
`state.jsonl` and `plan.json` (every cell of the job, also those never sent), tallied with
pipeline.job.tally, so its totals, states and money are the very figures `pipeline status`
prints. Its shape is `schemas/report.schema.json` (format FORMAT); bump FORMAT on any change a
reader could notice. Here: the parts of that dict (`head`, `cell_of`, `models_of`, and the
`Totals` summed over the cells one at a time).

Times: a queue time is first seen in_progress − submitted; a generation time is the result −
first seen in_progress (− submitted when in_progress was never seen, so it then includes the
queue). Queue percentiles cover every attempt seen running; generation percentiles every
succeeded attempt. Percentiles interpolate linearly between the closest ranks.
"""

from __future__ import annotations

import os
import time
from array import array
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import text, wire
from ..job.records import (
    DONE,
    DOWNLOADING,
    FAILED,
    GEN_FAILED,
    PENDING,
    PROBLEMS,
    SUCCEEDED,
    UNKNOWN,
    Attempt,
    CellRecord,
    money,
    resume_hint,
)
from ..media import qa

FORMAT = 3  # 3: cells[].qa and totals.qa (the triage), cells[].rating and ratings (ranking)


def head(header: dict, plan: dict, folder: Path, running: bool, figures: dict,
         runs: list[dict]) -> dict[str, Any]:
    """Everything report.json says above its cells that is known before reading them."""
    price = plan.get("price") or {}
    return {
        "format": FORMAT,
        "generated_at": text.iso_now(),
        "job": plan.get("job") or header.get("job"),
        "model": plan.get("model") or header.get("model"),
        "backend": header.get("backend") or plan.get("backend"),
        "manifest": header.get("manifest") or plan.get("manifest"),
        "manifest_sha256": header.get("manifest_sha256") or plan.get("manifest_sha256"),
        "schema_sha256": header.get("schema_sha256") or plan.get("schema_sha256"),
        "max_attempts": figures["max_attempts"],
        "running": running,
        "axes": [],
        "models": [],
        "runs": runs,
        "totals": {"cells": figures["total"], "by_state": figures["counts"], "attempts": 0,
                   "files": 0, "missing_files": 0, "media_problems": 0,
                   "qa": {"measured": 0, "flagged": 0, "by_flag": {}}},
        "cost": {
            "estimated_usd": figures["estimated_usd"],
            "unpriced_cells": figures["estimate_unpriced_cells"],
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
            "queue_s": _spread([]),
            "generation_s": _spread([]),
            "wall_s": _round(sum(r["wall_s"] for r in runs if r["wall_s"] is not None))
            if runs else None,
            "eta_s": figures["eta_s"],
            "per_cell_s": figures["per_cell_s"],
            "duration_source": figures["duration_source"],
        },
        "status_calls": {"total": figures["status_calls"],
                         "per_cell_mean": figures["status_calls_per_cell"]},
        "cells": [],
        "failures": [],
        "unknown": [],
        "resume": resume_hint(header.get("manifest"), figures["counts"], os.fspath(folder)),
    }


class Totals:
    """What report.json sums over its cells, added one cell at a time."""

    def __init__(self) -> None:
        self.queue = array("d")  # a float each, not an object each (100,000 cells: ~9 MB)
        self.gen = array("d")
        self.gen_by_model: dict[str, array] = {}  # a sweep of several models: each its own
        self.attempts = self.files = self.missing = self.media = 0
        self.failures: list[dict] = []
        self.unknown: list[dict] = []

    def add(self, c: dict) -> None:
        for a in c["attempts"]:
            if a["queue_s"] is not None:
                self.queue.append(a["queue_s"])
            if a["generation_s"] is not None and a["result"] == SUCCEEDED:
                self.gen.append(a["generation_s"])
                self.gen_by_model.setdefault(c["model"], array("d")).append(a["generation_s"])
        self.attempts += len(c["attempts"])
        for f in c["files"]:
            self.files += 1
            self.missing += not f["exists"]
            self.media += bool(f["check"] and not f["check"].get("ok"))
        # failure classes, from the cell-state table: unknown cells are held (listed apart),
        # the other problems (and a pending cell whose last try was not accepted) failed
        if c["state"] == UNKNOWN:
            self.unknown.append(_brief(c))
        elif c["state"] in PROBLEMS or (c["state"] == PENDING and c["reason"]):
            self.failures.append(_brief(c))

    def into(self, report: dict) -> None:
        t = report["totals"]
        t.update(attempts=self.attempts, files=self.files, missing_files=self.missing,
                 media_problems=self.media)
        report["timings"]["queue_s"] = _spread(self.queue)
        report["timings"]["generation_s"] = _spread(self.gen)
        report["failures"], report["unknown"] = self.failures, self.unknown


def models_of(plan: dict, per_model: dict[str, dict], totals: Totals) -> list[dict[str, Any]]:
    """Per model of the plan: its cells by state, failures, money (the tally's figures, as
    `status` shows them: `per_model`), generation times of its succeeded attempts, its price."""
    prices = {x["id"]: x.get("price") or {} for x in plan.get("models") or []
              if isinstance(x, dict) and "id" in x}
    out = []
    for model_id, f in per_model.items():
        price = prices.get(model_id) or (plan.get("price") or {})
        out.append({
            "id": model_id,
            "cells": f["cells"],
            "by_state": f["counts"],
            "failed": f["counts"][FAILED],
            "spent_usd": f["spent_usd"],
            "estimated_usd": f["estimated_usd"],
            "to_go_usd": f["to_go_usd"],
            "generation_s": _spread(totals.gen_by_model.get(model_id, ())),
            "per_cell_s": f["per_cell_s"],
            "price": price.get("sheet"),
            "price_source": price.get("source"),
        })
    return out


def cell_of(planned: dict, rec: CellRecord | None, folder: Path, state: str,
            estimate: float | None, model: str | None = None) -> dict[str, Any]:
    """One cell of report.json from its plan entry and what the journal says of it."""
    request = planned.get("request") or (rec.request if rec else {}) or {}
    attempts = [_attempt(a) for a in rec.attempts] if rec else []
    won = rec.succeeded() if rec else None
    final = next((x for x in reversed(attempts) if x["result"] == SUCCEEDED), None) or \
        next((x for x in reversed(attempts) if x["request_id"]), None)
    spent = money(rec, estimate)
    billed = rec is not None and any(a.billed for a in rec.attempts)
    files: list[dict[str, Any]] = []
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
    held_since = text.iso(last.intent_at) if state == UNKNOWN and last else None
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
        # the triage of its videos (pipeline.media.qa), as the run stored it; near-duplicates
        # are added by the scan, across the job (Scanned.cells)
        "qa": qa.merged(rec.qa.get(f["path"]) for f in files if f["path"]) if rec else None,
        "download_errors": [{"at": text.iso(e["t"]), "error": e["error"]}
                            for e in (rec.download_errors if rec else [])],
        "held_since": held_since,
        "held_s": _round(time.time() - last.intent_at) if held_since and last else None,
        **({"from_cell": dict(source)} if (source := planned.get("from_cell") or
                                          (rec.from_cell if rec else None)) else {}),
    }


def _attempt(a: Attempt) -> dict[str, Any]:
    running = a.first_seen.get(wire.IN_PROGRESS)
    queue = running - a.submitted_at if running and a.submitted_at else None
    start = running or a.submitted_at
    generation = None
    if a.result in (SUCCEEDED, GEN_FAILED) and a.result_at and start:
        generation = a.result_at - start
    return {
        "n": a.n,
        "request_id": a.request_id,
        "intent_at": text.iso(a.intent_at),
        "submitted_at": text.iso(a.submitted_at),
        "submit_error": a.submit_error,
        "submit_kind": a.submit_kind,
        "result": a.result,
        "result_at": text.iso(a.result_at),
        "error": a.error,
        "queue_s": _round(max(0.0, queue)) if queue is not None else None,
        "generation_s": _round(max(0.0, generation)) if generation is not None else None,
        "status_calls": a.status_calls,
        "cost_usd": a.cost,
        "cancel_outcome": a.cancel_outcome,
    }


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100), linear between closest ranks; None for no values."""
    return _at(sorted(values), q)


def _at(xs: Sequence[float], q: float) -> float | None:
    """The q-th percentile of values already sorted."""
    if not xs:
        return None
    pos = (len(xs) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _spread(values: Sequence[float]) -> dict[str, Any]:
    xs = array("d", sorted(values))  # sorted once, for both percentiles
    return {"n": len(xs), "p50": _round(_at(xs, 50)), "p95": _round(_at(xs, 95)),
            "max": _round(xs[-1] if xs else None)}


def _brief(c: dict) -> dict[str, Any]:
    return {"id": c["id"], "label": c["label"], "state": c["state"],
            "attempts": len(c["attempts"]), "reason": c["reason"] or "no reason recorded",
            "held_since": c["held_since"]}


def _round(x: float | None, digits: int = 3) -> float | None:
    return None if x is None else round(x, digits)
