"""Which cells a run sends first (pipeline.run.canary.first): per model, its first cells in
plan order as the canary needs them, then every other cell in plan order."""

from __future__ import annotations

from pipeline.prepare.expand import Cell
from pipeline.run.canary import first


def cells(*models: str) -> list[Cell]:
    return [Cell(id=f"c{n}", label="", index=n, values={}, request={}, replicate=0, origin={},
                 model=m) for n, m in enumerate(models)]


def ids(chosen: list[Cell]) -> list[str]:
    return [c.id for c in chosen]


def test_each_model_is_proven_by_its_own_first_cells() -> None:
    """A sweep of two models, one canary cell each: each model's first cell goes ahead."""
    plan = cells("a", "a", "b", "a", "b")
    assert ids(first(plan, {"a": 1, "b": 1})) == ["c0", "c2", "c1", "c3", "c4"]


def test_no_canary_keeps_plan_order_and_nothing_is_lost() -> None:
    """With no canary the order is the plan's; with more needed than a model has, all of its
    cells go ahead; no cell is dropped or repeated either way."""
    plan = cells("a", "b", "a")
    assert ids(first(plan, {})) == ["c0", "c1", "c2"]
    chosen = first(plan, {"a": 5, "b": 0})
    assert ids(chosen) == ["c0", "c2", "c1"]
    assert sorted(ids(chosen)) == sorted(ids(plan))
