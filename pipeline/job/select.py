"""Which cells a command acts on: `--only KEY=VALUE` and `--only cell=ID`, owned here once.

`run`, `plan`, `status`, `report`, `picks` and `--retry-failed` all read the same selection.
The rules, as a user would guess them from `--only` in other tools:

- pairs with the same key are alternatives (`--only seed=1 --only seed=2`: either seed); pairs
  with different keys must all hold (`--only seed=1 --only resolution=720P`: both);
- values are compared as text with the cell's matrix value (or its request value of that name);
- `cell=ID` selects by cell id; a unique prefix of at least `MIN_ID_PREFIX` hex digits is enough;
- a pair that matches no cell is a user error listing the values that exist for its key (a typo
  must not silently run nothing, or everything); so is a selection whose pairs each match but
  together match nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from ..errors import UsageError

__all__ = ["CELL_KEY", "MIN_ID_PREFIX", "Only", "describe_only", "parse_only", "select_cells",
           "value_of"]

CELL_KEY = "cell"
MIN_ID_PREFIX = 6
SHOW_VALUES = 12  # values listed in a "matches no cell" message before "and N more"
_HEX = re.compile(r"[0-9a-f]+")

Only = tuple[tuple[str, str], ...]


class _CellLike(Protocol):
    """A plan cell as selection reads it (read-only: plan cells are frozen)."""

    @property
    def id(self) -> str: ...
    @property
    def values(self) -> dict[str, Any]: ...
    @property
    def request(self) -> dict[str, Any]: ...


_Cell = TypeVar("_Cell", bound="_CellLike | Mapping[str, Any]")


def parse_only(pairs: Iterable[str]) -> Only:
    """`["resolution=720P", "cell=3fa9c1"]` -> pairs; a malformed one is a UsageError."""
    out = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--only {pair!r}: expected KEY=VALUE, e.g. --only resolution=720P "
                             f"or --only {CELL_KEY}=3fa9c1")
        out.append((key.strip(), value.strip()))
    return tuple(out)


def describe_only(only: Only) -> str:
    """The selection as the user wrote it: `seed=1 cell=3fa9c1`."""
    return " ".join(f"{k}={v}" for k, v in only)


def _parts(cell: _CellLike | Mapping[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(id, values, request) of a plan cell, or of a plan.json cell (a mapping)."""
    if isinstance(cell, Mapping):
        return cell["id"], cell.get("values") or {}, cell.get("request") or {}
    return cell.id, cell.values, cell.request


def value_of(cell: _CellLike | Mapping[str, Any], key: str) -> Any:
    """A cell's value for `key`: its matrix value, else its request value of that name."""
    _, values, request = _parts(cell)
    return values[key] if key in values else request.get(key)


def select_cells(cells: Sequence[_Cell], only: Only) -> list[_Cell]:
    """The cells matching `only`, in their plan order (all of them when `only` is empty).
    Cells are plan cells or plan.json cells (mappings with id, values and request)."""
    if not only:
        return list(cells)
    wanted: dict[str, set[str]] = {}
    for key, value in only:
        wanted.setdefault(key, set()).add(value)
    ids = wanted.pop(CELL_KEY, None)
    chosen_ids = _resolve_ids(cells, ids) if ids is not None else None
    parts = [_parts(c) for c in cells]
    known = {k for _, v, _ in parts for k in v} | {k for _, _, r in parts for k in r}
    for key, values in wanted.items():
        if key not in known:
            raise UsageError(f"--only {key}=...: {key!r} is not a matrix value of this job "
                             f"(known: {', '.join(sorted(known | {CELL_KEY}))})")
        present = {str(value_of(c, key)) for c in cells}
        for value in sorted(values):
            if value not in present:
                raise UsageError(f"--only {key}={value}: no cell has {key}={value}; "
                                 f"values of {key}: {_listing(present)}")
    picked = [c for c, (cid, _, _) in zip(cells, parts, strict=True)
              if (chosen_ids is None or cid in chosen_ids)
              and all(str(value_of(c, k)) in vs for k, vs in wanted.items())]
    if not picked:
        shown = " ".join(f"--only {k}={v}" for k, v in only)
        raise UsageError(f"{shown}: each matches some cell, but no cell matches all of them")
    return picked


def _resolve_ids(cells: Sequence[_CellLike | Mapping[str, Any]], prefixes: set[str]) -> set[str]:
    """Full ids for the `cell=` prefixes; each must be hex, long enough and unambiguous."""
    out: set[str] = set()
    for prefix in sorted(prefixes):
        p = prefix.lower()
        if len(p) < MIN_ID_PREFIX or not _HEX.fullmatch(p):
            raise UsageError(f"--only {CELL_KEY}={prefix}: a cell id is hex digits; give at least "
                             f"{MIN_ID_PREFIX} of them (pipeline plan shows the ids)")
        matches = [cid for cid in (_parts(c)[0] for c in cells) if cid.startswith(p)]
        if not matches:
            raise UsageError(f"--only {CELL_KEY}={prefix}: no cell of this job has an id "
                             "starting so (pipeline plan shows the ids)")
        if len(set(matches)) > 1:
            raise UsageError(f"--only {CELL_KEY}={prefix}: ambiguous, it starts "
                             f"{_listing(set(matches))}; give more digits")
        out.add(matches[0])
    return out


def _listing(values: set[str]) -> str:
    ordered = sorted(values, key=lambda v: (len(v), v))
    shown = ", ".join(ordered[:SHOW_VALUES])
    more = len(ordered) - SHOW_VALUES
    return shown + (f" and {more} more" if more > 0 else "")
