"""The simulator's queue engine on a fake clock: FIFO order, capacity, positions, cancel, seeds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import wire
from pipeline.sim.queue import QueueEngine


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def engine(capacity: int = 2, gen_time: tuple[float, float] = (1.0, 1.0), fail_rate: float = 0.0,
           seed: int = 1) -> tuple[QueueEngine, Clock]:
    clock = Clock()
    return QueueEngine(capacity, gen_time, fail_rate, seed, clock=clock), clock


def submit_many(eng: QueueEngine, n: int) -> list[str]:
    return [eng.submit("m", {"prompt": f"p{i}"})[0].request.id for i in range(n)]


def states(eng: QueueEngine, ids: list[str]) -> list[tuple[str, int | None]]:
    out = []
    for rid in ids:
        view = eng.view(rid)
        assert view is not None
        out.append((view.state, view.queue_position))
    return out


def test_positions_are_fifo_and_decrease_as_slots_free() -> None:
    """Queued requests carry their 1-based FIFO position, which drops as earlier ones start."""
    eng, clock = engine(capacity=2)
    ids = submit_many(eng, 5)
    assert states(eng, ids) == [(wire.IN_PROGRESS, None)] * 2 + [
        (wire.IN_QUEUE, 1), (wire.IN_QUEUE, 2), (wire.IN_QUEUE, 3)]
    clock.t += 1.0
    assert states(eng, ids) == [(wire.SUCCEEDED, None)] * 2 + [
        (wire.IN_PROGRESS, None)] * 2 + [(wire.IN_QUEUE, 1)]
    clock.t += 1.0
    assert [s for s, _ in states(eng, ids)] == [wire.SUCCEEDED] * 4 + [wire.IN_PROGRESS]


def test_requests_are_promoted_on_time_even_if_nobody_polls() -> None:
    """Start and finish times are those of a live scheduler although the clock jumped far ahead."""
    eng, clock = engine(capacity=2)
    t0 = clock.t
    ids = submit_many(eng, 6)
    clock.t += 50
    views = [eng.view(rid) for rid in ids]
    assert all(v is not None and v.state == wire.SUCCEEDED for v in views)
    assert [v.request.started - t0 for v in views if v] == [0, 0, 1, 1, 2, 2]
    assert eng.counts()[wire.SUCCEEDED] == 6


def test_capacity_is_never_exceeded() -> None:
    """At no instant are more than `capacity` requests in progress, with random durations."""
    eng, clock = engine(capacity=3, gen_time=(0.1, 2.0), seed=5)
    submit_many(eng, 40)
    peak = 0
    for _ in range(400):
        clock.t += 0.05
        running = eng.counts()[wire.IN_PROGRESS]
        assert running <= 3
        peak = max(peak, running)
    assert peak == 3


def test_cancel_only_while_queued_and_positions_close_up() -> None:
    """Cancelling a queued request works and moves those behind it up; a running one refuses."""
    eng, clock = engine(capacity=1)
    ids = submit_many(eng, 4)
    view, cancelled = eng.cancel(ids[1])  # type: ignore[misc]
    assert cancelled and view.state == wire.CANCELLED
    assert states(eng, ids[2:]) == [(wire.IN_QUEUE, 1), (wire.IN_QUEUE, 2)]
    view, cancelled = eng.cancel(ids[0])  # type: ignore[misc]
    assert not cancelled and view.state == wire.IN_PROGRESS
    clock.t += 1.0
    assert states(eng, ids) == [(wire.SUCCEEDED, None), (wire.CANCELLED, None),
                                (wire.IN_PROGRESS, None), (wire.IN_QUEUE, 1)]
    assert eng.cancel("no-such-id") is None


def test_durations_and_failures_are_reproducible_under_a_seed() -> None:
    """The n-th submission gets the same generation time and fate under the same seed."""
    def fates(seed: int) -> list[tuple[float, str | None]]:
        eng, _ = engine(gen_time=(0.5, 5.0), fail_rate=0.5, seed=seed)
        submit_many(eng, 20)
        return [(r.duration, r.error) for r in eng._requests.values()]

    assert fates(3) == fates(3)
    assert fates(3) != fates(4)
    assert any(err for _, err in fates(3)) and not all(err for _, err in fates(3))


def test_duplicates_count_only_against_live_or_successful_bodies() -> None:
    """An equal body is a duplicate while an earlier copy is alive or done, not once cancelled."""
    eng, _ = engine(capacity=1)
    _, dup = eng.submit("m", {"prompt": "same", "n": [1, 2]})
    assert not dup
    assert eng.submit("m", {"n": [1, 2], "prompt": "same"})[1]  # key order does not matter
    assert not eng.submit("other-model", {"prompt": "same", "n": [1, 2]})[1]
    second = eng.submit("m", {"prompt": "solo"})[0]
    eng.cancel(second.request.id)
    assert not eng.submit("m", {"prompt": "solo"})[1]


def test_failed_bodies_are_not_duplicates_when_resubmitted() -> None:
    """Resubmitting a body whose earlier run failed is a legitimate retry, not waste."""
    eng, clock = engine(capacity=1, fail_rate=1.0)
    eng.submit("m", {"prompt": "x"})
    clock.t += 2
    view, dup = eng.submit("m", {"prompt": "x"})
    assert not dup and view.request.error


@pytest.mark.parametrize("capacity", [1, 4])
def test_counts_add_up(capacity: int) -> None:
    """requests_by_state accounts for every accepted request exactly once."""
    eng, clock = engine(capacity=capacity)
    ids = submit_many(eng, 10)
    eng.cancel(ids[-1])
    clock.t += 1.5
    counts = eng.counts()
    assert sum(counts.values()) == 10 and counts[wire.CANCELLED] == 1
    assert counts[wire.IN_PROGRESS] == min(capacity, 9 - counts[wire.SUCCEEDED])

steps = st.lists(st.one_of(st.tuples(st.just("submit"), st.integers(1, 3)),
                           st.tuples(st.just("cancel"), st.integers(0, 30)),
                           st.tuples(st.just("wait"), st.floats(0.0, 1.5))), max_size=40)


@settings(max_examples=150, deadline=None)
@given(capacity=st.integers(1, 4), script=steps)
def test_queue_invariants_hold_under_any_script(capacity: int,
                                                script: list[tuple[str, float]]) -> None:
    """Queued positions are exactly 1..k in FIFO order and no slot idles while work waits."""
    eng, clock = engine(capacity=capacity, gen_time=(0.1, 1.0), seed=capacity)
    ids: list[str] = []
    for action, arg in script:
        if action == "submit":
            ids += submit_many(eng, int(arg))
        elif action == "cancel" and ids:
            eng.cancel(ids[int(arg) % len(ids)])
        else:
            clock.t += arg
        seen = states(eng, ids)
        queued = [pos for state, pos in seen if state == wire.IN_QUEUE]
        running = sum(1 for state, _ in seen if state == wire.IN_PROGRESS)
        assert queued == list(range(1, len(queued) + 1))
        assert running <= capacity
        if queued:
            assert running == capacity
