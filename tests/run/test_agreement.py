"""Every command shows the same figures: a faulty 60-cell run is sampled at random instants
(while running, after an interrupt, after a resume, after a manifest edit that orphans cells),
and at each the last progress line, `pipeline status --json`, report.json and report.md agree
on the total, the counts by state, spent and committed, the status calls per cell, the sweep's
estimate, the concurrency and (when nothing is live) the ETA; spent never decreases.

While running, the runner is frozen (SIGSTOP) at a random instant; a sample counts only when
its last progress line reflects the whole journal (`journal_bytes`), else the runner goes on a
moment and is sampled again. Real subprocesses against the real simulator.
"""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

from runjobs import env_for, pipeline_cmd, status_json, sweep, wait_until

from pipeline.job.records import LIVE

FAULTS = dict(capacity=4, gen_time=(0.5, 1.5), seed=23, price_usd=0.05, error_rate=0.05,
              rate_limit_rate=0.05, drop_rate=0.03, fail_rate=0.2, download_fault_rate=0.1,
              retry_after=0.1, download_outage=0.3)
FIGURES = ("total", "counts", "spent_usd", "committed_usd", "status_calls_per_cell",
           "estimated_usd", "concurrency")


class Run:
    """`pipeline run --progress json` in a subprocess, its stderr collected line by line."""

    def __init__(self, manifest: Path, out: Path, env: dict, *extra: str):
        self.proc = subprocess.Popen(
            pipeline_cmd("run", str(manifest), "--out", str(out), "--progress", "json",
                         *extra), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        self.lines: list[str] = []  # stderr
        self.out: list[str] = []  # stdout
        # One reader per pipe, and nothing else reads them (communicate() would take lines).
        self.readers = [threading.Thread(target=self._read, args=(pipe, into), daemon=True)
                        for pipe, into in ((self.proc.stderr, self.lines),
                                           (self.proc.stdout, self.out))]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def _read(pipe, into: list[str]) -> None:
        for line in pipe:
            into.append(line)

    def progress(self) -> list[dict]:
        out = []
        for line in list(self.lines):
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    raise AssertionError(repr(line)) from None
        return out

    def finish(self, timeout: float = 180) -> str:
        """Wait for the run to end; its stdout (stderr's lines are in `lines`)."""
        self.proc.wait(timeout=timeout)
        for reader in self.readers:
            reader.join(timeout=10)
        return "".join(self.out)


def report(manifest: Path, out: Path, env: dict) -> tuple[dict, str]:
    proc = subprocess.run(pipeline_cmd("report", str(manifest), "--out", str(out)), env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return (json.loads((out / "report.json").read_text()), (out / "report.md").read_text())


def md_figures(md: str) -> dict:
    """The figures as report.md writes them: the Totals table and the Cost section."""
    counts = {m[1]: int(m[2]) for m in re.finditer(r"^\| (\w+) \| (\d+) \|$", md, re.M)}
    total = int(re.search(r"^\| \*\*all\*\* \| \*\*(\d+)\*\* \|$", md, re.M)[1])
    spent = re.search(r"^- spent: \$([\d,.]+)", md, re.M)[1]
    committed = re.search(r"^- committed: \$([\d,.]+)", md, re.M)[1]
    return {"total": total, "counts": counts, "spent": spent, "committed": committed}


def agree(manifest: Path, out: Path, env: dict, progress: dict, when: str) -> dict:
    """Status, report.json and report.md against the progress line; the status."""
    status = status_json(manifest, out, env)
    data, md = report(manifest, out, env)
    mine = {k: progress[k] for k in FIGURES}
    assert {k: status[k] for k in FIGURES} == mine, when
    cost = data["cost"]
    assert {"total": data["totals"]["cells"], "counts": data["totals"]["by_state"],
            "spent_usd": cost["spent_usd"], "committed_usd": cost["committed_usd"]} == \
        {k: mine[k] for k in FIGURES[:4]}, when
    assert cost["actual_usd"] == mine["spent_usd"], when
    assert data["status_calls"]["per_cell_mean"] == mine["status_calls_per_cell"], when
    assert cost["estimated_usd"] == mine["estimated_usd"] is not None, when
    if not any(status["counts"][s] for s in LIVE):  # else the ETA moves with the clock
        assert status["eta_s"] == progress["eta_s"] == data["timings"]["eta_s"], when
    md_seen = md_figures(md)
    assert md_seen["total"] == mine["total"], when
    assert md_seen["counts"] == {k: v for k, v in mine["counts"].items() if v}, when
    assert md_seen["spent"] == f"{mine['spent_usd']:,.2f}", when
    assert md_seen["committed"] == f"{mine['committed_usd']:,.2f}", when
    return status


def sample_while_running(run: Run, manifest: Path, out: Path, env: dict, rng: random.Random,
                         samples: int) -> int:
    """Freeze the runner at random instants and check agreement at each; how many held."""
    taken = 0
    for _ in range(samples * 20):
        if taken == samples or run.proc.poll() is not None:
            break
        time.sleep(rng.uniform(0.2, 1.2))
        run.proc.send_signal(signal.SIGSTOP)
        try:
            time.sleep(0.1)  # let the reader thread drain what was written before the stop
            lines = run.progress()
            journal = out / "state.jsonl"
            if not lines or lines[-1]["journal_bytes"] != journal.stat().st_size:
                continue  # frozen between an event and its progress line: sample again
            agree(manifest, out, env, lines[-1], f"running, sample {taken}")
            taken += 1
        finally:
            run.proc.send_signal(signal.SIGCONT)
    return taken


def nondecreasing(values: list[float]) -> bool:
    # each value with the next: the second list is one shorter
    return all(a <= b + 1e-9 for a, b in zip(values, values[1:], strict=False))


def test_every_command_shows_the_same_figures(tmp_path: Path, sim_factory) -> None:
    """At random instants of a faulty run, after its interrupt, during and after its resume,
    and after an edit that orphans cells, the figures agree everywhere; spent only grows."""
    sim = sim_factory(**FAULTS)
    rng = random.Random(20261201)
    # canary: 0, so that a faulty first cell does not end the run this test samples
    manifest = sweep(tmp_path, seeds=30, resolutions="[720P, 1080P]", run="  canary: 0")
    out = tmp_path / "out"
    env = env_for(sim.base_url)
    spent_seen: list[float] = []

    # 1. running, then interrupted
    first = Run(manifest, out, env)
    assert sample_while_running(first, manifest, out, env, rng, samples=3) == 3
    wait_until(lambda: first.proc.poll() is not None or sim.stats()["submissions_accepted"] >= 20,
               timeout=60)
    first.proc.send_signal(signal.SIGINT)
    stdout = first.finish()
    assert first.proc.returncode == 130, "".join(first.lines[-5:])
    lines = first.progress()
    spent_seen += [p["spent_usd"] for p in lines]
    status = agree(manifest, out, env, lines[-1], "after the interrupt")
    assert status["total"] == 60 and status["counts"]["done"] < 60
    last = stdout.strip().splitlines()[-2 if "to resume" in stdout else -1]
    assert f"spent ${status['spent_usd']:,.2f}, committed ${status['committed_usd']:,.2f}" \
        in last, stdout

    # 2. resumed: sampled while running, then to the end
    second = Run(manifest, out, env)
    assert sample_while_running(second, manifest, out, env, rng, samples=2) >= 1
    second.finish()
    assert second.proc.returncode in (0, 1), "".join(second.lines[-5:])
    lines = second.progress()
    spent_seen += [p["spent_usd"] for p in lines]
    done = agree(manifest, out, env, lines[-1], "after the resume")
    assert done["counts"]["done"] + done["counts"]["failed"] + done["counts"]["unknown"] == 60

    # 3. the manifest loses ten seeds: their cells are orphaned, their spend stays
    manifest.write_text(manifest.read_text().replace("to: 30", "to: 25"))
    third = Run(manifest, out, env)
    third.finish()
    lines = third.progress()
    spent_seen += [p["spent_usd"] for p in lines]
    edited = agree(manifest, out, env, lines[-1], "after the edit")
    assert edited["total"] == 50 and edited["counts"]["orphaned"] == 10
    assert edited["spent_usd"] >= done["spent_usd"] and edited["spent_orphaned_usd"] > 0
    assert nondecreasing(spent_seen), spent_seen
