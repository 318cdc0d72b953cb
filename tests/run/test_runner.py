"""Running jobs against the real simulator: final states, resume, budget, limits, interrupts.

`api_env` (tests/conftest.py) starts the simulator a test asks for and points the RunComfy
backend at it.
"""

from __future__ import annotations

import hashlib
import signal
import time
from pathlib import Path

import pytest
from runjobs import REPO, env_for, journal_events, run, start_run, status_json, sweep, wait_until

from pipeline.api import RunOptions, run_plan
from pipeline.job.journal import read_state
from pipeline.prepare.plan import build_plan
from pipeline.sim import SimConfig


def test_demo_job_runs_offline_end_to_end(tmp_path: Path) -> None:
    """`backend: sim` runs the demo with no token: every cell done, videos hashed and probed."""
    summary = run_plan(build_plan(REPO / "jobs" / "demo.yaml"),
                      RunOptions(out=tmp_path / "out", progress=False,
                                 sim=SimConfig(capacity=4, gen_time=(0.1, 0.3))))
    assert summary.exit_code == 0
    assert summary.counts["done"] == 4
    state = read_state(tmp_path / "out")
    for rec in state.cells.values():
        [file] = rec.files.values()
        data = (tmp_path / "out" / file.path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == file.sha256 and len(data) == file.size
        assert file.probe["frames"] == 121 and file.probe["fps"] == 24
        assert file.check["ok"]


def test_rerun_of_a_finished_job_does_nothing(tmp_path: Path, api_env) -> None:
    """A second run of a finished job submits nothing and polls nothing."""
    sim = api_env(capacity=4, gen_time=(0.05, 0.1))
    manifest = sweep(tmp_path, seeds=6)
    plan = build_plan(manifest)
    assert run_plan(plan, RunOptions(out=tmp_path / "out", progress=False)).exit_code == 0
    before = sim.stats()
    again = run_plan(plan, RunOptions(out=tmp_path / "out", progress=False))
    after = sim.stats()
    assert again.exit_code == 0 and again.counts["done"] == 6
    assert after["submissions_accepted"] == before["submissions_accepted"] == 6
    assert after["calls"]["status"] == before["calls"]["status"]


def test_two_hundred_cells_with_every_fault(tmp_path: Path, api_env) -> None:
    """With 5xx, 429, drops, generation failures and cut downloads on, every cell ends in the
    right state and the job's counts agree with the simulator's own counters."""
    sim = api_env(capacity=20, gen_time=(0.05, 0.2), error_rate=0.04, rate_limit_rate=0.04,
                  drop_rate=0.03, fail_rate=0.15, download_fault_rate=0.15)
    manifest = sweep(tmp_path, seeds=100, resolutions="[720P, 1080P]",
                     run="  concurrency: 20\n  canary: 0")  # a faulty first cell would stop it
    manifest.write_text(manifest.read_text().replace("  concurrency: 8\n", ""))
    out = tmp_path / "out"
    summary = run_plan(build_plan(manifest), RunOptions(out=out, progress=False))
    stats = sim.stats()
    status = status_json(manifest, out, env_for(sim.base_url))
    counts = status["counts"]
    assert status["total"] == 200
    assert counts["done"] + counts["failed"] + counts["unknown"] == 200, counts
    assert counts["done"] > 150
    events = journal_events(out)
    submitted = [e for e in events if e["e"] == "submitted"]
    # Every submit the simulator acknowledged is in the journal, and nothing else.
    assert len(submitted) == stats["submissions_accepted"] - \
        stats["submissions_accepted_unacknowledged"]
    assert len({e["request_id"] for e in submitted}) == len(submitted)
    # Unknown cells are exactly those whose submit outcome could not be known.
    unknown_submits = [e for e in events if e["e"] == "submit_failed"
                       and e["kind"] == "outcome_unknown"]
    assert counts["unknown"] == len(unknown_submits)
    assert counts["unknown"] >= stats["submissions_accepted_unacknowledged"]
    assert stats["duplicate_submissions"] == 0
    # Failed generations were retried, never a download: each done cell has one success.
    state = read_state(out)
    for rec in state.cells.values():
        assert sum(1 for a in rec.attempts if a.result == "succeeded") <= 1
        if rec.state(3) == "done":
            for f in rec.files.values():
                assert hashlib.sha256((out / f.path).read_bytes()).hexdigest() == f.sha256
    assert stats["faults"]["download_truncated"] + stats["faults"]["download_404"] > 0
    assert summary.exit_code == (0 if counts["done"] == 200 else 1)


def test_unknown_submits_are_held_then_resubmitted_on_request(tmp_path: Path, api_env) -> None:
    """A submit whose answer was lost is held as unknown; --resubmit-unknown sends it again,
    and the simulator sees a duplicate only for those resubmissions."""
    sim = api_env(capacity=8, gen_time=(0.05, 0.1), drop_rate=0.3, drop_after_fraction=1.0)
    manifest = sweep(tmp_path, seeds=20, run="  canary: 0")
    out = tmp_path / "out"
    first = run_plan(build_plan(manifest), RunOptions(out=out, progress=False))
    unknown = first.counts["unknown"]
    assert unknown > 0 and first.exit_code == 1
    assert sim.stats()["duplicate_submissions"] == 0
    second = run_plan(build_plan(manifest), RunOptions(out=out, progress=False))
    assert second.counts["unknown"] == unknown  # held: never resubmitted silently
    third = run_plan(build_plan(manifest), RunOptions(out=out, progress=False,
                                                     resubmit_unknown=True))
    resubmissions = sum(1 for e in journal_events(out) if e["e"] == "resubmit_unknown")
    assert resubmissions == second.counts["unknown"]
    assert 0 < sim.stats()["duplicate_submissions"] <= resubmissions
    assert third.counts["done"] > second.counts["done"]


def test_budget_stops_submitting_before_it_is_crossed(tmp_path: Path, api_env) -> None:
    """With a budget for three cells, the fourth is never submitted and the run says why."""
    sim = api_env(capacity=8, gen_time=(0.05, 0.1), price_usd=0.1)  # $0.504 per 121-frame cell
    manifest = sweep(tmp_path, seeds=8, run="  budget: 1.60")
    summary = run_plan(build_plan(manifest), RunOptions(out=tmp_path / "out", progress=False))
    assert sim.stats()["submissions_accepted"] == 3
    assert summary.counts["done"] == 3 and summary.exit_code == 1
    assert "budget" in (summary.stopped or "")
    assert summary.spent == pytest.approx(3 * 0.5, abs=0.05)  # the simulator bills 5 s a clip


def test_fail_fast_stops_after_the_first_failed_cell(tmp_path: Path, api_env) -> None:
    """fail_fast: once a cell has failed max_attempts times, no new cell is submitted."""
    sim = api_env(capacity=1, gen_time=(0.02, 0.05), fail_rate=1.0)
    manifest = sweep(tmp_path, seeds=10, run="  fail_fast: true\n  canary: 0")
    manifest.write_text(manifest.read_text().replace("concurrency: 8", "concurrency: 1"))
    summary = run_plan(build_plan(manifest), RunOptions(out=tmp_path / "out", progress=False))
    assert summary.counts["failed"] == 1 and summary.counts["pending"] == 9
    assert sim.stats()["submissions_accepted"] == 3  # max_attempts of the first cell
    state = read_state(tmp_path / "out")
    [rec] = [r for r in state.cells.values() if r.attempts]
    assert rec.reason()  # the server's reason is kept


def test_retry_failed_gives_failed_cells_new_attempts(tmp_path: Path, api_env) -> None:
    """Failed cells are skipped on rerun, and tried again with --retry-failed."""
    api_env(capacity=4, gen_time=(0.02, 0.05), fail_rate=1.0)
    manifest = sweep(tmp_path, seeds=2, run="  canary: 0")
    out = tmp_path / "out"
    assert run_plan(build_plan(manifest), RunOptions(out=out, progress=False)).counts[
        "failed"] == 2
    api_env(capacity=4, gen_time=(0.02, 0.05))  # the service recovers
    skipped = run_plan(build_plan(manifest), RunOptions(out=out, progress=False))
    assert skipped.counts["failed"] == 2
    retried = run_plan(build_plan(manifest), RunOptions(out=out, progress=False,
                                                       retry_failed=True))
    assert retried.counts["done"] == 2 and retried.exit_code == 0


def test_retry_failed_retries_only_the_selected_failed_cells(tmp_path: Path, api_env) -> None:
    """`--retry-failed --only cell=ID` gives new attempts to that failed cell alone."""
    api_env(capacity=4, gen_time=(0.02, 0.05), fail_rate=1.0)
    manifest = sweep(tmp_path, seeds=3, run="  canary: 0")  # every cell is to fail
    out = tmp_path / "out"
    plan = build_plan(manifest)
    assert run_plan(plan, RunOptions(out=out, progress=False)).counts["failed"] == 3
    sim = api_env(capacity=4, gen_time=(0.02, 0.05))
    chosen = plan.cells[1].id
    retried = run_plan(build_plan(manifest), RunOptions(
        out=out, progress=False, retry_failed=True, only=(("cell", chosen[:8]),)))
    assert retried.counts["done"] == 1 and retried.counts["failed"] == 2
    assert sim.stats()["submissions_accepted"] == 1
    state = read_state(out)
    assert [cid for cid, rec in state.cells.items() if rec.state(3) == "done"] == [chosen]


def test_only_restricts_the_run(tmp_path: Path, api_env) -> None:
    """`--only seed=2` runs just the matching cells."""
    sim = api_env(capacity=4, gen_time=(0.02, 0.05))
    manifest = sweep(tmp_path, seeds=4)
    summary = run_plan(build_plan(manifest), RunOptions(out=tmp_path / "out", progress=False,
                                                       only=(("seed", "2"),)))
    assert summary.counts["done"] == 1 and sim.stats()["submissions_accepted"] == 1


def test_edited_manifest_keeps_done_cells_and_orphans_removed_ones(tmp_path: Path,
                                                                   api_env) -> None:
    """After an edit, unchanged cells stay done, new ones run, removed ones become orphaned."""
    sim = api_env(capacity=4, gen_time=(0.02, 0.05))
    manifest = sweep(tmp_path, seeds=3)
    out = tmp_path / "out"
    run_plan(build_plan(manifest), RunOptions(out=out, progress=False))
    manifest.write_text(manifest.read_text().replace("to: 3", "to: 5").replace("from: 1",
                                                                               "from: 2"))
    summary = run_plan(build_plan(manifest), RunOptions(out=out, progress=False))
    assert summary.counts["done"] == 4 and summary.counts["orphaned"] == 1
    assert sim.stats()["submissions_accepted"] == 5


def test_schema_change_requires_a_flag(tmp_path: Path, api_env) -> None:
    """A state written under another model schema is refused unless the user allows it."""
    from dataclasses import replace

    from pipeline.errors import StateError

    api_env(capacity=4, gen_time=(0.02, 0.05))
    manifest = sweep(tmp_path, seeds=1)
    out = tmp_path / "out"
    run_plan(build_plan(manifest), RunOptions(out=out, progress=False))

    def with_new_schema():  # as if the bundled input schema had been updated since
        plan = build_plan(manifest)
        model = replace(plan.manifest.model, schema_sha256="0" * 64)
        plan.manifest = replace(plan.manifest, model=model, models=None)  # its only model
        return plan

    with pytest.raises(StateError, match="schema of .* changed"):
        run_plan(with_new_schema(), RunOptions(out=out, progress=False))
    ok = run_plan(with_new_schema(), RunOptions(out=out, progress=False,
                                               allow_schema_change=True))
    assert ok.exit_code == 0


def test_missing_token_is_one_line_with_the_offline_hint(tmp_path: Path) -> None:
    """Without a token the run stops before sending anything and says how to run offline."""
    manifest = sweep(tmp_path, seeds=1)
    env = env_for("http://127.0.0.1:9")
    del env["RUNCOMFY_API_TOKEN"]
    proc = run(manifest, tmp_path / "out", env)
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert "RUNCOMFY_API_TOKEN" in line and "--backend sim" in line


def test_second_concurrent_run_refuses_and_the_first_finishes(tmp_path: Path, api_env) -> None:
    """Two `pipeline run` on one job: the second exits at once; the first is unharmed."""
    sim = api_env(capacity=2, gen_time=(0.5, 0.8))
    manifest = sweep(tmp_path, seeds=4)
    out = tmp_path / "out"
    env = env_for(sim.base_url)
    first = start_run(manifest, out, env)
    wait_until((out / "state.jsonl").exists)
    second = run(manifest, out, env, timeout=60)
    assert second.returncode == 2
    assert "another `pipeline run` is running this job" in second.stderr
    assert first.wait(timeout=120) == 0, first.stderr.read()
    assert sim.stats()["submissions_accepted"] == 4


def test_two_runs_started_together_one_runs_and_the_other_is_refused(tmp_path: Path,
                                                                      api_env) -> None:
    """Two `pipeline run` of one job started at the same instant, three times over: each time
    one runs the job to its end and the other is refused by the job's lock (exit 2) before it
    decides anything (no fast path, no report, no submit slips past the lock)."""
    sim = api_env(capacity=4, gen_time=(1.0, 1.5))
    env = env_for(sim.base_url)
    for n in range(3):
        manifest = sweep(tmp_path / f"job{n}", seeds=2)
        out = tmp_path / f"out{n}"
        both = [start_run(manifest, out, env) for _ in range(2)]
        codes = sorted(p.wait(timeout=120) for p in both)
        errors = [p.stderr.read() for p in both]
        assert codes == [0, 2], (codes, errors)
        assert any("another `pipeline run` is running this job" in e for e in errors), errors
    assert sim.stats()["submissions_accepted"] == 3 * 2


def test_interrupt_leaves_requests_live_and_resume_collects_them(tmp_path: Path,
                                                                  api_env) -> None:
    """Ctrl-C exits 130 with a resume hint; the rerun collects live requests without
    submitting them again."""
    sim = api_env(capacity=4, gen_time=(1.0, 1.5))
    manifest = sweep(tmp_path, seeds=8)
    out = tmp_path / "out"
    env = env_for(sim.base_url)
    proc = start_run(manifest, out, env)
    wait_until(lambda: sim.stats()["submissions_accepted"] >= 4)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "to resume: pipeline run" in stdout
    accepted = sim.stats()["submissions_accepted"]
    again = run(manifest, out, env)
    assert again.returncode == 0, again.stderr
    stats = sim.stats()
    assert stats["duplicate_submissions"] == 0
    assert stats["submissions_accepted"] == 8 and accepted <= 8


def test_cancel_on_interrupt_cancels_queued_requests(tmp_path: Path, api_env) -> None:
    """With --cancel-on-interrupt, queued requests are cancelled (not billed) on Ctrl-C."""
    sim = api_env(capacity=1, gen_time=(3.0, 3.0))
    manifest = sweep(tmp_path, seeds=4)
    out = tmp_path / "out"
    proc = start_run(manifest, out, env_for(sim.base_url), "--cancel-on-interrupt",
                     "--no-canary")
    wait_until(lambda: sim.stats()["submissions_accepted"] >= 4)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130
    events = journal_events(out)
    outcomes = [e["outcome"] for e in events if e["e"] == "cancel"]
    assert outcomes.count("cancelled") == 3 and outcomes.count("not_cancellable") == 1
    assert "cancel: cancelled 3 (not billed), not cancellable 1 (running, billed" in stdout
    counts = status_json(manifest, out, env_for(sim.base_url))["counts"]
    assert counts["cancelled"] == 3 and counts["running"] == 1 and counts["queued"] == 0


def test_cancel_command_cancels_what_an_interrupted_run_left_live(tmp_path: Path,
                                                                  api_env) -> None:
    """`pipeline cancel` after an interrupt cancels queued requests (not billed), reports the
    running ones as not cancellable, and records both per cell."""
    import subprocess
    import sys

    sim = api_env(capacity=1, gen_time=(5.0, 5.0))
    manifest = sweep(tmp_path, seeds=3)
    out = tmp_path / "out"
    env = env_for(sim.base_url)
    proc = start_run(manifest, out, env, "--no-canary")
    wait_until(lambda: sim.stats()["submissions_accepted"] >= 3)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    cancel = subprocess.run([sys.executable, "-m", "pipeline", "cancel", str(manifest), "--out",
                             str(out)], env=env, capture_output=True, text=True, timeout=60)
    assert cancel.returncode == 0, cancel.stderr
    assert "cancelled 2 (not billed), not cancellable 1 (running, billed" in cancel.stdout
    status = status_json(manifest, out, env)
    counts = status["counts"]
    assert counts["cancelled"] == 2 and counts["running"] == 1 and counts["queued"] == 0
    assert sim.stats()["cancellations"] == 2
    # cancel rewrote the reports: they say what status says
    import json

    report = json.loads((out / "report.json").read_text())
    assert report["totals"]["by_state"] == counts and status["report_stale"] is False
    assert "cancelled | 2" in (out / "report.md").read_text()


def test_cancel_from_another_terminal_stops_a_running_run(tmp_path: Path, api_env) -> None:
    """`pipeline cancel` while a run is going asks that run to stop through the job folder:
    it cancels its queued requests (not billed), collects the running one, writes its reports
    and exits; cancel waits for it and prints the job's state after."""
    import json
    import subprocess
    import sys

    sim = api_env(capacity=1, gen_time=(3.0, 3.0))
    manifest = sweep(tmp_path, seeds=4)
    out = tmp_path / "out"
    env = env_for(sim.base_url)
    proc = start_run(manifest, out, env, "--no-canary")
    wait_until(lambda: sim.stats()["submissions_accepted"] >= 4)
    cancel = subprocess.run([sys.executable, "-m", "pipeline", "cancel", str(manifest), "--out",
                             str(out)], env=env, capture_output=True, text=True, timeout=120)
    assert cancel.returncode == 0, cancel.stderr
    assert "a run is going; asked it to stop" in cancel.stderr
    assert proc.wait(timeout=60) == 1
    stdout = proc.stdout.read()
    assert "stopped submitting: cancelled by `pipeline cancel`" in stdout, stdout
    status = status_json(manifest, out, env)
    assert status["counts"]["cancelled"] == 3 and status["counts"]["done"] == 1, status
    assert "the run stopped: done 1, cancelled 3" in cancel.stdout, cancel.stdout
    assert sim.stats()["cancellations"] == 3
    report = json.loads((out / "report.json").read_text())
    assert report["totals"]["by_state"] == status["counts"] and not status["report_stale"]
    assert not (out / "cancel.request").exists()


def test_reports_older_than_the_journal_are_noticed_after_a_kill(tmp_path: Path,
                                                                  api_env) -> None:
    """After a kill -9 the reports say less than the journal: `status` says so (text and
    `report_stale` in --json); `pipeline report` writes them again and they agree."""
    import json
    import subprocess
    import sys

    sim = api_env(capacity=2, gen_time=(0.8, 1.2))
    manifest = sweep(tmp_path, seeds=1)
    out = tmp_path / "out"
    env = env_for(sim.base_url)
    assert run(manifest, out, env, "--no-canary").returncode == 0
    assert status_json(manifest, out, env)["report_stale"] is False
    manifest.write_text(manifest.read_text().replace("to: 1}", "to: 8}"))
    proc = start_run(manifest, out, env, "--no-canary")
    wait_until(lambda: sim.stats()["submissions_accepted"] >= 4)
    proc.kill()
    proc.wait(timeout=30)
    status = status_json(manifest, out, env)
    assert status["report_stale"] is True
    text = subprocess.run([sys.executable, "-m", "pipeline", "status", str(manifest), "--out",
                           str(out)], env=env, capture_output=True, text=True, timeout=60)
    assert "the reports are older than the journal" in text.stdout, text.stdout
    subprocess.run([sys.executable, "-m", "pipeline", "report", str(manifest), "--out",
                    str(out)], env=env, capture_output=True, text=True, timeout=60, check=True)
    status = status_json(manifest, out, env)
    report = json.loads((out / "report.json").read_text())
    assert status["report_stale"] is False
    assert report["totals"]["by_state"] == status["counts"]


def test_unknown_price_under_a_budget_is_refused_unless_allowed(tmp_path: Path, api_env,
                                                                monkeypatch) -> None:
    """When the catalog gives no price, a budget cannot be enforced: the run refuses before
    sending anything, unless the user allows an unknown price."""
    from pipeline.client import ModelEntry, RunComfyClient
    from pipeline.errors import BudgetError

    sim = api_env(capacity=4, gen_time=(0.02, 0.05))

    async def no_price(self, model_id):
        return ModelEntry(None, None, None)

    monkeypatch.setattr(RunComfyClient, "model_entry", no_price)
    manifest = sweep(tmp_path, seeds=2, run="  budget: 5")
    with pytest.raises(BudgetError, match="price of .* is unknown"):
        run_plan(build_plan(manifest), RunOptions(out=tmp_path / "out", progress=False))
    assert sim.stats()["submissions_accepted"] == 0
    allowed = run_plan(build_plan(manifest), RunOptions(out=tmp_path / "out", progress=False,
                                                       allow_unknown_price=True))
    assert allowed.counts["done"] == 2
