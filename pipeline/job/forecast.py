"""What a run of a plan would do: each cell's action, what is left to pay, and how long it takes.

`forecast(plan, price, folder)` reads the job's state (if any) and tallies the plan against it
with the same table (`resume_action`), the same money and the same ETA as `run` and `status`:
`plan` counts only the cells still to do, at the price the run will use, timed by the job's
own measured cells once it has some. `plan_json` is also the snapshot a run writes as
plan.json, which `status` and the report read.
"""

from __future__ import annotations

import shutil
import textwrap
from dataclasses import dataclass, replace
from typing import Any

from ..prepare import cost
from ..prepare.plan import Plan
from .folder import JobFolder
from .journal import JobState, read_state
from .price import Price
from .records import ResumeOptions, resume_action
from .tally import Tally, figures_line, planned_cells, resume_for


@dataclass
class Forecast:
    """A plan tallied against its job's state."""

    plan: Plan
    price: Price
    state: JobState
    tally: Tally
    concurrency: int
    of: int | None = None  # with a selection (--only): how many cells the whole plan has

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


def forecast(plan: Plan, price: Price, folder: JobFolder | None = None, *,
             concurrency: int | None = None, state: JobState | None = None,
             resume: ResumeOptions | None = None, cells: list | None = None) -> Forecast:
    """Tally `plan` at `price` against the state in `folder` (none: a fresh job); `resume`:
    the run's choices (default: what a plain `pipeline run` would do now); `cells`: a
    selection of the plan's cells (`--only`) to tally instead of all of them."""
    m = plan.manifest
    if state is None:  # a missing journal reads as an empty state
        state = read_state(folder) if folder is not None else JobState(m.folder)
    of = None
    if cells is not None:
        of = len(plan.cells)
        plan = replace(plan, cells=cells)
        state = state.only({c.id for c in cells})
    resume = resume or resume_for(state)
    fps = m.model.meta.get("fps", cost.DEFAULT_FPS)
    typical = m.model.meta.get("generation_seconds", {}).get("typical")
    tally = Tally.of(state, planned_cells(plan.cells, m.model.id, price.sheet, fps),
                     max_attempts=m.run.max_attempts, budget=m.run.budget, resume=resume,
                     typical=typical)
    return Forecast(plan, price, state, tally, concurrency or m.run.concurrency, of)


def plan_json(f: Forecast, *, with_state: bool = True) -> dict[str, Any]:
    """The plan as JSON (`plan --json`), and as the plan.json snapshot of a run."""
    plan, m, price = f.plan, f.plan.manifest, f.price
    fps = m.model.meta.get("fps", cost.DEFAULT_FPS)
    estimates = [p.estimate for p in f.tally.planned.values()]
    sweep_usd = None if None in estimates or not estimates else round(sum(estimates), 4)
    figures = f.figures()
    data: dict[str, Any] = {
        "job": m.name,
        "model": m.model.id,
        "backend": m.backend,
        "manifest": str(m.path.resolve()),
        "manifest_sha256": m.sha256,
        "schema_sha256": m.model.schema_sha256,
        "count": len(plan.cells),
        "fps": fps,
        "typical_s": f.tally.timings.typical,
        "run": {"concurrency": f.concurrency, "max_attempts": m.run.max_attempts,
                "budget": m.run.budget},
        "price": price.as_json(),
        # the whole sweep at the run's price; what is left to pay is figures.to_go_usd
        "estimated_usd": sweep_usd,
        "estimate": {
            "usd": sweep_usd,
            "unpriced_cells": sum(1 for x in estimates if x is None),
            "price_source": price.source,
            "seconds_of_video": round(sum(cost.video_seconds(c.request, fps)
                                          for c in plan.cells), 2),
            "duration_s": figures["eta_s"],
            "per_cell_s": figures["per_cell_s"],
            "duration_source": figures["duration_source"],
            "concurrency": f.concurrency,
        },
        "warnings": [str(w) for w in plan.warnings] + list(price.warnings),
        "matrix": matrix_json(m),
        "cells": [
            {"id": c.id, "label": c.label, "values": c.values, "request": c.request,
             "estimated_cost": p.estimate, **({"from_cell": c.from_cell} if c.from_cell else {})}
            for c, p in zip(plan.cells, f.tally.planned.values())
        ],
    }
    if with_state:
        data["figures"] = figures
    if with_state and f.state.cells:
        for item, (st, act) in zip(data["cells"], f.actions()):
            item["state"], item["action"] = st, act
        data["orphaned"] = [{"id": cid, "label": f.state.cells[cid].label,
                             "action": "orphaned: no longer in the manifest (kept on disk)"}
                            for cid in f.orphaned()]
    return data


def matrix_json(m: Any) -> list[dict[str, Any]]:
    """The matrix's axes in manifest order; `rows` with the keys its rows zip together (the
    report's grid shows them as one facet, never as independent filters)."""
    from ..prepare.expand import row_keys

    return [{"axis": a.name, "keys": row_keys(m)} if a.is_rows else {"axis": a.name}
            for a in m.axes]


def picked_from(c: Any) -> str:
    """Where a cell was picked from, as `plan` shows it: `preview:3fa9c1d2`."""
    src = c.from_cell
    return f"{src.get('job') or '?'}:{str(src.get('cell'))[:8]}" if src else ""


def plan_table(f: Forecast, width: int | None = None, limit: int = 200, *,
               wide: bool = False, selection: str = "") -> str:
    """A readable table of the cells with the count, cost and duration underneath. Prompts are
    wrapped to the terminal's width (`wide`: one line per cell, nothing shortened)."""
    width = width or shutil.get_terminal_size((120, 24)).columns
    plan, m = f.plan, f.plan.manifest
    keys: list[str] = []
    for c in plan.cells:
        for k in c.values:
            if k not in keys:
                keys.append(k)
    with_state = bool(f.state.cells)
    per_cell = f.actions() if with_state else []
    picked = any(c.from_cell for c in plan.cells)
    header = ["#", "cell"] + keys + (["from"] if picked else []) + \
        (["action"] if with_state else [])
    rows = []
    for i, c in enumerate(plan.cells[:limit]):
        rows.append([str(c.index + 1), c.id]
                    + [_cell_text(c.values.get(k, ""), wide) for k in keys]
                    + ([picked_from(c)] if picked else [])
                    + ([per_cell[i][1].split(" (")[0]] if with_state else []))
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    used = sum(widths) + 2 * len(widths)
    beside = wide or width - used >= MIN_PROMPT_WIDTH  # else each prompt goes under its row
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)) + ("  prompt" if beside else "")]
    for c, r in zip(plan.cells, rows):
        row = "  ".join(v.ljust(w) for v, w in zip(r, widths))
        prompt = " ".join(str(c.request.get("prompt", "")).split())
        if wide:
            lines.append(row + "  " + prompt)
        elif beside:
            wrapped = textwrap.wrap(prompt, max(1, width - used - 1)) or [""]
            lines.append(row + "  " + wrapped[0])
            lines += [" " * used + more for more in wrapped[1:]]
        else:
            lines.append(row.rstrip())
            lines += ["    " + part for part in textwrap.wrap(prompt, max(20, width - 5))]
    if len(plan.cells) > limit:
        lines.append(f"... and {len(plan.cells) - limit} more cells (use --json for all)")
    fig = f.figures()
    todo = fig["to_do"]
    of_all = f" of {len(plan.cells)}" if todo != len(plan.cells) else ""
    per_cell_s = fig["per_cell_s"]
    count = (f"{len(plan.cells)} of its {f.of} cells selected ({selection})"
             if f.of is not None else f"{len(plan.cells)} cells")
    table, lines = lines, []
    lines += [
        f"job {m.name}: {count} of {m.model.id} on backend {m.backend}",
        f"estimated cost: {cost.money(fig['to_go_usd'])} for {todo}{of_all} cells to run "
        f"(price: {f.price.source})",
        f"estimated duration: {cost.span(fig['eta_s'])} at concurrency {f.concurrency}"
        + (f" (about {per_cell_s:g} s per cell: {fig['duration_source']})"
           if per_cell_s is not None else ""),
    ]
    if m.run.budget is not None:
        lines.append(f"budget: {cost.money(m.run.budget)}")
    if with_state:
        lines.append("so far: " + figures_line(fig))
        tally: dict[str, int] = {}
        for _, act in per_cell:
            tally[act] = tally.get(act, 0) + 1
        lines.append("a run would: " + "; ".join(f"{n} {act}" for act, n in tally.items()))
        orphaned = f.orphaned()
        if orphaned:
            more = f" and {len(orphaned) - 10} more" if len(orphaned) > 10 else ""
            lines.append(f"{len(orphaned)} orphaned cell(s) in the state are no longer in the "
                         "manifest (kept on disk): " + ", ".join(orphaned[:10]) + more)
    if not wide:
        lines = [part for line in lines
                 for part in textwrap.wrap(line, width - 1, subsequent_indent="  ")]
    return "\n".join(table + [""] + lines)


MIN_PROMPT_WIDTH = 30  # narrower than this beside the row, a prompt goes under it


def _cell_text(value: Any, wide: bool = False) -> str:
    text = str(value)
    return text if wide or len(text) <= 24 else text[:23] + "…"
