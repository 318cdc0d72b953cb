"""What a run started now would do with a job, read from its replayed journal.

`resume_for`: the choices (pipeline.job.records.ResumeOptions) that `resume_action` reads to
say what the run does with each cell, with the built-in simulator's requests lost once its run
is gone; `canary_needs`: per model, how many cells the run must see done before it submits
more (its canary). `plan` (pipeline.job.forecast), `status` (pipeline.job.status) and the run
(pipeline.run.session, pipeline.run.runner) all ask here, so what `plan` and `status` say a run
would do is what a run does. Apart from the Tally (pipeline.job.tally), which counts the cells
under these choices.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from .journal import JobState
from .records import DONE, ResumeOptions


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


def canary_for(state: JobState, setting: int | None, backend: str,
               base_url: str | None, cells: Mapping[str, str] | None = None) -> int:
    """How many cells a run started now must see done before it submits more (its canary):
    the sum of `canary_needs`."""
    return sum(canary_needs(state, setting, backend, base_url, cells).values())


def canary_size(setting: int | None, backend: str) -> int:
    """`run.canary`, or its default: 1 on the runcomfy backend, 0 on the built-in simulator
    (0 or less: no canary, whatever the job's state)."""
    return setting if setting is not None else (0 if backend == "sim" else 1)


def canary_needs(state: JobState, setting: int | None, backend: str, base_url: str | None,
                 cells: Mapping[str, str] | None = None) -> dict[str, int]:
    """Per model, how many of its cells a run started now must see done before it submits
    more: `run.canary` (None: 1 on the runcomfy backend, 0 on the built-in simulator) less the
    model's cells already done on the same service at `base_url` (a cell made by a run against
    another base URL, a simulator say, proves nothing about this one), and never more than its
    cells not done yet. Each model is proven on its own: its own route, output key and bill.
    `cells`: the plan's cell id -> model id (None: one model, keyed "")."""
    size = canary_size(setting, backend)
    models = list(dict.fromkeys(cells.values())) if cells else [""]
    if size <= 0:
        return dict.fromkeys(models, 0)
    proven = dict.fromkeys(models, 0)
    if base_url is not None:
        starts = [(run.get("t", 0.0), str(run.get("base_url", "")).rstrip("/"))
                  for run in state.runs]
        here = base_url.rstrip("/")
        for cid, rec in state.cells.items():
            model = cells.get(cid) if cells else ""
            if model is None or proven[model] >= size:
                continue
            won = None if rec.compacted else rec.succeeded()
            if won is None or rec.state(1) != DONE:
                continue
            made_by = next((url for t, url in reversed(starts) if t <= won.intent_at), None)
            if made_by == here:
                proven[model] += 1
    need = {k: size - proven[k] for k in models}
    if cells:  # a model with fewer cells left than that proves what it has left
        left = dict.fromkeys(models, 0)
        for cid, model in cells.items():
            found = state.cells.get(cid)
            if found is None or found.state(1) != DONE:
                left[model] += 1
        need = {k: min(n, left[k]) for k, n in need.items()}
    return need
