"""Cell states, the resume table and a cell's money, from records built event by event."""

from __future__ import annotations

import pytest

from pipeline.job import journal as ev
from pipeline.job.journal import JobState
from pipeline.job.records import (
    CANCELLED,
    DONE,
    DOWNLOAD,
    DOWNLOADING,
    FAILED,
    HOLD,
    LIVE,
    ON_SERVER,
    ORPHANED,
    PENDING,
    POLL,
    QUEUED,
    RETRY,
    RUNNING,
    SETTLED,
    SKIP,
    STATE_INFO,
    STATE_TABLE,
    STATES,
    STUCK,
    SUBMIT,
    SUBMITTING,
    UNKNOWN,
    ResumeOptions,
    money,
    resume_action,
    resume_hint,
    slot_seconds,
    states_json,
)


def replay(*events: dict) -> JobState:
    state = JobState(folder=None)  # type: ignore[arg-type]
    for t, e in enumerate(events, 1):
        state.apply({**e, "t": float(e.get("t", t))})
    return state


def attempt(n: int = 1, usd: float | None = 0.25, rid: str = "r1") -> list[dict]:
    return [ev.intent("c", n, usd), ev.submitted("c", n, f"{rid}-{n}")]


def success(n: int = 1, cost: float | None = 0.25) -> dict:
    return ev.result("c", n, "succeeded", cost=cost, outputs=["https://x/v.mp4"])


DOWNLOADED = ev.downloaded("c", "https://x/v.mp4", "videos/c.mp4", 10, "ab", None, {"ok": True})

# (events, max_attempts, live_since, expected state)
CASES = [
    ([], 3, None, PENDING),
    ([ev.intent("c", 1, 0.25)], 3, None, UNKNOWN),
    ([{**ev.intent("c", 1, 0.25), "t": 10.0}], 3, 5.0, SUBMITTING),
    ([{**ev.intent("c", 1, 0.25), "t": 1.0}], 3, 5.0, UNKNOWN),
    ([ev.intent("c", 1, 0.25), ev.submit_failed("c", 1, "not_accepted", "429", False)], 3,
     None, PENDING),
    ([ev.intent("c", 1, 0.25), ev.submit_failed("c", 1, "not_accepted", "bad", True)], 3,
     None, FAILED),
    ([ev.intent("c", 1, 0.25), ev.submit_failed("c", 1, "outcome_unknown", "502", False)], 3,
     None, UNKNOWN),
    ([ev.intent("c", 1, 0.25), ev.resubmit_unknown("c", 1)], 3, None, PENDING),
    (attempt(), 3, None, QUEUED),
    (attempt() + [ev.status_seen("c", 1, "in_progress", None, 2)], 3, None, RUNNING),
    (attempt() + [ev.cancel_answered("c", 1, "not_cancellable")], 3, None, RUNNING),
    (attempt() + [ev.cancel_answered("c", 1, "cancelled"),
                  ev.result("c", 1, "cancelled", cost=0.0)], 3, None, CANCELLED),
    (attempt() + [success()], 3, None, DOWNLOADING),
    (attempt() + [success(), DOWNLOADED], 3, None, DONE),
    (attempt() + [ev.result("c", 1, "failed", error="x")], 3, None, RETRY),
    (attempt() + [ev.result("c", 1, "failed", error="x")], 1, None, FAILED),
    (attempt() + [ev.result("c", 1, "failed", error="404", permanent=True)], 3, None, FAILED),
    (attempt() + [ev.result("c", 1, "lost", error="sim gone")], 3, None, PENDING),
    (attempt() + [ev.result("c", 1, "failed", error="x"), ev.retry_failed("c")], 1, None, RETRY),
]


@pytest.mark.parametrize("events,max_attempts,live_since,expected", CASES)
def test_state_of_a_cell_follows_its_journal(events, max_attempts, live_since,
                                             expected) -> None:
    """Each sequence of events puts the cell in the state status --json names."""
    state = replay(*events)
    rec = state.cells.get("c")
    got = rec.state(max_attempts, live_since) if rec else PENDING
    assert got == expected


@pytest.mark.parametrize("state_name,options,does,mark", [
    (PENDING, ResumeOptions(), SUBMIT, None),
    (DONE, ResumeOptions(), SKIP, None),
    (QUEUED, ResumeOptions(), POLL, None),
    (RUNNING, ResumeOptions(), POLL, None),
    (DOWNLOADING, ResumeOptions(), DOWNLOAD, None),
    (RETRY, ResumeOptions(), SUBMIT, None),
    (FAILED, ResumeOptions(), SKIP, None),
    (FAILED, ResumeOptions(retry_failed=True), SUBMIT, "retry_failed"),
    (UNKNOWN, ResumeOptions(), HOLD, None),
    (UNKNOWN, ResumeOptions(resubmit_unknown=True), SUBMIT, "resubmit_unknown"),
    (CANCELLED, ResumeOptions(), SUBMIT, None),
    (QUEUED, ResumeOptions(lost_before=float("inf")), SUBMIT, "lost"),
    (DOWNLOADING, ResumeOptions(lost_before=float("inf")), SUBMIT, "lost"),
    (QUEUED, ResumeOptions(lost_before=0.5), POLL, None),  # submitted after the sim started
    (SUBMITTING, ResumeOptions(), HOLD, None),
])
def test_resume_table(state_name, options, does, mark) -> None:
    """What a run does with a cell in each state, and the marker it journals first."""
    rec = replay(*attempt()).cells["c"]
    act = resume_action(rec, state_name, 3, options)
    assert (act.does, act.mark) == (does, mark)
    assert act.why


def test_retry_action_names_the_attempt() -> None:
    """A cell to retry says which attempt of how many comes next."""
    rec = replay(*attempt(), ev.result("c", 1, "failed", error="x")).cells["c"]
    assert resume_action(rec, RETRY, 3).why == "retry: attempt 2 of 3"


def test_money_counts_billed_attempts_and_holds_live_ones() -> None:
    """A finished attempt is spent at its reported cost (else its estimate, flagged); a live
    one, or a submit without an answer, holds its estimate; cancelled, lost and refused
    attempts cost nothing."""
    live = replay(*attempt(usd=0.3)).cells["c"]
    assert money(live) == money(live, 9.9)  # the journalled estimate wins over the fallback
    assert (money(live).spent, money(live).held) == (0.0, 0.3)
    done = replay(*attempt(usd=0.3), success(cost=0.25)).cells["c"]
    assert (money(done).spent, money(done).held, money(done).estimated) == (0.25, 0.0, False)
    no_cost = replay(*attempt(usd=0.3), success(cost=None)).cells["c"]
    assert (money(no_cost).spent, money(no_cost).estimated) == (0.3, True)
    retried = replay(*attempt(1, 0.3), ev.result("c", 1, "failed", cost=0.1),
                     *attempt(2, 0.3), success(2, cost=0.25)).cells["c"]
    assert money(retried).spent == pytest.approx(0.35)
    for ending in (ev.result("c", 1, "cancelled", cost=0.0), ev.result("c", 1, "lost")):
        assert money(replay(*attempt(usd=0.3), ending).cells["c"]).spent == 0.0
    refused = replay(ev.intent("c", 1, 0.3),
                     ev.submit_failed("c", 1, "not_accepted", "429", False)).cells["c"]
    assert money(refused) == money(None)
    unanswered = replay(ev.intent("c", 1, 0.3)).cells["c"]
    assert money(unanswered).held == 0.3
    gave_up = replay(ev.intent("c", 1, 0.3), ev.resubmit_unknown("c", 1)).cells["c"]
    assert money(gave_up).held == 0.0


def test_money_without_any_price_is_flagged_unpriced() -> None:
    """A billed attempt with no cost and no estimate is not silently $0: it is unpriced."""
    rec = replay(*attempt(usd=None), success(cost=None)).cells["c"]
    assert money(rec).unpriced and money(rec).estimated


def test_compacting_a_done_cell_keeps_state_money_calls_and_slot_time() -> None:
    """A compacted record answers exactly as the full one did."""
    rec = replay({**ev.intent("c", 1, 0.3), "t": 1.0}, {**ev.submitted("c", 1, "r"), "t": 2.0},
                 {**ev.status_seen("c", 1, "in_progress", None, 4), "t": 3.0},
                 {**success(cost=0.25), "calls": 5, "t": 9.5}, {**DOWNLOADED, "t": 10.0}
                 ).cells["c"]
    before = (rec.state(3), money(rec), rec.status_calls(), slot_seconds(rec))
    assert before[3] == pytest.approx(7.5)
    rec.compact()
    assert rec.compacted and not rec.attempts
    assert (rec.state(3), money(rec), rec.status_calls(), slot_seconds(rec)) == before


def test_the_state_table_answers_every_view() -> None:
    """The cell-state table covers every state once, in order; the stuck states (settled
    problems: failed, unknown) each carry advice, and that advice is what a resume hint gives;
    a job is finished when only done and orphaned cells are left."""
    assert list(states_json()) == list(STATES) and len(set(STATES)) == len(STATE_TABLE)
    assert STUCK == {FAILED, UNKNOWN} and all(STATE_INFO[s].advice for s in STUCK)
    assert ON_SERVER == {QUEUED, RUNNING} <= LIVE and not (LIVE & SETTLED)
    hint = resume_hint("jobs/x.yaml", {DONE: 3, UNKNOWN: 1, FAILED: 2}, "out/x")
    assert hint == {"needed": True, "command": "pipeline run jobs/x.yaml --out out/x",
                    "hints": [STATE_INFO[FAILED].advice, STATE_INFO[UNKNOWN].advice]}
    assert resume_hint("j.yaml", {DONE: 3, ORPHANED: 1, FAILED: 0}) == {
        "needed": False, "command": "pipeline run j.yaml", "hints": []}
    assert resume_hint("j.yaml", {DONE: 3, PENDING: 1})["needed"]


def test_a_submit_under_way_at_no_price_is_held_not_spent() -> None:
    """A cell whose submit is under way (or refused) at an unknown price has spent nothing:
    it is held at an unknown price (committed), never `spent ... (+1 cells at an unknown
    price)` (the API unreachable: nothing was accepted)."""
    from pipeline.job.money import Ledger
    from pipeline.job.tally import figures_line

    under_way = replay(ev.intent("c", 1, None)).cells["c"]
    figures = money(under_way)
    assert figures.held_unpriced and not figures.unpriced and figures.spent == 0.0
    ledger = Ledger()
    ledger.settle("c", figures)
    assert (ledger.unpriced_cells, ledger.held_unpriced_cells) == (0, 1)
    refused = replay(ev.intent("c", 1, None),
                     ev.submit_failed("c", 1, "not_accepted", "connection refused",
                                      False)).cells["c"]
    ledger.settle("c", money(refused))
    assert (ledger.unpriced_cells, ledger.held_unpriced_cells) == (0, 0)
    line = figures_line({"counts": {"done": 0, "submitting": 1}, "total": 1, "spent_usd": 0.0,
                         "committed_usd": 0.0, "unpriced_cells": 0,
                         "committed_unpriced_cells": 1, "to_do": 0})
    assert "spent $0.00, committed $0.00 (+1 cells at an unknown price)" in line
