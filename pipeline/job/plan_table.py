"""The plan as `pipeline plan` prints it: a table of its cells, and its totals underneath.

`plan_table(forecast)`: per cell its matrix values (a value its model is not sent shown as
NOT_SENT), where a picked cell came from and, for a job that has run, what a run would do with
it, each prompt wrapped to the terminal's width; then the count, the cost and duration of what
is left to run, each model's share, the budget and what it lets a run submit. Words for people;
programs read the same figures as JSON (pipeline.job.plan_json). Made from a Forecast
(pipeline.job.forecast), which holds the figures and knows nothing of this layout.
"""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
from typing import Any

from .. import text
from ..prepare.expand import Cell
from ..prepare.identity import model_labels
from ..prepare.manifest import RunSettings
from ..prepare.modelset import AXIS as MODEL_AXIS
from .folder import JobFolder
from .forecast import Forecast
from .found_capacity import kept
from .plan_json import models_json
from .price import describe
from .tally import figures_line


def _concurrency(settings: RunSettings, assumed: int, folder: JobFolder | None, at: str) -> str:
    """How the plan names the concurrency its estimate assumed."""
    if not settings.auto:
        return str(assumed)
    if folder is not None and kept(folder, at) is not None:
        return f"auto (capacity {assumed}, as the last run found it)"
    return f"auto (assumed {assumed} until a run finds the capacity)"


def picked_from(c: Cell) -> str:
    """Where a cell was picked from, as `plan` shows it: `preview:3fa9c1d2`."""
    src = c.from_cell
    return f"{src.get('job') or '?'}:{str(src.get('cell'))[:8]}" if src else ""


def _terminal_width() -> int:
    """The width to wrap to: $COLUMNS, else the terminal's; a pipe or a file is not wrapped
    (scripts read whole lines, as from git or ls)."""
    if os.environ.get("COLUMNS", "").strip().isdigit():
        return int(os.environ["COLUMNS"])
    if sys.stdout.isatty():
        return shutil.get_terminal_size((120, 24)).columns
    return 1 << 16


def plan_table(f: Forecast, width: int | None = None, limit: int = 200, *,
               wide: bool = False, selection: str = "") -> str:
    """A readable table of the cells with the count, cost and duration underneath. Prompts are
    wrapped to the terminal's width (`wide`: one line per cell, nothing shortened)."""
    width = width or _terminal_width()
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
    short = model_labels(list(m.sweep.models))
    for i, c in enumerate(plan.cells[:limit]):
        shown = {**c.values, MODEL_AXIS: short[c.model]} if MODEL_AXIS in c.values else c.values
        dropped = m.sweep.inputs_of(c.model).drop if c.model else ()
        if dropped:  # what this cell's model is not sent: not its value
            shown = {k: NOT_SENT if k in dropped else v for k, v in shown.items()}
        rows.append([str(c.index + 1), c.id]
                    + [_cell_text(shown.get(k, ""), wide, 40 if k == MODEL_AXIS else 24)
                       for k in keys]
                    + ([picked_from(c)] if picked else [])
                    + ([per_cell[i][1].split(" (")[0]] if with_state else []))
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    used = sum(widths) + 2 * len(widths)
    beside = wide or width - used >= MIN_PROMPT_WIDTH  # else each prompt goes under its row
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
             + ("  prompt" if beside else "")]
    for c, r in zip(plan.cells, rows, strict=False):  # rows: the first `limit` cells only
        row = "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True))
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
    many = m.sweep.many
    what = f"{len(m.sweep.models)} models" if many else m.model.id
    lines += [
        f"job {m.name}: {count} of {what} on backend {m.backend}",
        f"estimated cost: {text.money(fig['to_go_usd'])} for {todo}{of_all} cells to run"
        + ("" if many else f" (price: {f.price.source})"),
        f"estimated duration: {text.span(fig['eta_s'])} at concurrency "
        f"{_concurrency(m.run, f.concurrency, f.folder, f.service)}"
        + (f", after a canary of {_cells(f.tally.canary)} run alone first"
           if f.tally.canary and todo else "")
        + (f" (about {per_cell_s:g} s per cell: {fig['duration_source']})"
           if per_cell_s is not None else ""),
    ]
    if many:
        for item in models_json(f):
            per = f", about {item['per_cell_s']:g} s per cell" \
                if item["per_cell_s"] is not None else ""
            lines.append(f"  {item['id']}: {item['to_do']} of {item['cells']} cells to run, "
                         f"{text.money(item['to_go_usd'])} ({describe(item['price']['sheet'])}, "
                         f"price from {item['price']['source']}){per}")
    if m.run.budget is not None:
        lines.append(budget_line(f, todo))
    if with_state:
        lines.append("so far: " + figures_line(fig))
        tally: dict[str, int] = {}
        for _, act in per_cell:
            tally[act] = tally.get(act, 0) + 1
        fits = f.budget_fits()
        lines.append("a run would: " + "; ".join(f"{n} {act}" for act, n in tally.items())
                     + (f"; but the budget stops it after {fits} submit{'s' if fits != 1 else ''}"
                        if fits is not None and fits < todo else ""))
        orphaned = f.orphaned()
        if orphaned:
            more = f" and {len(orphaned) - 10} more" if len(orphaned) > 10 else ""
            lines.append(f"{len(orphaned)} orphaned cell(s) in the state are no longer in the "
                         "manifest (kept on disk): " + ", ".join(orphaned[:10]) + more)
    if not wide:
        lines = [part for line in lines
                 for part in textwrap.wrap(line, width - 1, subsequent_indent="  ")]
    return "\n".join(table + [""] + lines)


def budget_line(f: Forecast, todo: int) -> str:
    """The budget, and what it lets a run do: `plan` never promises submits the run's budget
    check will refuse."""
    budget, committed = f.tally.ledger.budget, f.tally.ledger.committed
    line = f"budget: {text.money(budget)}"
    if committed:
        line += f", {text.money(committed)} of it committed"
    fits = f.budget_fits()
    if fits is None or fits >= todo:
        return line
    if fits == 0:
        return (line + f": spent; a run would submit none of the {_cells(todo)} to run "
                "(raise run.budget to go on)")
    return (line + f": room for {fits} of the {_cells(todo)} to run; a run stops submitting "
            "after them (raise run.budget for the rest)")


MIN_PROMPT_WIDTH = 30  # narrower than this beside the row, a prompt goes under it
NOT_SENT = "—"  # a value of the cell's matrix its model drops (model_inputs.ID.drop)


def _cells(n: int) -> str:
    return f"{n} cell{'s' if n != 1 else ''}"


def _cell_text(value: Any, wide: bool = False, width: int = 24) -> str:
    text = str(value)
    return text if wide or len(text) <= width else text[:width - 1] + "…"
