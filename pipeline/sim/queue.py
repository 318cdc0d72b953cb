"""The simulated service's queue: FIFO, at most `capacity` generations at once, driven by a clock.

Nothing runs in the background. Each request's start and finish times are worked out lazily
from a monotonic clock whenever anyone asks (`_advance`): the queue pops its head whenever the
earliest-free slot became free, at exactly that moment, so the answers are the same as if a
scheduler had been promoting requests all along, whether or not anybody polled. Thousands of
waiting requests therefore cost memory only.

Randomness per request (generation time, whether it fails, its error text; not its id) comes from
`random.Random(f"{seed}:{n}")` for the n-th accepted submission, so it is reproducible under a
seed whatever the order or timing of other calls.
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .. import wire
from ..jsonio import canonical

# Internal request states; /status and /result map them to the configured words.
STATES = (wire.IN_QUEUE, wire.IN_PROGRESS, wire.SUCCEEDED, wire.FAILED, wire.CANCELLED)
FAILURE_MESSAGES = (
    "simulated failure: the model refused the prompt",
    "simulated failure: generation timed out on the worker",
    "simulated failure: the input image could not be processed",
)


def body_key(model_id: str, body: Any) -> str:
    """A digest of the canonical JSON of (model, body): equal bodies, equal keys."""
    return "sha256:" + hashlib.sha256(canonical([model_id, body]).encode()).hexdigest()


@dataclass(eq=False)
class SimRequest:
    """One accepted submission; times are on the engine's monotonic clock."""

    id: str
    model_id: str
    body: dict[str, Any]
    key: str
    ordinal: int  # n-th accepted submission (seeds its randomness)
    qn: int  # n-th entry into the queue (for queue positions)
    submitted: float
    duration: float
    error: str | None  # set when this generation is going to fail
    started: float | None = None
    finished: float | None = None
    cancelled_at: float | None = None
    # Download faults: the output 404s until this time; at most one outage per request.
    outage_until: float = 0.0
    outage_used: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class View:
    """What a request looks like at one instant."""

    request: SimRequest
    state: str  # one of STATES
    queue_position: int | None  # 1-based, only while in_queue
    now: float


class QueueEngine:
    """Accepts, schedules, cancels and reports requests; thread-safe (one lock, short holds)."""

    def __init__(self, capacity: int, gen_time: tuple[float, float], fail_rate: float,
                 seed: int, clock: Callable[[], float] = time.monotonic):
        self.capacity = capacity
        self.gen_time = gen_time
        self.fail_rate = fail_rate
        self.seed = seed
        self.clock = clock
        self._lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """Forget every request and restart the per-request random streams."""
        with self._lock:
            self._requests: dict[str, SimRequest] = {}
            self._by_key: dict[str, list[SimRequest]] = {}
            self._queue: deque[SimRequest] = deque()
            self._slots = [0.0] * self.capacity  # heap of times each slot becomes free
            self._started = 0  # requests that have left the queue by starting
            self._cancelled_qns: list[int] = []  # sorted qn of requests cancelled while queued
            self._ordinal = 0
            self._mono0 = self.clock()
            self._wall0 = time.time()

    # -- time -------------------------------------------------------------------------------

    def _advance(self, now: float) -> None:
        """Start every queued request whose slot has become free by `now`, at that moment."""
        queue, slots = self._queue, self._slots
        while queue and slots[0] <= now:
            head = queue.popleft()
            if head.cancelled_at is not None:
                continue
            free = heapq.heappop(slots)
            head.started = max(free, head.submitted)
            head.finished = head.started + head.duration
            self._started += 1
            heapq.heappush(slots, head.finished)

    def iso(self, t: float) -> str:
        """ISO-8601 UTC wall time of a monotonic instant."""
        wall = self._wall0 + (t - self._mono0)
        return datetime.fromtimestamp(wall, timezone.utc).isoformat(timespec="milliseconds") \
            .replace("+00:00", "Z")

    def _state(self, req: SimRequest, now: float) -> str:
        if req.cancelled_at is not None:
            return wire.CANCELLED
        if req.started is None:
            return wire.IN_QUEUE
        assert req.finished is not None
        if now < req.finished:
            return wire.IN_PROGRESS
        return wire.FAILED if req.error else wire.SUCCEEDED

    def _view(self, req: SimRequest, now: float) -> View:
        state = self._state(req, now)
        position = None
        if state == wire.IN_QUEUE:
            ahead_cancelled = bisect.bisect_left(self._cancelled_qns, req.qn)
            position = req.qn - self._started - ahead_cancelled + 1
        return View(req, state, position, now)

    # -- operations -------------------------------------------------------------------------

    def submit(self, model_id: str, body: dict[str, Any]) -> tuple[View, bool]:
        """Accept a body; returns its view and whether it duplicates a live or good request."""
        with self._lock:
            now = self.clock()
            self._advance(now)
            key = body_key(model_id, body)
            earlier = self._by_key.setdefault(key, [])
            duplicate = any(self._state(r, now) not in (wire.FAILED, wire.CANCELLED)
                            for r in earlier)
            rng = random.Random(f"{self.seed}:{self._ordinal}")
            duration = rng.uniform(*self.gen_time)
            error = rng.choice(FAILURE_MESSAGES) if rng.random() < self.fail_rate else None
            req = SimRequest(id=str(uuid.uuid4()),  # random, so ids never repeat across runs
                             model_id=model_id, body=body, key=key, ordinal=self._ordinal,
                             qn=self._ordinal, submitted=now, duration=duration, error=error)
            self._ordinal += 1
            self._requests[req.id] = req
            earlier.append(req)
            self._queue.append(req)
            self._advance(now)
            return self._view(req, now), duplicate

    def view(self, request_id: str) -> View | None:
        """The request as it stands now, or None if unknown."""
        with self._lock:
            req = self._requests.get(request_id)
            if req is None:
                return None
            now = self.clock()
            self._advance(now)
            return self._view(req, now)

    def cancel(self, request_id: str) -> tuple[View, bool] | None:
        """Cancel if still queued; returns the view after the attempt and whether it cancelled."""
        with self._lock:
            req = self._requests.get(request_id)
            if req is None:
                return None
            now = self.clock()
            self._advance(now)
            if self._state(req, now) != wire.IN_QUEUE:
                return self._view(req, now), False
            req.cancelled_at = req.finished = now
            bisect.insort(self._cancelled_qns, req.qn)
            return self._view(req, now), True

    def succeeded_since(self, known: set[str]) -> list[View]:
        """The requests succeeded by now whose ids are not in `known` (the wallet's bills)."""
        with self._lock:
            now = self.clock()
            self._advance(now)
            return [self._view(r, now) for r in self._requests.values()
                    if r.id not in known and self._state(r, now) == wire.SUCCEEDED]

    def counts(self) -> dict[str, int]:
        """How many requests are in each state now."""
        with self._lock:
            now = self.clock()
            self._advance(now)
            out = dict.fromkeys(STATES, 0)
            out[wire.IN_QUEUE] = len(self._queue) - sum(
                1 for r in self._queue if r.cancelled_at is not None)
            for req in self._requests.values():
                if req.started is not None or req.cancelled_at is not None:
                    out[self._state(req, now)] += 1
            return out

    def __len__(self) -> int:
        with self._lock:
            return len(self._requests)
