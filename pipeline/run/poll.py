"""Polling a live request to its end, and when to ask again: cheap, prompt, learning from the run.

Until a cell has finished, cells are polled on a jittered exponential backoff from `initial`.
A cell's time as the job's measured durations or its model's stated time give it (`expected`:
the canary's, say) brings a poll forward to when the cell should end, never later than the
backoff would ask. From the first finish on, the run knows how long generations take (exactly,
from the server's own created_at/finished_at when the request never queued; else from our
polls), and how fast queued requests reach a slot. A live cell is then asked at points of that
measured distribution (SCHEDULE: the 25th percentile first, then at gaps that shrink as the
end grows likelier, the slowest generation seen last: about 3 status calls a cell for a mean
lag of a tenth of the spread), then at short steps that grow; a queued cell when its queue
position should have drained. Sleeping pollers are woken when the first finish teaches the run
something, so the first wave does not wait out a backoff chosen in ignorance. (The planner's
generation times are for polling; how long a cell holds its slot, for the ETA, is
pipeline.job.timing.)
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import statistics
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone

from .. import wire
from ..client import finished_result, known_live, pick_outputs
from ..errors import ClientError, NotFound
from ..job import journal as ev
from ..prepare.expand import Cell
from .context import RunContext
from .live import LiveRequests

log = logging.getLogger("pipeline.run")

NO_OUTPUT = "succeeded without any output URL"  # a result's error: nothing to download
# Where a live cell is asked, as quantiles of the generation times measured: for times spread
# evenly, gaps of .25 .21 .18 .15 .12 .09 of the spread give ~2.95 calls and a mean lag of
# 0.18 of the spread (even gaps would need 3 calls for 0.2, 2.5 calls for 0.25).
SCHEDULE = (0.25, 0.46, 0.64, 0.79, 0.91, 1.0)


@dataclass
class Poll:
    """What the planner knows of one live request."""

    submitted_at: float
    started_at: float | None = None  # earliest time it may have started running
    last_not_running: float | None = None
    queued: bool = False  # ever seen in_queue
    polls: int = 0
    late_polls: int = 0  # polls after the expected earliest finish
    scout: bool = True  # among the oldest live requests (they find the run's first end)
    waited_until: float = 0.0  # last seen waiting in the queue (by the queue watch, maybe)
    expected: float | None = None  # seconds its measured or stated time says it takes
    scheduled: int = 0  # points of SCHEDULE already asked at


def server_seconds(created_at: str | None, finished_at: str | None) -> float | None:
    """finished_at - created_at from the server's ISO-8601 timestamps, when both parse."""
    span = server_span(created_at, finished_at)
    return span[1] - span[0] if span is not None else None


def server_span(created_at: str | None, finished_at: str | None) -> tuple[float, float] | None:
    """(created_at, finished_at) as POSIX seconds on the server's clock, when both parse (a
    time without a zone is taken as UTC) and the end is not before the start."""
    try:
        start = datetime.fromisoformat(str(created_at).replace("Z", "+00:00"))
        end = datetime.fromisoformat(str(finished_at).replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None
    if start.tzinfo is None:
        start = start.replace(tzinfo=timezone.utc)
    if end.tzinfo is None:
        end = end.replace(tzinfo=timezone.utc)
    span = start.timestamp(), end.timestamp()
    return span if span[1] >= span[0] else None


@dataclass
class PollPlanner:
    """Shared by all cells of a run: observes finishes, proposes the next delay."""

    initial: float = 2.0
    max_interval: float = 30.0
    lazy: bool = False  # concurrency auto: the queue watch keeps slots busy (see _lazy_delay)
    tail: bool = False  # concurrency auto, nothing left to send: sooner than lazy
    min_interval: float = 0.2
    samples: deque[float] = field(default_factory=lambda: deque(maxlen=100))
    finishes: deque[float] = field(default_factory=lambda: deque(maxlen=64))
    rng: random.Random = field(default_factory=random.Random)

    def _quantile(self, q: float) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def _between(self, q: float) -> float:
        """The q-quantile of the samples, interpolated between neighbours (q=1: the largest)."""
        ordered = sorted(self.samples)
        at = q * (len(ordered) - 1)
        low = int(at)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (at - low)

    def typical(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None

    def observe_finish(self, p: Poll, now: float, last_running_seen: float | None,
                       server_time: float | None = None) -> bool:
        """Learn from a cell found finished at `now`; True when this was the first lesson."""
        first = not self.samples
        self.finishes.append(now)
        if server_time is not None and not p.queued:
            self.samples.append(server_time)
        else:
            start = p.started_at if p.started_at is not None else p.submitted_at
            end = (last_running_seen + now) / 2 if last_running_seen else now
            if end > start:
                self.samples.append(end - start)
        return first and bool(self.samples)

    def pace(self) -> float | None:
        """Seconds between finishes lately (how fast queued requests reach a slot)."""
        if len(self.finishes) < 3:
            return None
        times = list(self.finishes)
        span = times[-1] - times[0]
        return span / (len(times) - 1) if span > 0 else None

    def _lazy_delay(self, p: Poll, now: float, status: str | None,
                    queue_position: int | None, q: float = 1.0, steps: float = 4) -> float:
        """With `concurrency: auto` a late look at a finished request idles no slot (the queue
        watch lends its slot out at once), so each request is asked when the slowest of its
        kind so far would have ended (`q`), then at steps that grow: about one call a request.
        (In the run's tail, with nothing left to send, sooner: q 0.5.)"""
        start = p.started_at if p.started_at is not None else p.submitted_at
        if status == "in_queue" and queue_position:
            start = max(start, now + (self.pace() or 0.0) * queue_position)
        elif p.started_at is None:  # it may have waited behind the couple kept queued
            start = max(start + (self.pace() or 0.0) * 2, p.waited_until)
        due = start + self._quantile(q)
        if len(self.samples) < 10:  # the first ends are the quickest: allow for slower ones
            due = max(due, start + (self.typical() or 0.0) * (0.8 + 0.5 * q))
        if now < due - self.min_interval / 2:
            return max(self.min_interval / 2, due - now)
        spread = self._quantile(0.9) - self._quantile(0.1)
        step = max(self.min_interval, spread / steps, (self.typical() or 0) * 0.4 / steps)
        delay = step * 1.5 ** p.late_polls
        p.late_polls += 1
        return self._jitter(delay)

    def watch_interval(self, waiting: int | None, learning: bool = False) -> float:
        """How long the queue watch waits before it asks again: about half the time the server
        takes to start the `waiting` requests it last saw queued (so sooner when the queue is
        short: a slot is about to idle), a tenth of a second while the capacity is still being
        learnt (each look may double the limit), a quarter before anything has ended."""
        pace = self.pace()
        if learning:
            return 0.1
        if pace is None:
            return 0.25
        return min(2.0, max(0.1, pace * max(0.5, waiting or 0) / 2))

    def _expected_delay(self, p: Poll, now: float, backoff: float) -> float:
        """Knowing nothing of this run's generations yet: the backoff's pause, shortened to
        end when the cell's expected time says it ends (a canary is asked as it ends, not at
        the next step of a backoff that knows nothing)."""
        if not p.expected:
            return backoff
        start = p.started_at if p.started_at is not None else p.submitted_at
        due = start + p.expected
        if now < due - self.min_interval / 2:
            return max(self.min_interval / 2, min(backoff, due - now))
        return backoff

    def _jitter(self, delay: float) -> float:
        return max(self.min_interval, min(self.max_interval, delay * self.rng.uniform(0.9, 1.1)))

    def next_delay(self, p: Poll, now: float, status: str | None,
                   queue_position: int | None) -> float:
        """Seconds to wait before the next status call of this cell."""
        if self.lazy and self.samples:
            return self._lazy_delay(p, now, status, queue_position)
        if self.lazy and not p.scout:  # the oldest requests find the first end; the rest wait
            return self.max_interval  # (and re-plan when it is found)
        if self.tail and self.samples:
            return self._lazy_delay(p, now, status, queue_position, q=0.5, steps=8)
        if status == "in_queue":
            pace = self.pace()
            if pace and queue_position:
                return self._jitter(max(self.min_interval, pace * queue_position * 0.8))
            return self._jitter(self.initial * 1.5 ** min(p.polls, 8))
        if not self.samples:
            return self._expected_delay(p, now, self._jitter(self.initial * 1.5 ** min(p.polls, 8)))
        # Live (or just submitted: it starts at once unless the server queues it): asked at
        # the points of SCHEDULE still ahead, then at short steps that grow.
        start = p.started_at if p.started_at is not None else p.submitted_at
        while p.scheduled < len(SCHEDULE):
            due = start + self._between(SCHEDULE[p.scheduled])
            if now < due - self.min_interval / 2:
                return max(self.min_interval / 2, due - now)
            p.scheduled += 1  # (passed while asleep or asking: the next one)
        spread = self._quantile(0.9) - self._quantile(0.1)
        step = max(self.min_interval, spread / 10, (self.typical() or 0) * 0.02)
        delay = step * 1.4 ** p.late_polls
        p.late_polls += 1
        return self._jitter(delay)


# --- the poll loop ---------------------------------------------------------------------------
async def poll(run: RunContext, cell: Cell) -> str | None:
    """Poll a live request to its end; the verdict, or None when the run is stopping."""
    cell_id = cell.id
    control = run.control
    rec = run.state.cells[cell_id]
    a = rec.last
    assert a is not None and a.request_id is not None
    now = time.time()
    p = Poll(submitted_at=a.submitted_at or now, started_at=a.first_seen.get("in_progress"),
             expected=_expected(run, cell_id))
    calls = a.status_calls
    last_running_seen = None
    deadline = (a.submitted_at or now) + run.timeout
    while True:
        if await _sleep_until_due(run, cell_id, p, a.status, a.queue_position, deadline):
            return None
        if a.result is not None:  # ended meanwhile by another part of the run (a cancel)
            return a.result
        asked = time.time()
        try:
            info = await run.client.status(a.request_id)
        except NotFound:
            run.write(ev.result(cell_id, a.n, "failed", calls=calls, permanent=True,
                                error="the API no longer knows this request (404)"))
            await run.journal.durable()
            return "failed"
        except ClientError as exc:
            if control.stopping.fail_on(exc):  # the request stays live; the next run polls it
                return None
            log.warning("cell %s: status failed after retries (%s); will ask again",
                        cell_id, exc)
            p.polls += 1
            continue
        calls += 1
        p.polls += 1
        now = time.time()
        control.requests.seen(cell_id, info.status, info.queue_position, now, asked)
        run.watch.status(cell_id, info.raw.get("status"))
        if not info.finished:
            unknown_word(run, info.status, "/status")
        if info.status != a.status or info.queue_position != a.queue_position:
            run.write(ev.status_seen(cell_id, a.n, info.status, info.queue_position, calls))
        if info.status == wire.IN_QUEUE:
            p.last_not_running = now
            p.queued = True
        elif info.status == wire.IN_PROGRESS:
            if p.started_at is None:  # (the queue watch may have seen it waiting since)
                p.started_at = max(p.last_not_running or p.submitted_at,
                                   control.requests.waited_until.get(cell_id, 0.0))
            last_running_seen = now
        if not info.finished:
            if now >= deadline:  # judged after asking: a resumed run first looks
                await _give_up(run, cell_id, a.n, a.request_id, calls)
                return "failed"
            continue
        try:
            res = await run.client.result(a.request_id)
        except ClientError as exc:
            if control.stopping.fail_on(exc):
                return None
            log.warning("cell %s: result failed (%s); will ask again", cell_id, exc)
            continue
        if not finished_result(res.status):  # live (or a word we do not know): ask again
            unknown_word(run, res.status, "/result")
            continue
        run.watch.result(cell_id, res.raw.get("status"), res.video_from, res.cost)
        if run.planner.observe_finish(p, now, last_running_seen,
                                      server_seconds(res.created_at, res.finished_at)):
            control.learned.set()  # wake pollers that chose their sleep knowing nothing
        # what the model made: under its output schema's keys, else any URL of `output` that
        # is not one of the request's own inputs (results may echo their inputs)
        outputs = pick_outputs(res.raw.get(wire.OUTPUT), run.model_of(cell).output_keys(),
                               cell.request)
        if res.status == "succeeded" and not outputs:
            run.write(ev.result(cell_id, a.n, "failed", cost=res.cost, calls=calls,
                                error=NO_OUTPUT))
        else:
            run.write(ev.result(cell_id, a.n, res.status, error=res.error, cost=res.cost,
                                outputs=outputs, calls=calls,
                                server_times={"created_at": res.created_at,
                                              "finished_at": res.finished_at}))
        await run.journal.durable()
        last = run.state.cells[cell_id].last  # (the result just written)
        return last.result if last is not None else None


def _expected(run: RunContext, cell_id: str) -> float | None:
    """Seconds a cell should take: measured on the job's cells of its kind, else its model's
    stated time (the simulator's own with the built-in one: pipeline.job.timing)."""
    planned = run.tally.planned.get(cell_id)
    return run.tally.timings.per_cell(planned.key) if planned is not None else None


def unknown_word(run: RunContext, word: str, where: str) -> None:
    """Show once per run a status word that neither the docs nor RunComfy's own code name: the
    request is polled on as live (polling.timeout bounds it), never failed for it."""
    if known_live(word) or word in run.unknown_words:
        return
    run.unknown_words.add(word)
    log.warning("the API answered %s with the unknown status word %r: polling on as if the "
                "request were still running (polling.timeout bounds the wait)", where, word)


async def _give_up(run: RunContext, cell_id: str, n: int, request_id: str, calls: int) -> None:
    """A request live longer than polling.timeout: cancel it if still queued, fail it."""
    outcome = None
    try:
        outcome = (await run.client.cancel(request_id)).outcome
    except ClientError:
        pass
    run.write(ev.result(cell_id, n, "failed", calls=calls,
                        error=f"still live after {run.timeout:g} s (polling.timeout); "
                              f"cancel: {outcome or 'no answer'}"))
    await run.journal.durable()


def _scout(requests: LiveRequests, cell_id: str, scouts: int = 2) -> bool:
    """Whether `cell_id` is among the `scouts` oldest live requests (or order is unknown)."""
    if cell_id not in requests.order:
        return True
    return cell_id in itertools.islice(requests.order, scouts)


async def _sleep_until_due(run: RunContext, cell_id: str, p: Poll, status: str | None,
                           queue_position: int | None, deadline: float) -> bool:
    """Sleep until the next status call is due; re-plan once if the run learns meanwhile (its
    first finish), or stops polling lazily (nothing left to submit). True when stopping."""
    control = run.control
    replan = [e for e in (control.learned, control.eager) if not e.is_set()]
    if not run.planner.lazy and control.eager in replan:
        replan.remove(control.eager)
    p.scout = _scout(control.requests, cell_id)
    p.waited_until = max(p.waited_until, control.requests.waited_until.get(cell_id, 0.0))
    delay = run.planner.next_delay(p, time.time(), status, queue_position)
    wake = min(time.time() + delay, deadline)
    if replan:
        waiters = {asyncio.create_task(e.wait()) for e in (*replan, control.stopping.everything)}
        try:
            await asyncio.wait(waiters, timeout=max(0.0, wake - time.time()),
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
        if control.stopping.everything.is_set():
            return True
        if not any(e.is_set() for e in replan):
            return False
        delay = run.planner.next_delay(p, time.time(), status, queue_position)
        wake = min(time.time() + delay, deadline)
    return await control.stopping.sleep(wake - time.time())


# --- the queue watch (concurrency: auto) -----------------------------------------------------
async def watch_queue(run: RunContext) -> None:
    """Keep asking the newest live request how it stands: every other request of ours is
    before it, so its answer (waiting at a position, or running) says how many slots of the
    account are free (pipeline.run.auto) while each cell's own poller may look late."""
    control, stopping, requests = run.control, run.control.stopping, run.control.requests
    waiting: int | None = None  # how many waited up to the newest request, as last seen
    while not stopping.everything.is_set() and not control.eager.is_set():  # (eager: all sent)
        auto = control.auto
        if auto is None:  # (never: only concurrency: auto watches the queue)
            return
        if await stopping.sleep(run.planner.watch_interval(waiting, auto.capacity is None)):
            return
        newest = next(reversed(requests.order), None) if requests.order else None
        a = run.state.cells[newest].last if newest is not None else None
        if newest is None or a is None or a.request_id is None:
            continue
        asked = time.time()
        try:
            info = await run.client.status(a.request_id)
        except ClientError:
            continue
        requests.seen(newest, info.status, info.queue_position, time.time(), asked)
        waiting = info.queue_position if info.status == wire.IN_QUEUE else 0
