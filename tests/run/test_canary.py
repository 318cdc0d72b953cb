"""First contact with a service: the canary cell and the refusal breaker, on the simulator
reached through RUNCOMFY_BASE_URL (the runcomfy backend, as a real run would be)."""

from __future__ import annotations

import json
from pathlib import Path

from runjobs import env_for, journal_events, pipeline_cmd, run, status_json, sweep

from pipeline.api import RunOptions, run_plan
from pipeline.prepare.plan import build_plan


def test_a_refused_data_uri_costs_one_submit(tmp_path: Path, api_env) -> None:
    """With data: URIs refused and a local image, a 20-cell run makes one submit, stops with
    the advice to use https URLs, exits 1 and leaves 19 cells pending."""
    sim = api_env(capacity=8, accept_data_uris=False)
    manifest = sweep(tmp_path, seeds=20)
    out = tmp_path / "out"
    env = env_for(sim.base_url)
    proc = run(manifest, out, env)
    assert proc.returncode == 1, proc.stderr
    assert sim.stats()["calls"]["submit"] == 1
    assert "canary: waiting for 1 cell before submitting 19" in proc.stderr
    [stopped] = [line for line in proc.stdout.splitlines() if line.startswith("stopped")]
    assert "canary cell" in stopped and "data URIs are not accepted" in stopped
    assert "set `run.local_images: refuse` and give the images as https URLs" in stopped
    counts = status_json(manifest, out, env)["counts"]
    assert counts["pending"] == 19 and counts["failed"] == 1


def live_at_most(events: list[dict]) -> int:
    """The most requests live at once, from the journal (submitted until result)."""
    live = most = 0
    for e in events:
        live += {"submitted": 1, "result": -1}.get(e["e"], 0)
        most = max(most, live)
    return most


def test_nothing_else_is_live_before_the_canary_is_done(tmp_path: Path, api_env) -> None:
    """No second request is sent before the first cell is downloaded and judged; then the
    rest run at full concurrency."""
    sim = api_env(capacity=8, gen_time=(0.2, 0.4))
    manifest = sweep(tmp_path, seeds=20)
    summary = run_plan(build_plan(manifest), RunOptions(out=tmp_path / "out", progress=False))
    assert summary.exit_code == 0 and sim.stats()["submissions_accepted"] == 20
    events = journal_events(tmp_path / "out")
    first = next(e["cell"] for e in events if e["e"] == "intent")
    [canary] = [e for e in events if e["e"] == "canary"]
    assert canary["cell"] == first and canary["ok"]
    judged = events.index(canary)
    assert events.index(next(e for e in events if e["e"] == "download")) < judged
    assert all(e["cell"] == first for e in events[:judged] if e["e"] == "intent")
    assert live_at_most(events[:judged]) == 1
    assert live_at_most(events[judged:]) == 8
    assert next(e for e in events if e["e"] == "run")["canary"] == 1
    # a rerun of the job, which now has a done cell on this service, needs no canary
    again = run_plan(build_plan(manifest), RunOptions(out=tmp_path / "out", progress=False))
    assert again.exit_code == 0
    assert [e["canary"] for e in journal_events(tmp_path / "out") if e["e"] == "run"] == [1, 0]


def test_a_canary_billed_more_re_estimates_the_rest(tmp_path: Path, api_env) -> None:
    """A result that costs 20% more than the catalog says is reported by the canary; the rest
    of the run is estimated, and reserved under the budget, at what it cost; plan and status
    then show the same corrected figures."""
    sim = api_env(capacity=8, gen_time=(0.1, 0.2), price_usd=0.05, cost_factor=1.2)
    manifest = sweep(tmp_path, seeds=20, run="  budget: 3.00")
    out = tmp_path / "out"
    env = env_for(sim.base_url)
    proc = run(manifest, out, env, "--progress", "json")
    assert proc.returncode == 1, proc.stderr  # the budget stops it
    assert "billed $0.30 against an estimate of $0.25 (+20%)" in proc.stderr
    lines = [json.loads(x) for x in proc.stderr.splitlines() if x.startswith("{")]
    assert lines[0]["to_go_usd"] == 5.00 and lines[0]["canary"]["holding_back"] == 19
    after = next(x for x in lines if x["counts"]["done"] == 1 and "canary" not in x)
    # the cells still to submit at $0.30, not at the catalog's $0.25
    assert after["to_do"] > 0 and after["to_go_usd"] == round(after["to_do"] * 0.30, 4)
    # reserved at $0.30: ten cells fit in $3.00 (at $0.25 an eleventh would have crossed it)
    assert sim.stats()["submissions_accepted"] == 10
    status = status_json(manifest, out, env)
    assert status["spent_usd"] == 3.00 and status["to_go_usd"] == 3.00
    assert "x1.2 as the canary cell was billed" in status["price_source"]
    plan = json.loads(__import__("subprocess").run(
        pipeline_cmd("plan", str(manifest), "--out", str(out), "--json"), env=env,
        capture_output=True, text=True, timeout=60).stdout)
    assert plan["figures"]["to_go_usd"] == 3.00 and plan["price"]["sheet"]["usd"] == 0.06


def test_a_failed_canary_stops_the_run_with_the_service_reason(tmp_path: Path,
                                                               api_env) -> None:
    """A canary whose generation fails every time is sent alone up to max_attempts (3), then
    stops the run with the service's reason and the attempts it used; the other cells stay
    pending."""
    sim = api_env(capacity=4, gen_time=(0.05, 0.1), fail_rate=1.0)
    manifest = sweep(tmp_path, seeds=6)
    summary = run_plan(build_plan(manifest), RunOptions(out=tmp_path / "out", progress=False))
    assert summary.exit_code == 1 and sim.stats()["calls"]["submit"] == 3
    assert "failed on the service in all 3 attempts (max_attempts 3): simulated failure" in \
        (summary.stopped or "")
    assert summary.counts["pending"] == 5 and summary.counts["failed"] == 1
    assert live_at_most(journal_events(tmp_path / "out")) == 1


def test_a_canary_failed_once_by_the_service_is_sent_again_alone(tmp_path: Path,
                                                                 api_env) -> None:
    """A service failing a generation in ten fails the canary's first attempt (seed 17): the
    canary is sent again, still alone, is proven, and the run finishes (exit 0)."""
    sim = api_env(capacity=4, gen_time=(0.05, 0.1), fail_rate=0.1, seed=17)
    manifest = sweep(tmp_path, seeds=6)
    summary = run_plan(build_plan(manifest), RunOptions(out=tmp_path / "out", progress=False))
    assert summary.exit_code == 0 and summary.stopped is None
    assert sim.stats()["submissions_accepted"] == 7
    events = journal_events(tmp_path / "out")
    [canary] = [e for e in events if e["e"] == "canary"]
    judged = events.index(canary)
    first = [e for e in events[:judged] if e["e"] == "result"]
    assert [e["result"] for e in first] == ["failed", "succeeded"]
    assert {e["cell"] for e in first} == {canary["cell"]} and canary["ok"]
    assert live_at_most(events[:judged]) == 1


def test_a_canary_without_output_is_not_sent_again(tmp_path: Path, api_env,
                                                    monkeypatch) -> None:
    """A canary whose result names no output says the wire is not what we read: the run stops
    after that one attempt, max_attempts notwithstanding, and says so."""
    import pipeline.run.poll

    sim = api_env(capacity=4, gen_time=(0.05, 0.1))
    monkeypatch.setattr(pipeline.run.poll, "pick_outputs", lambda *a: [])
    manifest = sweep(tmp_path, seeds=6)
    summary = run_plan(build_plan(manifest), RunOptions(out=tmp_path / "out", progress=False))
    assert summary.exit_code == 1 and sim.stats()["calls"]["submit"] == 1
    assert "its result named no output URL" in (summary.stopped or "")


def test_repeated_refusals_stop_submitting_naming_the_code(tmp_path: Path, api_env) -> None:
    """Without a canary, three submits refused in a row with one error code stop the run,
    naming the code and the cells it failed."""
    sim = api_env(capacity=1, accept_data_uris=False)
    manifest = sweep(tmp_path, seeds=10)
    manifest.write_text(manifest.read_text().replace("concurrency: 8", "concurrency: 1"))
    summary = run_plan(build_plan(manifest), RunOptions(out=tmp_path / "out", progress=False,
                                                       no_canary=True))
    assert summary.exit_code == 1 and sim.stats()["calls"]["submit"] == 3
    assert summary.stopped.startswith("3 submits in a row were refused with HTTP 400, "
                                      "error_code 400000 (3 cells failed)")
    assert summary.counts["failed"] == 3 and summary.counts["pending"] == 7


def test_refusals_under_way_are_all_counted(tmp_path: Path, api_env) -> None:
    """At concurrency 8 more submits are refused than the three that trip the breaker: the
    line that stops the run counts every one of them."""
    sim = api_env(capacity=8, accept_data_uris=False)
    manifest = sweep(tmp_path, seeds=10)
    summary = run_plan(build_plan(manifest), RunOptions(out=tmp_path / "out", progress=False,
                                                       no_canary=True))
    failed = summary.counts["failed"]
    assert summary.exit_code == 1 and sim.stats()["calls"]["submit"] == failed >= 3
    assert f"({failed} cells failed)" in (summary.stopped or ""), summary.stopped


def test_plan_counts_the_canary_in_its_time_estimate(tmp_path: Path, api_env, capsys) -> None:
    """plan of a job never run on the service says the canary runs alone first and counts it
    in the duration; on the built-in simulator there is none."""
    from pipeline.cli import main

    api_env()
    manifest = sweep(tmp_path, seeds=10, run="  concurrency: 4")
    manifest.write_text(manifest.read_text().replace("  concurrency: 8\n", ""))
    assert main(["plan", str(manifest), "--out", str(tmp_path / "out"), "--json"]) == 0
    estimate = json.loads(capsys.readouterr().out)["estimate"]
    per_cell = estimate["per_cell_s"]
    assert estimate["canary"] == 1 and estimate["duration_s"] == 4 * per_cell  # 1, 4, 4, 1
    assert main(["plan", str(manifest), "--out", str(tmp_path / "out")]) == 0
    assert "at concurrency 4, after a canary of 1 cell run alone first" in \
        capsys.readouterr().out
    manifest.write_text(manifest.read_text().replace("backend: runcomfy", "backend: sim"))
    assert main(["plan", str(manifest), "--out", str(tmp_path / "sim"), "--json"]) == 0
    estimate = json.loads(capsys.readouterr().out)["estimate"]  # (timed by the simulator)
    assert estimate["canary"] == 0 and estimate["duration_s"] == 3 * estimate["per_cell_s"]


def test_insufficient_balance_stops_at_once_and_leaves_the_cell_pending(
        tmp_path: Path, api_env, monkeypatch) -> None:
    """A submit refused for insufficient balance (400002) stops submitting at the first
    refusal; the cell is not failed (it is not its fault) and runs once topped up."""
    from pipeline.client import NOT_ACCEPTED, RunComfyClient
    from pipeline.errors import SubmitError

    sim = api_env(capacity=4, gen_time=(0.02, 0.05))
    submits = []

    async def broke(self, model_id, body, **kw):
        submits.append(body)
        raise SubmitError(NOT_ACCEPTED, "HTTP 400 (error_code 400002): InsufficientResources",
                          status_code=400, error_code=400002, permanent=True)

    manifest = sweep(tmp_path, seeds=5)
    manifest.write_text(manifest.read_text().replace("concurrency: 8", "concurrency: 1"))
    with monkeypatch.context() as m:
        m.setattr(RunComfyClient, "submit", broke)
        summary = run_plan(build_plan(manifest), RunOptions(out=tmp_path / "out",
                                                           progress=False, no_canary=True))
    assert len(submits) == 1 and summary.exit_code == 1
    assert "insufficient balance" in summary.stopped and "top up" in summary.stopped
    assert summary.counts["pending"] == 5 and summary.counts["failed"] == 0
    topped_up = run_plan(build_plan(manifest), RunOptions(out=tmp_path / "out", progress=False))
    assert topped_up.exit_code == 0 and sim.stats()["submissions_accepted"] == 5
