"""What status says after a run, and that plan says the same: counts, money, ETA, labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from runjobs import sweep

from pipeline.api import RunOptions, job_status, run_plan
from pipeline.cli import main
from pipeline.job.folder import JobFolder
from pipeline.job.forecast import forecast
from pipeline.job.found_capacity import keep, kept, service
from pipeline.job.records import FAILED, STATE_INFO, UNKNOWN
from pipeline.job.status import status_text, view_job
from pipeline.prepare.plan import build_plan
from pipeline.run.prices import price_now
from pipeline.sim import SimConfig


@pytest.fixture
def budget_stopped(tmp_path: Path, api_env) -> tuple[Path, Path]:
    """A 10-cell job stopped by its budget after 4 cells: 6 pending, none live."""
    api_env(capacity=2, gen_time=(0.05, 0.1), price_usd=0.05)
    manifest = sweep(tmp_path, seeds=10, run="  budget: 1.00")
    manifest.write_text(manifest.read_text().replace("concurrency: 8", "concurrency: 2"))
    out = tmp_path / "out"
    summary = run_plan(build_plan(manifest), RunOptions(out=out, progress="none"))
    assert summary.counts["done"] == 4 and summary.counts["pending"] == 6
    assert summary.stopped == "committed $1.00 + next cell $0.25 = $1.25 > budget $1.00"
    return manifest, out


def test_plan_and_status_give_the_same_figures_and_eta(budget_stopped, capsys) -> None:
    """After a run measured 4 cells, plan and status agree on counts, money, cells to do and
    the ETA, both timed from the measured cells (not the model's 90 s guess), and plan counts
    only the 6 cells still to do."""
    manifest, out = budget_stopped
    status = job_status(manifest, out)
    assert main(["plan", str(manifest), "--out", str(out), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    keys = ("total", "counts", "spent_usd", "committed_usd", "to_go_usd", "to_do", "eta_s",
            "per_cell_s", "duration_source")
    assert {k: plan["figures"][k] for k in keys} == {k: status[k] for k in keys}
    assert status["to_do"] == 6 and status["to_go_usd"] == pytest.approx(6 * 0.25)
    assert status["duration_source"] == "measured on 4 cells" and status["per_cell_s"] < 5
    assert status["eta_s"] == pytest.approx(3 * status["per_cell_s"], abs=0.1)  # 6 on 2 slots
    assert main(["plan", str(manifest), "--out", str(out)]) == 0
    table = capsys.readouterr().out
    assert "estimated cost: $1.50 for 6 of 10 cells to run" in table
    assert "measured on 4 cells" in table and "guess" not in table


def test_the_live_tally_and_the_replay_agree_at_one_instant(budget_stopped) -> None:
    """plan's forecast and status's replay of the same folder give the same ETA at the same
    instant."""
    manifest, out = budget_stopped
    plan = build_plan(manifest)
    folder = JobFolder(out)
    ahead = forecast(plan, price_now(plan.manifest, folder), folder)
    view = view_job(folder)
    assert ahead.tally.eta(2, now=1e10) == view.tally.eta(2, now=1e10)
    assert ahead.tally.counts == view.tally.counts


def test_status_lists_failed_cells_with_their_labels(tmp_path: Path, api_env) -> None:
    """A failed cell is listed with its label and reason, after the run and from its summary."""
    api_env(capacity=2, gen_time=(0.02, 0.05), fail_rate=1.0)
    manifest = sweep(tmp_path, seeds=2, resolutions="[720P, 1080P]",
                     run="  max_attempts: 1\n  canary: 0")  # every cell fails: no canary
    manifest.write_text(manifest.read_text().replace("  max_attempts: 3\n", ""))
    run_plan(build_plan(manifest), RunOptions(out=tmp_path / "out", progress="none"))
    text = status_text(job_status(manifest, tmp_path / "out"))
    failed = [line for line in text.splitlines() if line.startswith("failed ")]
    assert len(failed) == 4
    labels = {line.split("  ")[2].split(":")[0] for line in failed}
    assert labels == {"seed=1 resolution=720P", "seed=2 resolution=720P",
                      "seed=1 resolution=1080P", "seed=2 resolution=1080P"}, failed


@pytest.mark.fast_retries(2)
@pytest.mark.parametrize("state, sim", [(FAILED, {"fail_rate": 1.0}),
                                        (UNKNOWN, {"drop_rate": 1.0})])
def test_the_advice_for_failed_and_unknown_cells_is_the_state_table_s(
        state: str, sim: dict, tmp_path: Path, api_env, capsys) -> None:
    """What `status` and the run's "to resume" line advise for failed and unknown cells is the
    cell-state table's advice (pipeline.job.records.STATE_TABLE), word for word, and nothing
    else."""
    api_env(capacity=2, gen_time=(0.02, 0.05), **sim)
    manifest = sweep(tmp_path, seeds=2, run="  max_attempts: 1\n  canary: 0")
    manifest.write_text(manifest.read_text().replace("  max_attempts: 3\n", ""))
    out = tmp_path / "out"
    assert main(["run", str(manifest), "--out", str(out), "--no-progress"]) == 1
    [resume] = [x for x in capsys.readouterr().out.splitlines() if x.startswith("to resume:")]
    assert resume.endswith(f"({STATE_INFO[state].advice})")
    status = job_status(manifest, out)
    assert status["counts"][state] >= 1 and len(status[state]) == status["counts"][state]
    advice = [x for x in status_text(status).splitlines() if x.startswith("  ")]
    assert advice == [f"  {state}: {STATE_INFO[state].advice}"]


@pytest.mark.parametrize("backend", ["runcomfy", "sim"])
def test_plan_and_status_assume_the_capacity_the_run_found(tmp_path: Path, api_env,
                                                           backend: str) -> None:
    """A `concurrency: auto` job after a run: plan, status (from status.json, and from the
    journal) and the next run all assume the capacity that run found on its service (the
    server's URL, or the built-in simulator whatever its port), and none of them what was
    found on another service."""
    sim = api_env(capacity=2, gen_time=(0.2, 0.3))
    manifest = sweep(tmp_path, seeds=16, backend=backend, run="  canary: 0")
    manifest.write_text(manifest.read_text().replace("concurrency: 8", "concurrency: auto"))
    out = tmp_path / "out"
    folder = JobFolder(out)
    options = RunOptions(out=out, progress="none",
                         sim=SimConfig(capacity=2, gen_time=(0.2, 0.3), seed=5))
    assert run_plan(build_plan(manifest), options).exit_code == 0
    at = service(backend, sim.base_url)
    found = kept(folder, at)
    assert found is not None and at == ("sim" if backend == "sim" else sim.base_url)
    keep(folder, "https://elsewhere.example", 50, 2)  # another service's: not this job's
    capacity = found["capacity"]
    plan = build_plan(manifest)
    planned = forecast(plan, price_now(plan.manifest, folder), folder)
    status = job_status(manifest, out)
    assert folder.settled_summary() is not None  # that status came from status.json
    replayed = view_job(folder).summary()
    assert planned.concurrency == status["concurrency"] == replayed["concurrency"] == capacity
    assert status["capacity"]["found"] == replayed["capacity"]["found"] == capacity
    assert "format" not in status and "pipeline" not in status


def test_a_job_last_run_by_another_version_is_read_anew(tmp_path: Path, api_env) -> None:
    """After a run by another version of pipeline (its stamp on plan.json and status.json),
    status and the report refuse its plan.json by name (exit 2) and never serve its
    status.json; a run of this version rewrites both, and they read again."""
    api_env(capacity=2, gen_time=(0.02, 0.05))
    manifest = sweep(tmp_path, seeds=2, run="  canary: 0")
    out = tmp_path / "out"
    folder = JobFolder(out)
    options = RunOptions(out=out, progress="none")
    assert run_plan(build_plan(manifest), options).exit_code == 0
    for stored in (folder.plan, folder.summary):
        data = json.loads(stored.read_text())
        stored.write_text(json.dumps({**data, "format": data["format"] + 1,
                                      "pipeline": "99.0.0"}))
    assert folder.settled_summary() is None
    assert main(["status", str(manifest), "--out", str(out)]) == 2
    assert main(["report", str(manifest), "--out", str(out)]) == 2
    assert run_plan(build_plan(manifest), options).exit_code == 0  # nothing to do but rewrite
    assert json.loads(folder.plan.read_text())["pipeline"] != "99.0.0"
    assert folder.settled_summary() is not None
    assert job_status(manifest, out)["counts"]["done"] == 2
