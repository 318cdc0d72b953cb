"""`concurrency: auto` end to end: a runner not told the capacity finds it from the server's
queue, keeps at most capacity + queue_ahead live once it has, shows and keeps what it found,
and the next run starts from it. Real subprocesses, a real simulator on loopback."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
from imagefiles import MODEL, write_image, write_manifest
from runjobs import LiveSampler, env_for, pipeline_cmd, run, status_json


def job(folder: Path, cells: int, extra: str = "") -> Path:
    write_image(folder / "img.png", 640, 480)
    return write_manifest(folder, f"""
        name: auto
        model: {MODEL}
        prompt: "take {{{{ seed }}}}"
        inputs:
          image_urls: [img.png]
        matrix:
          seed: {{from: 1, to: {cells}}}
        run:
          concurrency: auto
          canary: 0
          polling: {{initial: 0.3, max: 2, timeout: 120}}
        {extra}
        """)


def test_auto_finds_the_capacity_and_keeps_two_waiting(tmp_path: Path, sim_factory: Any) -> None:
    """Capacity 6, never told: the run finds 6, has at most 8 live once the first requests
    have ended, shows it in status and keeps it in the job folder; the next run starts there
    (never more than 8 live, from its first submit)."""
    sim = sim_factory(capacity=6, gen_time=(0.6, 0.9), seed=21)
    manifest = job(tmp_path, 40)
    out = tmp_path / "out"
    env = env_for(sim.base_url)
    with LiveSampler(sim) as live:
        first = run(manifest, out, env)
    assert first.returncode == 0, first.stdout + first.stderr
    kept = json.loads((out / "capacity.json").read_text())  # per service: the server's URL
    assert kept["format"] == 2 and kept["services"].keys() == {sim.base_url.rstrip("/")}
    assert kept["services"][sim.base_url.rstrip("/")].items() >= {"capacity": 6,
                                                                  "queue_ahead": 2}.items()
    settled = [n for t, n in live.samples if t > 2.5]
    assert settled and max(settled) <= 8
    assert max(n for _, n in live.samples) >= 6  # it did use the whole account
    assert "concurrency auto: capacity 6 found" in first.stdout
    status = status_json(manifest, out, env)
    assert status["capacity"] == {"found": 6, "queue_ahead": 2}
    report = json.loads((out / "report.json").read_text())  # the report says the same
    assert report["capacity"] == status["capacity"]
    jsonschema.validate(report, json.loads(
        (Path(__file__).parents[2] / "schemas" / "report.schema.json").read_text()))
    assert "the account runs 6 requests at once" in (out / "report.md").read_text()
    assert sim.stats()["duplicate_submissions"] == 0

    # more cells: the next run starts from the capacity found, so no overshoot while learning
    manifest = job(tmp_path, 70)
    with LiveSampler(sim) as live:
        again = run(manifest, out, env)
    assert again.returncode == 0, again.stderr
    assert max(n for _, n in live.samples) <= 8
    plan = subprocess.run(pipeline_cmd("plan", str(manifest), "--out", str(out)), env=env,
                          capture_output=True, text=True, timeout=60)
    assert "at concurrency auto (capacity 6, as the last run found it)" in plan.stdout


def test_auto_on_the_command_line(tmp_path: Path, sim_factory: Any) -> None:
    """`--concurrency auto` turns it on for one run of a manifest with a fixed concurrency;
    a word that is neither a number nor auto is refused by name."""
    sim = sim_factory(capacity=3, gen_time=(0.3, 0.5), seed=22)
    manifest = job(tmp_path, 12).read_text().replace("concurrency: auto", "concurrency: 2")
    path = tmp_path / "fixed.yaml"
    path.write_text(manifest)
    out = tmp_path / "out"
    env = env_for(sim.base_url)
    done = run(path, out, env, "--concurrency", "auto")
    assert done.returncode == 0, done.stderr
    found = json.loads((out / "capacity.json").read_text())["services"]
    assert found[sim.base_url.rstrip("/")]["capacity"] == 3
    bad = run(path, out, env, "--concurrency", "lots")
    assert bad.returncode == 2 and "'lots' is not a whole number" in bad.stderr
