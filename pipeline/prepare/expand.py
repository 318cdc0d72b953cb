"""Prepare, expand: the matrix becomes a list of cells, each one request body (its
content-derived id, pinned seed and label: pipeline.prepare.identity).

`drafts` makes each of the matrix's combinations (pipeline.prepare.combinations, in GitHub
Actions' order and semantics) a `Draft`: a request for the combination's own model, started
from what every cell of that model starts from (pipeline.prepare.model_base), its values set
and its templates rendered, problems collected cell by cell; the cells of one shape
(pipeline.prepare.shapes) are copied from the first one's request. `Cell`, what a draft becomes,
is the one type of a cell every later stage reads. Pure functions in a deterministic order.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import Location, ProblemList
from ..models.catalogue import Model
from .combinations import ADDED_BY, FROM_CELL, coerce, combinations
from .combinations import row_keys as row_keys  # re-exported: job.plan_json imports it here
from .manifest import Manifest
from .model_base import ModelBase, has_template, key_role, model_base, unmapped
from .modelset import AXIS as MODEL_AXIS
from .render import TemplateProblem, render
from .shapes import Shape, hole_keys
from .values import describe

MAX_EXPAND_SECONDS = 120.0  # expanding (templates included) stops past this, with a problem
# shapes a plan keeps (see Shape; each holds a request): past this, a new shape's cells are
# worked out one by one (a sweep whose every cell has a shape of its own gains nothing)
MAX_SHAPES = 50_000


@dataclass(frozen=True, slots=True)
class Cell:
    """One request of a job: its id, a short label, the matrix values and the body to POST."""

    id: str
    label: str
    index: int
    values: dict[str, Any]
    request: dict[str, Any]
    replicate: int
    origin: dict[str, Any]  # request key or variable -> manifest path or Location, for messages
    model: str = ""  # the id of the model the request is for
    # The picked cell this one renders again ({job, cell, out}: a preview -> final workflow);
    # not part of the request or the id.
    from_cell: dict[str, Any] | None = None
    # what its request shares with other cells' (see Shape), for work done once per shape
    shape: Shape | None = field(default=None, compare=False, repr=False)


@dataclass(slots=True)
class Draft:
    """A cell before its seed is drawn and its id is known."""

    values: dict[str, Any]
    request: dict[str, Any]
    replicate: int
    origin: dict[str, Any]
    failed: tuple[str, ...] = ()  # keys whose template failed (left as written; already reported)
    model: Model | None = None
    # shared by the drafts whose requests differ only in the integers of `Shape.holes`
    shape: Shape | None = None


def drafts(m: Manifest, problems: ProblemList) -> Iterator[Draft]:
    """Build each cell's request body (templates rendered), for the cell's own model; problems
    are collected, not raised."""
    sweep = m.sweep
    # equal origins shared: most cells' are alike
    origins: dict[tuple[Any, ...], dict[str, Any]] = {}
    until = time.monotonic() + MAX_EXPAND_SECONDS
    made = 0
    # per model: its base, its model_inputs and the matrix keys that may be a shape's holes
    # (see Shape); and the shapes
    of_model: dict[str, tuple[ModelBase, Any, frozenset[str]]] = {}
    shapes: dict[tuple[Any, ...], Shape | None] = {}
    repeat = m.repeat
    for values, origin in combinations(m):
        model = sweep.of(values)
        if model is None:
            named = values.get(MODEL_AXIS)
            if named is None:  # an include entry that adds a combination without a model
                where = origin.get(ADDED_BY) or next(iter(origin.values()), None)
                problems.add(_locate(m, where),
                             "this combination names no model: give it `model: ID` (one of "
                             f"{', '.join(sweep.models)})", cell=True, example=describe(values))
            continue  # a model that could not be loaded is reported where it is named
        known = of_model.get(model.id)
        if known is None:
            base = model_base(m, model)
            spec = sweep.inputs_of(model.id)
            known = of_model[model.id] = (base, spec, hole_keys(m, spec, model, base))
        base, spec, holes = known
        for replicate in range(repeat):
            made += 1
            if time.monotonic() > until:
                # each rendering is bounded (pipeline.prepare.render); this bounds them all together
                problems.add(_locate(m, m.prompt_where or ("matrix",)),
                             f"expanding took more than {MAX_EXPAND_SECONDS:g} s (stopped after "
                             f"{made - 1:,} cells); simplify the templates or split the job")
                return
            skey: Any = None
            # the cell's shape: its values but the integers of the holes (a cell with no
            # integer in a hole has none: no other cell could share it, its replicates
            # included, and a shape of its own only held a copy of its request)
            if holes and any(type(v) is int and k in holes for k, v in values.items()):
                skey = [model.id, replicate]
                for key, value in values.items():
                    kind = type(value)
                    if kind is int and key in holes:
                        skey.append(key)
                    else:  # 1, 1.0 and True apart; 0.0 and -0.0 too
                        skey.append((key, kind, repr(value) if kind is float else value))
                try:
                    skey = tuple(skey)
                    shape = shapes.get(skey)
                except TypeError:  # an unhashable value (a list, a row): its own
                    skey, shape = None, None
                if shape is not None:  # as the first cell of its shape, but for its holes
                    request = shape.request.copy()
                    for key in shape.holes:
                        request[key] = values[key]
                    shown = values
                    if repeat > 1:
                        shown = dict(values)
                        if "replicate" not in values:
                            shown["replicate"] = replicate
                    cell_origin = shape.origin
                    if cell_origin is None or origin != shape.combination or \
                            FROM_CELL in origin:  # (a range's cells' are alike)
                        shape.combination = origin
                        cell_origin = shape.origin = _cell_origin(origins, model.id, base,
                                                                  origin, ())
                    yield Draft(shown, request, replicate, cell_origin, (), model, shape)
                    continue
            props = model.properties
            roles = base.roles
            order = base.order
            request = dict(base.plain)
            context = {**m.vars, **values}
            if m.repeat > 1 and "replicate" not in values:  # a pick's take is its own
                context["replicate"] = replicate
            blocked = list(base.blocked)
            given = []
            ruled = []  # keys model_inputs set, whose origin is there
            for key, value in values.items():
                role = roles.get(key)
                if role is None:
                    role = roles[key] = key_role(m, spec, model.id, key)
                if role == "input":
                    request[key] = value
                    given.append(key)
                elif role == "model_inputs":
                    ruled.append(key)
                elif role == "blocked":
                    blocked.append((key, origin.get(key)))
            cell_origin = _cell_origin(origins, model.id, base, origin, ruled)
            for key, where in blocked:
                problems.add(_locate(m, where), unmapped(model, key), cell=True,
                             example=describe(values))
            failed = []
            # what needs rendering: the templates of the base, and the matrix's own inputs
            # (a plain value of the base was rendered and coerced once, in model_base)
            for key in dict.fromkeys((*base.templates, *given)) if given else base.templates:
                value = request[key]
                if type(value) not in (str, list, dict):  # a number or boolean stays as is
                    continue
                try:
                    request[key] = _render_value(value, context)
                except TemplateProblem as exc:
                    _template_failed(m, problems, key, exc, cell_origin, values, context)
                    request[key] = value
                    failed.append(key)
                    continue
                if key in props:
                    request[key] = coerce(props[key], request[key])
            keys = tuple(request)
            ordered = base.orders.get(keys)
            if ordered is None:  # the model's inputs in schema order, then any other
                ordered = base.orders[keys] = tuple({k: None for k in order if k in request} |
                                               dict.fromkeys(keys))
            if ordered != keys:
                request = {k: request[k] for k in ordered}
            shown = values if m.repeat == 1 else dict(values)  # each replicate its own
            if m.repeat > 1 and "replicate" not in values:
                shown["replicate"] = replicate
            shape = None
            if skey is not None and skey not in shapes and len(shapes) < MAX_SHAPES:
                # the first of its shape
                # (a matrix value holding a template may read a hole: such cells share nothing)
                shared = not (failed or blocked or ruled or
                              any(has_template(values[k]) for k in given))
                shape = shapes[skey] = Shape(dict(request), tuple(
                    k for k in values if k in holes and type(values[k]) is int)) \
                    if shared else None
            yield Draft(shown, request, replicate, cell_origin, tuple(failed), model, shape)


def _cell_origin(origins: dict[Any, dict[str, Any]], model_id: str, base: ModelBase,
                 origin: dict[str, Any], ruled: Iterable[str]) -> dict[str, Any]:
    """A cell's origin: its model's, its combination's, and for keys its model_inputs set
    (`ruled`), the model's again (model_inputs win: documented). Read-only, so that cells
    whose combinations came from the same places share one (most do: a range's values share
    their origin)."""
    try:
        okey: Any = (model_id, *origin.items())
        found = origins.get(okey)
    except TypeError:  # an unhashable mark (a pick's from_cell): its own
        okey, found = None, None
    if found is None:
        found = {**base.origin, **origin}
        for key in ruled:
            found[key] = base.origin[key]
        if okey is not None:
            origins[okey] = found
    return found


def _template_failed(m: Manifest, problems: ProblemList, key: str, exc: TemplateProblem,
                     origin: dict[str, Any], values: dict[str, Any],
                     context: dict[str, Any]) -> None:
    """Report a template that failed for one cell: at the template, or, when the cell is one an
    include entry added and lacks variables the template uses, at that entry."""
    example = describe(values) if values else ""
    entry = origin.get(ADDED_BY)
    if exc.undefined and entry is not None:
        missing = ", ".join(repr(n) for n in exc.undefined)
        problems.add(m.loc(entry), f"this include entry adds a new cell without {missing}, which "
                                   f"the {key} template uses (the cell has: "
                                   f"{', '.join(sorted(context)) or 'nothing'}); set it in the "
                                   f"entry, or write {{{{ {exc.undefined[0]} | default('...') }}}}"
                                   " in the template", cell=True, example=example)
        return
    problems.add(_locate(m, origin.get(key)), f"{key}: {exc}", cell=True, example=example)


def _render_value(value: Any, context: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return render(value, context)
    if isinstance(value, list):
        return [_render_value(v, context) for v in value]
    if isinstance(value, dict):
        return {k: _render_value(v, context) for k, v in value.items()}
    return value


def _locate(m: Manifest, where: Any) -> Location:
    if where is None:
        return Location(str(m.path), 1, 1)
    return m.loc(where)
