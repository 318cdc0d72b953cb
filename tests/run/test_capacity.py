"""`concurrency: auto` as pure policy, driven by a small FIFO server model: it finds the
capacity, keeps `queue_ahead` waiting, lends the slots of unnoticed finishes, re-learns when
the capacity changes, and backs off on 429."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from pipeline.run.auto import QUEUED, RUNNING, AutoConcurrency


@dataclass
class Server:
    """FIFO with `capacity` slots; each request runs `gen` ticks."""

    capacity: int
    gen: tuple[int, int] = (8, 12)
    rng: random.Random = field(default_factory=lambda: random.Random(5))
    running: dict = field(default_factory=dict)  # id -> ticks left
    queue: list = field(default_factory=list)
    done: dict = field(default_factory=dict)  # id -> the tick it ended
    now: int = 0

    def submit(self, rid: int) -> None:
        self.queue.append(rid)
        self._fill()

    def _fill(self) -> None:
        while self.queue and len(self.running) < self.capacity:
            self.running[self.queue.pop(0)] = self.rng.randint(*self.gen)

    def tick(self) -> None:
        self.now += 1
        for rid in list(self.running):
            self.running[rid] -= 1
            if self.running[rid] <= 0:
                del self.running[rid]
                self.done[rid] = self.now - 0.5
        self._fill()

    def status(self, rid: int) -> tuple[str, int | None]:
        if rid in self.running:
            return RUNNING, None
        if rid in self.queue:
            return QUEUED, self.queue.index(rid) + 1
        return "completed", None

    @property
    def live(self) -> int:
        return len(self.running) + len(self.queue)


def drive(auto: AutoConcurrency, server: Server, ticks: int, *, lag: float = 0.5,
          changes: dict | None = None, seed: int = 1) -> list[tuple[int, int, int]]:
    """Submit up to the limit; each tick ask the fresh requests once (as the runner does),
    queued ones now and then, and each running one from its earliest possible end on with
    probability `lag` per tick (so ends are noticed late, as by polling). (server live,
    server idle slots, limit) per tick; `auto.calls` counts the status answers."""
    rng = random.Random(seed)
    believed: list[int] = []  # ours, in submit order
    asked: set[int] = set()
    born: dict[int, int] = {}
    trace = []
    next_id = 0
    auto.calls = 0  # type: ignore[attr-defined]
    for _ in range(ticks):
        if changes and server.now in changes:
            server.capacity = changes[server.now]
        while len(believed) < auto.limit:
            server.submit(next_id)
            believed.append(next_id)
            born[next_id] = server.now
            next_id += 1
        server.tick()
        for rid in list(believed):
            age = server.now - born[rid]
            due = rid not in asked or (age >= server.gen[0] and rng.random() < lag) or \
                (rid in server.queue and rng.random() < 0.2)
            if not due:
                continue
            auto.calls += 1  # type: ignore[attr-defined]
            status, position = server.status(rid)
            if status == "completed":
                believed.remove(rid)
                auto.ended(str(rid), (server.done[rid], server.done[rid]))
                continue
            ahead = [str(r) for r in believed[:believed.index(rid)]]
            auto.seen(str(rid), status, position, ahead=ahead, live=len(believed),
                      first=rid not in asked, now=float(server.now))
            asked.add(rid)
        trace.append((server.live, max(0, server.capacity - len(server.running)), auto.limit))
    return trace


@pytest.mark.parametrize("capacity", [1, 3, 8, 20])
def test_it_finds_the_capacity_and_keeps_two_waiting(capacity: int) -> None:
    """From a small start it settles at capacity + 2 live on the server, no slot idle."""
    auto = AutoConcurrency(queue_ahead=2, start=2)
    server = Server(capacity)
    trace = drive(auto, server, 300)
    assert auto.capacity == capacity
    settled = trace[100:]
    assert max(live for live, _, _ in settled) <= capacity + 2
    idle = sum(idle for _, idle, _ in settled)
    assert idle <= len(settled) * capacity * 0.08  # slots kept busy (ticks are coarse: ~1 of lag)


def test_it_relearns_when_the_capacity_falls_and_rises() -> None:
    """Capacity 10, then 5, then 14: the limit follows, the server's queue stays short."""
    auto = AutoConcurrency(queue_ahead=2, start=2)
    server = Server(10)
    trace = drive(auto, server, 600, changes={200: 5, 400: 14})
    assert auto.capacity == 14
    assert max(live for live, _, _ in trace[300:400]) <= 5 + 2 + 10  # draining the 10 it had
    assert max(live for live, _, _ in trace[350:400]) <= 5 + 2
    assert max(live for live, _, _ in trace[500:]) <= 14 + 2
    assert sum(idle for _, idle, _ in trace[500:]) <= 100 * 14 * 0.08


def test_a_kept_capacity_is_the_start_of_the_next_run() -> None:
    """A run that starts from the capacity found before is at capacity + 2 at once."""
    auto = AutoConcurrency.resume(kept=12, queue_ahead=2)
    assert auto.limit == 14
    server = Server(12)
    trace = drive(auto, server, 100)
    assert max(live for live, _, _ in trace) <= 14


def test_a_429_asks_for_fewer_and_pauses_growth() -> None:
    """After a 429 the limit is below what was live, and running answers do not raise it
    until the pause is over."""
    auto = AutoConcurrency(queue_ahead=2, start=2)
    ids = [str(n) for n in range(12)]
    for n in range(10):  # fresh requests run at once: twice as many per round (2, 4, 8, 16)
        auto.seen(ids[n], RUNNING, None, ahead=ids[:n], live=auto.limit, first=True, now=0.0)
    assert auto.limit == 16
    auto.rate_limited(live=10, now=1.0)
    assert auto.limit == 9
    auto.seen(ids[10], RUNNING, None, ahead=ids[:8], live=9, first=True, now=2.0)
    assert auto.limit == 9
    auto.seen(ids[11], RUNNING, None, ahead=ids[:8], live=9, first=True, now=40.0)
    assert auto.limit == 18


def test_unnoticed_finishes_lend_their_slots_once() -> None:
    """The queue says 2 of ours ended unnoticed: 2 more may go; noticing them takes it back,
    and the observation, once every request before it is accounted for, is exact."""
    auto = AutoConcurrency.resume(kept=4, queue_ahead=2)
    ids = [str(n) for n in range(8)]
    # 7 ahead, 1 of them waits: 6 run or ended; the capacity is 4, so 2 ended unnoticed
    auto.seen("7", QUEUED, 2, ahead=ids[:7], live=8, first=True, now=10.0)
    assert (auto.capacity, auto.unnoticed, auto.limit) == (4, 2, 8)
    auto.ended("0", (9.0, 9.0))
    assert auto.limit == 7
    auto.ended("1", (9.5, 9.5))
    auto.ended("2", (11.0, 11.0))  # ended after the observation: it was live then
    assert auto.limit == 6
    for n in range(3, 7):
        auto.seen(ids[n], RUNNING, None, ahead=ids[:n], live=5, first=False, now=12.0)
    assert auto._figures[-1] == (4, 4)  # 5 of the 7 were live then, 1 of them waiting


def test_growth_needs_a_whole_round_running() -> None:
    """Capacity 6 with 8 live while learning: the 6th request seen running is not a whole
    round of the 8 (two of them may wait), so the limit stays 8."""
    auto = AutoConcurrency(queue_ahead=2, start=2)
    ids = [str(n) for n in range(12)]
    for n in range(6):
        auto.seen(ids[n], RUNNING, None, ahead=ids[:n], live=auto.limit, first=True, now=0.0)
    assert auto.limit == 8


def test_a_429_leaves_the_capacity_found() -> None:
    """A 429 holds the limit one below what is live for the pause (however many 429s come in
    it), and then the limit is capacity + 2 again: the capacity found is untouched."""
    auto = AutoConcurrency.resume(kept=5, queue_ahead=2)
    ids = [str(n) for n in range(8)]
    auto.rate_limited(live=3, now=0.0)
    auto.rate_limited(live=2, now=1.0)
    assert (auto.capacity, auto.limit) == (5, 2)
    auto.seen(ids[2], RUNNING, None, ahead=ids[:2], live=3, first=True, now=40.0)
    assert (auto.capacity, auto.limit) == (5, 7)


def test_requests_of_unknown_outcome_do_not_lower_the_capacity() -> None:
    """Two submits answered by a 5xx may run ahead of ours: a request seen waiting behind 3 of
    ours at position 1 then says 3 + 2 run, not 3."""
    auto = AutoConcurrency.resume(kept=5, queue_ahead=2)
    ids = [str(n) for n in range(4)]
    auto.seen("3", QUEUED, 1, ahead=ids[:3], live=4, first=True, now=1.0, hidden=2)
    for n in range(3):
        auto.seen(ids[n], RUNNING, None, ahead=ids[:n], live=4, first=False, now=2.0)
    assert auto._figures[-1] == (3, 5) and auto.capacity == 5  # (3 of ours, 2 maybe)


def test_the_newest_running_raises_the_capacity_once_those_before_it_are_decided() -> None:
    """With capacity 4 found and 6 live, rounds of older requests first seen running (they
    waited unseen) do not raise the capacity. The newest seen running, with the 5 before it
    seen live afterwards, says the account ran 6: the capacity becomes 6."""
    auto = AutoConcurrency.resume(kept=4, queue_ahead=2)
    ids = [str(n) for n in range(40)]
    for n in range(30):  # each the 4th of 6 live: two of ours wait behind it
        auto.seen(ids[n], RUNNING, None, ahead=ids[max(0, n - 3):n], live=6, first=True,
                  now=float(n))
    assert auto.capacity == 4
    auto.seen(ids[35], RUNNING, None, ahead=ids[30:35], live=6, first=True, now=40.0)
    assert auto.capacity == 4  # (those before it may have ended before the server answered)
    for n in range(30, 34):
        auto.seen(ids[n], RUNNING, None, ahead=ids[30:n], live=6, first=False, now=41.0)
    assert auto.capacity == 4
    auto.ended(ids[34], (41.5, 42.0))  # the last one before it: it ended after the answer
    assert auto.capacity == 6 and auto.limit == 8


def test_the_progress_counts_ends_unnoticed_apart_from_running() -> None:
    """With 40 of ours believed running at a capacity of 20, 20 of which ended unnoticed (their
    slots lent out), the progress line says running 20 and ended unnoticed 20, not running 40;
    beyond the capacity (and those ends) they wait."""
    from pipeline.job.tally import figures_line
    from pipeline.run.live import ENDED_UNNOTICED, LiveRequests

    requests = LiveRequests(AutoConcurrency(capacity=20, unnoticed=20))
    counts = {"done": 5, "queued": 0, "running": 40, "failed": 1}
    shown = requests.confirmed(counts)
    assert shown == {"done": 5, "queued": 0, "running": 20, ENDED_UNNOTICED: 20, "failed": 1}
    line = figures_line({"counts": shown, "total": 66, "spent_usd": 0, "committed_usd": 0,
                         "to_do": 0, "eta_s": None, "to_go_usd": 0})
    assert line.startswith("5/66 done, running 20, ended unnoticed 20, failed 1;"), line
    assert list(shown) == ["done", "queued", "running", ENDED_UNNOTICED, "failed"]
    assert requests.confirmed({"done": 0, "queued": 10, "running": 40}) == {
        "done": 0, "queued": 10, "running": 20, ENDED_UNNOTICED: 20}
    requests.auto.unnoticed = 0  # nothing lent: as before, only the queue is moved
    assert requests.confirmed({"done": 0, "queued": 30, "running": 0}) == {
        "done": 0, "queued": 10, "running": 20}
    assert requests.confirmed(counts) is counts  # within what the server would say
    assert LiveRequests().confirmed(counts) is counts  # no auto: the journal's counts
