"""One pass over a job folder that the report's three files are written from, in bounded memory.

`scan(folder)` streams plan.json's cells (pipeline.report.stream.PlanStream) and replays each
one's events from the journal index, in plan order, then the orphaned cells (in the journal,
no longer in the plan). Each cell is tallied (pipeline.job.tally, as `pipeline status` does:
the same figures), summed into the report's totals, learnt by the grid's facets and spooled,
as its report.json entry, to an anonymous temporary file; `cells()` reads them back. So a
report of 100,000 cells holds the index, the tally and the sums, not the cells.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from .. import jsonio, text
from ..errors import StateError
from ..job.folder import JobFolder
from ..job.journal import JobState
from ..job.ratings import read_votes
from ..job.records import ORPHANED
from ..job.select import Only, describe_only, select_cells
from ..job.status import new_tally, settings_of
from .data import Totals, _round, cell_of, head, models_of
from .grid import Facets
from .page import PageContext
from .ratings import TOP, ratings_head, ratings_of
from .stream import JournalIndex, PlanStream


class Scanned:
    """A scanned job: `report` (report.json without its cells), `facets`, and `cells()`."""

    def __init__(self, report: dict, facets: Facets, spool: IO[bytes], count: int):
        self.report, self.facets, self._spool, self.count = report, facets, spool, count

    def cells(self) -> Iterator[dict]:
        """The report.json entry of every cell, in plan order, then the orphaned ones."""
        self._spool.seek(0)
        for line in self._spool:
            yield jsonio.loads(line)

    def close(self) -> None:
        self._spool.close()

    def __enter__(self) -> Scanned:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def scan(folder: JobFolder | Path, only: Only = (), *, running: bool | None = None) -> Scanned:
    """Read a job folder for its report (reads only; no network; nothing written there);
    `only`: of the cells it selects (pipeline.job.select), named in `selection`; `running`:
    whether a run is going (None: see whether the job's lock is held; the holder of the lock
    knows better)."""
    folder = JobFolder.at(folder)
    if not folder.journal.exists() and not folder.plan.exists():
        raise StateError(f"nothing to report in {folder}: no {folder.journal.name} or "
                         f"{folder.plan.name} there (the job has not run yet; run it first "
                         "with `pipeline run MANIFEST`)")
    if running is None:
        running = folder.is_running()
    index = JournalIndex(folder)
    with index:
        stream = PlanStream(folder.plan) if folder.plan.exists() else None
        plan = stream.header if stream else {}

        def every() -> Iterator[dict]:
            if stream is not None:
                yield from stream.cells()
                return
            for cid in index.ids:  # no plan.json (older versions): the journal's cells
                rec = index.record(cid)
                if rec is not None:  # (None only for an id no cell event named)
                    yield {"id": cid, "label": rec.label, "values": rec.values,
                           "request": rec.request}

        chosen: set[str] | None = None
        if only:  # a selection needs every cell at once (prefixes, values that exist)
            cells = [{"id": c["id"], "values": c.get("values"), "request": c.get("request")}
                     for c in every()]
            chosen = {c["id"] for c in select_cells(cells, only)}
            selection = {"only": describe_only(only), "of": len(cells)}
            del cells

        def planned() -> Iterator[dict]:
            for c in every() if chosen is None else (c for c in every() if c["id"] in chosen):
                c["id"] = index.same(c["id"])  # one string per cell, not a copy per reading
                yield c

        def priced() -> Iterator[dict]:  # what the tally needs of a cell (no label to keep)
            for c in planned():
                yield {"id": c["id"], "request": c.get("request") or {},
                       "model": c.get("model"),
                       **({"estimated_cost": c["estimated_cost"]}
                          if "estimated_cost" in c else {})}

        state = JobState(folder.path)
        state.runs = index.runs  # the header a tally reads
        settings = settings_of(plan, state.header, folder)
        default_model = plan.get("model") or state.header.get("model")
        tally = new_tally(settings, priced(), state, running)
        facets = Facets(plan.get("matrix"))
        links = PageContext(plan.get("job") or state.header.get("job"), None,
                            state.header.get("manifest") or plan.get("manifest"), folder.path)
        totals = Totals()
        votes = read_votes(folder.ratings)
        rated = ratings_of(votes)  # cell id -> its `rating` (pipeline.report.ratings)
        best: list[dict] = []  # the TOP best-rated cells, for report.md
        spool = _spool(folder.path)
        count = 0
        try:
            def add(entry: dict, state_name: str | None) -> None:
                nonlocal count
                cid = entry["id"]
                rec = index.record(cid)
                if rec is not None:
                    tally.update(cid, rec)
                if state_name is None:  # a planned cell
                    state_name = tally.state_of(cid)
                    estimate = tally.planned[cid].estimate
                    model: str | None = tally.planned[cid].model
                else:
                    if rec is None:  # (an orphan is a cell of the journal: it has a record)
                        return
                    estimate = None
                    entry = {"id": cid, "label": rec.label, "values": rec.values,
                             "request": rec.request, "from_cell": rec.from_cell}
                    model = (rec.values or {}).get("model") or default_model
                cell = cell_of(entry, rec, folder.path, state_name, estimate, model)
                if cell.get("from_cell"):
                    cell["from_cell"]["href"] = links.href(cell["from_cell"])
                rating = rated.get(cid)
                if rating is not None:
                    cell["rating"] = rating
                    if rating["rank"] <= TOP:
                        best.append({"id": cid, "label": cell["label"], "score": rating["score"],
                                     "uncertainty": rating["uncertainty"],
                                     "rank": rating["rank"], "votes": rating["votes"]})
                totals.add(cell)
                facets.add(cell["values"])
                spool.write(jsonio.line(cell))
                count += 1

            for entry in planned():
                add(entry, None)
            for cid in index.ids if chosen is None else ():  # a selection has no orphans
                if cid not in tally.planned:
                    add({"id": cid}, ORPHANED)
        except BaseException:
            spool.close()
            raise
    figures = {**tally.figures(settings.concurrency), "max_attempts": settings.max_attempts,
               "price_source": settings.price_source, "budget_usd": settings.budget,
               "estimate_unpriced_cells": tally.unpriced}
    report = head(state.header, plan, folder.path, running, figures, _runs(index))
    totals.into(report)
    report["models"] = models_of(plan, tally.per_model(), totals)
    if settings.capacity is not None:  # concurrency: auto: the capacity the runs found
        report["capacity"] = settings.capacity
    report["axes"] = facets.axes()
    if chosen is not None:
        report["selection"] = selection
    if votes:
        report["ratings"] = ratings_head(votes, rated, best)
    return Scanned(report, facets, spool, count)


def build_report(folder: JobFolder | Path, only: Only = (), *,
                 running: bool | None = None) -> dict[str, Any]:
    """The report of the job whose folder is `folder` (reads only; no network), every cell
    in memory: for scripts and small jobs (`write_reports` streams the same data instead);
    `only`: of the cells it selects (pipeline.job.select), the report then says so in
    `selection`."""
    with scan(folder, only, running=running) as scanned:
        report = scanned.report
        report["cells"] = list(scanned.cells())
    return report


def _spool(near: Path) -> IO[bytes]:
    """An anonymous temporary file (no name in any folder) on the job folder's disk when it
    can be had there (/tmp may be memory), else in the system's temporary folder."""
    try:
        return tempfile.TemporaryFile(dir=near)
    except OSError:
        return tempfile.TemporaryFile()


def _runs(index: JournalIndex) -> list[dict[str, Any]]:
    """Each run's start and end; a run killed before its end event ends at its last event."""
    out = []
    starts = [r.get("t", 0.0) for r in index.runs]
    for i, run in enumerate(index.runs):
        start = starts[i]
        stop = starts[i + 1] if i + 1 < len(starts) else float("inf")
        end = next((e for e in index.ends if start <= e.get("t", 0.0) < stop), None)
        if end is not None:
            ended = end.get("t")
        else:
            last = index.last_t[i]
            ended = last if last and last > start else None
        out.append({
            "started_at": text.iso(start),
            "ended_at": text.iso(ended),
            "wall_s": _round(ended - start) if ended else None,
            "exit": end.get("exit") if end else None,
            "stopped": end.get("stopped") if end else None,
            "finished": end is not None,
            "backend": run.get("backend"),
            "concurrency": run.get("concurrency"),
            "cells": run.get("cells"),
        })
    return out
