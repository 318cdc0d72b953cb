"""What every cell of one model starts from, and what a matrix key is to it.

`model_base` works out, once per model of the sweep, the request each of its cells starts from
(`ModelBase`: the model's defaults, the shared inputs it takes and its model_inputs, each with
where it came from; which of them hold a template, and the variables those read), and
`key_role` what a matrix key is to a cell of that model (`unmapped`: the problem of an input
it neither has nor drops). pipeline.prepare.expand then sets each cell's own values on a copy
of it; pipeline.prepare.shapes reads it to tell which keys can be a shape's holes. A module of
its own because it is the per-model half of expanding: nothing in it depends on a cell.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..models.catalogue import Model
from .combinations import coerce
from .manifest import Manifest
from .modelset import AXIS as MODEL_AXIS
from .render import TemplateProblem, compile_template, is_template
from .wording import did_you_mean


@dataclass(frozen=True)
class ModelBase:
    """What every cell of one model starts from: its defaults, the shared inputs it takes and
    its model_inputs, with where each came from; and the shared inputs it can take nowhere."""

    request: dict[str, Any]
    origin: dict[str, Any]
    # (name, where): shared inputs the model neither has nor drops
    blocked: tuple[tuple[str, Any], ...]
    # the request's keys that hold a template (rendered per cell), and the request as every
    # cell starts from it: the other values coerced once (the cells share them: read-only)
    templates: tuple[str, ...] = ()
    plain: dict[str, Any] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # the model's inputs in schema order
    roles: dict[str, str] = field(default_factory=dict)  # a matrix key's role: see key_role
    # a request's keys -> the same in the order cells send them
    orders: dict[tuple[str, ...], tuple[str, ...]] = field(default_factory=dict)
    # the variables its templates read (None: a template does not compile)
    reads: frozenset[str] | None = frozenset()


def model_base(m: Manifest, model: Model) -> ModelBase:
    props = model.properties
    spec = m.sweep.inputs_of(model.id)
    defaults = model.defaults()
    request = dict(defaults)
    origin: dict[str, Any] = dict.fromkeys(defaults, ("model",))
    blocked: list[tuple[str, Any]] = []
    for k, v in m.inputs.items():
        if k in props:
            request[k], origin[k] = v, ("inputs", k)
        elif k not in spec.drop:
            blocked.append((k, ("inputs", k)))
    if m.prompt is not None:
        if "prompt" in props:
            request["prompt"], origin["prompt"] = m.prompt, m.prompt_where
        elif "prompt" not in spec.drop:
            blocked.append(("prompt", m.prompt_where))
    for k, v in spec.inputs.items():  # model_inputs add to and override everything shared
        request[k], origin[k] = v, spec.path + (k,)
    templates = tuple(k for k, v in request.items() if has_template(v))
    plain = {k: coerce(props[k], v) if k in props and k not in templates else v
             for k, v in request.items()}
    # in the order cells send them (the model's inputs in schema order, then any other), so
    # that a cell whose matrix sets only keys the base has needs no reordering
    plain = {k: plain[k] for k in props if k in plain} | plain
    return ModelBase(request, origin, tuple(blocked), templates, plain, list(props),
                 reads=_reads([request[k] for k in templates]))


def _reads(values: list[Any]) -> frozenset[str] | None:
    """The variables the templates in `values` read (None when one does not compile: its
    problem is reported cell by cell)."""
    found: set[str] = set()
    for value in values:
        if isinstance(value, str):
            if is_template(value):
                try:
                    found.update(compile_template(value).variables)
                except TemplateProblem:
                    return None
        elif isinstance(value, (list, dict)):
            inner = _reads(list(value.values() if isinstance(value, dict) else value))
            if inner is None:
                return None
            found |= inner
    return frozenset(found)


def has_template(value: Any) -> bool:
    """Whether rendering could change `value` (a string holding template syntax, anywhere)."""
    if isinstance(value, str):
        return is_template(value)
    if isinstance(value, list):
        return any(map(has_template, value))
    if isinstance(value, dict):
        return any(map(has_template, value.values()))
    return False


def key_role(m: Manifest, spec: Any, model_id: str, key: str) -> str:
    """What a matrix key is to a cell of one model: "model" (names the model), "model_inputs"
    (the model's own inputs set it, and win), "input" (goes into the request), "blocked" (an
    input of another model of the sweep that this one neither has nor drops: a problem) or
    "variable" (for templates only)."""
    if key == MODEL_AXIS:
        return "model"
    if key in spec.inputs:
        return "model_inputs"
    if m.is_input(key, model_id):
        return "input"
    if key not in spec.drop and m.is_input(key):
        return "blocked"
    return "variable"


def unmapped(model: Model, name: str) -> str:
    """The problem of an input a model does not have and does not drop."""
    return (f"{name!r} is not an input of {model.id}{did_you_mean(name, model.properties)}: "
            f"map it in model_inputs.{model.id}, or list it under model_inputs.{model.id}.drop "
            f"(its inputs are: {', '.join(model.properties)})")
