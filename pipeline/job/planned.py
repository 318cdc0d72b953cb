"""A plan's cells as the tally counts them: id, label, estimate, duration key and model.

`planned_cells` makes them from the plan's cells (pipeline.prepare.expand.Cell objects, as
`plan` and a run hold them) or from plan.json's dicts (as `status` and the report read them),
worked out once per distinct set of the request values they read: a 100,000-cell job holds a
few estimates and keys, not one per cell. Apart from the Tally (pipeline.job.tally) that counts
them, which only reads the result. Cell is imported inside `planned_cells`, not here: `status`
of a job that ran reads plan.json and must load no template library (tests/test_startup.py).
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..models import cost
from .timing import duration_key


@dataclass(frozen=True, slots=True)
class PlannedCell:
    """A cell of the job's plan as the tally needs it."""

    id: str
    label: str
    estimate: float | None  # USD at its model's price; None when unknown
    key: str  # its duration key (pipeline.job.timing)
    model: str = ""


def planned_cells(cells: Iterable[Any], model: str, sheet: dict[str, Any] | None,
                  fps: int = cost.DEFAULT_FPS, *,
                  models: Mapping[str, tuple[dict[str, Any] | None, int]] | None = None
                  ) -> list[PlannedCell]:
    """PlannedCells from plan cells (objects or plan.json dicts with id, label, request and,
    in a sweep of several models, model). A plan.json cell keeps the estimate the run wrote
    (`estimated_cost`); any other is priced with its own model's sheet and fps
    (`models`: model id -> (sheet, fps)); `model`, `sheet` and `fps` stand for cells that do
    not name a model."""
    from ..prepare.expand import Cell  # (here: `status` of a job that ran reads no templates)

    out = []
    shared: dict[Any, Any] = {}  # one float object per distinct estimate, not one per cell
    models = models or {}
    # what a cell's estimate and duration key read of its request, per model; and by that
    # (model, plan.json's estimate, the values read) -> (estimate, duration key)
    reads: dict[str, tuple[str, ...]] = {}
    known: dict[Any, tuple[float | None, str, str]] = {}
    # a Cell's shape (pipeline.prepare.shapes.Shape) -> the same, when its holes are none of
    # what is read (else False)
    by_shape: dict[int, Any] = {}
    for c in cells:
        shape = None
        if type(c) is Cell:
            cid, label, request, shape = c.id, c.label, c.request, c.shape
            own = c.model or model
            given = False
            if shape is not None:
                found = by_shape.get(id(shape))
                if found:
                    out.append(PlannedCell(cid, label, found[0], found[1], found[2]))
                    continue
        elif isinstance(c, Mapping):
            cid, label, request = c["id"], c.get("label", ""), c.get("request") or {}
            own = c.get("model") or model
            given = "estimated_cost" in c  # plan.json's, as the run priced it
        else:
            cid, label, request = c.id, c.label, c.request
            own = getattr(c, "model", "") or model
            given = False
        read = reads.get(own)
        if read is None:
            read = reads[own] = _reads(models.get(own, (sheet, fps))[0])
        key: Any = tuple(map(request.get, read, _ABSENTS))
        try:
            kinds = tuple(map(type, key))  # 1, 1.0 and True apart (0.0 and -0.0: typed_key)
            key = (own, typed_key(c["estimated_cost"]) if given else None,
                   *(key + kinds if float not in kinds else map(typed_key, key)))
            found = known.get(key)
        except TypeError:  # an unhashable value (a list, say): worked out for itself
            key = found = None
        if found is None:
            own_sheet, own_fps = models.get(own, (sheet, fps))
            usd = c["estimated_cost"] if given else cost.cell_cost(own_sheet, request, own_fps)
            found = (shared.setdefault(usd, usd), duration_key(own, request), sys.intern(own))
            if key is not None:
                known[key] = found
        if shape is not None and id(shape) not in by_shape:
            by_shape[id(shape)] = found if not set(shape.holes) & set(read) else False
        out.append(PlannedCell(cid, label, *found))
    return out


def _reads(sheet: Any) -> tuple[str, ...]:
    """The inputs a cell's estimate at `sheet` (pipeline.models.cost.cell_cost: its `by`, its
    length) and its duration key (pipeline.job.timing.duration_key) depend on."""
    by = sheet.get("by", "resolution") if isinstance(sheet, dict) else "resolution"
    return tuple(dict.fromkeys(("resolution", "number_of_frames", "duration", str(by))))


_ABSENT = object()  # a key the request does not have (not the same as a None there)
_ABSENTS = itertools.repeat(_ABSENT)


def typed_key(value: Any) -> Any:
    """A value as a key that keeps apart what compares equal but is read otherwise (1, 1.0 and
    True; 0.0 and -0.0)."""
    kind = type(value)
    return (kind, repr(value) if kind is float else value)

