"""`concurrency: auto` when answers take time: the runner reads a status answer a while after
the server made it, other requests of ours end (and are noticed) meanwhile, and submits in
flight together reach the server in either order. LiveRequests with AutoConcurrency, driven
in virtual time against the simulator's own queue (pipeline.sim.queue.QueueEngine): whatever
the interleaving, the capacity found is never below the server's, and it settles on it."""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from pipeline import wire
from pipeline.run.auto import AutoConcurrency
from pipeline.run.live import LiveRequests
from pipeline.sim.queue import QueueEngine


@dataclass
class Night:
    """One runner and one server in virtual time; each call's legs take up to `lag` s."""

    capacity: int
    lag: float
    seed: int
    gen: tuple[float, float] = (0.3, 0.5)
    lost: float = 0.0  # of submits whose answer is lost (half of them created all the same)
    failing: float = 0.0  # of generations that fail
    kept: int | None = None  # the capacity a previous run found
    now: float = 0.0
    events: list = field(default_factory=list)
    seq: itertools.count = field(default_factory=itertools.count)
    found: list[int] = field(default_factory=list)  # every capacity `auto` settled on

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.engine = QueueEngine(self.capacity, self.gen, self.failing, self.seed,
                                  clock=lambda: self.now)
        self.auto = AutoConcurrency.resume(self.kept, queue_ahead=2)
        self.most = 0  # the most requests the server had live at once
        self.requests = LiveRequests(self.auto)
        self.requests.on_capacity = self.found.append
        self.ids: dict[str, str] = {}  # cell -> request id
        self.busy = 0  # cells live or being submitted
        self.cells = itertools.count()

    def at(self, t: float, action: Callable[[], None]) -> None:
        heapq.heappush(self.events, (t, next(self.seq), action))

    def leg(self) -> float:
        return self.rng.uniform(0.0, self.lag)

    def fill(self) -> None:
        while self.busy < self.auto.limit:
            self.busy += 1
            self.submit(f"c{next(self.cells)}")

    def submit(self, cell: str) -> None:
        self.requests.posting(cell, self.now)

        posted = self.now

        def reach() -> None:
            if self.rng.random() < self.lost:  # a 5xx or a dropped connection
                if self.rng.random() < 0.5:
                    self.engine.submit("m", {"cell": cell})  # (it runs, unseen)
                self.at(self.now + self.leg(), unknown)
                return
            view, _ = self.engine.submit("m", {"cell": cell})
            self.at(self.now + self.leg(), lambda: answered(view.request.id))

        def unknown() -> None:  # as pipeline.run.submit: held, its slot to another cell
            self.requests.unsent(cell)
            self.requests.outcome_unknown(posted, self.now)
            self.busy -= 1
            self.fill()

        def answered(request_id: str) -> None:
            self.ids[cell] = request_id
            self.requests.sent(cell, self.now)
            self.at(self.now + 0.05, lambda: self.ask(cell))

        self.at(self.now + self.leg(), reach)

    def ask(self, cell: str, watch: bool = False) -> None:
        asked = self.now

        def reach() -> None:
            view = self.engine.view(self.ids[cell])
            assert view is not None
            self.at(self.now + self.leg(), lambda: read(view))

        def read(view) -> None:  # type: ignore[no-untyped-def]
            if view.state in (wire.IN_QUEUE, wire.IN_PROGRESS):
                self.requests.seen(cell, view.state, view.queue_position, self.now, asked)
                if not watch:
                    self.at(self.now + self.rng.uniform(0.05, 0.15), lambda: self.ask(cell))
                self.fill()
                return
            if watch or cell not in self.requests.order:
                return
            req = view.request
            self.requests.ended(cell, (req.submitted, req.finished), self.now)
            self.busy -= 1
            self.fill()

        self.at(self.now + self.leg(), reach)

    def watch(self) -> None:
        if self.requests.order:
            self.ask(next(reversed(self.requests.order)), watch=True)
        self.at(self.now + 0.1, self.watch)

    def run(self, until: float) -> None:
        self.fill()
        self.at(0.1, self.watch)
        while self.events and self.events[0][0] <= until:
            self.now, _, action = heapq.heappop(self.events)
            action()
            if self.kept is not None:  # (counts() reads every request: only where asserted)
                counts = self.engine.counts()
                self.most = max(self.most, counts[wire.IN_QUEUE] + counts[wire.IN_PROGRESS])


@pytest.mark.parametrize("capacity", [3, 6])
@pytest.mark.parametrize("lag", [0.005, 0.03, 0.08])
def test_the_capacity_found_is_never_below_the_servers_and_ends_on_it(capacity: int,
                                                                    lag: float) -> None:
    """Under every interleaving the seeds give: no figure below the capacity, and it is found."""
    low = []
    for seed in range(30):
        night = Night(capacity, lag, seed)
        night.run(until=20.0)
        if min(night.found, default=capacity) < capacity:
            low.append((seed, night.found))
        assert night.auto.capacity == capacity, (seed, night.found)
    assert not low, f"settled below {capacity}: {low[:3]}"


@pytest.mark.parametrize("lag", [0.005, 0.03, 0.08])
def test_lost_submits_and_failed_generations_never_lower_it(lag: float) -> None:
    """Submits whose answer is lost (some created all the same, running unseen ahead of ours)
    and failed generations: the capacity found is never below the server's."""
    low = []
    for seed in range(30):
        night = Night(5, lag, seed, lost=0.08, failing=0.1)
        night.run(until=20.0)
        if min(night.found, default=5) < 5:
            low.append((seed, night.found))
    assert not low, f"settled below 5: {low[:3]}"


@pytest.mark.parametrize("lag", [0.005, 0.03, 0.08])
def test_from_the_capacity_kept_the_server_never_holds_more_than_two_waiting(lag: float) -> None:
    """A run that starts from the capacity found before keeps at most capacity + 2 live on the
    server, however late it notices ends: what it lends and learns is what the server confirms."""
    over = []
    for seed in range(30):
        night = Night(6, lag, seed, kept=6)
        night.run(until=10.0)
        if night.most > 8:
            over.append((seed, night.most, night.found))
    assert not over, over[:3]
