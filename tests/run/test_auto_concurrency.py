"""`concurrency: auto` end to end: a runner not told the capacity finds it from the server's
queue, keeps at most capacity + queue_ahead live once it has, shows and keeps what it found,
and the next run starts from it. Real subprocesses, a real simulator on loopback."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
from imagefiles import MODEL, write_image, write_manifest
from runjobs import env_for, journal_events, pipeline_cmd, run, status_json


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


def server_live(out: Path) -> int:
    """The most requests the server had live at once (waiting or running), from the server's
    own times of each request (created_at to finished_at, in the journal's results)."""
    from datetime import datetime

    edges = []
    for e in journal_events(out):
        times = e.get("server_times") if e["e"] == "result" else None
        if times and times.get("created_at") and times.get("finished_at"):
            edges += [(datetime.fromisoformat(times["created_at"]), 1),
                      (datetime.fromisoformat(times["finished_at"]), -1)]
    live = most = 0
    for _, step in sorted(edges, key=lambda x: (x[0], x[1])):  # an end before a start
        live += step
        most = max(most, live)
    return most


def test_auto_finds_the_capacity_and_keeps_two_waiting(tmp_path: Path, sim_factory: Any) -> None:
    """Capacity 6, never told: the run finds 6, never has more than 8 live on the server (its
    limit doubles only once a whole round runs: 2, 4, 8), shows it in status and keeps it in
    the job folder; the next run starts there (never more than 8 live either)."""
    sim = sim_factory(capacity=6, gen_time=(0.6, 0.9), seed=21)
    manifest = job(tmp_path, 40)
    out = tmp_path / "out"
    env = env_for(sim.base_url)
    first = run(manifest, out, env)
    assert first.returncode == 0, first.stdout + first.stderr
    kept = json.loads((out / "capacity.json").read_text())  # per service: the server's URL
    assert kept["format"] == 2 and kept["services"].keys() == {sim.base_url.rstrip("/")}
    assert kept["services"][sim.base_url.rstrip("/")].items() >= {"capacity": 6,
                                                                  "queue_ahead": 2}.items()
    assert 6 <= server_live(out) <= 8  # it did use the whole account, and kept two waiting
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
    again = run(manifest, out, env)
    assert again.returncode == 0, again.stderr
    assert server_live(out) <= 8
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


FAULTS = {"fail_rate": 0.1, "error_rate": 0.05, "rate_limit_rate": 0.05, "drop_rate": 0.03,
          "slow_rate": 0.05, "download_fault_rate": 0.1}


def test_auto_settles_at_the_capacity_under_faults(tmp_path: Path, sim_factory: Any) -> None:
    """Capacity 5 with every fault on: failed generations, 5xx, dropped connections and 429s
    are no evidence of fewer slots, so a 48-cell run finds 5 (or 6, see below), and the
    progress line never shows a limit or a queue beyond what the server would confirm; a
    3-cell run afterwards (it never fills the server) leaves capacity.json as it was."""
    sim = sim_factory(capacity=5, gen_time=(0.6, 1.2), seed=3, retry_after=0.2,
                      slow_delay=0.5, download_outage=0.5, **FAULTS)
    manifest = job(tmp_path, 48, "  max_attempts: 3")
    out = tmp_path / "out"
    env = env_for(sim.base_url)
    first = run(manifest, out, env, "--progress", "json")
    key = sim.base_url.rstrip("/")
    assert (out / "capacity.json").exists(), first.stdout + first.stderr
    found = json.loads((out / "capacity.json").read_text())["services"][key]
    # Never below: no fault is taken for fewer slots. One above at most: while a submit of
    # unknown outcome may be running unseen ahead of ours, the server's answers cannot tell 5
    # from 6, and the runner takes the most its figures allow (one more waiting, no slot idle).
    assert found["capacity"] in (5, 6), first.stdout + first.stderr
    if found["capacity"] == 6:
        assert "submit outcome unknown" in first.stderr, first.stderr
    lines = [json.loads(x) for x in first.stderr.splitlines() if x.startswith("{")]
    assert lines and all(x["capacity"]["limit"] <= x["capacity"]["found"] + 2 for x in lines
                         if x["capacity"]["found"] is not None)
    # (while the capacity found is still falling to what it ends on, those of ours already
    # sent beyond it do wait: the queue is checked at the capacity the run ends on)
    assert all(x["counts"]["queued"] <= 2 for x in lines
               if x["capacity"]["found"] == found["capacity"])
    small = job(tmp_path, 3, "  max_attempts: 3")  # three new cells of the same job
    small.write_text(small.read_text().replace("take", "small take"))
    small_run = run(small, out, env)
    said = small_run.stdout + small_run.stderr
    # it ran to its end (a submit of unknown outcome, a fault of the simulator's, may hold
    # one of its three cells: that is no part of what this checks)
    assert re.search(r"\b[0-3]/3 done\b", said) and "Traceback" not in said, said
    assert json.loads((out / "capacity.json").read_text())["services"][key] == found
