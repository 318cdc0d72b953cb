"""From a manifest file to a checked plan: expand, look at the images, validate.

This is the library API under `pipeline validate` and `pipeline plan`:

    plan = build_plan("jobs/demo.yaml")        # raises ManifestError listing every problem
    for cell in plan.cells: cell.id, cell.values, cell.request
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..bulk import paused
from ..errors import Location, ManifestError, Problem, ProblemList
from .expand import Cell, drafts
from .identity import finalize
from .images import FETCH_TIMEOUT, ImageInspector, ImageProblem, kind_of
from .manifest import Manifest, read_manifest
from .matrix import check_matrix
from .render import forget_renderings
from .shapes import Shape, let_go
from .validate import RequestValidator
from .values import describe, difference
from .wording import printable
from .yamlsrc import Path_


@dataclass
class Plan:
    """A manifest expanded into valid cells, with the warnings found on the way.

    What a run of it would cost and take, given the job's state, is pipeline.job.forecast."""

    manifest: Manifest
    cells: list[Cell]
    warnings: list[Problem]
    inspector: ImageInspector = field(repr=False)
    inputs: dict[str, Any] = field(default_factory=dict)  # see inputs_of

    @property
    def job(self) -> str:
        return self.manifest.name



def inputs_of(m: Manifest, inspector: ImageInspector) -> dict[str, Any]:
    """What a plan was made from, for `inputs_unchanged` to tell later without expanding
    anything: the local files it read beside the manifest, and their key (taken as they were
    read, so a file changed during the run that follows does not pass for the one planned)."""
    files = [str(p) for p in inspector.local_files()]
    return {"files": files, "key": input_key(m, files)}


def input_key(m: Manifest, files: Iterable[str]) -> str:
    """A key that changes when anything a plan is made from may have changed: the manifest
    with its prompt and rows files (its sha256), the model's schema, this version's planning
    code, and the size and modification time of each local file (as make and git judge)."""
    import hashlib
    import json

    from .. import __version__

    here = Path(__file__).parent
    parts: list[Any] = [m.sha256, *(x.schema_sha256 for x in m.sweep.models.values()),
                        __version__]
    for path in sorted([*here.glob("*.py"), *map(Path, files)]):
        try:
            st = path.stat()
            parts.append((str(path), st.st_size, st.st_mtime_ns))
        except OSError:
            parts.append((str(path), None))
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def inputs_unchanged(m: Manifest, inputs: dict[str, Any] | None) -> bool:
    """True when a plan of `m` would be the one whose `Plan.inputs` these are."""
    return inputs is not None and bool(inputs) and \
        inputs.get("key") == input_key(m, inputs.get("files", []))


def check(m: Manifest, *, fetch_remote: bool = True, problems: ProblemList | None = None,
          allow_outside: bool = False, fetch_timeout: float | None = None
          ) -> tuple[list[Cell], ProblemList, ImageInspector]:
    """Expand and validate; every problem is collected, none raised."""
    problems = problems if problems is not None else ProblemList()
    unused_axes = check_matrix(m, problems)
    try:
        items = list(drafts(m, problems))
    finally:
        forget_renderings()
    inspector = ImageInspector(m.folder, fetch_remote=fetch_remote, allow_outside=allow_outside,
                               root=m.root,
                               timeout=fetch_timeout if fetch_timeout else FETCH_TIMEOUT)
    fields = {k: x.image_fields() for k, x in m.sweep.models.items()}
    images: set[str] = set()
    for d in items:
        for key in fields[(d.model or m.model).id]:
            value = d.request.get(key)
            for v in (value if isinstance(value, list) else [value]):
                if isinstance(v, str):
                    images.add(v)
    inspector.prefetch(images)

    digests: dict[str, str] = {}  # each image once, not once per cell

    def digest_of(value: str) -> str:
        found = digests.get(value)
        if found is None:
            found = digests[value] = _digest(value)
        return found

    def _digest(value: str) -> str:
        if kind_of(value) == "url":
            return value
        try:
            info = inspector.get(value)
        except ImageProblem:
            return value
        return f"sha256:{info.sha256}" if info else value

    failed = [d.failed for d in items]  # keys whose template failed: all the loop needs of them
    cells = finalize(m, items, digest_of, consume=True)  # a million drafts: ~100 MB let go
    del items
    validators = {k: RequestValidator(x, inspector) for k, x in m.sweep.models.items()}
    many = m.sweep.many
    seen: dict[str, Cell] = {}
    refuse = m.run.local_images == "refuse"
    valid: list[tuple[Path_, str]] = []  # what a body known valid has to say (never added to)
    for cell, unrendered in zip(cells, failed, strict=True):
        validator = validators[cell.model]
        shape = cell.shape
        if shape is None or not shape.valid or not _within(validator, shape, cell.request):
            found = validator.errors(cell.request)
            if shape is not None and not found:
                shape.valid = True
        else:
            found = valid
        for path, message in found:
            if many:  # say whose schema refused it
                message = f"{cell.model}: {message}"
            if path and path[0] in unrendered:
                continue
            problems.add(locate(m, cell, path), message, cell=True, example=_example(cell))
        twin = seen.setdefault(cell.id, cell)
        if twin is not cell and not unrendered and not unused_axes:
            a, b = difference(twin.values, cell.values)
            problems.add(Location(str(m.path), 1, 1),
                         f"cells {a} and {b} (alike otherwise) send the same request (a value no "
                         "template uses, or two values that render alike?); use `repeat: N` "
                         "for replicates", cell=True, example=_example(cell))
        if cell.request.get("seed") == -1:
            problems.add(locate(m, cell, ("seed",)),
                         "seed -1 lets the service pick the seed: these cells are not "
                         "reproducible (give seeds, or seed: {random: N})", cell=True,
                         example=_example(cell), severity="warning")
        if refuse:
            for key in fields[cell.model]:
                value = cell.request.get(key)
                for i, v in enumerate(value if isinstance(value, list) else [value]):
                    if isinstance(v, str) and kind_of(v) == "file":
                        problems.add(locate(m, cell, (key, i)),
                                     f"{key}[{i}] {v!r} is a local file but run.local_images is "
                                     "'refuse'; give a public https URL", cell=True,
                                     example=_example(cell))
    unchecked = set().union(*(v.unchecked for v in validators.values()))
    for url in sorted(unchecked):
        problems.add(Location(str(m.path)), f"remote image {url} not fetched (offline): its size "
                                            "and resolution were not checked",
                     severity="warning")
    return cells, problems, inspector


def _within(validator: RequestValidator, shape: Shape, request: dict[str, Any]) -> bool:
    """Whether a body of a shape known valid is valid too: the shape's holes are free integers
    of the schema (pipeline.prepare.validate.free_integers), and this body holds them within
    their bounds."""
    bounds = shape.bounds
    if bounds is None:
        free = validator.free
        bounds = shape.bounds = tuple((k, *free[k]) for k in shape.holes if k in free)
    if len(bounds) != len(shape.holes):  # a hole the schema does not leave free
        return False
    for key, low, high in bounds:
        if not low <= request[key] <= high:
            return False
    return True


def _example(cell: Cell) -> str:
    """A cell as a problem names it: `cell <id> {values}` (made only for a cell with one)."""
    return f"cell {cell.id}" + (f" {describe(cell.values)}" if cell.values else "")


def locate(m: Manifest, cell: Cell, path: Path_) -> Location:
    """The manifest location a problem at `path` inside a cell's request came from."""
    if not path or not isinstance(path[0], str):  # a request's path opens with a key
        return Location(str(m.path), 1, 1)
    where: Any = cell.origin.get(path[0])
    if where is None:
        return Location(str(m.path), 1, 1)
    if where == ("model",):  # a default of the model's schema: where the model is named
        named = cell.origin.get("model")
        return m.loc(named) if named is not None else m.source.loc(("model",))
    if isinstance(where, Location):
        return where
    source = _value_source(cell, path)
    if source is not None:  # a template's output that is one matrix value: where it is given
        return source if isinstance(source, Location) else m.loc(source)
    deeper = tuple(where) + tuple(path[1:])
    return m.source.loc(deeper if deeper in m.source.marks else tuple(where))


def _value_source(cell: Cell, path: Path_) -> Any:
    """When the value at `path` of a cell's request is exactly one of the cell's matrix values
    (`image_urls: ["{{ image }}"]` with the image from a CSV row), where that value was given
    (the row's file:line, or its manifest path); else None."""
    value: Any = cell.request
    for step in path:
        try:
            value = value[step]
        except (KeyError, IndexError, TypeError):
            return None
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    for key, given in cell.values.items():
        if key != path[0] and not isinstance(given, (dict, list, bool)) and \
                str(given) == str(value):
            found = cell.origin.get(key)
            if found is not None and found != ("model",):
                return found
    return None


def build_plan(path: str | Path, *, fetch_remote: bool = True, allow_outside: bool = False,
               fetch_timeout: float | None = None) -> Plan:
    """Load, expand and validate a manifest; raises ManifestError listing every problem.

    `allow_outside` lets the manifest name files outside its own folder (absolute paths, `..`,
    symlinks out); `fetch_timeout` is the total time allowed to fetch each remote image.
    """
    problems = ProblemList()
    try:
        m = read_manifest(path, problems, allow_outside=allow_outside)
    except ManifestError as exc:
        raise ManifestError(one_line(exc.problems)) from None
    return plan_of(m, problems, fetch_remote=fetch_remote, allow_outside=allow_outside,
                   fetch_timeout=fetch_timeout)


def plan_of(m: Manifest, problems: ProblemList, *, fetch_remote: bool = True,
            allow_outside: bool = False, fetch_timeout: float | None = None) -> Plan:
    """The plan of a manifest already read (`problems`: what its reading collected, raised
    together with the plan's own in one ManifestError)."""
    try:
        with paused():  # many small objects, no cycle among them
            cells, problems, inspector = check(m, fetch_remote=fetch_remote, problems=problems,
                                               allow_outside=allow_outside,
                                               fetch_timeout=fetch_timeout)
        problems.raise_if_any()
    except ManifestError as exc:
        raise ManifestError(one_line(exc.problems)) from None
    let_go(cells)
    return Plan(m, cells, one_line(problems.warnings()), inspector, inputs_of(m, inspector))


def one_line(problems: list[Problem]) -> list[Problem]:
    """The problems with any line break or control character in a message escaped, so that
    each stays one `FILE:LINE:COL: message` line whatever the manifest's text held."""
    for p in problems:
        p.message = printable(p.message)
        p.example = printable(p.example)
        p.where = Location(printable(p.where.file), p.where.line, p.where.col)
    return problems


@dataclass
class ValidationReport:
    """What `pipeline validate` found across several manifests."""

    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    summaries: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.problems)

    def lines(self) -> list[str]:
        """The problems of the bad manifests, then `FILE: ok, N cells` per good one."""
        return [str(p) for p in self.problems] + self.summaries


def validate_files(paths: Iterable[str | os.PathLike[str]], *, fetch_remote: bool = True,
                   allow_outside: bool = False, fetch_timeout: float | None = None
                   ) -> ValidationReport:
    """Validate each manifest fully; problems of all of them are reported together."""
    report = ValidationReport()
    for path in paths:
        problems = ProblemList()
        try:
            m = read_manifest(path, problems, allow_outside=allow_outside)
        except ManifestError as exc:
            report.problems.extend(one_line(exc.problems))
            continue
        cells, problems, _ = check(m, fetch_remote=fetch_remote, problems=problems,
                                   allow_outside=allow_outside, fetch_timeout=fetch_timeout)
        report.problems.extend(one_line(problems.errors()))
        report.warnings.extend(one_line(problems.warnings()))
        if not problems.errors():
            report.summaries.append(f"{path}: ok, {len(cells)} cell"
                                    f"{'s' if len(cells) != 1 else ''}")
    return report
