"""How long a cell takes, and when a job should end: one estimate for plan, status and progress.

A cell's duration is the time its successful attempt held a slot (submitted → result: queue
and generation both, which is what decides how fast a job goes at a given concurrency). Once
a job has done cells, their measured durations are used, per duration key (model, resolution,
frame count or duration) where the job has cells of that key, else over all of its cells;
before any, the model's typical time (`model.json`), a guess. The ETA places the cells still
to do on `concurrency` slots after the live ones, each slot taking the next cell as it frees;
under a canary, only after the canary's cells have ended.
"""

from __future__ import annotations

import heapq
import statistics
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


def duration_key(model: str, request: Mapping) -> str:
    """What a cell's duration depends on: its model, resolution and length."""
    length = request.get("number_of_frames", request.get("duration", ""))
    return sys.intern(f"{model}|{request.get('resolution', '')}|{length}")


@dataclass
class Timings:
    """Measured cell durations by duration key, with the model's typical time to fall back on."""

    typical: float | None = None
    samples: dict[str, list[float]] = field(default_factory=dict)
    _medians: dict[str, float] = field(default_factory=dict, repr=False)
    count: int = 0

    def add(self, key: str, seconds: float) -> None:
        self.samples.setdefault(key, []).append(seconds)
        self._medians.pop(key, None)
        self._medians.pop("", None)
        self.count += 1

    def _median(self, key: str) -> float | None:
        if key not in self._medians:
            values = self.samples.get(key) if key else \
                [x for xs in self.samples.values() for x in xs]
            if not values:
                return None
            self._medians[key] = statistics.median(values)
        return self._medians[key]

    def per_cell(self, key: str) -> float | None:
        """Seconds one cell of this key takes: measured if the job has measured any, else
        the model's typical time; None when neither is known."""
        if key in self.samples:
            return self._median(key)
        if self.count:
            return self._median("")
        return self.typical

    def source(self) -> str:
        if self.count:
            return f"measured on {self.count} cell{'s' if self.count != 1 else ''}"
        if self.typical is not None:
            return "the model's typical time, a guess until a run measures it"
        return "unknown"


def eta(todo: Mapping[str, int], live: Iterable[tuple[str, float | None]], concurrency: int,
        timings: Timings, now: float, first: int = 0) -> float | None:
    """Seconds until the cells still to do (`todo`: count by duration key) and the live ones
    (key, submitted at) are finished at `concurrency`; 0 when nothing is left, None when a
    duration is unknown. `first` (a run's canary): that many cells, the live ones first, then
    cells to do, must end before any other cell to do starts."""
    loads = []
    for key, since in live:
        d = timings.per_cell(key)
        if d is None:
            return None
        loads.append(max(0.0, d - (now - since)) if since else d)
    gate = max(loads[:first], default=0.0)
    first = max(0, first - len(loads))
    slots = max(1, concurrency, len(loads))
    loads += [0.0] * (slots - len(loads))
    heapq.heapify(loads)
    todo = dict(todo)
    for key in sorted(todo):  # the canary's cells still to do, each on the slot free first
        while first and todo[key] > 0:
            d = timings.per_cell(key)
            if d is None:
                return None
            gate = max(gate, heapq.heapreplace(loads, loads[0] + d) + d)
            todo[key] -= 1
            first -= 1
    if gate:  # nothing else starts before the canary has ended
        loads = [max(x, gate) for x in loads]
        heapq.heapify(loads)
    for key in sorted(todo):
        n = todo[key]
        if n <= 0:
            continue
        d = timings.per_cell(key)
        if d is None:
            return None
        waves, rest = divmod(n, slots)
        if waves:  # every slot takes `waves` more cells: the order of the slots is unchanged
            loads = [x + waves * d for x in loads]
        for _ in range(rest):
            heapq.heapreplace(loads, loads[0] + d)
    return max(loads) if any(loads) else 0.0
