"""The HTML report's layout: which matrix axes make the rows and columns, which are filters.

By default the rows and columns are the two axes with the most values (ties: the order in the
manifest), the longer of the two down the page so that the columns fit a screen; the other axes
become filters. In a sweep of several models, `model` is the default column axis: models side
by side. A job with one axis has one row; a job with none has
one row of every cell.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import UsageError
from ..prepare.modelset import AXIS as MODEL_AXIS


def value_key(value: Any) -> str:
    """A stable text key for a matrix value (values may be numbers, text, lists, objects)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def show(value: Any) -> str:
    """A matrix value as a person reads it."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def choose_axes(axes: list[dict], rows: str | None, cols: str | None
                ) -> tuple[str | None, str | None]:
    """(row axis, column axis); a named axis must exist, and rows and columns must differ."""
    names = [a["name"] for a in axes]
    for option, name in (("--rows", rows), ("--cols", cols)):
        if name is not None and name not in names:
            known = ", ".join(names) if names else "none: this job has no matrix"
            raise UsageError(f"{option} {name}: not a matrix axis of this job (axes: {known})")
    if rows is not None and rows == cols:
        raise UsageError(f"--rows and --cols both name {rows!r}: pick two different axes")
    sizes = {a["name"]: len(a["values"]) for a in axes}
    if sizes.get(MODEL_AXIS, 0) > 1 and MODEL_AXIS not in (rows, cols):
        # models side by side: one column per model (a row each, if columns are taken)
        if cols is None:
            cols = MODEL_AXIS
        elif rows is None:
            rows = MODEL_AXIS
    free = [n for n in sorted(sizes, key=lambda n: -sizes[n]) if n not in (rows, cols)]
    if rows is None and cols is None and len(free) >= 2:
        a, b = free[0], free[1]  # the longer axis runs down the page, the shorter across it
        return (a, b) if sizes[a] > sizes[b] else (b, a)
    if cols is None and free:
        cols = free.pop(0)
    if rows is None and free:
        rows = free.pop(0)
    return rows, cols


MAX_TILES = 5_000


def layout(report: dict, rows: str | None = None, cols: str | None = None) -> dict[str, Any]:
    """Rows × columns of cells for the grid, plus the filter axes and their values."""
    axes = report["axes"]
    row_axis, col_axis = choose_axes(axes, rows, cols)
    values = {a["name"]: a["values"] for a in axes}

    def keys_of(axis: str | None) -> list[Any]:
        if axis is None:
            return [None]
        found = list(values[axis])
        if any(axis not in c["values"] for c in report["cells"]):
            found.append(None)  # cells without this axis (a matrix `include` may add keys)
        return found

    row_values, col_values = keys_of(row_axis), keys_of(col_axis)
    row_index = {value_key(v): i for i, v in enumerate(row_values)}
    col_index = {value_key(v): i for i, v in enumerate(col_values)}
    slots: list[list[list[dict]]] = [[[] for _ in col_values] for _ in row_values]
    filters = [{"axis": a["name"], "values": [{"key": value_key(v), "text": show(v)}
                                               for v in a["values"]]}
               for a in axes if a["name"] not in (row_axis, col_axis)]
    for cell in report["cells"]:
        r = row_index[value_key(cell["values"].get(row_axis))] if row_axis else 0
        c = col_index[value_key(cell["values"].get(col_axis))] if col_axis else 0
        slots[r][c].append(cell)
    # A browser cannot hold 100,000 players: past MAX_TILES the grid shows whole rows up to the
    # limit and says so; report.md and report.json still list every cell.
    truncated = None
    total = len(report["cells"])
    if total > MAX_TILES:
        shown = kept = 0
        for row in slots:
            n = sum(len(slot) for slot in row)
            if kept and shown + n > MAX_TILES:
                break
            shown += n
            kept += 1
        truncated = {"cells_shown": shown, "cells_total": total, "rows_shown": kept,
                     "rows_total": len(slots)}
        slots, row_values = slots[:kept], row_values[:kept]
    return {
        "truncated": truncated,
        "row_axis": row_axis,
        "col_axis": col_axis,
        "rows": [{"text": show(v), "slots": slots[i]} for i, v in enumerate(row_values)],
        "cols": [{"text": show(v)} for v in col_values],
        "filters": filters,
    }
