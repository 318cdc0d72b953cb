"""The drive loop of one run: schedule every cell by its resume action, then drive each one
through submit → poll → (retry) → collect, at most `concurrency` live at once.

What happens to a cell in each state is not decided here: it is `resume_action`'s table
(pipeline.job.records), which `plan` and `status` read too. The runner keeps the job's Tally
current on every journal event and tells the progress observer; budget, failure limits and
slots are asked of the Ledger and Control. While a canary is unproven (pipeline.run.canary) a
cell keeps its slot through its download, until the canary has judged it. Read
pipeline.run.session first.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import Any

from ..job import journal as ev
from ..job.forecast import Forecast
from ..job.found_capacity import capacity_figures
from ..job.next_run import resume_for
from ..job.plan_json import plan_head
from ..job.records import (
    DONE,
    DOWNLOAD,
    FAILED,
    LOST,
    PENDING,
    POLL,
    QUEUED,
    RETRY,
    SUBMIT,
    SUCCEEDED,
    Action,
    CellRecord,
    resume_action,
)
from ..job.status import view_of
from ..prepare.expand import Cell
from ..secrets import scrub
from . import canary
from .cancel import cancel_live
from .collect import clean_partial_downloads, collect
from .context import RunContext, RunOptions, RunSummary
from .control import Slot
from .poll import poll, server_span, watch_queue
from .progress import Progress
from .submit import submit

log = logging.getLogger("pipeline.run")

CANCEL_CHECK_S = 0.5  # how often a run looks for `pipeline cancel`'s request
CANCELLED_ON_REQUEST = "cancelled by `pipeline cancel`"


class Runner:
    """Schedules the cells of one run and drives each to its end."""

    def __init__(self, run: RunContext, options: RunOptions):
        self.run_ = run
        self.options = options
        self.tasks: set[asyncio.Task] = set()
        self.progress: Progress | None = None
        self.waiting = 0  # cells this run will submit that have no slot yet
        self.cancelled: Any = None  # what cancelling live requests answered, if it was asked
        run.journal.listener = self._on_event
        run.journal.on_full = lambda: run.control.stopping.disk_full(run.folder)

    def figures(self) -> dict[str, Any]:
        """The job's figures now, with the size of the journal they reflect (and, while a
        canary is unproven, the cells it waits for and the cells it holds back)."""
        run, control = self.run_, self.run_.control
        figures = run.tally.figures(control.slots)
        figures = {**figures, "counts": control.requests.confirmed(figures["counts"]),
                   "concurrency": control.slots,
                   "journal_bytes": run.journal.size,
                   "retrying": run.client.retrying}
        if control.pool.canary and not control.stopping.submitting_stopped:
            free = max(0, control.pool.limit() - control.pool.live)
            figures["canary"] = {"waiting_for": control.pool.canary,
                                 "holding_back": max(0, self.waiting - free)}
        if run.team is not None and run.team.waiting:  # why submits wait for the team ledger
            figures["team"] = run.team.waiting
        if control.auto is not None:
            figures["capacity"] = capacity_figures(
                control.auto.capacity, control.auto.queue_ahead, control.pool.shown())
        return figures

    async def run(self) -> RunSummary:
        run, control = self.run_, self.run_.control
        loop = asyncio.get_running_loop()
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self._interrupt)
                installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass
        mode = self.options.progress
        keeper = asyncio.create_task(run.team.keep_in_line()) if run.team else None
        watch = asyncio.create_task(watch_queue(run)) if control.auto else None
        # the lock is ours: a cancel request found now was left for a run that has ended
        run.folder.cancel_request.unlink(missing_ok=True)
        asked = asyncio.create_task(self._watch_cancel())
        try:
            to_submit = self._resume()
            self.progress = Progress(run.plan.job, self.figures,
                                     mode=mode if isinstance(mode, str) or mode is None
                                     else "bar" if mode else "plain")
            if run.team is not None:  # a wait for the team ledger is shown as it begins
                run.team.on_waiting = self.progress.changed
            await self._schedule(to_submit)
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            for task in (keeper, watch, asked):
                if task is not None:
                    task.cancel()
        run.folder.cancel_request.unlink(missing_ok=True)
        cancelled = self.cancelled
        stopping = control.stopping
        if stopping.interrupted and self.options.cancel_on_interrupt:
            cancelled = await cancel_live(run.state, run.client, run.journal,
                                          {c.id for c in run.cells}, run.max_attempts)
        self.progress.close()
        if run.previews is not None:  # the clips' triage goes in before the run's end event:
            await asyncio.to_thread(run.previews.close)  # status.json then counts it
        if (fatal := stopping.finish_with) is not None and stopping.crash is None:
            # the job's end is recorded as for any stop (the cells not sent are pending, with
            # the connection's failure as their reason), then the error is the run's answer
            self._finish(cancelled, exit_code=fatal.exit_code)
        stopping.raise_if_failed()
        return self._finish(cancelled)

    async def _watch_cancel(self) -> None:
        """Wait for `pipeline cancel` from another terminal (a file in the job folder); then
        stop submitting, cancel the queued requests and let the running ones finish and be
        collected: the run then ends as any run does, its reports written above it."""
        run, stopping = self.run_, self.run_.control.stopping
        while not run.folder.cancel_request.exists():
            if await stopping.sleep(CANCEL_CHECK_S):
                return
        stopping.halt(CANCELLED_ON_REQUEST)
        log.warning("`pipeline cancel` asked this run to stop: not submitting more; cancelling "
                    "the queued requests; the running ones are collected")
        queued = {c.id for c in run.cells if (rec := run.state.cells.get(c.id)) is not None
                  and rec.state(run.max_attempts) == QUEUED}
        self.cancelled = await cancel_live(run.state, run.client, run.journal, queued,
                                           run.max_attempts)

    def _interrupt(self) -> None:
        stopping = self.run_.control.stopping
        if stopping.interrupted:  # second Ctrl-C: leave now; every event is already in the file
            try:
                self.run_.journal.sync()
            finally:
                os._exit(130)
        stopping.interrupted = True
        stopping.halt("interrupted")
        stopping.everything.set()
        if self.options.cancel_on_interrupt:
            log.warning("interrupted: not submitting more; cancelling the live requests "
                        "(Ctrl-C again to leave at once)")
        else:
            log.warning("interrupted: not submitting more; live requests stay on the server, "
                        "billed, and the next run collects them (Ctrl-C again to leave at once)")

    def _on_event(self, event: dict) -> None:
        run = self.run_
        cell = event.get("cell")
        if cell is not None:
            rec = run.state.cells[cell]
            run.tally.update(cell, rec)
            if event["e"] == "submitted":
                run.control.requests.sent(cell)
            elif event["e"] == "result":
                run.control.requests.ended(cell, _span(event))
            if run.team is not None and event["e"] != "cell":
                run.team.changed(cell, event.get("n"))
        if self.progress is not None:
            self.progress.changed()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            self.run_.control.stopping.fail(exc)

    def _resume(self) -> list[Cell]:
        """Start polling and downloading what earlier runs left; the cells to submit."""
        run, control = self.run_, self.run_.control
        clean_partial_downloads(run)
        to_submit: list[Cell] = []
        resumed: list[tuple[float, str]] = []
        for cell in run.cells:
            rec = run.state.cells.get(cell.id)
            st = rec.state(run.max_attempts, run.tally.live_since) if rec else PENDING
            act = resume_action(rec, st, run.max_attempts, run.tally.resume)
            if act.mark and rec is not None:  # (a mark is about attempts of the journal)
                run.write(_marker(act, rec))
            if act.does == SUBMIT:
                to_submit.append(cell)
            elif act.does == POLL:
                control.pool.hold()
                last = rec.last if rec is not None else None  # (a cell to poll has one)
                resumed.append(((last.submitted_at if last else None) or 0.0, cell.id))
                self._spawn(self._drive(cell, resume=True))
            elif act.does == DOWNLOAD:
                self._spawn(collect(run, cell))
            elif st == DONE and rec is not None and not rec.compacted and \
                    (run.team is None or run.team.reconciled):
                rec.compact(run.estimate(cell.id))  # (the team ledger may still need it all)
        for _, cell_id in sorted(resumed):  # live on the server in the order they were sent
            control.requests.sent(cell_id)
        if control.pool.canary:  # each model's own canary cells first (pipeline.run.canary)
            to_submit = canary.first(to_submit, run.canary_needs)
        self.waiting = len(to_submit)
        return to_submit

    async def _schedule(self, to_submit: list[Cell]) -> None:
        """Give each cell to submit a slot as one frees; wait for every cell to end."""
        control = self.run_.control
        for cell in to_submit:
            if not await control.pool.take():
                break
            self.waiting -= 1
            self._spawn(self._drive(cell))
        # Nothing left to send: a late look at a finished request now delays the end itself.
        planner = self.run_.planner
        planner.tail, planner.lazy = planner.lazy, False
        control.eager.set()
        while self.tasks:
            await asyncio.wait(set(self.tasks))
        if control.stopping.finish_with is None:
            control.stopping.raise_if_failed()

    async def _drive(self, cell: Cell, resume: bool = False) -> None:
        """Drive a cell whose slot the caller has taken; judge it if it is a canary's."""
        run, control = self.run_, self.run_.control
        slot = Slot(control.pool)
        try:
            await self._attempts(cell, slot, resume)
            if control.pool.canary and not control.stopping.submitting_stopped:
                await canary.judge(run, cell)
        finally:
            await slot.give()

    async def _attempts(self, cell: Cell, slot: Slot, resume: bool) -> None:
        """Submit (unless resuming), poll to the end, retry failures, then download. The slot
        is given back as soon as the request ends, unless a canary is unproven: then the cell
        keeps it until judged, and only a failure the service reported is retried (canary.fluke:
else the canary stops the run)."""
        run, control = self.run_, self.run_.control
        while True:
            if not resume and run.wallet is not None and not await run.wallet.allows():
                return  # the balance is short (pipeline.run.wallet): nothing more is sent
            if not resume and not await submit(run, cell):
                return
            resume = False
            verdict = await poll(run, cell)
            if verdict is None:  # stopping: the request stays live on the server
                return
            proving = bool(control.pool.canary)
            if not proving:
                await slot.give()
            if verdict == SUCCEEDED:
                await collect(run, cell)
                return
            state = run.state.cells[cell.id].state(run.max_attempts)
            if state == FAILED:
                control.stopping.cell_failed()
            if state != RETRY or control.stopping.submitting_stopped:
                return
            if proving:  # a canary the service failed goes again, alone, on the slot it holds
                if canary.fluke(run, cell):
                    continue
                return
            if not await slot.take():
                return

    def _finish(self, cancelled: Any, exit_code: int | None = None) -> RunSummary:
        run, control = self.run_, self.run_.control
        done = sum(1 for c in run.cells if (rec := run.state.cells.get(c.id)) is not None
                   and rec.state(run.max_attempts) == DONE)
        if exit_code is None:
            exit_code = 130 if control.stopping.interrupted else (
                0 if done == len(run.cells) else 1)
        stopped = scrub(control.stopping.stopped) if control.stopping.stopped else None
        run.write(ev.ended(exit_code, stopped, run.tally.counts))
        run.journal.sync()
        # The job as `status` will see it from now on: no run going, the plain resume choices
        # (this run's --retry-failed and the like no longer apply).
        run.tally.recount(run.state, live_since=None, resume=resume_for(run.state))
        run.tally.canary = 0  # no run is waiting for one now
        # The one builder of `status --json`, over the header plan.json has (as written now).
        head = plan_head(Forecast(run.plan, run.price, run.state, run.tally, control.slots))
        summary = view_of(run.folder, run.state, head, run.tally, running=False).summary()
        summary["inputs"] = run.plan.inputs
        run.folder.write_summary(summary)
        return RunSummary(run.folder.path, summary, exit_code, stopped=control.stopping.stopped,
                          interrupted=control.stopping.interrupted, cancelled=cancelled,
                          cell_events=run.state.cell_events)


def _span(event: dict) -> tuple[float, float] | None:
    """A request's creation and end on the server's clock, by its own created_at and
    finished_at (the two clocks need not agree: pipeline.run.auto bounds the difference)."""
    times = event.get("server_times") or {}
    return server_span(times.get("created_at"), times.get("finished_at"))


def _marker(act: Action, rec: CellRecord) -> dict:
    """The journal event that records a resume action's decision before it is acted on."""
    if act.mark == "retry_failed":
        return ev.retry_failed(rec.id)
    if act.mark == "resubmit_unknown":
        return ev.resubmit_unknown(rec.id, rec.attempts[-1].n)
    return ev.result(rec.id, rec.attempts[-1].n, LOST, error=act.why)
