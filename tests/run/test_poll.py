"""When the runner asks again: backoff while it knows nothing, then timed by what it learnt."""

from __future__ import annotations

import random

import pytest

from pipeline.run.poll import SCHEDULE, Poll, PollPlanner, server_seconds


def planner(**kw) -> PollPlanner:
    return PollPlanner(initial=2.0, max_interval=30.0, rng=random.Random(1), **kw)


def test_before_any_finish_status_calls_back_off_to_the_maximum() -> None:
    """Knowing nothing, the pause grows ×1.5 from `initial` (±10% jitter) up to `max`."""
    pl = planner()
    p = Poll(submitted_at=0.0)
    delays = []
    for _ in range(12):
        delays.append(pl.next_delay(p, 0.0, "in_progress", None))
        p.polls += 1
    for n, d in enumerate(delays[:8]):
        assert min(30.0, 2.0 * 1.5 ** n * 0.9) <= d <= min(30.0, 2.0 * 1.5 ** n * 1.1)
    assert max(delays) <= 30.0 and delays[-1] >= 25.0


def test_the_first_finish_is_a_lesson_once() -> None:
    """observe_finish says True the first time it learns a generation time, then never."""
    pl = planner()
    assert pl.observe_finish(Poll(submitted_at=0.0), 10.0, None, server_time=9.0) is True
    assert pl.observe_finish(Poll(submitted_at=0.0), 12.0, None, server_time=11.0) is False
    assert pl.typical() == 10.0


def test_a_live_cell_is_asked_at_points_of_the_measured_times_then_at_growing_steps() -> None:
    """After learning, a just-submitted cell sleeps until the 25th percentile of generation
    times, is asked at the schedule's points up to the slowest time seen (gaps shrinking), then
    at short steps that grow."""
    pl = planner()
    for s in range(40, 60):
        pl.observe_finish(Poll(submitted_at=0.0), float(s), None, server_time=float(s))
    p = Poll(submitted_at=100.0)
    asked, now = [], 100.0
    for _ in range(len(SCHEDULE)):
        now += pl.next_delay(p, now, "in_progress", None)
        asked.append(now - 100.0)
        p.polls += 1
    # samples 40..59: the quantiles, interpolated; the last point is the slowest, 59
    assert asked == pytest.approx([40 + q * 19 for q in SCHEDULE])
    gaps = [b - a for a, b in zip(asked, asked[1:], strict=False)]
    # the end grows likelier: asked sooner
    assert all(b < a for a, b in zip(gaps, gaps[1:], strict=False))
    steps = [pl.next_delay(p, now, "in_progress", None) for _ in range(4)]
    assert all(0.2 <= s <= 30.0 for s in steps)
    assert steps[-1] > steps[0]  # growing while the cell is late


def test_schedule_is_about_three_calls_a_cell_for_a_tenth_of_the_spread() -> None:
    """For generation times spread evenly, the schedule's status calls per cell (to the one
    that sees it finished) and its mean lag, found by sampling."""
    pl = planner()
    for s in range(101):
        pl.observe_finish(Poll(submitted_at=0.0), 4.0 + s / 50, None, server_time=4.0 + s / 50)
    rng = random.Random(2)
    calls, lags = [], []
    for _ in range(2000):
        took, p, now, n = rng.uniform(4.0, 6.0), Poll(submitted_at=0.0), 0.0, 0
        while True:
            now += pl.next_delay(p, now, "in_progress", None)
            n += 1
            if now >= took:
                break
        calls.append(n)
        lags.append(now - took)
    assert sum(calls) / len(calls) <= 3.0
    assert sum(lags) / len(lags) <= 0.2  # a tenth of the 2 s spread


def test_the_canary_is_asked_when_its_expected_time_says_it_ends() -> None:
    """Knowing nothing of this run's generations, a cell whose time is known (measured on
    the job, or stated by its model) is asked at that time, not at the backoff's next step
    after it; the backoff's earlier steps stay (the time may be too long)."""
    pl = planner()
    p = Poll(submitted_at=0.0, expected=4.0)
    first = pl.next_delay(p, 0.0, "in_progress", None)
    assert 1.8 <= first <= 2.2  # the backoff's first step comes before the expected end
    p.polls += 1
    assert pl.next_delay(p, first, "in_progress", None) == pytest.approx(4.0 - first)
    p.polls += 1  # past it: the backoff again (the time said was too short)
    assert pl.next_delay(p, 4.0, "in_progress", None) >= 2.0 * 1.5 ** 2 * 0.9
    quick = Poll(submitted_at=10.0, expected=1.0)
    assert pl.next_delay(quick, 10.0, None, None) == pytest.approx(1.0)
    slow = Poll(submitted_at=0.0, expected=90.0)  # never later than the backoff asks
    assert 1.8 <= pl.next_delay(slow, 0.0, None, None) <= 2.2


def test_a_queued_cell_is_asked_when_its_position_should_have_drained() -> None:
    """A queued cell at position k waits about k finishes at the recent pace (80% of it)."""
    pl = planner()
    for t in (10.0, 12.0, 14.0, 16.0):
        pl.observe_finish(Poll(submitted_at=0.0), t, None, server_time=5.0)
    assert pl.pace() == pytest.approx(2.0)
    delay = pl.next_delay(Poll(submitted_at=0.0), 20.0, "in_queue", 5)
    assert 0.9 * 8.0 <= delay <= 1.1 * 8.0


def test_server_times_are_trusted_only_for_requests_that_never_queued() -> None:
    """created→finished includes queue time, so a queued request's generation is judged from
    our own polls instead."""
    pl = planner()
    queued = Poll(submitted_at=0.0, started_at=30.0, queued=True)
    pl.observe_finish(queued, 40.0, last_running_seen=38.0, server_time=40.0)
    assert pl.typical() == pytest.approx(9.0)  # (38 + 40) / 2 − 30


@pytest.mark.parametrize("created,finished,seconds", [
    ("2025-01-01T00:00:00Z", "2025-01-01T00:01:10Z", 70.0),
    ("2025-01-01T00:00:00+00:00", "2025-01-01T00:00:00.5+00:00", 0.5),
    ("2025-01-01T00:01:00Z", "2025-01-01T00:00:00Z", None),  # backwards: not a duration
    ("yesterday", "2025-01-01T00:00:00Z", None),
    (None, None, None),
])
def test_server_seconds(created, finished, seconds) -> None:
    """The server's own timestamps give a generation time when both parse and are ordered."""
    assert server_seconds(created, finished) == seconds


def test_live_and_unknown_words_are_polled_on_and_an_unknown_one_shown_once(
        tmp_path, api_env, monkeypatch, caplog) -> None:
    """A request answering `starting` on /status, then an unknown word on /result, is asked
    again until it ends: every cell is done, none failed, and the unknown word is shown once
    for the whole run (the live words RunComfy's own code knows are not shown)."""
    import logging

    from runjobs import sweep

    from pipeline.api import RunOptions, run_plan
    from pipeline.client import ResultInfo, RunComfyClient, StatusInfo
    from pipeline.prepare.plan import build_plan

    api_env(gen_time=(0.02, 0.05))
    status, result = RunComfyClient.status, RunComfyClient.result
    asked: dict[str, int] = {}

    async def first_starting(self, request_id):
        asked[request_id] = asked.get(request_id, 0) + 1
        if asked[request_id] == 1:
            return StatusInfo("starting", None, {"status": "starting"})
        return await status(self, request_id)

    async def first_unknown(self, request_id):
        asked["r" + request_id] = asked.get("r" + request_id, 0) + 1
        if asked["r" + request_id] == 1:
            return ResultInfo(status="warming_up", raw={"status": "WARMING_UP"})
        return await result(self, request_id)

    monkeypatch.setattr(RunComfyClient, "status", first_starting)
    monkeypatch.setattr(RunComfyClient, "result", first_unknown)
    manifest = sweep(tmp_path, seeds=3)
    with caplog.at_level(logging.WARNING, logger="pipeline.run"):
        summary = run_plan(build_plan(manifest), RunOptions(out=tmp_path / "out",
                                                           progress=False))
    assert summary.exit_code == 0 and summary.counts["done"] == 3
    said = [r.getMessage() for r in caplog.records if "unknown status word" in r.getMessage()]
    assert len(said) == 1 and "'warming_up'" in said[0] and "/result" in said[0]
