"""How long a cell takes, and when a job should end: one estimate for plan, status and progress.

A cell's duration is the time its successful attempt held a slot (submitted → result: queue
and generation both, which is what decides how fast a job goes at a given concurrency). Once
a job has done cells, their measured durations are used: per duration key (model, resolution,
frame count or duration) where the job has cells of that key, else over the cells of the same
model; for a model with none measured yet, its typical time (`model.json`, a guess), else
over all of the job's cells, else (nothing measured) the sweep's guess: the median of its
models' typical times. The ETA places the cells still to do on `concurrency` slots after
the live ones, each slot taking the next cell as it frees; under a canary, only after the
canary's cells have ended.
"""

from __future__ import annotations

import heapq
import statistics
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


def duration_key(model: str, request: Mapping[str, Any]) -> str:
    """What a cell's duration depends on: its model, resolution and length."""
    length = request.get("number_of_frames", request.get("duration", ""))
    return sys.intern(f"{model}|{request.get('resolution', '')}|{length}")


def model_of(key: str) -> str:
    """The model of a duration key."""
    return key.split("|", 1)[0]


@dataclass
class Timings:
    """Measured cell durations by duration key, with each model's typical time to fall back
    on (`typical`: one time for every model, or a time per model id)."""

    typical: float | Mapping[str, float | None] | None = None
    samples: dict[str, list[float]] = field(default_factory=dict)
    _medians: dict[str, float] = field(default_factory=dict, repr=False)
    count: int = 0
    _models: dict[str, int] = field(default_factory=dict, repr=False)  # samples per model
    guess: str | None = None  # where `typical` comes from, when not the models' own times

    def add(self, key: str, seconds: float) -> None:
        self.samples.setdefault(key, []).append(seconds)
        model = model_of(key)
        self._models[model] = self._models.get(model, 0) + 1
        for stale in (key, "", "@" + model):
            self._medians.pop(stale, None)
        self.count += 1

    def _median(self, key: str) -> float | None:
        if key not in self._medians:
            if key.startswith("@"):  # every sample of one model
                values = [x for k, xs in self.samples.items() if model_of(k) == key[1:]
                          for x in xs]
            elif key:
                values = self.samples.get(key) or []
            else:
                values = [x for xs in self.samples.values() for x in xs]
            if not values:
                return None
            self._medians[key] = statistics.median(values)
        return self._medians[key]

    def typical_of(self, model: str | None = None) -> float | None:
        """A model's typical time (None: unknown); no model: the typical time of the job."""
        if not isinstance(self.typical, Mapping):
            return self.typical
        if model is not None:
            return self.typical.get(model)
        known = [t for t in self.typical.values() if t is not None]
        return statistics.median(known) if known else None

    def per_cell(self, key: str) -> float | None:
        """Seconds one cell of this key takes: measured on cells of its key, else of its
        model; else the model's typical time; else measured on any cell; None when nothing
        is known. The key "" asks for the job as a whole."""
        if key in self.samples:
            return self._median(key)
        if not key:
            return self._median("") if self.count else self.typical_of()
        model = model_of(key)
        if self._models.get(model):
            return self._median("@" + model)
        typical = self.typical_of(model)
        if typical is not None:
            return typical
        # a model with no guess of its own: what the job has measured, else the sweep's guess
        return self._median("") if self.count else self.typical_of()

    def source(self) -> str:
        if self.count:
            return f"measured on {self.count} cell{'s' if self.count != 1 else ''}"
        if self.typical_of() is not None:
            whose = self.guess or ("the models' typical times" if isinstance(
                self.typical, Mapping) and len(self.typical) > 1 else "the model's typical time")
            return f"{whose}, a guess until a run measures it"
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
