"""The Ledger: spent and committed kept cell by cell, exactly, and the budget's verdict."""

from __future__ import annotations

import random

import pytest

from pipeline.job.money import Ledger
from pipeline.job.records import NOTHING, Money


def test_committed_is_spent_plus_what_live_requests_hold() -> None:
    """Spent counts billed attempts; committed adds the estimates held by live ones."""
    ledger = Ledger()
    ledger.settle("a", Money(held=0.25))
    ledger.settle("b", Money(spent=0.25))
    assert (ledger.spent, ledger.held, ledger.committed) == (0.25, 0.25, 0.5)
    ledger.settle("a", Money(spent=0.2))  # the live request ended and cost less
    assert (ledger.spent, ledger.committed) == (0.45, 0.45)


def test_totals_updated_event_by_event_equal_a_fresh_sum_exactly() -> None:
    """Thousands of settles in any order give the same totals as summing the final figures
    afresh, to the last digit (micro-dollars, not float drift)."""
    rng = random.Random(3)
    ledger = Ledger()
    final: dict[str, Money] = {}
    for _ in range(20_000):
        cell = f"c{rng.randrange(500)}"
        figures = Money(spent=round(rng.uniform(0, 1), 6), held=round(rng.uniform(0, 1), 6))
        ledger.settle(cell, figures)
        final[cell] = figures
    fresh = Ledger()
    for cell, figures in final.items():
        fresh.settle(cell, figures)
    assert (ledger.spent, ledger.committed) == (fresh.spent, fresh.committed)


def test_orphaned_spend_stays_in_spent_and_is_shown_apart() -> None:
    """Money spent on cells no longer in the manifest does not vanish."""
    ledger = Ledger()
    ledger.settle("kept", Money(spent=1.0))
    ledger.settle("gone", Money(spent=0.5), orphaned=True)
    assert (ledger.spent, ledger.spent_orphaned) == (1.5, 0.5)


def test_settling_nothing_forgets_a_cell() -> None:
    """A cell back to nothing (e.g. its submit was not accepted) holds nothing."""
    ledger = Ledger()
    ledger.settle("a", Money(held=0.3))
    ledger.settle("a", NOTHING)
    assert ledger.committed == 0 and not ledger._cells


def test_estimated_and_unpriced_cells_are_counted() -> None:
    """The ledger says how much of spent is an estimate, and how many cells have no price."""
    ledger = Ledger()
    ledger.settle("a", Money(spent=0.3, estimated=True))
    ledger.settle("b", Money(spent=0.0, estimated=True, unpriced=True))
    ledger.settle("a", Money(spent=0.25))
    assert (ledger.estimated_cells, ledger.unpriced_cells) == (1, 1)


@pytest.mark.parametrize("committed,next_usd,budget,refusal", [
    (2.75, 0.25, 3.00, None),  # exactly the budget: allowed
    (2.7504, 0.252, 3.00, "committed $2.7504 + next cell $0.2520 = $3.0024 > budget $3.0000"),
    (2.80, 0.30, 3.00, "committed $2.80 + next cell $0.30 = $3.10 > budget $3.00"),
    (0.0, None, 0.0, None),  # an unknown price under no budget pressure
])
def test_budget_verdict_adds_up(committed, next_usd, budget, refusal) -> None:
    """The stop message's figures add up, with enough digits to show why they cross."""
    ledger = Ledger(budget)
    ledger.settle("x", Money(spent=committed))
    assert ledger.over_budget(next_usd) == refusal


def test_reserve_holds_until_the_cell_is_settled() -> None:
    """A reservation counts against the budget at once (two cells cannot both take the last
    room), and is replaced by the cell's journalled figures when they come."""
    ledger = Ledger(1.0)
    assert ledger.reserve("a", 0.6) is None
    assert ledger.reserve("b", 0.6) == \
        "committed $0.60 + next cell $0.60 = $1.20 > budget $1.00"
    ledger.settle("a", Money(held=0.6))  # its intent was journalled: same figure
    assert ledger.committed == 0.6
    ledger.settle("a", Money(spent=0.25))
    assert ledger.reserve("b", 0.6) is None and ledger.committed == pytest.approx(0.85)
    assert Ledger().reserve("a", 10**6) is None  # no budget: anything goes
