"""What a run started now would do about its canary: how many cells it proves first."""

from __future__ import annotations

import pytest

from pipeline.job import journal as ev
from pipeline.job.journal import JobState
from pipeline.job.next_run import canary_for, canary_needs

SERVICE = "https://model-api.runcomfy.net"


def run_event(base_url: str, t: float) -> dict:
    event = ev.run_started(job="j", model="m", manifest="j.yaml", manifest_sha256="0",
                           schema_sha256="0", backend="runcomfy", base_url=base_url,
                           concurrency=4, max_attempts=3, cells=2, price=None,
                           price_source="unknown", budget=None, uid="u1")
    return {**event, "t": t}


def done_cell(cell: str, t: float) -> list[dict]:
    url = f"https://x/{cell}.mp4"
    return [{**e, "t": t} for e in (
        ev.intent(cell, 1, 0.25), ev.submitted(cell, 1, f"r-{cell}"),
        ev.result(cell, 1, "succeeded", cost=0.25, outputs=[url]),
        ev.downloaded(cell, url, f"videos/{cell}.mp4", 10, "ab", None, {"ok": True}))]


def state(*events: dict) -> JobState:
    s = JobState(folder=None)  # type: ignore[arg-type]
    for e in events:
        s.apply(e)
    return s


@pytest.mark.parametrize("events,setting,backend,base_url,expected", [
    ([], None, "runcomfy", SERVICE, 1),  # a new job on the service: one cell first
    ([], None, "sim", None, 0),  # the built-in simulator skips it by default
    ([], 2, "sim", None, 2),  # unless run.canary says otherwise
    ([], 0, "runcomfy", SERVICE, 0),  # run.canary: 0 turns it off
    ([run_event(SERVICE, 1.0), *done_cell("a", 2.0)], None, "runcomfy", SERVICE, 0),
    ([run_event(SERVICE, 1.0), *done_cell("a", 2.0)], 3, "runcomfy", SERVICE, 2),
    # a cell done on another service (a simulator) proves nothing about this one
    ([run_event("http://127.0.0.1:9", 1.0), *done_cell("a", 2.0)], None, "runcomfy",
     SERVICE, 1),
    ([run_event("http://127.0.0.1:9", 1.0), *done_cell("a", 2.0), run_event(SERVICE, 3.0),
      *done_cell("b", 4.0)], 2, "runcomfy", SERVICE + "/", 1),
    # a cell submitted but not yet downloaded is not proven
    ([run_event(SERVICE, 1.0), *done_cell("a", 2.0)[:3]], None, "runcomfy", SERVICE, 1),
])
def test_a_run_proves_cells_unless_the_job_has_some_done_on_that_service(
        events, setting, backend, base_url, expected) -> None:
    """The canary is run.canary (1 on runcomfy, 0 on sim by default) less the cells already
    done by runs against the same base URL."""
    assert canary_for(state(*events), setting, backend, base_url) == expected


def test_each_model_of_a_sweep_is_proven_on_its_own() -> None:
    """Per model: run.canary less its own cells done on this service, and never more than it
    has left to do; a cell of one model proves nothing about another."""
    cells = {"a1": "m/a", "a2": "m/a", "b1": "m/b", "b2": "m/b", "c1": "m/c"}
    fresh = state()
    assert canary_needs(fresh, None, "runcomfy", SERVICE, cells) == \
        {"m/a": 1, "m/b": 1, "m/c": 1}
    assert canary_for(fresh, 2, "runcomfy", SERVICE, cells) == 2 + 2 + 1  # m/c has one cell
    some = state(run_event(SERVICE, 1.0), *done_cell("a1", 2.0))
    assert canary_needs(some, None, "runcomfy", SERVICE, cells) == \
        {"m/a": 0, "m/b": 1, "m/c": 1}
    assert canary_needs(some, 2, "runcomfy", SERVICE, cells) == {"m/a": 1, "m/b": 2, "m/c": 1}
    elsewhere = state(run_event("http://127.0.0.1:9", 1.0), *done_cell("c1", 2.0))
    # m/c's only cell is done (on another service): nothing of it is left to prove it with
    assert canary_needs(elsewhere, None, "runcomfy", SERVICE, cells)["m/c"] == 0
    assert canary_needs(fresh, 0, "runcomfy", SERVICE, cells) == {"m/a": 0, "m/b": 0, "m/c": 0}
