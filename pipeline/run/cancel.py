"""Cancelling a job's live requests: on `--cancel-on-interrupt`, and as `pipeline cancel`.

Only queued requests can be cancelled (not billed); a running one answers `not_cancellable`
and goes on, billed. Each answer is journalled per cell, so `status` shows the cancelled cells
as `cancelled` and the others as `running`, and the outcome is summed up in one line.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

from .. import wire
from ..client import RunComfyClient
from ..errors import ClientError
from ..job import journal as ev
from ..job.folder import JobFolder
from ..job.journal import JobState, read_state
from ..job.journal_writer import JournalWriter
from ..job.records import ON_SERVER, RESULT_CANCELLED
from ..prepare.manifest import Manifest


@dataclass
class CancelOutcome:
    """How many live requests got each answer (cancelled, not_cancellable, an error...)."""

    asked: int = 0
    answers: Counter = field(default_factory=Counter)

    def text(self) -> str:
        parts = [f"cancelled {self.answers[wire.OUTCOME_CANCELLED]} (not billed)",
                 f"not cancellable {self.answers[wire.OUTCOME_NOT_CANCELLABLE]} (running, "
                 "billed; a rerun collects the video)"]
        other = sum(n for k, n in self.answers.items()
                    if k not in (wire.OUTCOME_CANCELLED, wire.OUTCOME_NOT_CANCELLABLE))
        if other:
            parts.append(f"no clear answer {other} (still live; a rerun polls them)")
        return ", ".join(parts)


async def cancel_live(state: JobState, client: RunComfyClient, journal: JournalWriter,
                      ids: set[str], max_attempts: int) -> CancelOutcome:
    """Ask the server to cancel every live request among `ids`; journal each answer."""
    outcome = CancelOutcome()
    for cid in ids:
        rec = state.cells.get(cid)
        if rec is None or rec.state(max_attempts) not in ON_SERVER:
            continue
        a = rec.last
        if a is None or a.request_id is None:  # (never: a request on the server has both)
            continue
        outcome.asked += 1
        try:
            answer = (await client.cancel(a.request_id)).outcome
        except ClientError as exc:
            answer = f"error: {exc}"
        journal.write(ev.cancel_answered(cid, a.n, answer))
        if answer == wire.OUTCOME_CANCELLED:
            journal.write(ev.result(cid, a.n, RESULT_CANCELLED, cost=0.0,
                                    error="cancelled on request while queued (not billed)"))
        outcome.answers[answer] += 1
    await journal.durable()
    return outcome


def cancel_requests(m: Manifest, folder: JobFolder) -> tuple[int, CancelOutcome | None, str]:
    """`pipeline cancel` (its job's lock held by the caller): ask the server to cancel the
    job's requests it holds; (how many were live, the outcome or None, why none was asked)."""
    state = read_state(folder)
    live = {cid for cid, rec in state.cells.items()
            if rec.state(m.run.max_attempts) in ON_SERVER}
    if not live:
        return 0, None, "nothing queued or running"
    if state.header.get("backend", m.backend) == "sim":
        return len(live), None, (f"{len(live)} request(s) lived on the simulator of an earlier "
                                 "run, which has stopped; nothing to cancel (a rerun submits "
                                 "them again)")
    journal = JournalWriter(folder, state)
    try:
        outcome = asyncio.run(_cancel(state, journal, live, m.run.max_attempts))
    finally:
        journal.close()
    return len(live), outcome, ""


async def _cancel(state: JobState, journal: JournalWriter, ids: set[str],
                  max_attempts: int) -> CancelOutcome:
    async with RunComfyClient.from_env() as client:
        return await cancel_live(state, client, journal, ids, max_attempts)
