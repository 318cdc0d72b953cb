"""Shapes: cells of one model whose requests differ only in a few integer inputs share a shape,
so that what every later stage works out for a request is worked out once per shape.

A shape's holes are matrix keys set to an integer straight from the matrix and read by no
template (a seed, say; `hole_keys` says which keys can be holes for a model). The first cell
of a shape is worked out in full and its request kept in the `Shape`; each further cell of it is
that request with its own integers put in the holes (pipeline.prepare.expand.drafts, which also
caps how many shapes a plan keeps: MAX_SHAPES). Later stages keep what they work out on the
shape: the text of the ids and labels, cut at the holes (pipeline.prepare.identity), that a
body of it was valid and the holes' bounds (pipeline.prepare.plan.check), the estimate and
duration when no hole is read by them (pipeline.job.planned) and the seconds of video when no
hole is the length (pipeline.job.plan_json). A module of its own because those stages all read
it and none of them needs the rest of expanding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..models.catalogue import Model
from .combinations import row_keys
from .manifest import Manifest
from .model_base import ModelBase, key_role


@dataclass(slots=True)
class Shape:
    """What the drafts of one model whose requests differ only in a few integer inputs (a seed,
    say: `holes`, set straight from the matrix and read by no template) have in common: one
    request of theirs, and what later stages work out once for all of them."""

    request: dict[str, Any]
    holes: tuple[str, ...]
    # the text of the cells' ids and labels, cut at the holes (pipeline.prepare.identity)
    id_text: tuple[Any, ...] | None = None
    label_text: tuple[Any, ...] | None = None
    # a body of the shape was valid; the holes' bounds when all are free integers of the
    # schema, else None (pipeline.prepare.plan.check)
    valid: bool = False
    bounds: tuple[tuple[str, float, float], ...] | None = None
    # the origin of the last cell made of it, and that cell's combination's (drafts)
    origin: dict[str, Any] | None = None
    combination: dict[str, Any] | None = None


def hole_keys(m: Manifest, spec: Any, model: Model, base: ModelBase) -> frozenset[str]:
    """The matrix keys that, set to an integer, can be a shape's holes for cells of `model`:
    inputs of the model that its own model_inputs do not set and no template reads."""
    if base.reads is None or base.blocked:
        return frozenset()
    keys: set[str] = set()
    for axis in m.axes:
        keys.update(row_keys(m) if axis.is_rows else [axis.name])
    for entry in m.include:
        keys.update(entry)
    return frozenset(k for k in keys if k not in base.reads and k != "replicate" and
                     key_role(m, spec, model.id, k) == "input")


_NOTHING: dict[str, Any] = {}  # the request of a shape let go of (never written to)


def let_go(cells: list[Any]) -> None:
    """After the plan's check, what its later readers need of a shape: that several cells share
    it, and its holes (pipeline.job.planned, pipeline.job.plan_json). A shape of one cell (a
    sweep whose templates read its seed has one a cell, up to MAX_SHAPES) is taken off its cell;
    the others let go of their request and the texts and origins made from it. ~900 bytes a
    cell of a 100,000-cell run that every cell's prompt makes unique."""
    many: dict[int, bool] = {}
    for cell in cells:
        shape = cell.shape
        if shape is not None:
            many[id(shape)] = id(shape) in many
    for cell in cells:
        shape = cell.shape
        if shape is None:
            continue
        if not many[id(shape)]:
            object.__setattr__(cell, "shape", None)  # Cell is frozen
        elif shape.request is not _NOTHING:
            shape.request = _NOTHING
            shape.id_text = shape.label_text = None
            shape.origin = shape.combination = None

