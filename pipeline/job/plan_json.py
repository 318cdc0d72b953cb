"""The plan as JSON: what `plan --json` prints and what a run writes as plan.json.

`plan_json(forecast)` is the plan's head (`plan_head`: the job, its models with their prices
and shares, the estimate of cost and duration, the matrix's axes; what `status`, the report and
the run's own summary read of it, see pipeline.job.status.settings_of) and its cells, each with
its estimate (for `plan --json`, its state and what a run would do with it too).
`write_snapshot` writes it beside the journal as plan.json, opening with its format
(pipeline.job.folder.PLAN_FORMAT), only when what it is made from changed. Made from a
Forecast (pipeline.job.forecast), which holds the figures and knows nothing of this shape.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator
from typing import Any

from .. import __version__
from ..durable import write_atomic
from ..jsonio import Streamed, stamped
from ..models import cost
from ..prepare.expand import Cell
from .folder import PLAN_FORMAT, JobFolder
from .forecast import Forecast
from .planned import typed_key


def write_snapshot(folder: JobFolder, outlook: Forecast) -> None:
    """plan.json beside the journal, so `status` and the report know every cell of the job and
    the prices the run uses. Rewritten only when what the plan was made from (its inputs key),
    its prices, the concurrency or the writing version changed. It opens with its format
    (pipeline.job.folder.PLAN_FORMAT) and this pipeline's version."""
    folder.path.mkdir(parents=True, exist_ok=True)
    key = outlook.plan.inputs["key"] + json.dumps(outlook.price.as_json(), sort_keys=True) + \
        str(outlook.concurrency) + f" {PLAN_FORMAT} {__version__}"
    marker = hashlib.sha256(key.encode()).hexdigest()
    try:
        if folder.plan_fingerprint.read_text() == marker and _stamped_here(folder):
            return
    except OSError:
        pass
    snapshot = stamped(PLAN_FORMAT, plan_json(outlook, with_state=False))
    write_atomic(folder.plan, json.dumps(snapshot, ensure_ascii=False, separators=(",", ":")))
    folder.plan_fingerprint.write_text(marker)


def _stamped_here(folder: JobFolder) -> bool:
    """plan.json opens with this version's stamp (one another version wrote is rewritten,
    whatever the fingerprint says)."""
    head = json.dumps(stamped(PLAN_FORMAT, {}), separators=(",", ":"))[:-1].encode()
    with open(folder.plan, "rb") as fh:
        return fh.read(len(head)) == head


def models_json(f: Forecast) -> list[dict[str, Any]]:
    """Per model of the sweep: where its schema is from, its price, and its share of the plan
    (cells, cost and time), as `plan --json` and plan.json carry it."""
    m, figures = f.plan.manifest, f.tally.per_model()
    out = []
    for model_id, model in m.sweep.models.items():
        mine = figures.get(model_id) or {"cells": 0, "to_do": 0, "estimated_usd": None,
                                         "to_go_usd": None, "per_cell_s": None}
        out.append({"id": model_id, "source": model.source, "kind": model.kind,
                    "schema_sha256": model.schema_sha256, "fps": model.fps,
                    "typical_s": model.typical_s, "price": f.price.of(model_id).as_json(),
                    "cells": mine["cells"], "to_do": mine["to_do"],
                    "estimated_usd": mine["estimated_usd"], "to_go_usd": mine["to_go_usd"],
                    "per_cell_s": mine["per_cell_s"]})
    return out


def plan_head(f: Forecast) -> dict[str, Any]:
    """plan.json without its cells: what `status`, the report and the run's own summary read
    of the plan (pipeline.job.status.settings_of), as `plan_json` writes it."""
    plan, m, price = f.plan, f.plan.manifest, f.price
    many = m.sweep.many
    fps = m.model.fps
    video = {k for k, x in m.sweep.models.items() if x.kind == "video"}
    sweep_usd = f.tally.estimated_usd()
    figures = f.figures()
    return {
        "job": m.name,
        "model": m.sweep.label,
        "models": models_json(f),
        "backend": m.backend,
        "manifest": str(m.path.resolve()),
        "manifest_sha256": m.sha256,
        "schema_sha256": None if many else m.model.schema_sha256,
        "count": len(plan.cells),
        "fps": fps,
        "typical_s": f.tally.timings.typical_of(),
        # set when typical_s is not the models' own: the simulator's time, say
        "typical_guess": f.tally.guess,
        "run": {"concurrency": f.concurrency, "max_attempts": m.run.max_attempts,
                "budget": m.run.budget},
        "price": price.as_json(),
        # the whole sweep at the run's price; what is left to pay is figures.to_go_usd
        "estimated_usd": sweep_usd,
        "estimate": {
            "usd": sweep_usd,
            "unpriced_cells": f.tally.unpriced,
            "price_source": price.source,
            "seconds_of_video": round(_seconds_of_video(plan.cells, video, fps), 2),
            "duration_s": figures["eta_s"],
            "per_cell_s": figures["per_cell_s"],
            "duration_source": figures["duration_source"],
            "concurrency": f.concurrency,
            "canary": f.tally.canary,
            # of the cells to do, how many the budget lets a run submit (null: no budget)
            "budget_fits": f.budget_fits(),
        },
        "warnings": [str(w) for w in plan.warnings] + list(price.warnings),
        "matrix": matrix_json(m),
    }


def _seconds_of_video(cells: list[Cell], video: set[str], fps: int) -> float:
    """The seconds of video the cells of `video` models make, summed in plan order (with sum:
    its float arithmetic), each cell's worked out once per distinct length it asks for."""
    seconds: dict[Any, float] = {}
    by_shape: dict[int, float | None] = {}  # a cell's shape -> the same, when its holes are
    # not the length (else None)

    def of(c: Cell) -> float:
        shape = c.shape
        if shape is not None:
            found = by_shape.get(id(shape))
            if found is None:
                found = of_request(c.request)
                if id(shape) not in by_shape:
                    by_shape[id(shape)] = None if {"number_of_frames", "duration"} & \
                        set(shape.holes) else found
            return found
        return of_request(c.request)

    def of_request(request: dict[str, Any]) -> float:
        key: Any = (request.get("number_of_frames"), request.get("duration"))
        try:
            key = (*key, *map(type, key)) if float not in map(type, key) else \
                tuple(map(typed_key, key))
            found = seconds.get(key)
        except TypeError:  # a list, say: worked out for itself
            key = found = None
        if found is None:
            found = cost.video_seconds(request, fps)
            if key is not None:
                seconds[key] = found
        return found

    return sum(of(c) for c in cells if c.model in video)


def plan_json(f: Forecast, *, with_state: bool = True, streamed: bool = False
              ) -> dict[str, Any]:
    """The plan as JSON (`plan --json`), and as the plan.json snapshot of a run. `streamed`:
    its cells a jsonio.Streamed, each cell's dict made as it is written (pipeline.jsonio.
    dump_indented), never a list of them all."""
    data = plan_head(f)
    state = with_state and bool(f.state.cells)
    data["cells"] = Streamed(lambda: _cells_json(f, state)) if streamed else \
        list(_cells_json(f, state))
    if with_state:
        data["figures"] = f.figures()
    if state:
        data["orphaned"] = [{"id": cid, "label": f.state.cells[cid].label,
                             "action": "orphaned: no longer in the manifest (kept on disk)"}
                            for cid in f.orphaned()]
    return data


def _cells_json(f: Forecast, with_state: bool) -> Iterator[dict[str, Any]]:
    """Each cell of the plan as plan.json holds it (`with_state`: its state and action too)."""
    many = f.plan.manifest.sweep.many
    actions = f.actions() if with_state else itertools.repeat(None)
    for c, p, act in zip(f.plan.cells, f.tally.planned.values(), actions, strict=False):
        item = {"id": c.id, "label": c.label, "values": c.values, "request": c.request,
                "estimated_cost": p.estimate}
        if many:
            item["model"] = c.model
        if c.from_cell:
            item["from_cell"] = c.from_cell
        if act is not None:
            item["state"], item["action"] = act
        yield item


def matrix_json(m: Any) -> list[dict[str, Any]]:
    """The matrix's axes in manifest order; `rows` with the keys its rows zip together (the
    report's grid shows them as one facet, never as independent filters)."""
    from ..prepare.expand import row_keys

    return [{"axis": a.name, "keys": row_keys(m)} if a.is_rows else {"axis": a.name}
            for a in m.axes]
