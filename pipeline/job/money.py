"""The money of a job: what was spent, what is committed, and whether the budget has room.

One definition, used by the runner, `pipeline status`, the progress line and the report:

- `spent`: the cost of every attempt the server has billed (its `cost` where the result gave
  one, else its estimate: `estimated` then says the figure is partly an estimate). Orphaned
  cells' spend stays in it (and is also shown apart). It never decreases.
- `committed`: spent plus the estimates held for requests live on the server (or maybe live:
  a submit under way, or one whose outcome is unknown). The budget works on committed.

A Ledger is pure: it holds each cell's figures (from `pipeline.job.records.money`) and their
totals, so an event updates it in O(1). Totals are kept in whole micro-dollars, so a total
updated event by event equals the same total summed afresh, to the last digit. It does no
I/O and knows nothing of the journal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import text
from .records import NOTHING, Money

MICRO = 1_000_000
MAX_SHARED = 4096  # distinct Money values kept for sharing (a cell's figures are few values)
_SHARED: dict[Money, Money] = {}


def micros(usd: float) -> int:
    return round(usd * MICRO)


def over_budget(committed: int, more: int, budget: float | None, whose: str = "") -> str | None:
    """Why committing `more` micro-dollars on top of `committed` crosses `budget` (USD), or
    None when it fits (reaching the budget exactly is allowed). `whose` names a shared budget."""
    if budget is None or committed + more <= micros(budget):
        return None
    parts = [committed / MICRO, more / MICRO, (committed + more) / MICRO, budget]
    # Cents can hide the difference ($2.75 + $0.25 = $3.00 > $3.00): show more digits then.
    digits = 2 if round(parts[2], 2) > round(budget, 2) else 4
    a, b, c, d = (text.money(x, digits) for x in parts)
    return f"{whose}committed {a} + next cell {b} = {c} > {whose}budget {d}"


@dataclass
class Ledger:
    """Per-cell spent and held USD, their totals, and the budget's verdict."""

    budget: float | None = None
    _spent: int = 0
    _held: int = 0
    _orphaned: int = 0
    estimated_cells: int = 0  # cells whose spent includes an estimate
    unpriced_cells: int = 0  # cells with an attempt billed at no known price (in spent)
    held_unpriced_cells: int = 0  # cells holding a live attempt at no known price (committed)
    _cells: dict[str, Money] = field(default_factory=dict, repr=False)
    _orphans: set[str] = field(default_factory=set, repr=False)

    @property
    def spent(self) -> float:
        return self._spent / MICRO

    @property
    def held(self) -> float:
        return self._held / MICRO

    @property
    def committed(self) -> float:
        return (self._spent + self._held) / MICRO

    @property
    def spent_orphaned(self) -> float:
        return self._orphaned / MICRO

    def money_of(self, cell: str) -> Money:
        """One cell's figures as last settled."""
        return self._cells.get(cell, NOTHING)

    def cells(self) -> list[str]:
        """The cells holding figures (any other's are NOTHING)."""
        return list(self._cells)

    def settle(self, cell: str, figures: Money, orphaned: bool = False) -> None:
        """Set one cell's figures (replacing what it held before, reservations included)."""
        old = self._cells.get(cell, NOTHING)
        was_orphaned = cell in self._orphans
        self._spent += micros(figures.spent) - micros(old.spent)
        self._held += micros(figures.held) - micros(old.held)
        self._orphaned += (micros(figures.spent) if orphaned else 0) - \
            (micros(old.spent) if was_orphaned else 0)
        self.estimated_cells += int(figures.estimated) - int(old.estimated)
        self.unpriced_cells += int(figures.unpriced) - int(old.unpriced)
        self.held_unpriced_cells += int(figures.held_unpriced) - int(old.held_unpriced)
        if figures == NOTHING:
            self._cells.pop(cell, None)
        else:  # most cells cost the same: one Money object for them all (100,000 cells: ~7 MB)
            self._cells[cell] = _SHARED.setdefault(figures, figures) \
                if len(_SHARED) < MAX_SHARED else figures
        if orphaned:
            self._orphans.add(cell)
        else:
            self._orphans.discard(cell)

    def over_budget(self, usd: float | None) -> str | None:
        """Why committing `usd` more would cross the budget, or None when it fits."""
        return over_budget(self._spent + self._held, micros(usd or 0.0), self.budget)

    def reserve(self, cell: str, usd: float | None) -> str | None:
        """Hold `usd` for a cell about to be submitted, if the budget has room; else why not.
        The hold lasts until the cell's next `settle` (its intent, once journalled)."""
        refusal = self.over_budget(usd)
        if refusal is None and usd:
            figures = self._cells.get(cell, NOTHING)
            self.settle(cell, Money(figures.spent, figures.held + usd, figures.estimated,
                                    figures.unpriced, figures.held_unpriced),
                        cell in self._orphans)
        return refusal
