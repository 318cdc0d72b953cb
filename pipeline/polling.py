"""When to ask again: polling that is cheap and prompt, and learns from the run.

Until cells have finished, a cell is polled on a jittered exponential backoff from
`initial`. Once the run has seen cells finish, it knows the typical generation time T and the
pace at which queued requests start: a running cell is next asked at its expected finish, then
at short, growing steps; a queued cell is asked when its queue position should have drained.
"""

from __future__ import annotations

import random
import statistics
from collections import deque
from dataclasses import dataclass, field


@dataclass
class Poll:
    """What the planner knows of one live request."""

    submitted_at: float
    started_at: float | None = None  # earliest time it may have started running
    last_not_running: float | None = None
    polls: int = 0
    late_polls: int = 0  # polls after the expected finish


@dataclass
class PollPlanner:
    """Shared by all cells of a run: observes finishes, proposes the next delay."""

    initial: float = 2.0
    max_interval: float = 30.0
    min_interval: float = 0.2
    samples: deque = field(default_factory=lambda: deque(maxlen=64))
    finishes: deque = field(default_factory=lambda: deque(maxlen=64))
    rng: random.Random = field(default_factory=random.Random)

    def typical(self) -> float | None:
        """Median generation time seen so far, once there are a few samples."""
        return statistics.median(self.samples) if len(self.samples) >= 2 else None

    def observe_finish(self, p: Poll, now: float, last_running_seen: float | None) -> None:
        """Learn from a cell found finished at `now`."""
        self.finishes.append(now)
        start = p.started_at if p.started_at is not None else p.submitted_at
        # It finished somewhere between the last poll that saw it running and now.
        end = (last_running_seen + now) / 2 if last_running_seen else now
        if end > start:
            self.samples.append(end - start)

    def pace(self) -> float | None:
        """Seconds between finishes lately (how fast queued requests reach a slot)."""
        if len(self.finishes) < 3:
            return None
        times = list(self.finishes)
        span = times[-1] - times[0]
        return span / (len(times) - 1) if span > 0 else None

    def _jitter(self, delay: float) -> float:
        return max(self.min_interval, min(self.max_interval, delay * self.rng.uniform(0.9, 1.1)))

    def next_delay(self, p: Poll, now: float, status: str | None,
                   queue_position: int | None) -> float:
        """Seconds to wait before the next status call of this cell."""
        typical = self.typical()
        if status is None:  # just submitted, never polled
            if typical is not None:
                return self._jitter(max(self.min_interval, typical * 0.9))
            return self._jitter(self.initial)
        if status == "in_queue":
            pace = self.pace()
            if pace and queue_position:
                return self._jitter(max(self.min_interval, pace * queue_position * 0.8))
            return self._jitter(self.initial * 1.5 ** min(p.polls, 8))
        if status == "in_progress" and typical is not None and p.started_at is not None:
            expected = p.started_at + typical
            if now < expected - self.min_interval:
                return self._jitter(expected - now)
            step = max(self.min_interval, typical * 0.05) * 1.6 ** p.late_polls
            p.late_polls += 1
            return self._jitter(step)
        return self._jitter(self.initial * 1.5 ** min(p.polls, 8))
