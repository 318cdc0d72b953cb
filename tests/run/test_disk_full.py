"""A full disk while writing state or videos: the run stops with one clear line, and the next
run, once space is freed, resumes without paying twice. Uses a small tmpfs (needs root)."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
from runjobs import env_for, run, sweep

from pipeline.job.journal import read_state


@pytest.fixture
def small_disk(tmp_path: Path):
    mount = tmp_path / "disk"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1200k", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {proc.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def grow(mount: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(mount)], check=True)


def test_disk_full_stops_cleanly_and_resume_completes(tmp_path: Path, small_disk: Path,
                                                      sim_factory) -> None:
    """Videos and journal fill a 1.2 MB disk (1 MB of it the runner's ballast): one line
    naming the problem, exit non-zero, no traceback; after the disk grows, a rerun finishes
    every cell with no duplicate submit."""
    sim = sim_factory(capacity=8, gen_time=(0.05, 0.1), seed=5)
    manifest = sweep(tmp_path, seeds=60)
    out = small_disk / "out"
    env = env_for(sim.base_url)
    full = run(manifest, out, env)
    assert full.returncode not in (0, 130), full.stdout + full.stderr
    assert "Traceback" not in full.stderr
    lines = [line for line in full.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, full.stderr
    assert ("No space left on device" in lines[0] or "is full" in lines[0]) and \
        "run again to resume" in lines[0]
    cut = read_state(out)  # whatever was cut short, the journal reads
    # the ballast let every accepted submit's request id reach the journal: none unknown
    assert not [r for r in cut.cells.values() if r.state(3) == "unknown"]
    assert not (out / ".ballast").exists()

    grow(small_disk, "64m")
    again = run(manifest, out, env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert sim.stats()["duplicate_submissions"] == 0
    state = read_state(out)
    assert sum(1 for r in state.cells.values() if r.state(3) == "done") == 60
    for rec in state.cells.values():
        for f in rec.files.values():
            assert hashlib.sha256((out / f.path).read_bytes()).hexdigest() == f.sha256
