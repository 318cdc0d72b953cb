"""The report's journal index (pipeline.report.stream.JournalIndex: one small number per event,
each cell re-read on demand) says of every cell exactly what a full replay (read_state) says,
on the journal of a faulty run that was interrupted and resumed."""

from __future__ import annotations

from pathlib import Path

from runjobs import sweep

from pipeline import api
from pipeline.job.journal import read_state
from pipeline.job.opening import open_job
from pipeline.report.stream import JournalIndex

FAULTS = dict(capacity=3, gen_time=(0.05, 0.2), fail_rate=0.25, error_rate=0.05,
              rate_limit_rate=0.05, drop_rate=0.05, download_fault_rate=0.15)


def test_the_index_reads_every_cell_as_the_replay_does(tmp_path: Path, api_env) -> None:
    """Cell by cell, the index's record equals the replay's (attempts, results, files,
    download errors, states); the runs and the torn-tail figures agree too."""
    api_env(**FAULTS)
    manifest = sweep(tmp_path, seeds=8, resolutions="[720P, 1080P]", run="  canary: 0")
    out = tmp_path / "out"
    api.run(manifest, out=out, progress=False)
    api.run(manifest, out=out, progress=False, retry_failed=True)  # a second run's events
    replayed = read_state(out)
    assert len(replayed.cells) == 16 and len(replayed.runs) == 2
    with JournalIndex(open_job(manifest, out).folder) as index:
        assert list(index.ids) == list(replayed.cells)
        for cid, rec in replayed.cells.items():
            mine = index.record(cid)
            assert mine == rec, cid
            assert mine.state(3) == rec.state(3), cid
        assert index.runs == replayed.runs
        assert (index.torn_tail, index.valid_bytes) == (replayed.torn_tail,
                                                          replayed.valid_bytes)
    attempts = sum(len(r.attempts) for r in replayed.cells.values())
    assert attempts > 16  # the faults made some cells try again: the test saw retries
