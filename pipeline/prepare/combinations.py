"""The matrix's combinations: the values of each cell, and where each value was written.

They follow GitHub Actions exactly: the product of the axes (first axis outermost), then
`exclude` (an entry drops every combination having all of its key/values), then `include` (an
entry extends every combination whose *original* values it does not overwrite; values added by
an earlier include may be overwritten; an entry that extends none is added as a new
combination). Zipped `rows` act as one axis whose values are whole rows, their text made the
type the schema asks for (`coerce`). A module of its own because it makes no request and
renders no template: pipeline.prepare.expand makes each combination a request, and the job floor
reads `row_keys` for the report's grid. Pure, in a deterministic order.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any

from .manifest import Manifest
from .values import same

# A combination's origin also holds, under this key (never an identifier), the cell its row was
# picked from (pipeline.prepare.picks); it becomes the cell's `from_cell`.
FROM_CELL = "@from_cell"

ADDED_BY = "(include)"  # origin key of a combination an include entry added: that entry's path


def combinations(m: Manifest) -> Iterable[tuple[dict[str, Any], dict[str, Any]]]:
    """(values, origin) per combination, in GitHub Actions' order and semantics; the origin of
    a combination that an include entry added also holds the entry's path under ADDED_BY.
    Without include or exclude, made one at a time (a million of them are never all held)."""
    original: set[str] = set()
    columns: list[list[tuple[dict[str, Any], dict[str, Any]]]] = []
    own = set_here(m)
    for axis in m.axes:
        column: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for i, (value, where) in enumerate(zip(axis.values, axis.paths, strict=True)):
            if axis.is_rows:
                picked = axis.origins[i] if axis.origins else None
                row = {k: _coerce_row_value(m, k, v) for k, v in value.items()
                       if not (picked and k in own)}
                row_origin: dict[str, Any] = dict.fromkeys(row, where)
                if picked:
                    row_origin[FROM_CELL] = picked
                column.append((row, row_origin))
                original.update(row)
            else:
                column.append(({axis.name: value}, {axis.name: where}))
                original.add(axis.name)
        columns.append(column)

    if columns and not m.include and not m.exclude:
        return _product(columns)
    combos: list[tuple[dict[str, Any], dict[str, Any]]] = []
    if columns:
        combos.extend(_product(columns))
    elif not m.include:
        combos.append(({}, {}))

    if m.exclude:
        combos = [c for c in combos if not any(_matches(c[0], ex) for ex in m.exclude)]

    added: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for i, entry in enumerate(m.include):
        where = ("matrix", "include", i)
        fixed = {k: v for k, v in entry.items() if k in original}
        extra = {k: v for k, v in entry.items() if k not in original}
        hit = False
        for values, origin in combos:
            if all(k in values and same(values[k], v) for k, v in fixed.items()):
                hit = True
                values.update(extra)
                origin.update((k, where + (k,)) for k in extra)
        if not hit:
            added.append((dict(entry), {**{k: where + (k,) for k in entry}, ADDED_BY: where}))
    return combos + added


def _product(columns: list[list[tuple[dict[str, Any], dict[str, Any]]]]
             ) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """The product of the axes, first axis outermost: (values, origin) each."""
    for parts in itertools.product(*columns):
        values: dict[str, Any] = {}
        origin: dict[str, Any] = {}
        for v, o in parts:
            values.update(v)
            origin.update(o)
        yield values, origin


def set_here(m: Manifest) -> set[str]:
    """Keys the manifest sets itself (its own axes and inputs): a picked row keeps its values
    except these (the final's resolution or frames win over the preview's)."""
    return {a.name for a in m.axes if not a.is_rows} | set(m.inputs)


def row_keys(m: Manifest) -> list[str]:
    """The keys the `rows` axis zips together, in first-seen order, as the cells carry them."""
    own = set_here(m)
    keys: dict[str, None] = {}
    for axis in m.axes:
        if axis.is_rows:
            for i, row in enumerate(axis.values):
                picked = axis.origins[i] if axis.origins else None
                keys.update((k, None) for k in row if not (picked and k in own))
    return list(keys)


def _matches(values: dict[str, Any], entry: dict[str, Any]) -> bool:
    return all(k in values and same(values[k], v) for k, v in entry.items())


def _coerce_row_value(m: Manifest, key: str, value: Any) -> Any:
    prop = next((x.properties[key] for x in m.sweep.models.values() if key in x.properties),
                None)
    return coerce(prop, value) if prop else value


def coerce(prop: dict[str, Any], value: Any) -> Any:
    """Make text from CSV files and templates the type the schema asks for, where it reads so."""
    kind = prop.get("type")
    if isinstance(value, str):
        text = value.strip()
        try:
            if kind == "integer" and text.lstrip("-").isdigit():
                return int(text)
            if kind in ("number", "float") and text:  # "float": the catalog's own word
                return float(text)
        except ValueError:
            return value
        if kind == "boolean" and text.lower() in ("true", "false"):
            return text.lower() == "true"
        if kind == "array":
            return [value]
    return value
