"""Stage 2's entry point: one run of one job, from its plan to its reports.

`run_job(plan, options)` takes the job's lock, replays its journal, resolves the price (the
catalog first, see pipeline.job.price), writes the plan snapshot, starts the client (or the
in-process simulator), journals the run's start and hands over to the Runner; afterwards it
writes the reports. Every step is journalled (pipeline.job.journal): the intent to submit is
durable before the POST and the request id right after it, so a rerun polls what was
submitted instead of paying for it again, and holds as `unknown` what may or may not have been
accepted.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import logging
import os
from typing import Any
from urllib.parse import urlparse

from ..client import RunComfyClient
from ..errors import BudgetError, StateError
from ..job import journal as ev
from ..job.durable import write_atomic
from ..job.folder import JobFolder, JobLock
from ..job.forecast import forecast, plan_json
from ..job.journal import Journal, JobState, read_state
from ..job.price import SIM_ORIGIN, Price, fetch_price
from ..job.records import DONE, FAILED, ORPHANED, UNKNOWN
from ..job.tally import resume_for
from ..prepare import cost
from ..prepare.expand import Cell
from ..prepare.manifest import Manifest, load_manifest
from ..prepare.plan import Plan, inputs_unchanged
from ..prepare.select import Only, select_cells
from .context import RunContext, RunOptions, RunSummary
from .control import Control, FailureLimits
from .poll import PollPlanner
from .runner import Runner

__all__ = ["RunOptions", "RunSummary", "run_job", "select", "settled_run"]

log = logging.getLogger("pipeline.run")

# HTTP calls in flight at once (requests live on the server are not calls: a live request costs
# nothing between polls). httpx's pool scans every connection per request, so a small pool is
# cheaper per call; env PIPELINE_IN_FLIGHT overrides it for experiments.
IN_FLIGHT = int(os.environ.get("PIPELINE_IN_FLIGHT", "16"))
SETTLED = {DONE, FAILED, UNKNOWN, ORPHANED}  # states a run does nothing with, unasked


def select(plan: Plan, only: Only) -> list[Cell]:
    """The cells of the plan that `--only` selects (see pipeline.prepare.select)."""
    return select_cells(plan.cells, only)


def run_job(plan: Plan, options: RunOptions = RunOptions()) -> RunSummary:
    """Execute a plan (blocking); the library entry point under `pipeline run`.

    The reports are written at the end of every run, also an interrupted or failed one."""
    folder = JobFolder.of(plan.manifest, options.out)
    try:
        summary = asyncio.run(_run(plan, options, folder))
    except OSError as exc:  # the job folder cannot be written (full, read-only, ...)
        raise StateError(f"cannot write in {folder}: {exc.strerror or exc}; free some space "
                         "(or fix the folder) and run again to resume") from None
    # The run's state is garbage now, much of it in reference cycles a full collection alone
    # frees: free it before the report, so that the report reuses that memory instead of
    # adding to it (100,000 cells: the run's peak stays where the run itself put it).
    gc.collect()
    summary.reports = _reports(folder, summary.cell_events)
    return summary


async def _run(plan: Plan, options: RunOptions, folder: JobFolder) -> RunSummary:
    m = plan.manifest
    backend = options.backend or m.backend
    cells = select(plan, options.only)
    with JobLock(folder):
        folder.check_owner(m.path)
        state = read_state(folder, lean=True)
        _check_schema(state, plan, options)
        concurrency = options.concurrency or m.run.concurrency
        sim = None
        if backend == "sim":
            from ..sim import SimConfig, Simulator

            sim = Simulator(options.sim or SimConfig(capacity=concurrency,
                                                     gen_time=(1.0, 3.0))).start()
            client = RunComfyClient(sim.base_url, "sim-local-token", max_in_flight=IN_FLIGHT,
                                    data_uris=m.run.local_images == "data_uri")
        else:
            client = RunComfyClient.from_env(max_in_flight=IN_FLIGHT,
                                             data_uris=m.run.local_images == "data_uri")
        journal = None
        try:
            price = await fetch_price(client, m, folder,
                                       SIM_ORIGIN if sim else urlparse(client.base_url).netloc)
            _check_budget_possible(m, price, options)
            for warning in price.warnings:
                log.warning("%s", warning)
            resume = resume_for(state, retry_failed=options.retry_failed,
                                resubmit_unknown=options.resubmit_unknown,
                                new_simulator=sim is not None)
            outlook = forecast(plan, price, folder, concurrency=concurrency, state=state,
                               resume=resume)
            _write_snapshot(folder, outlook)
            journal = Journal(folder, state)
            start = journal.write(ev.run_started(
                job=m.name, model=m.model.id, manifest=str(m.path.resolve()),
                manifest_sha256=m.sha256, schema_sha256=m.model.schema_sha256,
                backend=backend, base_url=client.base_url, concurrency=concurrency,
                max_attempts=m.run.max_attempts, cells=len(cells), price=price.sheet,
                price_source=price.source, budget=m.run.budget))
            await journal.durable()
            outlook.tally.live_since = start["t"]
            control = Control(concurrency, FailureLimits(m.run.fail_fast, m.run.max_failures))
            run = RunContext(
                plan=plan, cells=cells, folder=folder, client=client, journal=journal,
                tally=outlook.tally, control=control,
                planner=PollPlanner(initial=m.run.polling.initial,
                                    max_interval=m.run.polling.max),
                price=price, backend=backend, max_attempts=m.run.max_attempts,
                timeout=m.run.polling.timeout, fps=m.model.meta.get("fps", cost.DEFAULT_FPS))
            return await Runner(run, options).run()
        finally:
            if journal is not None:
                journal.close()
            await client.aclose()
            if sim is not None:
                sim.stop()


def _check_budget_possible(m: Manifest, price: Price, options: RunOptions) -> None:
    if m.run.budget is None or price.sheet is not None:
        return
    if options.allow_unknown_price or m.run.allow_unknown_price:
        log.warning("the price of %s is unknown: the budget cannot be enforced", m.model.id)
        return
    raise BudgetError(f"the price of {m.model.id} is unknown (the catalog did not say), so "
                      f"the budget of {cost.money(m.run.budget)} cannot be enforced; state a "
                      "price in run.price, or pass --allow-unknown-price")


# --- the folder around a run -----------------------------------------------------------------
def _reports(folder: JobFolder, cell_events: int) -> list:
    """Write the reports (for every job size: they stream over the journal, see
    pipeline.report.scan) unless they already show every cell event in the journal."""
    from ..report import NAMES, write_reports

    try:
        stamp = f"{cell_events} {folder.plan.stat().st_mtime_ns}"
        paths = [folder / name for name in NAMES]
        if all(p.exists() for p in paths) and folder.report_stamp.exists() and \
                folder.report_stamp.read_text() == stamp:
            return paths  # a run that changed nothing leaves the report as it was
        paths = write_reports(folder)
        folder.report_stamp.write_text(stamp)
        return paths
    except Exception as exc:  # a report problem must not hide how the run itself ended
        log.warning("the report could not be written: %s", exc)
        return []


def _check_schema(state: JobState, plan: Plan, options: RunOptions) -> None:
    old = state.header.get("schema_sha256")
    if old and state.cells and old != plan.manifest.model.schema_sha256 and \
            not options.allow_schema_change:
        raise StateError(f"the bundled input schema of {plan.manifest.model.id} changed since "
                         "this job's state was written; results would mix two schemas. Pass "
                         "--allow-schema-change to go on, or use a new output folder (--out)")


def _write_snapshot(folder: JobFolder, outlook: Any) -> None:
    """plan.json beside the journal, so `status` and the report know every cell of the job and
    the price the run uses. Rewritten only when what the plan was made from (its inputs key),
    its price or the concurrency changed."""
    folder.path.mkdir(parents=True, exist_ok=True)
    key = outlook.plan.inputs["key"] + json.dumps(outlook.price.as_json(), sort_keys=True) + \
        str(outlook.concurrency)
    marker = hashlib.sha256(key.encode()).hexdigest()
    try:
        if folder.plan_fingerprint.read_text() == marker and folder.plan.exists():
            return
    except OSError:
        pass
    write_atomic(folder.plan, json.dumps(plan_json(outlook, with_state=False),
                                         ensure_ascii=False, separators=(",", ":")))
    folder.plan_fingerprint.write_text(marker)


def settled_run(manifest_path: str | os.PathLike, options: RunOptions = RunOptions(), *,
                allow_outside: bool = False) -> RunSummary | None:
    """A rerun of a settled job, answered without planning: when nothing the last plan was
    made from has changed (`inputs_unchanged`), the last run's summary still matches the
    journal byte for byte, and every cell is settled (done, failed, unknown, orphaned), a run
    would do nothing; its summary, or None when a run must look for itself."""
    if options.retry_failed or options.resubmit_unknown or options.only:
        return None
    m = load_manifest(manifest_path, allow_outside=allow_outside)
    folder = JobFolder.of(m, options.out)
    if not folder.journal.exists():
        return None
    with JobLock(folder):
        folder.check_owner(m.path)
        summary = folder.settled_summary()
        if summary is None or not inputs_unchanged(m, summary.get("inputs")):
            return None
        counts = summary.get("counts", {})
        if any(n for k, n in counts.items() if k not in SETTLED):
            return None
    exit_code = 0 if counts.get("done") == summary.get("total") else 1
    result = RunSummary(folder.path, summary, exit_code,
                        cell_events=summary.get("cell_events", -1))
    result.reports = _reports(folder, result.cell_events)
    return result
