"""Which models a manifest sweeps, and what each of them is sent.

A manifest names its model as `model: ID`, as a list `model: [A, B]` (an axis named `model`,
the outermost one) or as a matrix axis `matrix: {model: [A, B, C]}`; `include` entries and rows
may name a model too. Every model is looked up in the project's models folder first, then
among the bundled ones (pipeline.models.catalogue).

Shared `inputs` (and the prompt, and matrix values that are model inputs) go to every model;
`model_inputs: {ID: {...}}` adds or overrides inputs of one model (a different image field, a
`duration` instead of `number_of_frames`), and its `drop: [NAME, ...]` lists what that model is
not sent. An input a model's schema does not have, and that the model does not drop, is a plan
error naming the model, the input and its line: a blocked mapping is better than a fabricated
one, and nothing is ever left out silently.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..errors import Location, ModelNotFound, ProblemList
from ..models.catalogue import Model, known_models, load_model
from .wording import did_you_mean, show
from .yamlsrc import Path_, Source

AXIS = "model"  # the matrix axis (and cell value) naming a cell's model
DROP = "drop"


@dataclass(frozen=True)
class ModelInputs:
    """One `model_inputs` entry: inputs added or overridden for a model, and what it drops."""

    inputs: dict[str, Any] = field(default_factory=dict)
    drop: frozenset[str] = frozenset()
    path: Path_ = ()  # where the entry is in the manifest


NO_INPUTS = ModelInputs()


@dataclass(frozen=True)
class ModelSet:
    """The models of one sweep (in the order they are first named) and their inputs."""

    models: dict[str, Model]
    default: str | None  # the model of a cell that names none (`model: ID` at the top)
    per_model: dict[str, ModelInputs] = field(default_factory=dict)

    @property
    def first(self) -> Model:
        return next(iter(self.models.values()))

    @property
    def many(self) -> bool:
        return len(self.models) > 1

    @property
    def label(self) -> str:
        """The job's `model` as plan.json, the journal and status name it: the model's id, or
        the ids of a sweep's models joined by commas (a label, never a model id)."""
        return ", ".join(self.models)

    def of(self, values: Mapping[str, Any]) -> Model | None:
        """The model of a cell with these matrix values (None: it names none)."""
        chosen = values.get(AXIS, self.default)
        return self.models.get(chosen) if isinstance(chosen, str) else None

    def inputs_of(self, model_id: str) -> ModelInputs:
        return self.per_model.get(model_id, NO_INPUTS)

    def is_input(self, name: str, model_id: str | None = None) -> bool:
        """Whether `name` is a model input: of the given model, else of any model of the
        sweep. The one place that decides it (an axis or row key that is an input goes into
        the request; any other is a template variable)."""
        if model_id is not None:
            model = self.models.get(model_id)
            return model is not None and name in model.properties
        return any(name in m.properties for m in self.models.values())

    def input_names(self) -> list[str]:
        """Every input of every model of the sweep, each once, in schema order."""
        names: dict[str, None] = {}
        for m in self.models.values():
            names.update(dict.fromkeys(m.properties))
        return list(names)


def referenced(data: dict[str, Any], rows: Iterable[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """(model value, where) for every place the manifest names a model: the top level, the
    `model` axis, include entries and rows (`rows`: (row, where) pairs)."""
    out: list[tuple[Any, Any]] = []
    top = data.get("model")
    if isinstance(top, list):
        out += [(v, ("model", i)) for i, v in enumerate(top)]
    elif top is not None:
        out.append((top, ("model",)))
    matrix = data.get("matrix") or {}
    axis = matrix.get(AXIS)
    if isinstance(axis, list):
        out += [(v, ("matrix", AXIS, i)) for i, v in enumerate(axis)]
    for i, entry in enumerate(matrix.get("include") or ()):
        if AXIS in entry:
            out.append((entry[AXIS], ("matrix", "include", i, AXIS)))
    for row, where in rows:
        if isinstance(row, dict) and AXIS in row:
            out.append((row[AXIS], where))
    return out


def read_models(data: dict[str, Any], source: Source, root: Path, problems: ProblemList,
                rows: Iterable[tuple[Any, Any]] = ()) -> ModelSet | None:
    """The models a manifest names, loaded; None (with problems) when none can be used."""
    rows = list(rows)  # read twice: for the models rows name, then for the keys they send
    loc = _locator(source)
    matrix = data.get("matrix") or {}
    top, axis = data.get("model"), matrix.get(AXIS)
    if top is None and axis is None:
        problems.add(loc(()), "manifest: missing required key 'model' (a model id, a list of "
                              "them, or a `model` axis in matrix)")
        return None
    if top is not None and axis is not None:
        problems.add(loc(("matrix", AXIS), True), "model is both set at the top level and "
                                                  "swept in matrix; keep one")
    if axis is not None and not isinstance(axis, list):
        problems.add(loc(("matrix", AXIS)), "matrix.model: a list of model ids")
    models: dict[str, Model] = {}
    failed: set[str] = set()
    for value, where in referenced(data, rows):
        if not isinstance(value, str):
            problems.add(loc(where), f"{show(value)} is not a model id (a string such as "
                                     "bytedance/dreamina-3-0/image-to-video)")
            continue
        if value in models or value in failed:
            continue
        try:
            models[value] = load_model(value, root)
        except (ModelNotFound, ValueError, OSError) as exc:  # ValueError: a NUL byte in the id
            if not isinstance(exc, ModelNotFound):
                exc = ModelNotFound(f"no schema for model {value!r}; known models: "
                                    f"{', '.join(known_models(root))}")
            failed.add(value)
            problems.add(loc(where), str(exc))
    if not models:
        return None
    default = top if isinstance(top, str) and top in models else None
    sweep = ModelSet(models, default)
    row_keys = {k for row, _ in rows if isinstance(row, dict) for k in row}
    per_model = _model_inputs(data, sweep, loc, problems, _sendable(data) | row_keys)
    return ModelSet(models, default, per_model)


class _Locate(Protocol):
    """Where a path of the manifest is (a location given as such is kept)."""

    def __call__(self, path: Path_ | Location, key: bool = False) -> Location: ...


def _locator(source: Source) -> _Locate:
    def loc(path: Path_ | Location, key: bool = False) -> Location:
        return path if not isinstance(path, tuple) else source.loc(path, key=key)
    return loc


def _model_inputs(data: dict[str, Any], sweep: ModelSet, loc: _Locate, problems: ProblemList,
                  sendable: set[str]) -> dict[str, ModelInputs]:
    """The `model_inputs` entries, checked: each names a model of the sweep, its inputs are
    that model's, and what it drops is something the manifest would send."""
    raw = data.get("model_inputs") or {}
    out: dict[str, ModelInputs] = {}
    for model_id, entry in raw.items():
        base = ("model_inputs", model_id)
        model = sweep.models.get(model_id)
        if model is None:
            problems.add(loc(base, True), f"model_inputs: {model_id!r} is not a model of this "
                         f"sweep{did_you_mean(model_id, sweep.models)}; the models are: "
                         f"{', '.join(sweep.models)}")
            continue
        entry = dict(entry or {})
        drop = entry.pop(DROP, None) or []
        props = model.properties
        inputs = {}
        for key, value in entry.items():
            if key not in props:
                problems.add(loc(base + (key,), True),
                             f"unknown input {key!r} for {model_id}" + did_you_mean(key, props)
                             + f"; inputs are: {', '.join(props)}")
                continue
            inputs[key] = value
        for i, name in enumerate(drop):
            if name in inputs:
                problems.add(loc(base + (DROP, i)), f"model_inputs.{model_id}: {name!r} is both "
                                                    "set and dropped; keep one")
            elif name not in sendable:
                problems.add(loc(base + (DROP, i)),
                             f"model_inputs.{model_id}.drop: {name!r} is not sent by this "
                             "manifest (not in inputs, the prompt, the matrix, include or "
                             f"rows){did_you_mean(name, sendable)}")
        out[model_id] = ModelInputs(inputs, frozenset(drop), base)
    return out


def _sendable(data: dict[str, Any]) -> set[str]:
    """Names a manifest may send to a model: shared inputs, the prompt, matrix axes and the
    keys of include entries (rows' keys are added by the caller, which has read them)."""
    names = set(data.get("inputs") or {})
    if data.get("prompt") is not None:
        names.add("prompt")
    matrix = data.get("matrix") or {}
    names.update(k for k in matrix if k not in ("exclude", "include", "rows", AXIS))
    for entry in matrix.get("include") or ():
        names.update(k for k in entry if k != AXIS)
    return names
