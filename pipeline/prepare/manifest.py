"""Prepare, read: a YAML job manifest into a checked, plain `Manifest`.

The manifest's shape is `schemas/manifest.schema.json` (the single source of truth, also used by
editors); this module adds what a schema cannot say: that `inputs` name real model inputs, that
referenced files exist inside the manifest's folder, and how axes and rows read.
"""

from __future__ import annotations

import copy
import hashlib
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import Location, ProblemList
from ..models.catalogue import Model
from ..project import project_root
from .files import read_rows, resolve_inside
from .modelset import AXIS as MODEL_AXIS
from .modelset import ModelSet, read_models
from .picks import is_pick, split_rows
from .wording import describe_errors, did_you_mean, kind_of_value, manifest_validator
from .yamlsrc import Path_, Source, load_yaml

MAX_AXIS_VALUES = 1_000_000
MAX_CELLS = 1_000_000  # cells one manifest may expand to, counted before `exclude`
MAX_PROMPT_FILE = 1024 * 1024  # bytes of a prompt file
MAX_ROWS_FILE = 256 * 1024 * 1024  # bytes of a rows file
RESERVED = frozenset({"exclude", "include", "rows"})


@dataclass(frozen=True)
class RandomSeed:
    """Placeholder for the k-th seed drawn from a cell's own content (`seed: {random: N}`)."""

    k: int

    def __repr__(self) -> str:
        return f"random#{self.k}"


@dataclass(frozen=True)
class Axis:
    """One matrix axis: its values, where each came from, and whether it is a model input."""

    name: str
    values: tuple[Any, ...]  # values as the manifest gives them
    paths: tuple[Path_ | Location, ...]  # per value: a manifest path, or a Location (rows files)
    is_input: bool
    is_rows: bool = False
    # rows only, per row: the cell it was picked from (pipeline.prepare.picks)
    origins: tuple[dict[str, Any] | None, ...] = ()


@dataclass(frozen=True)
class Polling:
    initial: float = 5.0
    max: float = 30.0
    timeout: float = 3600.0


@dataclass(frozen=True)
class RunSettings:
    """The `run` block, with defaults; later stages read it."""

    concurrency: int = 4  # with `auto`, what the ETA assumes until a run has found the capacity
    auto: bool = False  # `concurrency: auto`: learnt from the server (pipeline.run.auto)
    queue_ahead: int = 2  # with `auto`: requests kept waiting beyond the capacity
    max_attempts: int = 3
    fail_fast: bool = False
    max_failures: int | None = None
    budget: float | None = None
    allow_unknown_price: bool = False
    output: str | None = None
    local_images: str = "data_uri"
    price: dict[str, Any] | None = None
    polling: Polling = field(default_factory=Polling)
    canary: int | None = None  # cells proven before the rest; None: 1 on runcomfy, 0 on sim
    stop_after_refusals: int = 3  # the same refusal this many submits in a row stops; 0: never


@dataclass(frozen=True)
class Manifest:
    """A parsed, checked manifest; everything later stages need, and where it came from."""

    path: Path
    source: Source
    name: str
    model: Model  # the first model of the sweep (the only one, for most manifests)
    backend: str
    prompt: str | None
    prompt_where: Location | None
    inputs: dict[str, Any]
    vars: dict[str, Any]
    axes: tuple[Axis, ...]
    exclude: tuple[dict[str, Any], ...]
    include: tuple[dict[str, Any], ...]
    repeat: int
    run: RunSettings
    sha256: str
    models: ModelSet | None = None  # every model of the sweep and its model_inputs
    root: Path | None = None  # the project root (pipeline.project.project_root)

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def sweep(self) -> ModelSet:
        """The models of the sweep (a manifest built by hand may give only `model`)."""
        return self.models or ModelSet({self.model.id: self.model}, self.model.id)

    def loc(self, path: Path_ | Location, *, key: bool = False) -> Location:
        return path if isinstance(path, Location) else self.source.loc(path, key=key)

    def is_input(self, key: str, model_id: str | None = None) -> bool:
        """Whether `key` is a model input (goes into the request) rather than a template
        variable: an input of `model_id` (a cell's own model), else of any model of the
        sweep. The one place that decides it (pipeline.prepare.modelset.ModelSet.is_input)."""
        return self.sweep.is_input(key, model_id)


def load_manifest(path: str | os.PathLike[str], *, allow_outside: bool = False) -> Manifest:
    """Read, schema-check and interpret one manifest; all its problems raise together."""
    problems = ProblemList()
    manifest = read_manifest(path, problems, allow_outside=allow_outside)
    problems.raise_if_any()
    return manifest


def read_manifest(path: str | os.PathLike[str], problems: ProblemList, *,
                  allow_outside: bool = False) -> Manifest:
    """Like load_manifest, but problems that do not stop interpretation are only collected.

    An unknown key is reported and then ignored, so that one pass also reports the problems
    of the cells; anything else the schema refuses stops here (raised with all found so far).
    Files named by the manifest must lie inside its folder unless `allow_outside`.
    """
    path = Path(path)
    source = load_yaml(path, display=str(path))
    data = source.data
    if not isinstance(data, dict):
        problems.add(source.loc(()), f"a manifest is a mapping of keys (name, model, ...), "
                                     f"not {kind_of_value(data)}")
        problems.raise_if_any()
    for where in _non_finite(data, ()):
        problems.add(source.loc(where), f"{'.'.join(map(str, where))}: not a finite number; "
                                        "write a plain number")
    problems.raise_if_any()
    data = copy.deepcopy(data)
    fatal = False
    errors = sorted(manifest_validator().iter_errors(data), key=lambda e: list(map(str, e.path)))
    for error in errors:
        for epath, message, at_key in describe_errors(error):
            problems.add(source.loc(epath, key=at_key), message)
            if error.validator == "additionalProperties" and at_key:
                parent = data
                for part in epath[:-1]:
                    parent = parent[part]
                parent.pop(epath[-1], None)
            else:
                fatal = True
    if fatal or (errors and any(manifest_validator().iter_errors(data))):
        problems.raise_if_any()
    return _interpret(path, source, data, problems, allow_outside)


def _non_finite(value: Any, path: Path_) -> Iterator[Path_]:
    """Paths of NaN and infinite numbers (`.nan`, `.inf`): no field means them."""
    if isinstance(value, float) and not math.isfinite(value):
        yield path
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _non_finite(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _non_finite(v, path + (i,))


def _interpret(path: Path, source: Source, data: dict[str, Any], problems: ProblemList,
               allow_outside: bool = False) -> Manifest:
    folder = path.parent
    root = project_root(path)
    digest = hashlib.sha256(source.raw if source.raw is not None else path.read_bytes())
    matrix = dict(data.get("matrix") or {})
    rows_axis = None
    if "rows" in matrix:  # read first: rows may name models
        rows_axis = _rows_axis(matrix["rows"], folder, source, problems, digest, allow_outside,
                               root)
        if rows_axis is None:  # reported; expanding without its columns would only add noise
            problems.raise_if_any()
    sweep = read_models(data, source, root, problems,
                        zip(rows_axis.values, rows_axis.paths, strict=True) if rows_axis else ())
    if sweep is None:
        problems.raise_if_any()
    assert sweep is not None
    model = sweep.first

    inputs = dict(data.get("inputs") or {})
    for key in list(inputs):
        if not sweep.is_input(key):
            del inputs[key]
            names = sweep.input_names()
            whose = f"for {model.id}" if not sweep.many else "for any model of this sweep"
            problems.add(source.loc(("inputs", key), key=True),
                         f"unknown input {key!r} {whose}" + did_you_mean(key, names)
                         + f"; inputs are: {', '.join(names)}")

    prompt, prompt_where = None, None
    raw_prompt = data.get("prompt")
    if raw_prompt is not None:
        if "prompt" in inputs:
            problems.add(source.loc(("inputs", "prompt"), key=True),
                         "prompt is set both at the top level and in inputs; keep one")
        if isinstance(raw_prompt, dict):
            file = resolve_inside(folder, raw_prompt["file"], source.loc(("prompt", "file")),
                                  problems, allow_outside=allow_outside, root=root)
            if file is not None:
                try:
                    if file.stat().st_size > MAX_PROMPT_FILE:
                        raise OSError(f"larger than {MAX_PROMPT_FILE // 1024} KB; a prompt is "
                                      "a few lines")
                    prompt = file.read_text(encoding="utf-8")
                    digest.update(prompt.encode())
                    prompt_where = Location(str(file), 1, 1)
                except (OSError, UnicodeDecodeError) as exc:
                    problems.add(source.loc(("prompt", "file")), f"cannot read prompt file "
                                 f"{raw_prompt['file']!r}: {getattr(exc, 'strerror', None) or exc}")
            if prompt is None:  # reported above; an empty prompt spares a "missing" per cell
                prompt, prompt_where = "", source.loc(("prompt", "file"))
        else:
            prompt, prompt_where = raw_prompt, source.loc(("prompt",))

    axes: list[Axis] = []
    top = data.get("model")
    if isinstance(top, list):  # `model: [a, b]`: the outermost axis
        axes.append(Axis(MODEL_AXIS, tuple(top), tuple(("model", i) for i in range(len(top))),
                         False))
    for name, spec in matrix.items():
        if name in ("exclude", "include"):
            continue
        if name == "rows":
            axis = rows_axis
        elif name == MODEL_AXIS:
            axis = None
            if isinstance(spec, list):  # anything else is reported by read_models
                axis = Axis(name, tuple(spec),
                            tuple(("matrix", name, i) for i in range(len(spec))), False)
        else:
            if name in inputs:
                problems.add(source.loc(("matrix", name), key=True),
                             f"{name!r} is both fixed in inputs and swept in matrix; keep one")
            if name == "prompt" and raw_prompt is not None:
                problems.add(source.loc(("matrix", name), key=True),
                             "prompt is both set at the top level and swept in matrix; keep one")
            axis = _axis(name, spec, sweep.is_input(name), source, problems)
        if axis is not None:
            axes.append(axis)

    repeat = int(data.get("repeat", 1))
    _check_size(axes, len(matrix.get("include") or ()), repeat, source, problems)
    run = _run_settings(data.get("run") or {}, source, problems)
    if run.price is not None and "unit" not in run.price:  # a price per model
        for key in run.price:
            if key not in sweep.models:
                problems.add(source.loc(("run", "price", key), key=True),
                             f"run.price: {key!r} is not a model of this sweep"
                             + did_you_mean(key, sweep.models)
                             + f"; the models are: {', '.join(sweep.models)}")
    return Manifest(
        path=path, source=source, name=data["name"], model=model,
        backend=data.get("backend", "runcomfy"), prompt=prompt, prompt_where=prompt_where,
        inputs=inputs, vars=dict(data.get("vars") or {}), axes=tuple(axes),
        exclude=tuple(matrix.get("exclude") or ()), include=tuple(matrix.get("include") or ()),
        repeat=repeat, run=run, sha256=digest.hexdigest(), models=sweep, root=root,
    )


def _check_size(axes: list[Axis], includes: int, repeat: int, source: Source,
                problems: ProblemList) -> None:
    """Refuse, before anything is expanded, a matrix with more than MAX_CELLS cells."""
    product = 1
    for axis in axes:
        product *= len(axis.values)
    total = product * repeat + includes * repeat
    if total <= MAX_CELLS:
        return
    factors = " x ".join(f"{len(a.values):,} {a.name}" for a in axes)
    if repeat > 1:
        factors += f" x {repeat} repeats"
    where = ("matrix",) if axes else ("repeat",)
    problems.add(source.loc(where, key=True),
                 f"the matrix makes {total:,} cells ({factors}), more than the limit of "
                 f"{MAX_CELLS:,}; shrink an axis or split the job into several manifests")
    problems.raise_if_any()


def _axis(name: str, spec: Any, is_input: bool, source: Source,
          problems: ProblemList) -> Axis | None:
    base = ("matrix", name)
    if isinstance(spec, list):
        for i, value in enumerate(spec):
            if isinstance(value, (dict, list)) and not is_input:
                problems.add(source.loc(base + (i,)),
                             f"matrix.{name}[{i}]: a template variable takes scalar values")
        return Axis(name, tuple(spec), tuple(base + (i,) for i in range(len(spec))), is_input)
    if "random" in spec:
        if name != "seed":
            problems.add(source.loc(base), f"matrix.{name}: {{random: N}} is only for seed")
            return None
        n = spec["random"]
        return Axis(name, tuple(RandomSeed(k) for k in range(n)), (base,) * n, is_input)
    start, stop, step = spec["from"], spec["to"], spec.get("step", 1)
    count = (stop - start) // step + 1 if stop >= start else 0
    if count <= 0:
        problems.add(source.loc(base), f"matrix.{name}: empty range from {start} to {stop}")
        return None
    if count > MAX_AXIS_VALUES:
        problems.add(source.loc(base), f"matrix.{name}: range of {count} values is larger than "
                                       f"{MAX_AXIS_VALUES}")
        return None
    return Axis(name, tuple(range(start, stop + 1, step)), (base,) * count, is_input)


def _rows_axis(spec: Any, folder: Path, source: Source, problems: ProblemList,
               digest: Any, allow_outside: bool = False, root: Path | None = None
               ) -> Axis | None:
    if isinstance(spec, list):
        paths = [("matrix", "rows", i) for i in range(len(spec))]
        if any(is_pick(row) for row in spec):  # picks pasted from a report's "Copy as YAML"
            rows, locs, origins = split_rows(spec, [source.loc(p) for p in paths], problems)
            return Axis("rows", tuple(rows), tuple(locs), False, is_rows=True,
                        origins=tuple(origins))
        return Axis("rows", tuple(spec), tuple(paths), False, is_rows=True)
    name = spec["file"] if isinstance(spec, dict) else spec
    where = source.loc(("matrix", "rows", "file") if isinstance(spec, dict) else ("matrix", "rows"))
    file = resolve_inside(folder, name, where, problems, allow_outside=allow_outside, root=root)
    if file is None:
        return None
    try:
        if file.stat().st_size > MAX_ROWS_FILE:
            raise OSError(f"larger than {MAX_ROWS_FILE // 2**20} MB; split the job")
        raw = file.read_bytes()
        text = raw.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        problems.add(where, f"cannot read rows file {name!r}: {reason}")
        return None
    digest.update(raw)
    display = str(Path(source.file).parent / name)
    before = len(problems.errors())
    parsed = read_rows(text, file.suffix, display, problems)
    if parsed is None:
        return None
    rows, locs = parsed
    rows, locs, origins = split_rows(rows, locs, problems)  # a picks.jsonl: values are rows
    if not rows and len(problems.errors()) == before:
        problems.add(where, f"rows file {name!r} has no rows")
        return None
    return Axis("rows", tuple(rows), tuple(locs), False, is_rows=True,
                origins=tuple(origins) if any(origins) else ())


def _run_settings(run: dict[str, Any], source: Source, problems: ProblemList) -> RunSettings:
    polling = Polling(**run.get("polling", {}))
    if polling.max < polling.initial:
        problems.add(source.loc(("run", "polling", "max")),
                     "run.polling.max must be at least run.polling.initial")
    output = run.get("output")
    if output is not None and (Path(output).is_absolute() or ".." in Path(output).parts):
        problems.add(source.loc(("run", "output")),
                     f"run.output {output!r} must be a relative path without '..'; "
                     "use `pipeline run --out DIR` to write elsewhere")
    kwargs = {k: v for k, v in run.items() if k != "polling"}
    if kwargs.get("concurrency") == "auto":
        del kwargs["concurrency"]
        kwargs["auto"] = True
    return RunSettings(**kwargs, polling=polling)
