"""When to ask again: polling that is cheap and prompt, and learns from the run.

Until a cell has finished, cells are polled on a jittered exponential backoff from `initial`.
From the first finish on, the run knows how long generations take (exactly, from the server's
own created_at/finished_at when the request never queued; else from our polls), and how fast
queued requests reach a slot. A live cell is then asked first when the quickest generations
end, then at short steps that grow; a queued cell when its queue position should have drained.
Sleeping pollers are woken when the first finish teaches the run something, so the first wave
does not wait out a backoff chosen in ignorance.
"""

from __future__ import annotations

import random
import statistics
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class Poll:
    """What the planner knows of one live request."""

    submitted_at: float
    started_at: float | None = None  # earliest time it may have started running
    last_not_running: float | None = None
    queued: bool = False  # ever seen in_queue
    polls: int = 0
    late_polls: int = 0  # polls after the expected earliest finish


def server_seconds(created_at: str | None, finished_at: str | None) -> float | None:
    """finished_at - created_at from the server's ISO-8601 timestamps, when both parse."""
    try:
        start = datetime.fromisoformat(str(created_at).replace("Z", "+00:00"))
        end = datetime.fromisoformat(str(finished_at).replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None
    seconds = (end - start).total_seconds()
    return seconds if seconds >= 0 else None


@dataclass
class PollPlanner:
    """Shared by all cells of a run: observes finishes, proposes the next delay."""

    initial: float = 2.0
    max_interval: float = 30.0
    min_interval: float = 0.2
    samples: deque = field(default_factory=lambda: deque(maxlen=100))
    finishes: deque = field(default_factory=lambda: deque(maxlen=64))
    rng: random.Random = field(default_factory=random.Random)

    def _quantile(self, q: float) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

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

    def _jitter(self, delay: float) -> float:
        return max(self.min_interval, min(self.max_interval, delay * self.rng.uniform(0.9, 1.1)))

    def next_delay(self, p: Poll, now: float, status: str | None,
                   queue_position: int | None) -> float:
        """Seconds to wait before the next status call of this cell."""
        if status == "in_queue":
            pace = self.pace()
            if pace and queue_position:
                return self._jitter(max(self.min_interval, pace * queue_position * 0.8))
            return self._jitter(self.initial * 1.5 ** min(p.polls, 8))
        if not self.samples:
            return self._jitter(self.initial * 1.5 ** min(p.polls, 8))
        # Live (or just submitted: it starts at once unless the server queues it).
        start = p.started_at if p.started_at is not None else p.submitted_at
        earliest = start + self._quantile(0.1)
        if now < earliest - self.min_interval / 2:
            return max(self.min_interval / 2, earliest - now)
        spread = self._quantile(0.9) - self._quantile(0.1)
        step = max(self.min_interval, spread / 10, (self.typical() or 0) * 0.02)
        delay = step * 1.4 ** p.late_polls
        p.late_polls += 1
        return self._jitter(delay)
