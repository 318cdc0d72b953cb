"""Stage 4: submit, poll, collect and download every cell that is not done; resume on rerun.

One asyncio loop, one client. At most `concurrency` requests are live on the server; a cell that
finishes hands its slot to the next at once. Every step is journalled (see pipeline.state): the
intent to submit is durable before the POST and the request_id right after it, so a rerun polls
what was submitted instead of paying for it again, and holds as `unknown` what may or may not
have been accepted.

This module is the entry point (`run_job`): the lock, the journal, the client or the in-process
simulator, the plan snapshot and the reports around one run; `pipeline.runner` is the run itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

from .client import RunComfyClient
from .durable import write_atomic
from .errors import StateError, UsageError
from .expand import Cell
from .plan import Plan, plan_json
from .runner import IN_FLIGHT, Runner, RunOptions, RunSummary, cancel_live
from .state import Journal, JobLock, JobState, read_state

__all__ = ["RunOptions", "RunSummary", "cancel_live", "output_dir", "run_job", "select"]

log = logging.getLogger("pipeline.run")


def output_dir(plan: Plan, out: Path | None = None) -> Path:
    m = plan.manifest
    if out is not None:
        return Path(out)
    return Path(m.run.output) if m.run.output else Path("outputs") / m.name


def select(plan: Plan, only: tuple[tuple[str, str], ...]) -> list[Cell]:
    """The cells matching every `--only KEY=VALUE` (values compared as text; a key may repeat)."""
    if not only:
        return list(plan.cells)
    wanted: dict[str, set[str]] = {}
    for key, value in only:
        wanted.setdefault(key, set()).add(value)
    known = {k for c in plan.cells for k in c.values} | {k for c in plan.cells for k in c.request}
    for key in wanted:
        if key not in known:
            raise UsageError(f"--only {key}=...: {key!r} is not a matrix value of this job "
                             f"(known: {', '.join(sorted(known))})")

    def value_of(cell: Cell, key: str) -> Any:
        return cell.values[key] if key in cell.values else cell.request.get(key)

    return [c for c in plan.cells
            if all(str(value_of(c, k)) in vs for k, vs in wanted.items())]


def run_job(plan: Plan, options: RunOptions = RunOptions()) -> RunSummary:
    """Execute a plan (blocking); the library entry point under `pipeline run`.

    The reports are written at the end of every run, also an interrupted or failed one."""
    try:
        summary = asyncio.run(_run(plan, options))
    except OSError as exc:  # the output folder cannot be written (full, read-only, ...)
        raise StateError(f"cannot write in {output_dir(plan, options.out)}: "
                         f"{exc.strerror or exc}; free some space (or fix the folder) and run "
                         "again to resume") from None
    summary.reports = _reports(summary.out_dir, summary.cell_events, len(plan.cells))
    return summary


async def _run(plan: Plan, options: RunOptions) -> RunSummary:
    m = plan.manifest
    backend = options.backend or m.backend
    out = output_dir(plan, options.out)
    cells = select(plan, options.only)
    fingerprint = _fingerprint(plan)
    with JobLock(out):
        settled = _nothing_to_do(out, plan, cells, options, fingerprint)
        if settled is not None:
            return settled
        state = read_state(out, lean=True)
        _check_schema(state, plan, options)
        _write_snapshot(out, plan, fingerprint)
        sim = None
        if backend == "sim":
            from .sim import SimConfig, Simulator

            config = options.sim or SimConfig(
                capacity=options.concurrency or m.run.concurrency, gen_time=(1.0, 3.0))
            sim = Simulator(config).start()
            client = RunComfyClient(sim.base_url, "sim-local-token", max_in_flight=IN_FLIGHT,
                                    data_uris=m.run.local_images == "data_uri")
        else:
            client = RunComfyClient.from_env(max_in_flight=IN_FLIGHT,
                                             data_uris=m.run.local_images == "data_uri")
        journal = Journal(out, state)
        try:
            runner = Runner(plan, cells, options, client, journal, out, backend)
            return await runner.run()
        finally:
            journal.close()
            await client.aclose()
            if sim is not None:
                sim.stop()


# The report replays the whole journal with every detail: past this many cells a run leaves it
# to `pipeline report`, so that the runner's own memory stays small (see README, The report).
REPORT_AT_END_MAX_CELLS = 20_000


def _reports(out: Path, cell_events: int, cells: int = 0) -> list[Path]:
    """Write the reports unless they already show every cell event in the journal."""
    from .report import NAMES, write_reports

    stamp_file = out / ".report.stamp"
    if cells > REPORT_AT_END_MAX_CELLS:
        log.warning("%d cells: the report is not written at the end of the run; write it with "
                    "`pipeline report MANIFEST`", cells)
        return []
    try:
        stamp = f"{cell_events} {(out / 'plan.json').stat().st_mtime_ns}"
        paths = [out / name for name in NAMES]
        if all(p.exists() for p in paths) and stamp_file.exists() and \
                stamp_file.read_text() == stamp:
            return paths  # a run that changed nothing leaves the report as it was
        paths = write_reports(out)
        stamp_file.write_text(stamp)
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


def _fingerprint(plan: Plan) -> str:
    """What identifies a plan: its manifest, the model schema, every cell's id and label."""
    import hashlib

    digest = hashlib.sha256(plan.manifest.sha256.encode())
    digest.update(plan.manifest.model.schema_sha256.encode())
    digest.update("\n".join(c.id + " " + c.label for c in plan.cells).encode())
    return digest.hexdigest()


def _write_snapshot(out: Path, plan: Plan, fingerprint: str) -> None:
    """plan.json beside the journal, so `status` and the report know every cell of the job.
    Rewritten only when the plan changed."""
    out.mkdir(parents=True, exist_ok=True)
    marker = out / ".plan.fingerprint"
    try:
        if marker.read_text() == fingerprint and (out / "plan.json").exists():
            return
    except OSError:
        pass
    write_atomic(out / "plan.json", json.dumps(plan_json(plan), ensure_ascii=False,
                                                separators=(",", ":")))
    marker.write_text(fingerprint)


SETTLED = {"done", "failed", "unknown", "orphaned"}


def _nothing_to_do(out: Path, plan: Plan, cells: list[Cell], options: RunOptions,
                   fingerprint: str) -> RunSummary | None:
    """A rerun of a settled job: when the last run's summary still matches the journal byte for
    byte and the plan is unchanged, answer from it without replaying 100,000 cells."""
    from .jobstatus import SUMMARY

    if options.retry_failed or options.resubmit_unknown or len(cells) != len(plan.cells):
        return None
    try:
        if (out / ".plan.fingerprint").read_text() != fingerprint:
            return None
        summary = json.loads((out / SUMMARY).read_text(encoding="utf-8"))
        if summary.get("journal_bytes") != (out / "state.jsonl").stat().st_size:
            return None
    except (OSError, ValueError):
        return None
    counts = summary.get("counts", {})
    if summary.get("total") != len(cells) or any(n for k, n in counts.items()
                                                  if k not in SETTLED):
        return None
    exit_code = 0 if counts.get("done") == len(cells) else 1
    return RunSummary(out, counts, exit_code, summary.get("spent_usd"),
                      cell_events=summary.get("cell_events", -1))
