"""What a run of a plan would do: each cell's action, what is left to pay, and how long it takes.

`forecast(plan, price, folder)` reads the job's state (if any) and tallies the plan against it
with the same table (`resume_action`), the same money and the same ETA as `run` and `status`:
`plan` counts only the cells still to do, at the price the run will use (corrected by what
the job's canary was billed, see pipeline.job.price), timed by the job's own measured cells
once it has some, after the canary a run would wait for. Shown as a table by `plan`
(pipeline.job.plan_table) and as JSON by `plan --json`, which is also the plan.json snapshot a
run writes and `status` and the report read (pipeline.job.plan_json).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..prepare.expand import Cell
from ..prepare.manifest import Manifest
from ..prepare.plan import Plan
from ..sim.config import BUILTIN_GEN_TIME
from .folder import JobFolder
from .found_capacity import planning_concurrency, service
from .journal import JobState, read_state
from .money import micros, over_budget
from .next_run import canary_for, canary_size, resume_for
from .planned import PlannedCell, planned_cells
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
