"""Selecting cells with --only: one set of rules for every command."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from pipeline.errors import UsageError
from pipeline.job.select import parse_only, select_cells


@dataclass
class C:
    id: str
    values: dict
    request: dict = field(default_factory=dict)


CELLS = [
    C("abcdef0123456789", {"seed": 1, "resolution": "720P"}),
    C("abcdef9123456789", {"seed": 2, "resolution": "1080P"}),
    C("0123456789abcdef", {"seed": 1, "resolution": "1080P"}, {"number_of_frames": 121}),
]


@pytest.mark.parametrize(("only", "ids"), [
    ([], ["abcdef0123456789", "abcdef9123456789", "0123456789abcdef"]),
    (["seed=1"], ["abcdef0123456789", "0123456789abcdef"]),
    (["seed=1", "seed=2"], ["abcdef0123456789", "abcdef9123456789", "0123456789abcdef"]),
    (["seed=1", "resolution=1080P"], ["0123456789abcdef"]),
    (["cell=abcdef9"], ["abcdef9123456789"]),
    (["cell=ABCDEF0"], ["abcdef0123456789"]),
    (["cell=abcdef9", "cell=012345"], ["abcdef9123456789", "0123456789abcdef"]),
    (["cell=012345", "seed=1"], ["0123456789abcdef"]),
    (["number_of_frames=121"], ["0123456789abcdef"]),
])
def test_selection_keeps_plan_order(only: list[str], ids: list[str]) -> None:
    """Same key means either value, different keys mean all of them, ids by unique prefix."""
    assert [c.id for c in select_cells(CELLS, parse_only(only))] == ids


@pytest.mark.parametrize(("only", "message"), [
    (["seed=3"], "--only seed=3: no cell has seed=3; values of seed: 1, 2"),
    (["colour=red"], "'colour' is not a matrix value of this job (known: cell, "),
    (["cell=abcdef"], "--only cell=abcdef: ambiguous"),
    (["cell=abc"], "give at least 6 of them"),
    (["cell=zzzzzzzz"], "a cell id is hex digits"),
    (["cell=ffffff"], "no cell of this job has an id starting so"),
    (["seed=2", "resolution=720P"], "no cell matches all of them"),
    (["seed"], "expected KEY=VALUE"),
])
def test_a_selection_that_matches_nothing_is_a_usage_error(only: list[str], message: str) -> None:
    """A typo in --only never runs nothing (or everything) silently."""
    with pytest.raises(UsageError) as info:
        select_cells(CELLS, parse_only(only))
    assert message in str(info.value)


def test_many_values_are_listed_with_and_n_more() -> None:
    """A long list of existing values ends with 'and N more'."""
    cells = [C(f"{i:016x}", {"seed": i}) for i in range(30)]
    with pytest.raises(UsageError, match=r"values of seed: 0, 1, .*, 11 and 18 more"):
        select_cells(cells, parse_only(["seed=99"]))
