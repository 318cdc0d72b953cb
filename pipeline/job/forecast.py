"""What a run of a plan would do: each cell's action, what is left to pay, and how long it takes.

`forecast(plan, price, folder)` reads the job's state (if any) and tallies the plan against it
with the same table (`resume_action`), the same money and the same ETA as `run` and `status`:
`plan` counts only the cells still to do, at the price the run will use (corrected by what
the job's canary was billed, see pipeline.job.price), timed by the job's own measured cells
once it has some, after the canary a run would wait for. `plan_json` is also the snapshot a
run writes as plan.json (`write_snapshot`), which `status` and the report read.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from .. import __version__
from ..durable import write_atomic
from ..jsonio import Streamed, stamped
from ..models import cost
from ..prepare.expand import Cell
from ..prepare.manifest import Manifest
from ..prepare.plan import Plan
from ..sim.config import BUILTIN_GEN_TIME
from .folder import PLAN_FORMAT, JobFolder
from .found_capacity import planning_concurrency, service
from .journal import JobState, read_state
from .money import micros, over_budget
from .next_run import canary_for, canary_size, resume_for
from .planned import PlannedCell, planned_cells, typed_key
from .price import Prices
from .records import ResumeOptions, resume_action
from .tally import Tally


@dataclass
class Forecast:
    """A plan tallied against its job's state."""

    plan: Plan
    price: Prices
    state: JobState
    tally: Tally
    concurrency: int
    of: int | None = None  # with a selection (--only): how many cells the whole plan has
    folder: JobFolder | None = None
    service: str = ""  # what the run talks to (pipeline.job.found_capacity.service)

    def actions(self) -> list[tuple[str, str]]:
        """Per cell of the plan: (state, what a run would do and why)."""
        out = []
        max_attempts = self.tally.max_attempts
        for c in self.plan.cells:
            st = self.tally.state_of(c.id)
            out.append((st, resume_action(self.state.cells.get(c.id), st, max_attempts,
                                          self.tally.resume).why))
        return out

    def orphaned(self) -> list[str]:
        known = {c.id for c in self.plan.cells}
        return [cid for cid in self.state.cells if cid not in known]

    def figures(self) -> dict[str, Any]:
        return self.tally.figures(self.concurrency)

    def budget_fits(self) -> int | None:
        """How many of the cells a run would submit the budget lets it submit (None: no
        budget): as the runner reserves them (pipeline.job.money.Ledger.reserve), in plan
        order, each at its estimate on top of what is committed, until the first that does
        not fit, where the run stops submitting."""
        ledger = self.tally.ledger
        if ledger.budget is None:
            return None
        committed, fits = micros(ledger.committed), 0
        for c in self.plan.cells:
            if not self.tally.to_submit(c.id):
                continue
            more = micros(self.tally.planned[c.id].estimate or 0.0)
            if over_budget(committed, more, ledger.budget) is not None:
                break
            committed, fits = committed + more, fits + 1
        return fits


SIM_GUESS = "the simulator's generation time"


def typical_times(m: Manifest) -> float | dict[str, float | None] | None:
    """What the tally falls back on before a run measures anything: the model's typical
    time (`model.json`), one per model in a sweep of several."""
    models = m.sweep.models
    if len(models) == 1:
        return m.model.typical_s
    return {k: x.typical_s for k, x in models.items()}


def forecast(plan: Plan, price: Prices, folder: JobFolder | None = None, *,
             concurrency: int | None = None, state: JobState | None = None,
             resume: ResumeOptions | None = None, cells: list[Cell] | None = None,
             canary: int | None = None, at: str | None = None, backend: str | None = None,
             simulated_s: float | None = None) -> Forecast:
    """Tally `plan` at `price` (each cell at its own model's, as the job's canary corrected
    it) against the state in `folder` (none: a fresh job); `resume`, `canary` and `at` (the
    service it talks to, see pipeline.job.found_capacity.service): the run's choices (default:
    what a plain `pipeline run` would do now); `cells`: a selection of the plan's cells
    (`--only`) to tally instead of all of them. On the simulator (`backend`, else the
    manifest's), a cell takes the simulator's own time (`simulated_s`, else the built-in
    one's mean), not the real model's."""
    m = plan.manifest
    typical: Any = typical_times(m)
    guess = None
    if (backend or m.backend) == "sim":
        typical = simulated_s if simulated_s is not None else sum(BUILTIN_GEN_TIME) / 2
        guess = SIM_GUESS
    at = at if at is not None else service(m.backend)
    if state is None:  # a missing journal reads as an empty state
        state = read_state(folder) if folder is not None else JobState(m.folder)
    of = None
    if cells is not None:
        of = len(plan.cells)
        plan = replace(plan, cells=cells)
        state = state.only({c.id for c in cells})
    resume = resume or resume_for(state)
    price = price.corrected(state.billed_canaries)
    if canary is None and canary_size(m.run.canary, m.backend) <= 0:
        canary = 0  # no canary: the cells' models are not needed (a million-cell mapping)
    if canary is None:
        base_url = None
        if m.backend != "sim":  # the client's package (httpx) only for a job on the service
            from ..client import env_base_url

            base_url = env_base_url()
        canary = canary_for(state, m.run.canary, m.backend, base_url,
                            {c.id: c.model for c in plan.cells})
    tally = Tally.of(state, planned_at(m, plan.cells, price),
                     max_attempts=m.run.max_attempts, budget=m.run.budget, resume=resume,
                     typical=typical, guess=guess)
    tally.canary = canary
    return Forecast(plan, price, state, tally,
                    concurrency or planning_concurrency(m.run, folder, at), of, folder, at)


def planned_at(m: Manifest, cells: list[Cell], price: Prices) -> list[PlannedCell]:
    """The cells as the tally counts them, each priced and timed as its own model is."""
    rates = {k: (price.of(k).sheet, x.fps) for k, x in m.sweep.models.items()}
    return planned_cells(cells, m.model.id, *rates[m.model.id], models=rates)


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
