"""From a manifest file to a checked plan: expand, look at the images, validate, estimate.

This is the library API under `pipeline validate` and `pipeline plan`:

    plan = build_plan("jobs/demo.yaml")        # raises ManifestError listing every problem
    for cell in plan.cells: cell.id, cell.values, cell.request
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import cost
from .errors import Location, ManifestError, Problem, ProblemList
from .expand import Cell, describe, drafts, finalize
from .images import ImageInspector, ImageProblem, kind_of
from .manifest import Manifest, printable, read_manifest
from .validate import RequestValidator


@dataclass
class Plan:
    """A manifest expanded into valid cells, with warnings and a cost/duration estimate."""

    manifest: Manifest
    cells: list[Cell]
    warnings: list[Problem]
    estimate: cost.Estimate
    price: dict | None
    inspector: ImageInspector = field(repr=False)

    @property
    def job(self) -> str:
        return self.manifest.name


def price_of(m: Manifest) -> tuple[dict | None, str]:
    """The price sheet to estimate with, and where it came from."""
    if m.run.price:
        return m.run.price, "manifest run.price"
    sheet = m.model.price
    if sheet.get("unit") in ("second", "output"):
        return sheet, f"bundled price sheet for {m.model.id}"
    return None, "no published price; the run asks the API's catalog"


def check(m: Manifest, *, fetch_remote: bool = True, problems: ProblemList | None = None,
          allow_outside: bool = False, fetch_timeout: float | None = None
          ) -> tuple[list[Cell], ProblemList, ImageInspector]:
    """Expand and validate; every problem is collected, none raised."""
    problems = problems if problems is not None else ProblemList()
    items = list(drafts(m, problems))
    inspector = ImageInspector(m.folder, fetch_remote=fetch_remote, allow_outside=allow_outside,
                               **({"timeout": fetch_timeout} if fetch_timeout else {}))
    image_fields = m.model.image_fields()
    images: set[str] = set()
    for d in items:
        for key in image_fields:
            value = d.request.get(key)
            for v in (value if isinstance(value, list) else [value]):
                if isinstance(v, str):
                    images.add(v)
    inspector.prefetch(images)

    def digest_of(value: str) -> str:
        if kind_of(value) == "url":
            return value
        try:
            info = inspector.get(value)
        except ImageProblem:
            return value
        return f"sha256:{info.sha256}" if info else value

    cells = finalize(m, items, digest_of)
    validator = RequestValidator(m.model, inspector)
    seen: dict[str, Cell] = {}
    for cell, draft in zip(cells, items):
        example = f"cell {cell.id}" + (f" {describe(cell.values)}" if cell.values else "")
        for path, message in validator.errors(cell.request):
            if path and path[0] in draft.failed:
                continue
            problems.add(locate(m, cell, path), message, cell=True, example=example)
        twin = seen.setdefault(cell.id, cell)
        if twin is not cell and not draft.failed:
            problems.add(Location(str(m.path), 1, 1),
                         f"cells {describe(twin.values)} and {describe(cell.values)} send the same "
                         "request (a variable no template uses?); use `repeat: N` for replicates",
                         cell=True, example=example)
        if cell.request.get("seed") == -1:
            problems.add(locate(m, cell, ("seed",)),
                         "seed -1 lets the service pick the seed: these cells are not "
                         "reproducible (give seeds, or seed: {random: N})", cell=True,
                         example=example, severity="warning")
        if m.run.local_images == "refuse":
            for key in image_fields:
                value = cell.request.get(key)
                for i, v in enumerate(value if isinstance(value, list) else [value]):
                    if isinstance(v, str) and kind_of(v) == "file":
                        problems.add(locate(m, cell, (key, i)),
                                     f"{key}[{i}] {v!r} is a local file but run.local_images is "
                                     "'refuse'; give a public https URL", cell=True,
                                     example=example)
    for url in sorted(validator.unchecked):
        problems.add(Location(str(m.path)), f"remote image {url} not fetched (offline): its size "
                                            "and resolution were not checked",
                     severity="warning")
    return cells, problems, inspector


def locate(m: Manifest, cell: Cell, path: tuple) -> Location:
    """The manifest location a problem at `path` inside a cell's request came from."""
    if not path:
        return Location(str(m.path), 1, 1)
    where: Any = cell.origin.get(path[0])
    if where is None:
        return Location(str(m.path), 1, 1)
    if where == ("model",):
        return m.source.loc(("model",))
    if isinstance(where, Location):
        return where
    deeper = tuple(where) + tuple(path[1:])
    return m.source.loc(deeper if deeper in m.source.marks else tuple(where))


def build_plan(path: str | Path, *, fetch_remote: bool = True, allow_outside: bool = False,
               fetch_timeout: float | None = None) -> Plan:
    """Load, expand and validate a manifest; raises ManifestError listing every problem.

    `allow_outside` lets the manifest name files outside its own folder (absolute paths, `..`,
    symlinks out); `fetch_timeout` is the total time allowed to fetch each remote image.
    """
    problems = ProblemList()
    try:
        m = read_manifest(path, problems, allow_outside=allow_outside)
        cells, problems, inspector = check(m, fetch_remote=fetch_remote, problems=problems,
                                           allow_outside=allow_outside,
                                           fetch_timeout=fetch_timeout)
        problems.raise_if_any()
    except ManifestError as exc:
        raise ManifestError(one_line(exc.problems)) from None
    price, source = price_of(m)
    meta = m.model.meta.get("generation_seconds", {})
    fps = m.model.meta.get("fps", cost.DEFAULT_FPS)
    est = cost.estimate((c.request for c in cells), price, concurrency=m.run.concurrency,
                        per_cell_s=meta.get("typical"), fps=fps, source=source)
    return Plan(m, cells, one_line(problems.warnings()), est, price, inspector)


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
        if self.problems:
            return [str(p) for p in self.problems]
        return self.summaries


def validate_files(paths: Iterable[str | Path], *, fetch_remote: bool = True,
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
        report.summaries.append(f"{path}: ok, {len(cells)} cell{'s' if len(cells) != 1 else ''}")
    return report


def actions(plan: Plan, state: Any) -> tuple[list[tuple[str, str]], list[str]]:
    """Per cell (state, what a run would do), and the ids of orphaned cells in the state."""
    from .jobstatus import action
    from .state import PENDING

    max_attempts = plan.manifest.run.max_attempts
    out = []
    for c in plan.cells:
        rec = state.cells.get(c.id)
        st = rec.state(max_attempts) if rec else PENDING
        out.append((st, action(st, rec, max_attempts)))
    known = {c.id for c in plan.cells}
    return out, [cid for cid in state.cells if cid not in known]


def plan_json(plan: Plan, state: Any = None) -> dict:
    m = plan.manifest
    est = plan.estimate
    fps = m.model.meta.get("fps", cost.DEFAULT_FPS)
    data = _plan_json(plan, m, est, fps)
    if state is not None and state.cells:
        per_cell, orphaned = actions(plan, state)
        for item, (st, act) in zip(data["cells"], per_cell):
            item["state"], item["action"] = st, act
        data["orphaned"] = [{"id": cid, "label": state.cells[cid].label,
                             "action": "orphaned: no longer in the manifest (kept on disk)"}
                            for cid in orphaned]
    return data


def _plan_json(plan: Plan, m: Manifest, est: cost.Estimate, fps: int) -> dict:
    return {
        "job": m.name,
        "model": m.model.id,
        "backend": m.backend,
        "manifest": str(m.path),
        "manifest_sha256": m.sha256,
        "schema_sha256": m.model.schema_sha256,
        "count": len(plan.cells),
        "estimate": {
            "usd": est.usd,
            "unpriced_cells": est.unpriced,
            "price_source": est.source,
            "seconds_of_video": round(est.seconds_of_video, 2),
            "duration_s": est.duration_s,
            "per_cell_s": est.per_cell_s,
            "concurrency": m.run.concurrency,
        },
        "warnings": [str(w) for w in plan.warnings],
        "cells": [
            {"id": c.id, "label": c.label, "values": c.values, "request": c.request,
             "estimated_cost": cost.cell_cost(plan.price, c.request, fps)}
            for c in plan.cells
        ],
    }


def plan_table(plan: Plan, width: int | None = None, limit: int = 200, state: Any = None) -> str:
    """A readable table of the cells with the count, cost and duration underneath."""
    width = width or shutil.get_terminal_size((120, 24)).columns
    m = plan.manifest
    keys: list[str] = []
    for c in plan.cells:
        for k in c.values:
            if k not in keys:
                keys.append(k)
    with_state = state is not None and bool(state.cells)
    per_cell, orphaned = actions(plan, state) if with_state else ([], [])
    header = ["#", "cell"] + keys + (["action"] if with_state else [])
    rows = []
    for i, c in enumerate(plan.cells[:limit]):
        rows.append([str(c.index + 1), c.id] + [_cell_text(c.values.get(k, "")) for k in keys]
                    + ([per_cell[i][1].split(" (")[0]] if with_state else []))
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    used = sum(widths) + 2 * len(widths)
    prompt_w = max(12, width - used - 1)
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)) + "  prompt"]
    for c, r in zip(plan.cells, rows):
        prompt = " ".join(str(c.request.get("prompt", "")).split())
        if len(prompt) > prompt_w:
            prompt = prompt[: prompt_w - 1] + "…"
        lines.append("  ".join(v.ljust(w) for v, w in zip(r, widths)) + "  " + prompt)
    if len(plan.cells) > limit:
        lines.append(f"... and {len(plan.cells) - limit} more cells (use --json for all)")
    est = plan.estimate
    cost_text = cost.money(est.usd)
    if est.usd is None and est.unpriced:
        cost_text += f" ({est.source})"
    lines += [
        "",
        f"job {m.name}: {len(plan.cells)} cells of {m.model.id} on backend {m.backend}",
        f"estimated cost: {cost_text}",
        f"estimated duration: {cost.span(est.duration_s)} at concurrency {m.run.concurrency}"
        + (f" (about {est.per_cell_s:g} s per cell, a guess until a run measures it)"
           if est.per_cell_s else ""),
    ]
    if m.run.budget is not None:
        lines.append(f"budget: {cost.money(m.run.budget)}")
    if with_state:
        tally: dict[str, int] = {}
        for _, act in per_cell:
            tally[act] = tally.get(act, 0) + 1
        lines.append("a run would: " + "; ".join(f"{n} {act}" for act, n in tally.items()))
        if orphaned:
            lines.append(f"{len(orphaned)} orphaned cell(s) in the state are no longer in the "
                         "manifest (kept on disk): " + ", ".join(orphaned[:10]))
    return "\n".join(lines)


def _cell_text(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 24 else text[:23] + "…"
