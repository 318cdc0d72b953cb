"""Acceptance of the clips' triage (issue 22 §1): a 30-cell run on a simulator that makes 30 % of
its clips defective (`pipeline sim --defect-rate 0.3`); every defective clip flagged, at most two
good ones, and the flags in report.json, `pipeline status` and report.md."""

from __future__ import annotations

import json
import subprocess

import jsonschema
import pytest
from runjobs import REPO, env_for, journal_events, pipeline_cmd, run, status_json, sweep

pytestmark = pytest.mark.timeout(300)

SCHEMA = json.loads((REPO / "schemas" / "report.schema.json").read_text(encoding="utf-8"))


def test_defective_clips_are_flagged(sim_factory, tmp_path):
    """30 cells at defect rate 0.3: each defect the simulator drew is flagged with its kind,
    few good clips are flagged, and status, report.md and report.json all say so."""
    sim = sim_factory(defect_rate=0.3, seed=22, gen_time=(0.05, 0.2), capacity=8)
    manifest = sweep(tmp_path, seeds=30)
    out = tmp_path / "out"
    env = env_for(sim.base_url)
    proc = run(manifest, out, env)
    assert proc.returncode == 0, proc.stderr

    events = journal_events(out)
    drawn = sim.stats()["defects"]  # request id -> black | frozen | flicker
    assert 4 <= len(drawn) <= 16  # 30 % of 30, give or take the draw
    cell_of = {e["request_id"]: e["cell"] for e in events if e["e"] == "submitted"}
    defective = {cell_of[rid]: kind for rid, kind in drawn.items()}

    report = json.loads((out / "report.json").read_text())
    jsonschema.Draft202012Validator(SCHEMA).validate(report)
    flags = {c["id"]: c["qa"]["flags"] for c in report["cells"]}
    assert len(flags) == 30 and all(c["qa"] is not None for c in report["cells"])
    for cell, kind in defective.items():
        assert kind in flags[cell], (cell, kind, flags[cell])
    good_flagged = [c for c, f in flags.items() if f and c not in defective]
    assert len(good_flagged) <= 2, [(c, flags[c]) for c in good_flagged]
    # the triage is stored in the journal (a resume or a report measures nothing again)
    stored = {e["cell"] for e in events if e["e"] == "qa"}
    assert stored == set(flags)
    assert events[-1]["e"] == "end"  # the triage went in before the run's end

    flagged = sum(1 for f in flags.values() if f)
    by_flag: dict[str, int] = {}
    for f in flags.values():
        for flag in f:
            by_flag[flag] = by_flag.get(flag, 0) + 1
    assert report["totals"]["qa"] == {"measured": 30, "flagged": flagged,
                                      "by_flag": report["totals"]["qa"]["by_flag"]}
    assert report["totals"]["qa"]["by_flag"] == by_flag

    line = f"flagged {flagged}: " + ", ".join(
        f"{k} {v}" for k, v in report["totals"]["qa"]["by_flag"].items())
    assert status_json(manifest, out, env)["qa"] == report["totals"]["qa"]
    text = subprocess.run(pipeline_cmd("status", str(manifest), "--out", str(out)), env=env,
                          capture_output=True, text=True, timeout=60)
    assert line in text.stdout, text.stdout
    md = (out / "report.md").read_text()
    assert f"Triage: {line}" in md
    for cell, kind in defective.items():
        assert any(row.startswith(f"| `{cell}` |") and kind in row
                   for row in md.split("## Flagged clips")[1].splitlines()), (cell, kind)
    page = (out / "report.html").read_text()
    assert '"qa":{"flags":' in page

    # a report written again (a resume finds nothing to do) reads the stored triage alone
    again = run(manifest, out, env)
    assert again.returncode == 0, again.stderr
    assert sum(1 for e in journal_events(out) if e["e"] == "qa") == 30


def test_a_job_without_stored_triage_is_measured_by_its_report(sim_factory, tmp_path):
    """A job whose journal has no `qa` events (run by an older version, or the events lost to a
    crash) gets its clips measured by `pipeline report`, which writes nothing in the journal."""
    sim = sim_factory(defect_rate=0.5, seed=4, gen_time=(0.05, 0.1), capacity=8)
    manifest = sweep(tmp_path, seeds=6)
    out = tmp_path / "out"
    env = env_for(sim.base_url)
    assert run(manifest, out, env).returncode == 0
    journal = out / "state.jsonl"
    kept = [line for line in journal.read_text().splitlines() if '"e":"qa"' not in line]
    journal.write_text("\n".join(kept) + "\n")
    before = json.loads((out / "report.json").read_text())["cells"]
    proc = subprocess.run(pipeline_cmd("report", str(manifest), "--out", str(out)), env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    after = json.loads((out / "report.json").read_text())["cells"]
    assert [c["qa"]["flags"] for c in after] == [c["qa"]["flags"] for c in before]
    assert journal.read_text().splitlines() == kept
