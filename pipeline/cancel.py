"""`pipeline cancel`: ask the server to cancel every queued or running request of a job."""

from __future__ import annotations

import asyncio
from pathlib import Path

from .client import RunComfyClient
from .errors import JobLocked
from .execute import cancel_live
from .jobstatus import job_folder
from .manifest import load_manifest
from .state import LIVE, Journal, JobLock, read_state


def cancel_job(manifest_path: str | Path, out: Path | None = None, *,
               allow_outside: bool = False) -> list[str]:
    """Cancel the job's live requests; lines saying what happened to each kind of outcome."""
    m = load_manifest(manifest_path, allow_outside=allow_outside)
    folder = job_folder(m, out)
    try:
        lock = JobLock(folder).__enter__()
    except JobLocked as exc:
        raise JobLocked(f"{exc}. Interrupt that run first (Ctrl-C leaves its requests live), "
                        "then cancel; or run with --cancel-on-interrupt") from None
    try:
        state = read_state(folder)
        live = [rec for rec in state.cells.values() if rec.state(m.run.max_attempts) in LIVE]
        if not live:
            return [f"{m.name}: nothing queued or running"]
        backend = state.header.get("backend", m.backend)
        if backend == "sim":
            return [f"{m.name}: {len(live)} request(s) lived on the simulator of an earlier "
                    "run, which has stopped; nothing to cancel (a rerun submits them again)"]
        journal = Journal(folder, state)
        try:
            outcomes = asyncio.run(_cancel(state, journal, {r.id for r in live},
                                           m.run.max_attempts))
        finally:
            journal.close()
    finally:
        lock.__exit__(None, None, None)
    lines = [f"{m.name}: asked to cancel {len(live)} live request(s)"]
    for outcome, n in sorted(outcomes.items()):
        meaning = {"cancelled": "cancelled while queued (not billed)",
                   "not_cancellable": "already running: cannot be cancelled (billed; a rerun "
                                      "collects the video)"}.get(outcome, outcome)
        lines.append(f"  {n}: {meaning}")
    return lines


async def _cancel(state, journal, ids, max_attempts):
    async with RunComfyClient.from_env() as client:
        return await cancel_live(state, client, journal, ids, max_attempts)
