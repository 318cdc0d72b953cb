"""Runner processes sharing one team ledger against one simulator: the account's concurrency and
budget hold across all of them, through a kill -9 and a database outage. Real subprocesses, a
real simulator on loopback, a real PostgreSQL (tests/pgcluster.py)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from runjobs import (
    LiveSampler,
    env_for,
    pipeline_cmd,
    run,
    start_run,
    status_json,
    team_job,
    wait_until,
)

from pipeline.account import admin
from pipeline.account.store import TeamLedger
from pipeline.job.journal import read_state

PER_CELL = 0.25  # the simulator's $0.05 a second, on a 121-frame ("5 s") clip




def finish(procs: list[subprocess.Popen], timeout: float = 180) -> list[tuple[int, str]]:
    out = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=timeout)
        out.append((proc.returncode, stdout + stderr))
    return out


def ledger_env(sim: Any, url: str) -> dict[str, str]:
    return env_for(sim.base_url, PIPELINE_LEDGER=url)


async def live_holds(url: str) -> list:
    ledger = TeamLedger(url)
    try:
        return await ledger.live_holds()
    finally:
        await ledger.close()


def journalled_live(out: Path) -> int:
    """Requests the journal in `out` records as sent and not yet ended."""
    return sum(1 for r in read_state(out).cells.values() for a in r.attempts
               if a.live and a.request_id)


def journal_spent(out: Path, manifest: Path, env: dict[str, str]) -> float:
    return status_json(manifest, out, env)["spent_usd"]


def test_three_runners_never_hold_more_than_the_account_allows(
        tmp_path: Path, sim_factory: Any, ledger_url: str) -> None:
    """Concurrency 4 on the ledger, capacity 8 on the server: three runners (each allowed 8)
    never have more than 4 requests live on the server together, and all of them finish."""
    admin.init(ledger_url, concurrency=4)
    sim = sim_factory(capacity=8, gen_time=(0.2, 0.5), seed=3)
    env = ledger_env(sim, ledger_url)
    jobs = [team_job(tmp_path / f"j{i}", f"team-{i}", 10) for i in range(3)]
    with LiveSampler(sim, every=0.1) as sampler:
        procs = [start_run(m, m.parent / "out", env) for m in jobs]
        ended = finish(procs)
    assert [code for code, _ in ended] == [0, 0, 0], ended
    assert len(sampler.samples) > 20
    assert 1 <= sampler.most <= 4
    stats = sim.stats()
    assert stats["submissions_accepted"] == 30 and stats["duplicate_submissions"] == 0
    st = admin.status(ledger_url)
    assert st["live"] == 0 and st["holders"] == []
    assert st["spent_usd"] == pytest.approx(30 * PER_CELL)


def test_a_team_budget_just_below_the_total_stops_every_runner(
        tmp_path: Path, sim_factory: Any, ledger_url: str) -> None:
    """A team budget for 10.5 of 12 cells: together the runners spend at most the budget and
    stop saying why (the team budget), none of them paying past it."""
    budget = 10.5 * PER_CELL
    admin.init(ledger_url, concurrency=6, budget=budget)
    sim = sim_factory(capacity=8, gen_time=(0.2, 0.4), seed=5)
    env = ledger_env(sim, ledger_url)
    jobs = [team_job(tmp_path / f"j{i}", f"budget-{i}", 4) for i in range(3)]
    ended = finish([start_run(m, m.parent / "out", env) for m in jobs])
    stopped = [text for code, text in ended if code == 1]
    assert stopped, ended  # 10 of 12 cells fit: at least one runner could not finish
    assert all("stopped submitting: team committed" in text and "> team budget $2.62" in text
               for text in stopped), stopped
    spent = sum(journal_spent(m.parent / "out", m, env) for m in jobs)
    assert spent == pytest.approx(10 * PER_CELL)
    assert spent <= budget
    st = admin.status(ledger_url)
    assert st["spent_usd"] == pytest.approx(spent) and st["live"] == 0


def test_a_killed_runner_keeps_its_slots_until_its_requests_end(
        tmp_path: Path, sim_factory: Any, ledger_url: str) -> None:
    """kill -9 with requests live: their slots stay held (they run, and are billed), are freed
    by `pipeline account sweep` once the server says they ended, and the next run of the job
    finishes without a duplicate submission."""
    admin.init(ledger_url, concurrency=4)
    sim = sim_factory(capacity=8, gen_time=(2.0, 2.5), seed=9)
    env = ledger_env(sim, ledger_url)
    manifest = team_job(tmp_path / "k", "killed", 8)
    out = manifest.parent / "out"
    proc = start_run(manifest, out, env)
    # kill once the four slots' submits are answered and journalled: a kill between a submit's
    # intent and its answer leaves an `unknown` cell, which a run rightly refuses to guess about
    # (test_runner's crash tests cover that window)
    # (and once the ledger has their request ids, so that `sweep` can ask about them)
    wait_until(lambda: admin.status(ledger_url)["live"] == 4 and journalled_live(out) == 4
               and all(h.request_id for h in asyncio.run(live_holds(ledger_url))), timeout=30)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    sent = {(r.id, a.n) for r in read_state(out).cells.values() for a in r.attempts
            if a.live and a.request_id}
    holds = asyncio.run(live_holds(ledger_url))
    assert sent and sent <= {(h.cell, h.attempt) for h in holds}  # every live request holds
    assert holds[0].job == "killed"
    # a hold taken just before the kill, for a submit never journalled, has no request id:
    # the next run of the job frees it (its journal says it was never sent)
    unsent = [h for h in holds if h.request_id is None]

    wait_until(lambda: not sim.stats()["requests_by_state"].get("in_progress")
               and not sim.stats()["requests_by_state"].get("in_queue"), timeout=30)
    assert admin.status(ledger_url)["live"] == len(holds)  # ended there, nobody looked yet
    swept = subprocess.run(pipeline_cmd("account", "sweep"), env=env, capture_output=True,
                           text=True, timeout=60)
    assert swept.returncode == 0, swept.stderr
    assert f"freed {len(holds) - len(unsent)}" in swept.stdout
    assert admin.status(ledger_url)["live"] == len(unsent)
    # the job's own status still counts them as running (its journal is its runs' to write),
    # and says that the ledger knows more, and what brings it up to date
    freed = len(holds) - len(unsent)
    st = status_json(manifest, out, env)
    assert st["team_ledger"]["ended"] == freed
    assert st["team_ledger"]["billed_usd"] == pytest.approx(freed * PER_CELL)
    said = subprocess.run(pipeline_cmd("status", str(manifest), "--out", str(out)), env=env,
                          capture_output=True, text=True, timeout=60).stdout
    assert freed >= 1
    assert f"the team ledger knows more: {freed} request{'s' if freed != 1 else ''} counted " \
           f"here as live ended ({freed} billed, ${freed * PER_CELL:,.2f}" in said, said
    assert "the next `pipeline run` of this job collects them" in said

    again = run(manifest, out, env)
    assert again.returncode == 0, again.stderr
    assert status_json(manifest, out, env)["team_ledger"] is None  # nothing more to say
    stats = sim.stats()
    assert stats["duplicate_submissions"] == 0 and stats["submissions_accepted"] == 8
    st = admin.status(ledger_url)
    assert st["live"] == 0
    assert st["spent_usd"] == pytest.approx(journal_spent(out, manifest, env))


def test_a_database_outage_pauses_submits_and_the_runs_go_on(
        tmp_path: Path, sim_factory: Any, ledger_url: str, postgres: Any) -> None:
    """PostgreSQL stopped for 10 s mid-run, then started: the runners wait (never submitting
    without a slot), go on, finish; nothing is paid twice and the ledger agrees with the
    journals."""
    admin.init(ledger_url, concurrency=3)
    sim = sim_factory(capacity=8, gen_time=(0.3, 0.6), seed=13)
    env = ledger_env(sim, ledger_url)
    jobs = [team_job(tmp_path / f"j{i}", f"outage-{i}", 10) for i in range(2)]
    with LiveSampler(sim, every=0.1) as sampler:
        procs = [start_run(m, m.parent / "out", env) for m in jobs]
        wait_until(lambda: sim.stats()["submissions_accepted"] >= 4, timeout=30)
        postgres.stop()
        accepted_at_stop = sim.stats()["submissions_accepted"]
        time.sleep(10)
        # with the ledger down, at most the slots already held were submitted
        assert sim.stats()["submissions_accepted"] <= accepted_at_stop + 3
        postgres.start()
        ended = finish(procs)
    assert [code for code, _ in ended] == [0, 0], ended
    assert any("cannot be reached" in text for _, text in ended)
    assert sampler.most <= 3
    stats = sim.stats()
    assert stats["duplicate_submissions"] == 0 and stats["submissions_accepted"] == 20
    st = admin.status(ledger_url)
    assert st["live"] == 0
    assert st["spent_usd"] == pytest.approx(sum(journal_spent(m.parent / "out", m, env)
                                                for m in jobs))
    status = subprocess.run(pipeline_cmd("account", "status", "--json"), env=env,
                            capture_output=True, text=True, timeout=60)
    assert json.loads(status.stdout)["spent_usd"] == pytest.approx(20 * PER_CELL)
