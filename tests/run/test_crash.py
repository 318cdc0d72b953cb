"""kill -9 of the runner at chosen and random moments, then resume: nothing lost, nothing paid
twice (outside --resubmit-unknown), every video intact. Real subprocesses, real simulator.

The full-size version (2,000 cells, 20 kills, all faults) is bench/soak.py.
"""

from __future__ import annotations

import hashlib
import random
import signal
from pathlib import Path

import pytest
from runjobs import env_for, journal_events, run, start_run, sweep

from pipeline.job.journal import read_state
from pipeline.media.probe import probe
from pipeline.sim import Simulator

KILL_POINTS = ["after_intent:2", "after_submit:3", "after_download:2", "after_submit:1"]


@pytest.fixture
def sim(sim_factory) -> Simulator:
    """The simulator the kills run against: seeded, with some cut or missing downloads."""
    return sim_factory(capacity=6, gen_time=(0.3, 0.9), seed=11, download_fault_rate=0.1,
                       download_outage=0.3)


def test_kill_nine_ten_times_then_resume(tmp_path: Path, sim: Simulator) -> None:
    """Ten kill -9s (four at chosen code points, six at random moments) then a resume: every
    cell done once, no duplicate submission without the flag, every video's hash matches."""
    manifest = sweep(tmp_path, seeds=24)
    out = tmp_path / "out"
    env = env_for(sim.base_url)
    rng = random.Random(20261124)
    for i in range(10):
        if i < len(KILL_POINTS):
            proc = start_run(manifest, out, env_for(sim.base_url,
                                                    PIPELINE_CRASH_AT=KILL_POINTS[i]))
            try:
                proc.wait(timeout=120)
            finally:
                proc.kill()
        else:
            proc = start_run(manifest, out, env)
            try:
                proc.wait(timeout=rng.uniform(0.8, 3.0))
            except Exception:  # still running: the moment to kill it
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()
        read_state(out)  # whatever the moment, the state reads without repair
    assert sim.stats()["duplicate_submissions"] == 0

    final = run(manifest, out, env)
    assert final.returncode in (0, 1), final.stderr
    stats = sim.stats()
    assert stats["duplicate_submissions"] == 0  # nothing paid twice without the flag
    state = read_state(out)
    unknown = [r for r in state.cells.values() if r.state(3) == "unknown"]
    # the after_submit kills made at least one submit whose answer never reached the journal
    assert unknown
    resumed = run(manifest, out, env, "--resubmit-unknown")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    resubmissions = sum(1 for e in journal_events(out) if e["e"] == "resubmit_unknown")
    assert resubmissions == len(unknown)
    assert 1 <= sim.stats()["duplicate_submissions"] <= resubmissions

    state = read_state(out)
    assert len(state.cells) == 24
    for rec in state.cells.values():
        assert rec.state(3) == "done", (rec.id, rec.state(3))
        [file] = rec.files.values()
        data = (out / file.path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == file.sha256
        assert probe(out / file.path)["frames"] == 121
    assert not list((out / "videos").glob(".*.part"))
