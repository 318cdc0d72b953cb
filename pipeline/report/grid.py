"""The report grid's facets: what a sweep's cells vary by, and which two lay out the grid.

Every matrix key is a facet, except the keys that `rows` zips together (image + caption):
they are one facet, the row, labelled by its values, never independent filters (which could
only combine into empty grids). A facet varies when its cells hold more than one value. The
page lays the grid out by any two varying facets and filters by the others, all starting on
"all"; by default the two varying facets with the most values, seed last (a seed is a take,
seldom what a grid compares), the longer one down the page. In a sweep of several models,
`model` is the default column axis: models side by side.
"""

from __future__ import annotations

import json
from typing import Any

from .. import jsonio
from ..errors import UsageError
from ..prepare.modelset import AXIS as MODEL_AXIS

ROWS = "rows"
SEED = "seed"
ROW_LABEL = 60  # characters of a row's label before it is shortened


def value_key(value: Any) -> str:
    """A stable text key for a matrix value (values may be numbers, text, lists, objects)."""
    return jsonio.compact(value, sort_keys=True)


def show(value: Any) -> str:
    """A matrix value as a person reads it."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _key(value: Any) -> Any:
    """`value_key`, but text and whole numbers (the common values, a seed per cell) as they
    are: no string made per cell. 1 and "1" stay apart; other values go through JSON."""
    if type(value) is str or type(value) is int:
        return value
    return (value_key(value),)  # never equal to a text: "true" and True stay apart


class Distinct:
    """The distinct values of one facet in first-seen order, each with its number."""

    __slots__ = ("index", "values")

    def __init__(self) -> None:
        self.index: dict[Any, int] = {}
        self.values: list[Any] = []

    def add(self, value: Any) -> int:
        key = _key(value)
        found = self.index.get(key)
        if found is None:
            found = self.index[key] = len(self.values)
            self.values.append(value)
        return found

    def number(self, value: Any) -> int:
        return self.index[_key(value)]


class Facets:
    """The facets of a job's cells, learnt one cell at a time (`add`), and the report.json
    `axes` (every matrix key on its own, as scripts read them)."""

    def __init__(self, matrix: list[dict] | None):
        rows = next((a for a in matrix or () if a.get("axis") == ROWS), None)
        self.row_keys: list[str] = list(rows.get("keys") or []) if rows else []
        self.order: list[str] = [a["axis"] for a in matrix or () if a.get("axis")]
        self.keys: dict[str, Distinct] = {}  # every matrix key (report.json's axes)
        self.facets: dict[str, Distinct] = {}
        self.present: dict[str, int] = {}  # facet -> cells that have it
        self.cells = 0

    def _row(self, values: dict) -> list:
        return [values.get(k) for k in self.row_keys]

    def add(self, values: dict) -> None:
        self.cells += 1
        for k, v in values.items():
            seen = self.keys.get(k)
            if seen is None:
                seen = self.keys[k] = Distinct()
                if k not in self.row_keys:  # a key's own facet: the same values, held once
                    self.facets[k] = seen
            seen.add(v)
            if k not in self.row_keys:
                self.present[k] = self.present.get(k, 0) + 1
        if self.row_keys:
            self.facets.setdefault(ROWS, Distinct()).add(self._row(values))
            self.present[ROWS] = self.cells

    def axes(self) -> list[dict[str, Any]]:
        """report.json's `axes`: each matrix key with its distinct values, first-seen order."""
        return [{"name": k, "values": d.values} for k, d in self.keys.items()]

    def names(self) -> list[str]:
        """Every facet, the matrix's order first (rows where the manifest put it)."""
        known = [n for n in self.order if n in self.facets]
        return known + [n for n in self.facets if n not in known]

    def _lacking(self, name: str) -> bool:
        """Some cells lack this key (an `include` may add a key to some cells only)."""
        return self.present.get(name, 0) < self.cells

    def sizes(self) -> dict[str, int]:
        """Values per facet, "none" counted as one for cells that lack it."""
        return {n: len(self.facets[n].values) + self._lacking(n) for n in self.names()}

    def varying(self) -> list[str]:
        sizes = self.sizes()
        return [n for n in self.names() if sizes[n] > 1]

    def numbers(self, values: dict, names: list[str]) -> list[int]:
        """A cell's value number per facet of `names` (a missing key: the last number)."""
        out = []
        for name in names:
            d = self.facets[name]
            if name == ROWS:
                out.append(d.number(self._row(values)))
            elif name in values:
                out.append(d.number(values[name]))
            else:
                out.append(len(d.values))
        return out

    def described(self, names: list[str]) -> list[dict[str, Any]]:
        """The page's facets: name, the keys it stands for, and each value as text."""
        out = []
        for name in names:
            d = self.facets[name]
            texts = [_row_label(v) for v in d.values] if name == ROWS else \
                [show(v) for v in d.values]
            if self._lacking(name):
                texts.append("(none)")
            out.append({"name": name, "keys": self.row_keys if name == ROWS else [name],
                        "values": texts})
        return out


def _row_label(values: list) -> str:
    text = " · ".join(show(v) for v in values if v is not None and v != "") or "(no row)"
    return text if len(text) <= ROW_LABEL else text[: ROW_LABEL - 1] + "…"


class Occupancy:
    """Which pairs of facet values hold a cell, for the pairs that could fill more than half a
    grid (a pair of facets whose grid has more slots than twice the cells never does): so the
    default grid never pairs a facet with one nested in it, such as `seed: {random: N}`,
    whose values differ in every row (a diagonal of lone tiles in an empty grid)."""

    def __init__(self, sizes: dict[str, int], cells: int):
        self.names = list(sizes)
        self.sizes = sizes
        self.cells = cells
        self.seen: dict[tuple[int, int], bytearray] = {}
        for i, a in enumerate(self.names):
            for j in range(i + 1, len(self.names)):
                slots = sizes[a] * sizes[self.names[j]]
                if slots <= 2 * cells:
                    self.seen[(i, j)] = bytearray(slots)

    def add(self, numbers: list[int]) -> None:
        """One cell's value numbers, one per facet of `sizes`, in that order."""
        for (i, j), seen in self.seen.items():
            seen[numbers[i] * self.sizes[self.names[j]] + numbers[j]] = 1

    def dense(self, a: str, b: str) -> bool:
        """The grid of facets a × b would be more than half full (values nested in another
        facet's, like seeds drawn per cell, fill 1/n of it: at most half)."""
        i, j = sorted((self.names.index(a), self.names.index(b)))
        seen = self.seen.get((i, j))
        return seen is not None and 2 * sum(seen) > len(seen)


def choose_axes(sizes: dict[str, int], rows: str | None, cols: str | None,
                names: list[str] | None = None, occupancy: Occupancy | None = None
                ) -> tuple[str | None, str | None]:
    """(row facet, column facet) among the varying facets (`sizes`: values per facet); a named
    one must be a facet of the job (`names`, default: those of `sizes`), and rows and
    columns must differ. Unnamed ones: the varying facet with the most values, seed last,
    and the next one that fills more than half the grid with it (`occupancy`, when known),
    the longer of the two down the page. Alone, a facet runs across the page when each of
    its values holds one cell, else down it (its cells side by side in each row)."""
    known = names if names is not None else list(sizes)
    for option, name in (("--rows", rows), ("--cols", cols)):
        if name is not None and name not in known:
            listed = ", ".join(known) if known else "none: this job has no matrix"
            raise UsageError(f"{option} {name}: not a matrix axis of this job (axes: {listed})")
    if rows is not None and rows == cols:
        raise UsageError(f"--rows and --cols both name {rows!r}: pick two different axes")
    if sizes.get(MODEL_AXIS, 0) > 1 and MODEL_AXIS not in (rows, cols):
        # models side by side: one column per model (a row each, if columns are taken)
        if cols is None:
            cols = MODEL_AXIS
        elif rows is None:
            rows = MODEL_AXIS
    order = list(sizes)
    free = sorted((n for n in order if n not in (rows, cols)),
                  key=lambda n: (n == SEED, -sizes[n], order.index(n)))
    if rows is None and cols is None and free:
        a = free[0]
        b = next((n for n in free[1:] if occupancy is None or occupancy.dense(a, n)), None)
        if b is not None:  # the longer one runs down the page, the shorter across it
            return (a, b) if sizes[a] > sizes[b] else (b, a)
        if occupancy is not None and occupancy.cells > sizes[a]:
            return a, None
        return None, a
    if cols is None and free:
        cols = free.pop(0)
    if rows is None and free:
        rows = free.pop(0)
    return rows, cols
