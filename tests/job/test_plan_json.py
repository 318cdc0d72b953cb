"""plan.json is the one transport from a run to `status` and the report: what `plan_json`
writes of a job's settings, `settings_of` reads back as the run had them (one model, and a
sweep of several), and every cell's estimate it writes is the one the tally reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from runjobs import REPO
from testmodels import project, side_by_side

from pipeline import api
from pipeline.job.planned import planned_cells
from pipeline.job.status import settings_of


def planned(manifest: Path) -> tuple[api.Planned, dict]:
    found = api.plan(manifest, offline=True)
    # through text, as plan.json is read: tuples become lists, keys strings
    return found, json.loads(json.dumps(found.as_json()))


def check_round_trip(found: api.Planned, data: dict) -> None:
    f = found.forecast
    m = f.plan.manifest
    s = settings_of(data, {})
    assert s.model == m.sweep.label
    assert s.max_attempts == m.run.max_attempts and s.budget == m.run.budget
    assert s.concurrency == f.concurrency
    assert s.price_source == f.price.source
    assert s.fps == m.model.fps
    if m.sweep.many:
        assert s.rates == {k: (f.price.of(k).sheet, x.fps) for k, x in m.sweep.models.items()}
        assert s.typical == {k: x.typical_s for k, x in m.sweep.models.items()}
    else:
        assert s.sheet == f.price.sheet and s.typical == f.tally.timings.typical_of()
    # each cell's estimate, as plan.json carries it, is the one the run's tally holds
    assert [c["estimated_cost"] for c in data["cells"]] == \
        [p.estimate for p in f.tally.planned.values()]
    again = planned_cells(data["cells"], s.model, s.sheet, s.fps, models=s.rates)
    assert [(p.id, p.estimate, p.key) for p in again] == \
        [(p.id, p.estimate, p.key) for p in f.tally.planned.values()]


def test_one_model_settings_survive_plan_json() -> None:
    """The demo's settings, written as plan.json and read back, are the manifest's."""
    check_round_trip(*planned(REPO / "jobs" / "demo.yaml"))


def test_a_sweep_of_several_models_survives_plan_json(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A three-model sweep: each model's price sheet, fps and typical time come back."""
    root = project(tmp_path, with_models=True)
    monkeypatch.chdir(root)
    check_round_trip(*planned(side_by_side(root)))


def test_plan_says_when_the_budget_leaves_nothing_to_submit(tmp_path: Path, api_env) -> None:
    """With a cell's money committed and `run.budget` lowered below it, `plan` says the budget
    is spent and that a run would submit nothing, instead of promising the submits."""
    from runjobs import sweep

    from pipeline.job.plan_table import plan_table

    api_env()
    manifest = sweep(tmp_path, seeds=4, run="  canary: 0")
    out = tmp_path / "out"
    assert api.run(manifest, out=out, progress=False, only=["seed=1"]).exit_code == 0
    spent = api.status(manifest, out=out)["spent_usd"]
    assert spent > 0
    manifest.write_text(manifest.read_text().replace("max_attempts: 3",
                                                     f"max_attempts: 3\n  budget: {spent / 2}"))
    found = api.plan(manifest, out=out)
    assert found.as_json()["estimate"]["budget_fits"] == 0
    table = plan_table(found.forecast, width=200)
    assert "spent; a run would submit none of the 3 cells to run" in table, table
    assert "but the budget stops it after 0 submits" in table, table
    manifest.write_text(manifest.read_text().replace(f"budget: {spent / 2}",
                                                     f"budget: {spent * 2.5}"))
    found = api.plan(manifest, out=out)
    assert found.as_json()["estimate"]["budget_fits"] == 1
    assert "room for 1 of the 3 cells to run" in plan_table(found.forecast, width=200)
