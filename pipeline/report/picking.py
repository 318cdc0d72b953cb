"""`pipeline picks`: the picks of a job, chosen in a terminal instead of the report's page.

    job = open_job("jobs/preview.yaml")
    rows = pick_cells(job, parse_only(["cell=3fa9c1"]))   # picks.jsonl lines, with states
    path = write_picks([row for row, _ in rows], default_path(job.manifest.path))
    lines = list_picks(job)                               # what is picked

The lines are the ones the page's "Download picks" saves (both are built by
pipeline.prepare.picks.pick from the job's plan), so a final manifest reads either the same
way. The cells come from the job's plan.json (what its runs planned; nothing is planned again)
and are chosen with `--only` (pipeline.job.select: `cell=ID` by a unique prefix, or any
KEY=VALUE), or the best rated with `--top K` (the votes of `pipeline review`'s blind ranking,
pipeline.report.ratings). The file is `picks.jsonl` beside the manifest unless another is named.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

from ..durable import write_atomic
from ..errors import StateError, UsageError
from ..job.folder import JobFolder
from ..job.opening import Job
from ..job.select import Only, select_cells
from ..prepare.picks import pick
from ..project import project_root
from .page import folder_name
from .scan import scan

FILE = "picks.jsonl"


def default_path(manifest: str | os.PathLike) -> Path:
    """Where a job's picks are kept: picks.jsonl beside its manifest (where a final manifest
    in the same folder reads it, inside the folder its files may come from)."""
    return Path(manifest).parent / FILE


def pick_cells(opened: Job, only: Only) -> list[tuple[dict, str]]:
    """The picks.jsonl lines of the cells `only` selects, in plan order, each with the cell's
    state in the job (a pick of a clip nobody has seen is allowed, and said)."""
    cells, lines = _cells(opened)
    return [lines(c) for c in select_cells(cells, only)]


def top_cells(opened: Job, k: int) -> list[tuple[dict, str]]:
    """The picks.jsonl lines of the `k` best-rated cells (ratings.jsonl: the blind ranking of
    `pipeline review`), best first, each with its state."""
    if k < 1:
        raise UsageError(f"pipeline picks --top {k}: give a number of cells, 1 or more")
    cells, lines = _cells(opened)
    rated = sorted((c for c in cells if c.rating), key=lambda c: c.rating["rank"])
    if not rated:
        raise StateError(f"no votes in {opened.folder.ratings}: rank the clips first (pipeline "
                         f"review {opened.manifest.path}, then open /rank), or pick with --only")
    return [lines(c) for c in rated[:k]]


def _cells(opened: Job) -> tuple[list[SimpleNamespace], Callable[[SimpleNamespace],
                                                                  tuple[dict, str]]]:
    """The job's cells (from its plan and journal, as the report reads them) and the function
    that makes a cell's picks.jsonl line."""
    m, job = opened.manifest, opened.folder
    if not job.plan.exists():
        raise StateError(f"no plan.json in {job}: the job has not run yet; run it (pipeline run "
                         f"{m.path}), look at its report, then pick")
    with scan(job) as scanned:
        cells = [SimpleNamespace(id=c["id"], label=c["label"], values=c["values"],
                                 request={"prompt": c["prompt"], "seed": c["seed"]},
                                 state=c["state"], model=c.get("model"),
                                 rating=c.get("rating"))
                 for c in scanned.cells()]
        report = scanned.report
    out = folder_name(job.path, project_root(m.path))

    def line(c: SimpleNamespace) -> tuple[dict, str]:
        return (pick(cell=c.id, job=report.get("job") or m.name, out=out, label=c.label,
                     values=c.values, request=c.request,
                     model=c.model or report.get("model") or m.model.id), c.state)

    return cells, line


def rated_cells(folder: JobFolder) -> list[dict]:
    """Every rated cell of a job, best first: id, label, state and its `rating`."""
    with scan(folder) as scanned:
        rated = [{"id": c["id"], "label": c["label"], "state": c["state"],
                  "rating": c["rating"]} for c in scanned.cells() if c.get("rating")]
    return sorted(rated, key=lambda c: c["rating"]["rank"])


def write_picks(rows: list[dict], path: Path) -> Path:
    """Write picks.jsonl (replacing it whole, atomically)."""
    return write_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def read_picks(path: Path) -> list[dict]:
    """The lines of a picks file; a line that is not a pick is a StateError naming it."""
    out = []
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise StateError(f"cannot read {path}: {exc.strerror or exc}") from None
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise StateError(f"{path}:{n}: not a JSON line ({exc})") from None
        if not isinstance(row, dict) or "cell" not in row or \
                not isinstance(row.get("values"), dict):
            raise StateError(f"{path}:{n}: not a pick (a pick has `cell` and `values`, as the "
                             "report's Download picks and `pipeline picks` write it)")
        out.append(row)
    return out


def list_picks(opened: Job, path: Path | None = None) -> list[str]:
    """Lines describing the picks kept for a job: each cell, its label, and its state in the
    job (or the job it was picked from, when another)."""
    m, job = opened.manifest, opened.folder
    path = path or default_path(m.path)
    if not path.exists():
        hint = (f"no picks yet: {path} does not exist. Star clips in {job / 'report.html'} and "
                f"save them there with Download picks, or pick here: pipeline picks {m.path} "
                "--only cell=ID")
        return [hint]
    rows = read_picks(path)
    states: dict[str, str] = {}
    if job.plan.exists():
        with scan(job) as scanned:
            states = {c["id"]: c["state"] for c in scanned.cells()}
    lines = [f"{path}: {len(rows)} pick{'s' if len(rows) != 1 else ''}"]
    for row in rows:
        cell = str(row["cell"])
        where = states.get(cell) if row.get("job") in (None, m.name) else None
        note = where or (f"from job {row.get('job')}" if row.get("job") != m.name
                         else "not a cell of this job's plan")
        lines.append(f"  {cell}  {row.get('label') or ''}  ({note})")
    return lines
