"""One run of one job: slots, submits, polls, retries, downloads, budget and stop flags.

The Runner is what `pipeline.execute.run_job` drives inside its lock, with an open journal and
a client; it owns no files but the videos it downloads. Read pipeline.execute first.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import cost as costs
from . import media, wire
from .client import NOT_ACCEPTED, RunComfyClient
from .durable import write_atomic
from .errors import (AuthError, BudgetError, ClientError, DownloadError, NotFound,
                     PipelineError, StateError, SubmitError)
from .expand import Cell
from .plan import Plan
from .polling import Poll, PollPlanner, server_seconds
from .progress import Progress
from .secrets import scrub
from .state import (DONE, DOWNLOADING, FAILED, PENDING, QUEUED, RETRY, RUNNING,
                    UNKNOWN, CellRecord, Journal, JobState)

log = logging.getLogger("pipeline.run")

# Test hook (RocksDB-style kill points): PIPELINE_CRASH_AT=point[:n] SIGKILLs this process the
# n-th time (default 1st) it passes `point`. Points: after_intent, after_submit, after_download.
_CRASH_AT = os.environ.get("PIPELINE_CRASH_AT", "")
_crash_passes: dict[str, int] = {}


def _crash_point(name: str) -> None:
    if not _CRASH_AT:
        return
    point, _, nth = _CRASH_AT.partition(":")
    if point != name:
        return
    _crash_passes[name] = _crash_passes.get(name, 0) + 1
    if _crash_passes[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)


# HTTP calls in flight at once (requests live on the server are not calls: a live request costs
# nothing between polls). httpx's pool scans every connection per request, so a small pool is
# cheaper per call; env PIPELINE_IN_FLIGHT overrides it for experiments.
IN_FLIGHT = int(os.environ.get("PIPELINE_IN_FLIGHT", "16"))
SUBMIT_TRIES = 8  # not-accepted submits (429, connection refused) tried per cell and run
DOWNLOAD_TRIES = 4  # download rounds per file and run, on top of the client's own retries
VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".gif", ".png", ".jpg", ".jpeg", ".webp")


@dataclass(frozen=True)
class RunOptions:
    """Command-line choices that override or extend the manifest's `run` block."""

    backend: str | None = None
    concurrency: int | None = None
    only: tuple[tuple[str, str], ...] = ()
    retry_failed: bool = False
    resubmit_unknown: bool = False
    cancel_on_interrupt: bool = False
    out: Path | None = None
    allow_schema_change: bool = False
    allow_unknown_price: bool = False
    progress: bool | None = None  # None: a progress bar when stderr is a terminal
    sim: Any = None  # a pipeline.sim.SimConfig for --backend sim


@dataclass
class RunSummary:
    """How a run ended."""

    out_dir: Path
    counts: dict[str, int]
    exit_code: int
    spent: float | None
    stopped: str | None = None  # why submitting stopped early, if it did
    interrupted: bool = False
    reports: list[Path] = field(default_factory=list)
    cell_events: int = -1


class Runner:
    """One run of one job: owns the slots, the budget and the stop flags."""

    def __init__(self, plan: Plan, cells: list[Cell], options: RunOptions,
                 client: RunComfyClient, journal: Journal, out: Path, backend: str):
        m = plan.manifest
        self.plan, self.cells, self.options = plan, cells, options
        self.client, self.journal, self.out, self.backend = client, journal, out, backend
        self.state = journal.state
        self.concurrency = options.concurrency or m.run.concurrency
        self.max_attempts = m.run.max_attempts
        self.model = m.model
        self.fps = m.model.meta.get("fps", wire.OUTPUT_FPS)
        self.image_fields = m.model.image_fields()
        self.planner = PollPlanner(initial=m.run.polling.initial,
                                   max_interval=m.run.polling.max)
        self.timeout = m.run.polling.timeout
        self.price = plan.price
        self.budget = m.run.budget
        self.reserved = 0.0
        self.live = 0
        self.slot_free = asyncio.Condition()
        self.stop = asyncio.Event()  # set: stop submitting and polling (interrupt, fatal)
        self.learned = asyncio.Event()  # set at the first finish: pollers re-plan
        self.stop_submitting: str | None = None
        self.fatal: PipelineError | None = None
        self.crash: BaseException | None = None
        self.tasks: set[asyncio.Task] = set()
        self.submitting: set[str] = set()  # POST under way: intent journalled, no answer yet
        self.by_id = {c.id: c for c in cells}
        self._spend_by_cell: dict[str, float] = {}
        self._spent = 0.0
        journal.listener = self._on_event
        self.interrupted = False
        self.failed_this_run = 0
        self.progress: Progress | None = None
        self.downloads = asyncio.Semaphore(8)

    # --- the run --------------------------------------------------------------------------
    async def run(self) -> RunSummary:
        await self._refresh_price()
        self._check_budget_possible()
        for c in self.cells:
            if c.id in self.state.cells:
                self._account(c.id)
        self.journal.write({
            "e": "run", "format": 1, "job": self.plan.job, "model": self.model.id,
            "manifest": str(self.plan.manifest.path), "manifest_sha256":
                self.plan.manifest.sha256, "schema_sha256": self.model.schema_sha256,
            "backend": self.backend, "base_url": self.client.base_url, "pid": os.getpid(),
            "concurrency": self.concurrency, "max_attempts": self.max_attempts,
            "cells": len(self.cells),
            "price": self.price, "budget": self.budget,
        })
        await self.journal.durable()
        loop = asyncio.get_running_loop()
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self._interrupt)
                installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass
        self.progress = Progress(self, enabled=self.options.progress)
        try:
            await self._schedule()
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            self.progress.close()
        if self.interrupted and self.options.cancel_on_interrupt:
            await self._cancel_live()
        return self._finish()

    def _interrupt(self) -> None:
        if self.interrupted:  # second Ctrl-C: leave now; every event is already in the file
            try:
                self.journal.sync()
            finally:
                os._exit(130)
        self.interrupted = True
        self.stop_submitting = self.stop_submitting or "interrupted"
        self.stop.set()
        log.warning("interrupted: not submitting more; live requests stay on the server "
                    "(Ctrl-C again to leave at once)")

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        self.tasks.discard(task)
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        if isinstance(exc, PipelineError):
            self.fatal = self.fatal or exc
        else:
            self.crash = self.crash or exc
        self.stop.set()
        asyncio.get_running_loop().create_task(self._halt_submitting(f"stopped: {exc}"))

    async def _schedule(self) -> None:
        videos = self.out / "videos"
        if videos.is_dir():  # partial downloads left by a process killed mid-download
            for stale in videos.glob(".*.part"):
                stale.unlink(missing_ok=True)
        to_submit: list[Cell] = []
        for cell in self.cells:
            rec = self.state.cells.get(cell.id)
            st = rec.state(self.max_attempts) if rec else PENDING
            if st == DONE:
                if not rec.compacted:
                    rec.compact(self._spend_by_cell.get(cell.id))
                continue
            if st in (QUEUED, RUNNING):
                if self._lost_with_old_sim(rec):
                    self._mark_lost(rec, "the simulator that held it has stopped")
                    to_submit.append(cell)
                    continue
                self.live += 1
                self._spawn(self._drive(cell, resume=True))
            elif st == DOWNLOADING:
                if self._lost_with_old_sim(rec):
                    self._mark_lost(rec, "its output lived on a simulator that has stopped")
                    to_submit.append(cell)
                    continue
                self._spawn(self._collect(cell))
            elif st == FAILED:
                if self.options.retry_failed:
                    self.journal.write({"e": "retry_failed", "cell": cell.id})
                    to_submit.append(cell)
            elif st == UNKNOWN:
                if self.options.resubmit_unknown:
                    self.journal.write({"e": "resubmit_unknown", "cell": cell.id,
                                        "n": rec.last.n})
                    to_submit.append(cell)
            else:  # pending, retry, cancelled
                to_submit.append(cell)
        for cell in to_submit:
            if not await self._take_slot():
                break
            self._spawn(self._drive(cell))
        while self.tasks:
            await asyncio.wait(set(self.tasks))
        if self.crash is not None:
            raise self.crash
        if self.fatal is not None:
            raise self.fatal

    def _lost_with_old_sim(self, rec: CellRecord) -> bool:
        """A simulator's requests die with it: those of an earlier sim run must be redone."""
        if self.backend != "sim" or rec.last is None:
            return False
        runs = [r for r in self.state.runs if r.get("base_url") == self.client.base_url]
        started = runs[0]["t"] if runs else time.time()
        return (rec.last.intent_at or 0) < started

    def _mark_lost(self, rec: CellRecord, why: str) -> None:
        self.journal.write({"e": "result", "cell": rec.id, "n": rec.last.n, "result": "lost",
                            "error": why})

    async def _take_slot(self) -> bool:
        async with self.slot_free:
            while self.live >= self.concurrency and not self.stop_submitting:
                await self.slot_free.wait()
            if self.stop_submitting:
                return False
            self.live += 1
            return True

    async def _give_slot(self) -> None:
        async with self.slot_free:
            self.live -= 1
            self.slot_free.notify_all()

    async def _halt_submitting(self, reason: str) -> None:
        if not self.stop_submitting:
            self.stop_submitting = reason
            log.warning("not submitting more cells: %s", reason)
        async with self.slot_free:
            self.slot_free.notify_all()

    # --- one cell -------------------------------------------------------------------------
    async def _drive(self, cell: Cell, resume: bool = False) -> None:
        """Submit (unless resuming), poll to the end, retry failures, then download."""
        holding = True
        try:
            while True:
                if not resume:
                    if self.stop_submitting:
                        return
                    if not await self._submit(cell):
                        return
                resume = False
                verdict = await self._poll(cell)
                if verdict is None:  # stopping: the request stays live on the server
                    return
                await self._give_slot()
                holding = False
                rec = self.state.cells[cell.id]
                state = rec.state(self.max_attempts)
                if verdict == "succeeded":
                    await self._collect(cell)
                    return
                if state == FAILED:
                    self.failed_this_run += 1
                    await self._check_failure_limits()
                if state != RETRY or self.stop_submitting:
                    return
                if not await self._take_slot():
                    return
                holding = True
        finally:
            if holding:
                await self._give_slot()
            if self.progress:
                self.progress.update()

    async def _check_failure_limits(self) -> None:
        run = self.plan.manifest.run
        if run.fail_fast:
            await self._halt_submitting("a cell failed and fail_fast is set")
        elif run.max_failures and self.failed_this_run >= run.max_failures:
            await self._halt_submitting(f"{self.failed_this_run} cells failed "
                                        f"(max_failures {run.max_failures})")

    async def _submit(self, cell: Cell) -> bool:
        """One attempt: journal the intent, POST, journal the answer. True when accepted."""
        rec = self.state.cell(cell.id)
        if not rec.described:
            self.journal.write({"e": "cell", "cell": cell.id, "label": cell.label,
                                "values": cell.values, "request": cell.request})
        estimate = costs.cell_cost(self.price, cell.request, self.fps)
        for attempt in range(SUBMIT_TRIES):
            if not await self._reserve(estimate):
                return False
            n = len(rec.attempts) + 1
            self.journal.write({"e": "intent", "cell": cell.id, "n": n})
            await self.journal.durable()
            _crash_point("after_intent")
            self.submitting.add(cell.id)
            try:
                sub = await self.client.submit(self.model.id, cell.request,
                                               base_dir=self.plan.manifest.folder,
                                               image_fields=self.image_fields)
            except SubmitError as exc:
                self.submitting.discard(cell.id)
                self.reserved -= estimate or 0.0
                permanent = exc.kind == NOT_ACCEPTED and bool(getattr(exc, "permanent", False))
                self.journal.write({"e": "submit_failed", "cell": cell.id, "n": n,
                                    "kind": exc.kind, "error": exc.message,
                                    "permanent": permanent})
                await self.journal.durable()
                if isinstance(exc.error, AuthError):
                    self.fatal = exc.error
                    await self._halt_submitting("the API refused the token")
                    self.stop.set()
                    return False
                if exc.kind != NOT_ACCEPTED:
                    log.warning("cell %s: submit outcome unknown (%s); held as unknown",
                                cell.id, exc.message)
                    return False
                if permanent:
                    log.warning("cell %s: refused: %s", cell.id, exc.message)
                    self.failed_this_run += 1
                    await self._check_failure_limits()
                    return False
                wait = exc.retry_after or min(30.0, 0.5 * 2 ** attempt)
                if await self._sleep(wait):
                    return False
                continue
            except ClientError as exc:  # e.g. a local image that cannot be sent
                self.submitting.discard(cell.id)
                self.reserved -= estimate or 0.0
                self.journal.write({"e": "submit_failed", "cell": cell.id, "n": n,
                                    "kind": NOT_ACCEPTED, "error": str(exc), "permanent": True})
                await self.journal.durable()
                return False
            _crash_point("after_submit")
            self.submitting.discard(cell.id)
            self.reserved -= estimate or 0.0
            self.journal.write({"e": "submitted", "cell": cell.id, "n": n,
                                "request_id": sub.request_id})
            await self.journal.durable()
            return True
        return False

    async def _reserve(self, estimate: float | None) -> bool:
        if self.budget is None:
            return True
        committed = self.spent() + self.reserved
        if committed + (estimate or 0.0) > self.budget + 1e-9:
            await self._halt_submitting(
                f"the budget of {costs.money(self.budget)} would be crossed "
                f"({costs.money(committed)} committed, next cell {costs.money(estimate)})")
            return False
        self.reserved += estimate or 0.0
        return True

    async def _poll(self, cell: Cell) -> str | None:
        """Poll a live request to its end; the verdict, or None when the run is stopping."""
        rec = self.state.cells[cell.id]
        a = rec.last
        assert a is not None and a.request_id is not None
        now = time.time()
        p = Poll(submitted_at=a.submitted_at or now,
                 started_at=a.first_seen.get("in_progress"))
        calls = a.status_calls
        last_running_seen = None
        deadline = (a.submitted_at or now) + self.timeout
        while True:
            if await self._poll_sleep(p, a.status, a.queue_position, deadline):
                return None
            try:
                info = await self.client.status(a.request_id)
            except NotFound:
                self.journal.write({"e": "result", "cell": cell.id, "n": a.n, "result": "failed",
                                    "error": "the API no longer knows this request (404)",
                                    "calls": calls, "permanent": True})
                await self.journal.durable()
                return "failed"
            except AuthError as exc:
                self.fatal = exc
                self.stop.set()
                return None
            except ClientError as exc:
                log.warning("cell %s: status failed after retries (%s); will ask again",
                            cell.id, exc)
                p.polls += 1
                continue
            calls += 1
            p.polls += 1
            now = time.time()
            if info.status != a.status or info.queue_position != a.queue_position:
                self.journal.write({"e": "status", "cell": cell.id, "n": a.n,
                                    "status": info.status, "queue_position": info.queue_position,
                                    "calls": calls})
            if info.status == wire.IN_QUEUE:
                p.last_not_running = now
                p.queued = True
            elif info.status == wire.IN_PROGRESS:
                if p.started_at is None:
                    p.started_at = p.last_not_running or p.submitted_at
                last_running_seen = now
            if not info.finished:
                if now >= deadline:  # judged after asking: a resumed run first looks
                    await self._give_up(cell, a.n, a.request_id, calls)
                    return "failed"
                continue
            try:
                res = await self.client.result(a.request_id)
            except AuthError as exc:
                self.fatal = exc
                self.stop.set()
                return None
            except ClientError as exc:
                log.warning("cell %s: result failed (%s); will ask again", cell.id, exc)
                continue
            if res.status in (wire.IN_QUEUE, wire.IN_PROGRESS):
                continue
            if self.planner.observe_finish(p, now, last_running_seen,
                                           server_seconds(res.created_at, res.finished_at)):
                self.learned.set()  # wake pollers that chose their sleep knowing nothing
            outputs = ([res.video_url] if res.video_url else []) + \
                [u for u in res.outputs if u != res.video_url]
            self.journal.write({
                "e": "result", "cell": cell.id, "n": a.n, "result": res.status,
                "error": res.error, "cost": res.cost, "outputs": outputs, "calls": calls,
                "server_times": {"created_at": res.created_at, "finished_at": res.finished_at},
            })
            if res.status == "succeeded" and not outputs:
                self.journal.write({"e": "result", "cell": cell.id, "n": a.n,
                                    "result": "failed", "error": "succeeded without any output "
                                    "URL", "cost": res.cost, "calls": calls})
            await self.journal.durable()
            return self.state.cells[cell.id].last.result

    async def _give_up(self, cell: Cell, n: int, request_id: str, calls: int) -> None:
        """A request live longer than polling.timeout: cancel it if still queued, fail it."""
        outcome = None
        try:
            outcome = (await self.client.cancel(request_id)).outcome
        except ClientError:
            pass
        self.journal.write({"e": "result", "cell": cell.id, "n": n, "result": "failed",
                            "error": f"still live after {self.timeout:g} s (polling.timeout); "
                                     f"cancel: {outcome or 'no answer'}", "calls": calls})
        await self.journal.durable()

    async def _sleep(self, seconds: float) -> bool:
        """Sleep, or wake early when the run stops; True when stopping."""
        if self.stop.is_set():
            return True
        try:
            await asyncio.wait_for(self.stop.wait(), timeout=max(0.0, seconds))
            return True
        except asyncio.TimeoutError:
            return self.stop.is_set()

    async def _poll_sleep(self, p: Poll, status: str | None, queue_position: int | None,
                          deadline: float) -> bool:
        """Sleep until the next status call is due; re-plan once if the run learns meanwhile.
        True when stopping."""
        informed = self.learned.is_set()
        delay = self.planner.next_delay(p, time.time(), status, queue_position)
        wake = min(time.time() + delay, deadline)
        if not informed:
            waiter = asyncio.create_task(self.learned.wait())
            stopper = asyncio.create_task(self.stop.wait())
            try:
                await asyncio.wait({waiter, stopper}, timeout=max(0.0, wake - time.time()),
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
                stopper.cancel()
            if self.stop.is_set():
                return True
            if not self.learned.is_set():
                return False
            delay = self.planner.next_delay(p, time.time(), status, queue_position)
            wake = min(time.time() + delay, deadline)
        return await self._sleep(wake - time.time())

    # --- downloads ------------------------------------------------------------------------
    async def _collect(self, cell: Cell) -> None:
        """Download every output of the successful attempt, each retried on its own."""
        rec = self.state.cells[cell.id]
        won = rec.succeeded()
        if won is None:
            return
        folder = self.out / "videos"
        folder.mkdir(parents=True, exist_ok=True)
        for i, url in enumerate(won.outputs):
            if url in rec.files:
                continue
            name = cell.id + (f"-{i}" if i else "") + _suffix(url)
            for round_ in range(DOWNLOAD_TRIES):
                if self.stop.is_set():
                    return
                try:
                    async with self.downloads:
                        info = await self.client.download(url, folder / name)
                except OSError as exc:  # our disk, not the network: stop, do not retry
                    raise StateError(f"cannot write {folder / name}: {exc.strerror or exc}; "
                                     "free some space and run again to resume (the video is "
                                     "not lost: its URL is in the journal)") from None
                except DownloadError as exc:
                    self.journal.write({"e": "download_error", "cell": cell.id, "url": url,
                                        "error": str(exc)})
                    if await self._sleep(min(30.0, 1.0 * 2 ** round_)):
                        return
                    continue
                _crash_point("after_download")
                probe, check = await asyncio.to_thread(self._probe, folder / name, cell)
                self.journal.write({"e": "download", "cell": cell.id, "url": url,
                                    "path": f"videos/{name}", "size": info.size,
                                    "sha256": info.sha256, "probe": probe, "check": check})
                await self.journal.durable()
                break
        if rec.state(self.max_attempts) == DONE:
            rec.compact(self._spend_by_cell.get(cell.id))
        if self.progress:
            self.progress.update()

    def _probe(self, path: Path, cell: Cell) -> tuple[dict | None, dict]:
        try:
            info = media.probe(path)
        except ValueError as exc:
            return None, {"ok": False, "problems": [str(exc)], "resolution": "not checked"}
        return info, media.check(info, cell.request, fps=self.fps,
                                 check_resolution=self.backend != "sim")

    # --- cancel, budget, price ----------------------------------------------------------
    async def _cancel_live(self) -> None:
        await cancel_live(self.state, self.client, self.journal,
                          {c.id for c in self.cells}, self.max_attempts)

    def spent(self) -> float:
        """USD committed so far: actual costs where the API said, estimates elsewhere."""
        return self._spent

    def _cell_spend(self, rec: CellRecord | None, request: dict) -> float:
        if rec is None:
            return 0.0
        if rec.compacted:
            return rec.done_cost or 0.0
        total = 0.0
        for a in rec.attempts:
            if a.request_id is None or a.result in ("cancelled", "lost"):
                continue
            if a.cost is not None:
                total += a.cost
            else:
                total += costs.cell_cost(self.price, request, self.fps) or 0.0
        return total

    def _on_event(self, event: dict) -> None:
        if event["e"] in ("submitted", "result", "cancel"):
            self._account(event["cell"])
        if self.journal.low_space and self.fatal is None:
            self.fatal = StateError(f"the disk holding {self.out} is full: stopped before it "
                                    "could lose track of a paid request; free some space and "
                                    "run again to resume")
            self.stop_submitting = self.stop_submitting or "the disk is full"
            self.stop.set()

    def _account(self, cell_id: str) -> None:
        """Recount one cell's spend after an event that may change it (O(1) per event)."""
        rec = self.state.cells.get(cell_id)
        cell = self.by_id.get(cell_id)
        new = self._cell_spend(rec, cell.request if cell else (rec.request if rec else {}))
        self._spent += new - self._spend_by_cell.get(cell_id, 0.0)
        self._spend_by_cell[cell_id] = new

    async def _refresh_price(self) -> None:
        try:
            entry = await self.client.model_entry(self.model.id)
        except ClientError as exc:
            if isinstance(exc, AuthError):
                raise
            log.info("price not refreshed from the catalog: %s", exc)
            return
        sheet = costs.from_catalog(entry.price_usd, entry.price_unit)
        if sheet is not None:
            self.price = sheet

    def _check_budget_possible(self) -> None:
        if self.budget is None or self.price is not None:
            return
        if self.options.allow_unknown_price or self.plan.manifest.run.allow_unknown_price:
            log.warning("the price of %s is unknown: the budget cannot be enforced",
                        self.model.id)
            return
        raise BudgetError(f"the price of {self.model.id} is unknown (the catalog did not say), so "
                          f"the budget of {costs.money(self.budget)} cannot be enforced; state a "
                          "price in run.price, or pass --allow-unknown-price")

    def _finish(self) -> RunSummary:
        ids = [c.id for c in self.cells]
        counts = self.state.counts(self.max_attempts, ids)
        in_plan = {c.id for c in self.plan.cells}
        counts["orphaned"] = sum(1 for cid in self.state.cells if cid not in in_plan)
        all_done = counts[DONE] == len(ids)
        exit_code = 130 if self.interrupted else (0 if all_done else 1)
        stopped = scrub(self.stop_submitting) if self.stop_submitting else None
        self.journal.write({"e": "end", "exit": exit_code, "stopped": stopped,
                            "counts": counts})
        self.journal.sync()
        self._write_status()
        return RunSummary(self.out, counts, exit_code, self.spent(),
                          stopped=self.stop_submitting, interrupted=self.interrupted,
                          cell_events=self.state.cell_events)

    def _write_status(self) -> None:
        """status.json: what `pipeline status` prints, valid while the journal stays as it is."""
        from .jobstatus import SUMMARY, summarize

        cells = [{"id": c.id, "label": c.label, "request": c.request} for c in self.plan.cells]
        self.state.valid_bytes = os.fstat(self.journal.fd).st_size
        data = summarize(self.plan.manifest, self.out, self.state, cells, running=False)
        write_atomic(self.out / SUMMARY, json.dumps(data, indent=2, ensure_ascii=False))


async def cancel_live(state: JobState, client: RunComfyClient, journal: Journal,
                      ids: set[str], max_attempts: int) -> dict[str, int]:
    """Ask the server to cancel every live request among `ids`; journal each outcome."""
    outcomes: dict[str, int] = {}
    for cid in ids:
        rec = state.cells.get(cid)
        if rec is None or rec.state(max_attempts) not in (QUEUED, RUNNING):
            continue
        a = rec.last
        try:
            info = await client.cancel(a.request_id)
            outcome = info.outcome
        except ClientError as exc:
            outcome = f"error: {exc}"
        journal.write({"e": "cancel", "cell": cid, "n": a.n, "outcome": outcome})
        if outcome == wire.OUTCOME_CANCELLED:
            journal.write({"e": "result", "cell": cid, "n": a.n, "result": "cancelled",
                           "error": "cancelled on request while queued (not billed)",
                           "cost": 0.0})
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    await journal.durable()
    return outcomes


def _suffix(url: str) -> str:
    from urllib.parse import urlparse

    path = urlparse(url).path.lower()
    for suffix in VIDEO_SUFFIXES:
        if path.endswith(suffix):
            return suffix
    return ".mp4"

