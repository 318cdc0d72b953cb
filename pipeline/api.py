"""The library under the `pipeline` command: one function per command, each opening its job once.

    from pipeline import api
    result = api.run("jobs/demo.yaml", backend="sim")   # plan, run, write the reports
    print(result.exit_code, api.status("jobs/demo.yaml")["counts"])

Every function here composes the stages (prepare → job → run → report) for one command and
returns plain data (its shapes: pipeline.results, and RunSummary); the CLI (pipeline.cli) is
argparse, one call here, and printing. When the reports are written again is
pipeline.report_stamp's to say, and a status as it stands now pipeline.status_now's. Each
opens its job once (pipeline.job.opening: the manifest read once, the folder found once, its
owner checked once); `run` holds the job's lock from before it decides anything until its
reports are written, so two runs of one job started together never both go on: the second is
refused (JobLocked, exit 2). `status(m)` is what `pipeline status m --json` prints, and
`run(...).status` is the same dict as it stands after the run.

Selections (`only`) are pairs (`(("seed", "1"),)`) or `--only` strings (`["seed=1"]`).
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .bulk import paused
from .errors import ProblemList, UsageError
from .job.folder import JobFolder
from .job.opening import Job, open_job
from .job.records import DONE, SETTLED
from .job.select import Only, describe_only, parse_only
from .report_stamp import refresh_reports, reports_stale, write_job_reports
from .results import CancelResult, Picked, Planned
from .status_now import as_status

# Each command imports what it uses, in the function that uses it: `status` of a job that has
# run needs no templates (Jinja2), no request validation, no HTTP client and no report writer.
if TYPE_CHECKING:
    from .prepare.plan import Plan, ValidationReport
    from .review import ReviewServer
    from .run.context import RunOptions, RunSummary

__all__ = ["CancelResult", "Picked", "Planned", "RunOptions", "RunSummary", "cancel",
           "cancel_job", "job_status", "list_picks_of", "picks", "plan", "ratings", "report",
           "review", "run", "run_job", "run_plan", "status", "validate"]

log = logging.getLogger("pipeline")


def __getattr__(name: str) -> Any:
    """RunOptions and RunSummary (pipeline.run.context), imported when first asked for."""
    if name in ("RunOptions", "RunSummary"):
        from .run import context

        return getattr(context, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

PathLike = str | os.PathLike[str]


def _only(only: Iterable[str] | Only) -> Only:
    """A selection given as `--only` strings or as pairs."""
    items = tuple(only)
    pairs = tuple(x for x in items if isinstance(x, tuple))
    if len(pairs) == len(items):  # pairs, as parse_only makes them
        return pairs
    strings = [x for x in items if isinstance(x, str)]
    if len(strings) == len(items):
        return parse_only(strings)
    raise TypeError("only: give KEY=VALUE strings or (key, value) pairs")


# --- validate and plan ------------------------------------------------------------------------
def validate(manifests: Iterable[PathLike], *, offline: bool = False,
             allow_outside: bool = False) -> ValidationReport:
    """Check manifests and every request they expand to; every problem of all of them."""
    from .prepare.plan import validate_files

    return validate_files(manifests, fetch_remote=not offline, allow_outside=allow_outside)


def plan(manifest: PathLike, *, out: PathLike | None = None, only: Iterable[str] | Only = (),
         offline: bool = False, allow_outside: bool = False) -> Planned:
    """Expand and check a manifest, and say what a run would do, cost and take."""
    from .job.forecast import forecast
    from .job.select import select_cells
    from .prepare.plan import plan_of
    from .run.prices import price_now

    selected = _only(only)
    problems = ProblemList()
    job = open_job(manifest, out, allow_outside=allow_outside, problems=problems)
    built = plan_of(job.manifest, problems, fetch_remote=not offline,
                    allow_outside=allow_outside)
    cells = select_cells(built.cells, selected) if selected else None
    price = price_now(job.manifest, job.folder, offline=offline)
    with paused():  # a cell each, many small objects (pipeline.bulk)
        outlook = forecast(built, price, job.folder, cells=cells)
    balance = None
    if not offline and job.manifest.backend != "sim":  # the wallet: asked as the catalog is
        from .run.wallet import balance_now

        balance = balance_now(job.manifest.backend)
    planned = Planned(outlook, [*map(str, built.warnings), *price.warnings],
                      describe_only(selected), balance=balance)
    _, short = planned.balance_lines()
    if short is not None:
        planned.warnings.append(short)
    return planned


# --- run ----------------------------------------------------------------------------------
def run(manifest: PathLike, options: RunOptions | None = None, *, allow_outside: bool = False,
        warn: Callable[[str], None] | None = None, **choices: Any) -> RunSummary:
    """Run every cell of a manifest's job that is not done (a rerun resumes), then write its
    reports. `options`, or the same choices as keywords (`backend="sim"`, `out=...`,
    `only=["seed=1"]`, ...: the fields of RunOptions); `warn` is given the plan's warnings
    before anything is sent (default: logged). A settled job whose inputs are unchanged is
    answered at once, without planning."""
    from .prepare.plan import plan_of
    from .run.context import RunOptions
    from .run.session import run_locked

    if options is None:
        if "only" in choices:
            choices["only"] = _only(choices["only"])
        options = RunOptions(**choices)
    elif choices:
        raise TypeError("api.run: give either `options` or keyword choices, not both")
    problems = ProblemList()
    job = open_job(manifest, options.out, allow_outside=allow_outside, problems=problems)
    with job.locked():
        summary = None if problems.errors() else _settled(job, options)
        if summary is None:
            built = plan_of(job.manifest, problems, allow_outside=allow_outside)
            for warning in built.warnings:
                (warn or log.warning)(str(warning))
            summary = run_locked(built, options, job.folder)
        return _after_run(job, summary)


def run_plan(plan: Plan, options: RunOptions | None = None) -> RunSummary:
    """Run a plan already built (a library user's own, say), then write its job's reports
    (`options`: the default RunOptions() when not given)."""
    from .run.context import RunOptions
    from .run.session import run_locked

    options = RunOptions() if options is None else options
    job = Job(plan.manifest, JobFolder.of(plan.manifest, options.out))
    job.folder.check_owner(plan.manifest.path)
    with job.locked():
        return _after_run(job, run_locked(plan, options, job.folder))


def _settled(job: Job, options: RunOptions) -> RunSummary | None:
    """The summary of a rerun that would do nothing, or None when a run must look: nothing the
    last plan was made from has changed, the last run's status.json still describes the
    journal byte for byte, and every cell is settled (pipeline.job.records.SETTLED)."""
    from .prepare.plan import inputs_unchanged
    from .run.context import RunSummary

    if options.retry_failed or options.resubmit_unknown or options.only:
        return None
    folder = job.folder
    if not folder.journal.exists():
        return None
    summary = folder.settled_summary()
    if summary is None or not inputs_unchanged(job.manifest, summary.get("inputs")):
        return None
    counts = summary.get("counts", {})
    if any(n for k, n in counts.items() if k not in SETTLED):
        return None
    exit_code = 0 if counts.get(DONE) == summary.get("total") else 1
    return RunSummary(folder.path, summary, exit_code,
                      cell_events=summary.get("cell_events", -1))


def _after_run(job: Job, summary: RunSummary) -> RunSummary:
    """A run has ended (its lock still held): free its memory, write the reports unless they
    already show every cell event, and give the job's status as `status` will show it."""
    # The run's state is garbage now, much of it in reference cycles a full collection alone
    # frees: free it before the report, so that the report reuses that memory instead of
    # adding to it (100,000 cells: the run's peak stays where the run itself put it).
    gc.collect()
    summary.reports = refresh_reports(job.folder)
    settled = job.folder.settled_summary()
    if settled is not None:
        summary.figures = as_status(job, settled, running=False)
    return summary


# --- status -------------------------------------------------------------------------------
def status(manifest: PathLike, *, out: PathLike | None = None,
           only: Iterable[str] | Only = (), allow_outside: bool = False) -> dict[str, Any]:
    """The job's status, as `pipeline status --json` prints it; `only`: of the cells it
    selects (the status then has `selection`). Works while a run holds the lock.

    A run leaves status.json beside the journal when it ends; while nothing has been
    appended to the journal since, that summary is the answer (fast on a 100,000-cell job).
    Otherwise (a run is going, one was killed, or a selection is asked) the journal is
    replayed. A job never run is every cell of its plan pending, as `plan` shows."""
    from .job.status import view_job

    selected = _only(only)
    job = open_job(manifest, out, allow_outside=allow_outside)
    running = job.folder.is_running()
    summary = None if running or selected else job.folder.settled_summary()
    if summary is None:
        snapshot = job.folder.read_plan()
        if snapshot is None:  # never run: plan it (offline; nothing is written)
            from .job.forecast import forecast
            from .job.plan_json import plan_json
            from .prepare.plan import plan_of
            from .run.prices import price_now

            built = plan_of(job.manifest, ProblemList(), fetch_remote=False,
                            allow_outside=allow_outside)
            snapshot = plan_json(forecast(built, price_now(job.manifest, job.folder)),
                                 with_state=False)
        summary = view_job(job.folder, snapshot, selected).summary()
    return as_status(job, summary, running=running)


def job_status(manifest: PathLike, out: PathLike | None = None, *, allow_outside: bool = False,
               only: Iterable[str] | Only = ()) -> dict[str, Any]:
    """`status` under its older name (out given by position)."""
    return status(manifest, out=out, only=only, allow_outside=allow_outside)


# --- cancel -------------------------------------------------------------------------------
def cancel(manifest: PathLike, *, out: PathLike | None = None, allow_outside: bool = False,
           say: Callable[[str], None] | None = None, wait_s: float | None = None
           ) -> CancelResult:
    """Cancel the job's queued requests (running ones go on, billed); each answer journalled,
    then the reports written again. While a run is going, that run is asked to stop (through
    the job folder: pipeline.job.folder.JobFolder.cancel_request): it stops submitting,
    cancels its queued requests, collects the running ones, writes its reports and exits;
    `cancel` waits for it (`say` is told what it waits for; `wait_s`: at most that long, then
    JobLocked), and answers with the job's state after it."""
    from .errors import JobLocked
    from .run.cancel import cancel_requests

    job = open_job(manifest, out, allow_outside=allow_outside)
    try:
        with job.locked():
            live, outcome, note = cancel_requests(job.manifest, job.folder)
            # the journal has the server's answers now: the reports say what `status` says
            reports = refresh_reports(job.folder) if reports_stale(job.folder) is not False else []
        return CancelResult(job.name, live, outcome, note, reports)
    except JobLocked:
        pass
    _ask_to_stop(job.folder)
    (say or log.warning)(f"{job.name}: a run is going; asked it to stop (it cancels its queued "
                         "requests and collects the running ones, then writes its reports)")
    _wait_for_the_run(job, say or log.warning, wait_s)
    after = status(manifest, out=out, allow_outside=allow_outside)
    counts = {k: n for k, n in after["counts"].items() if n}
    return CancelResult(job.name, 0, None, "the run stopped: " + ", ".join(
        f"{k} {n}" for k, n in counts.items()), job.folder.reports)


CANCEL_WAIT_TELL_S = 10.0  # how often `cancel` says it still waits for the run


def _ask_to_stop(folder: JobFolder) -> None:
    from .durable import write_atomic
    from .jsonio import compact, stamped
    from .text import iso_now

    write_atomic(folder.cancel_request, compact(stamped(1, {
        "at": iso_now(), "by": f"pid {os.getpid()}"})) + "\n")


def _wait_for_the_run(job: Job, say: Callable[[str], None], wait_s: float | None) -> None:
    """Wait until the run going releases the job's lock (it has written its reports then)."""
    import time

    from .errors import JobLocked

    start = told = time.monotonic()
    while True:
        try:
            with job.locked():
                job.folder.cancel_request.unlink(missing_ok=True)  # (taken, or left unread)
                return
        except JobLocked:
            now = time.monotonic()
            if wait_s is not None and now - start > wait_s:
                raise
            if now - told >= CANCEL_WAIT_TELL_S:
                told = now
                live = status(job.manifest.path, out=job.folder.path, allow_outside=True)
                c = live["counts"]
                say(f"{job.name}: waiting for the run to stop: {c.get('running', 0)} running "
                    f"(collected when they end), {c.get('queued', 0)} queued")
            time.sleep(0.25)


# --- report and picks ---------------------------------------------------------------------
def report(manifest: PathLike, *, out: PathLike | None = None, rows: str | None = None,
           cols: str | None = None, only: Iterable[str] | Only = (),
           allow_outside: bool = False) -> list[Path]:
    """Write report.md, report.html and report.json of a job from its folder alone."""
    selected = _only(only)
    job = open_job(manifest, out, allow_outside=allow_outside)
    return write_job_reports(job.folder, rows=rows, cols=cols, only=selected)


def picks(manifest: PathLike, only: Iterable[str] | Only = (), *,
          out: PathLike | None = None, job_out: PathLike | None = None,
          allow_outside: bool = False, top: int | None = None) -> Picked:
    """Write the cells `only` selects, or the `top` best-rated ones (ratings.jsonl, best
    first), to the picks file (default: picks.jsonl beside the manifest), for a final
    manifest to render again."""
    from .report.picking import default_path, pick_cells, top_cells, write_picks

    selected = _only(only)
    if top is not None and selected:
        raise UsageError("pipeline picks: give --top K or --only, not both")
    if top is None and not selected:
        raise UsageError("pipeline picks: say which cells to pick with --only cell=ID (or "
                         "KEY=VALUE) or --top K (the best rated); without either it lists the "
                         "cells already picked")
    job = open_job(manifest, job_out, allow_outside=allow_outside)
    chosen = top_cells(job, top) if top is not None else pick_cells(job, selected)
    path = write_picks([row for row, _ in chosen],
                       Path(out) if out is not None else default_path(job.manifest.path))
    return Picked(path, chosen)


run_job = run_plan  # older names of the library (pipeline.run_job wrote the reports too)
cancel_job = cancel


def list_picks_of(manifest: PathLike, *, out: PathLike | None = None,
                  job_out: PathLike | None = None, allow_outside: bool = False) -> list[str]:
    """Lines describing the picks kept for a job (each cell, its label and its state)."""
    from .report.picking import list_picks

    job = open_job(manifest, job_out, allow_outside=allow_outside)
    return list_picks(job, Path(out) if out is not None else None)



# --- review -------------------------------------------------------------------------------
@contextmanager
def review(manifest: PathLike, *, out: PathLike | None = None, host: str = "127.0.0.1",
           port: int = 0, allow_outside: bool = False, seed: int | None = None
           ) -> Iterator[ReviewServer]:
    """Serve the job's report page, media, picks and blind ranking (pipeline.review) while
    the block runs: `with api.review(m) as server: print(server.url)`. Stars go to the picks
    file beside the manifest (as `pipeline picks` writes it), votes to the job's
    ratings.jsonl; when votes were cast, the reports are written again at the end (unless a
    run is going: its own end writes them)."""
    from .errors import StateError
    from .report.picking import default_path
    from .review import ReviewServer

    job = open_job(manifest, out, allow_outside=allow_outside)
    if not job.folder.plan.exists() and not job.folder.journal.exists():
        raise StateError(f"nothing to review in {job.folder}: the job has not run yet; run it "
                         f"first (pipeline run {job.manifest.path})")
    server = ReviewServer(job.folder.path, default_path(job.manifest.path), host=host,
                          port=port, seed=seed)
    try:
        server.start()
    except OSError as exc:
        raise UsageError(f"pipeline review: cannot listen on {host}:{port}: "
                         f"{exc.strerror or exc}; pick another --port") from exc
    try:
        yield server
    finally:
        server.stop()
        if server.review.cast and not job.folder.is_running():
            try:
                report(manifest, out=out, allow_outside=allow_outside)
            except Exception as exc:  # noqa: BLE001 - the votes are saved; say why not
                log.warning("the report could not be written again: %s", exc)


def ratings(manifest: PathLike, *, out: PathLike | None = None,
            allow_outside: bool = False) -> list[dict[str, Any]]:
    """The job's rated cells, best first: each report.json cell's id, label, state and
    `rating` (empty when nobody has voted)."""
    from .report.picking import rated_cells

    job = open_job(manifest, out, allow_outside=allow_outside)
    return rated_cells(job.folder)
