"""A job is the same job from any current directory, and two manifests never share a folder.
Real subprocesses, no --out: the folder comes from the manifest's project root."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from runjobs import env_for, pipeline_cmd, sweep


def pipeline(cwd: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(pipeline_cmd(*args), cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=180)


def test_status_and_run_from_another_directory_see_the_same_job(tmp_path: Path,
                                                                 sim_factory) -> None:
    """Run from the repository root, then status and run from the manifest's folder and from
    outside the repository: the same counts, and the simulator sees no new submission."""
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "myjobs").mkdir()
    manifest = sweep(repo / "myjobs", seeds=3)
    sim = sim_factory(capacity=4, gen_time=(0.05, 0.1), seed=3)
    env = env_for(sim.base_url)
    first = pipeline(repo, env, "run", "myjobs/job.yaml", "--no-progress")
    assert first.returncode == 0, first.stderr
    assert (repo / "outputs" / "crash-test" / "state.jsonl").is_file()
    accepted = sim.stats()["submissions_accepted"]
    assert accepted == 3
    for cwd, path in ((repo / "myjobs", "job.yaml"), (tmp_path, str(manifest))):
        status = pipeline(cwd, env, "status", path, "--json")
        assert status.returncode == 0, status.stderr
        data = json.loads(status.stdout)
        assert data["counts"]["done"] == 3 and data["total"] == 3, data
        assert Path(data["out"]) == repo / "outputs" / "crash-test"
        again = pipeline(cwd, env, "run", path, "--no-progress")
        assert again.returncode == 0, again.stderr
        assert "3/3 done" in again.stdout
    assert sim.stats()["submissions_accepted"] == accepted
    assert not (repo / "myjobs" / "outputs").exists() and not (tmp_path / "outputs").exists()


def test_a_second_manifest_with_the_same_name_is_refused(tmp_path: Path, sim_factory) -> None:
    """Another manifest whose name points at a folder that belongs to the first one is refused
    (exit 2, one line naming both files) by run, status and plan alike; nothing is sent."""
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "a").mkdir()
    (repo / "b").mkdir()
    first = sweep(repo / "a", seeds=1)
    second = sweep(repo / "b", seeds=2)
    sim = sim_factory(capacity=2, gen_time=(0.05, 0.1), seed=3)
    env = env_for(sim.base_url)
    assert pipeline(repo, env, "run", str(first), "--no-progress").returncode == 0
    for command in ("run", "status", "plan"):
        proc = pipeline(repo, env, command, str(second))
        assert proc.returncode == 2, (command, proc.stdout, proc.stderr)
        [line] = proc.stderr.strip().splitlines()
        assert str(first.resolve()) in line and str(second) in line, line
    assert sim.stats()["submissions_accepted"] == 1
