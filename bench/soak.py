"""Soak: a big sweep on a faulty simulator while the runner is killed -9 again and again.

    python bench/soak.py [--cells 2000] [--capacity 100] [--kills 20] [--seed 1]

Every fault type is on at a realistic rate. The runner (`pipeline run` in a subprocess) is
SIGKILLed at random moments `--kills` times, then resumed until the job settles (unknown cells
are resubmitted with --resubmit-unknown once nothing else moves). The verdict, Jepsen-style:
- lost: cells that never reached a final state (must be 0); cells still held as `unknown`
  after the resubmit rounds are counted apart (visible, not lost);
- paid twice: the simulator's duplicate submissions, split into those inside the documented
  window (resubmissions of `unknown` cells, which the user asked for) and outside it (must be 0);
- corrupted: done cells whose file is missing, or whose SHA-256 or frame count is wrong (must be 0);
- report: report.json lists every cell with the state the journal has (must hold).
tests/run/test_soak.py runs a small version in CI.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parent.parent
MODEL = "bytedance/dreamina-3-0/image-to-video"
FAULTS = dict(error_rate=0.02, rate_limit_rate=0.02, drop_rate=0.01, slow_rate=0.01,
              fail_rate=0.05, download_fault_rate=0.05)


def write_job(folder: Path, cells: int, capacity: int) -> Path:
    Image.new("RGB", (480, 320), (20, 110, 160)).save(folder / "img.png")
    path = folder / "soak.yaml"
    path.write_text(textwrap.dedent(f"""\
        name: soak
        model: {MODEL}
        prompt: "soak take {{{{ seed }}}}"
        inputs:
          image_urls: [img.png]
        matrix:
          seed: {{from: 1, to: {cells}}}
        run:
          concurrency: {capacity}
          max_attempts: 3
          polling: {{initial: 0.2, max: 2, timeout: 300}}
        """))
    return path


def soak(workdir: Path, *, cells: int, capacity: int, kills: int, seed: int = 1,
         gen_time: tuple[float, float] = (0.2, 1.0), kill_window: tuple[float, float] = (1.0, 4.0),
         log=print) -> dict:
    """Run the soak in `workdir`; the verdict as a dict."""
    from pipeline.job.journal import read_state
    from pipeline.media.probe import probe
    from pipeline.sim import SimConfig, Simulator

    rng = random.Random(seed)
    manifest = write_job(workdir, cells, capacity)
    out = workdir / "out"
    config = SimConfig(capacity=capacity, gen_time=gen_time, seed=seed, retry_after=0.2,
                       slow_delay=0.5, download_outage=0.5, **FAULTS)
    with Simulator(config) as sim:
        env = {**os.environ, "RUNCOMFY_BASE_URL": sim.base_url,
               "RUNCOMFY_API_TOKEN": "soak-token", "PYTHONUNBUFFERED": "1"}
        # --no-canary: a first cell hit by a fault would stop the run (as it should on a real
        # service) before the kills this soak is about
        cmd = [sys.executable, "-m", "pipeline", "run", str(manifest), "--out", str(out),
               "--no-progress", "--no-canary"]
        killed = 0
        started = time.monotonic()
        while killed < kills:
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            try:
                proc.wait(timeout=rng.uniform(*kill_window))
                break  # it settled (done, or failed/unknown cells held) before we could kill it
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                killed += 1
            read_state(out)  # must read without repair, whatever the moment
        rounds = []
        # Settle: resume plainly, then resend held unknown cells (each resend may itself land
        # in the unknown window again under these fault rates, hence a few rounds).
        for extra in ([], [], *(["--resubmit-unknown"],) * 6):
            proc = subprocess.run(cmd + extra, env=env, capture_output=True, text=True,
                                  timeout=1800)
            rounds.append(proc.returncode)
            if proc.returncode == 0:
                break
        stats = sim.stats()
    elapsed = time.monotonic() - started

    state = read_state(out)
    events = [json.loads(line) for line in (out / "state.jsonl").read_text().splitlines()
              if line.strip()]
    resubmissions = sum(1 for e in events if e["e"] == "resubmit_unknown")
    plan_ids = [c["id"] for c in json.loads((out / "plan.json").read_text())["cells"]]
    final = {cid: (state.cells[cid].state(3) if cid in state.cells else "pending")
             for cid in plan_ids}
    # Lost: a cell with no final word. `unknown` is not lost: it is held, counted and shown.
    lost = [cid for cid, st in final.items() if st not in ("done", "failed", "unknown")]
    corrupted = []
    for cid, st in final.items():
        if st != "done":
            continue
        for f in state.cells[cid].files.values():
            path = out / f.path
            if not path.exists() or hashlib.sha256(path.read_bytes()).hexdigest() != f.sha256 \
                    or probe(path)["frames"] != 121:
                corrupted.append(cid)
    report = json.loads((out / "report.json").read_text())
    report_states = {c["id"]: c["state"] for c in report["cells"]}
    report_ok = report_states == final
    duplicates = stats["duplicate_submissions"]
    verdict = {
        "cells": cells, "kills": killed, "final_rounds": rounds, "elapsed_s": round(elapsed, 1),
        "done": sum(1 for s in final.values() if s == "done"),
        "failed": sum(1 for s in final.values() if s == "failed"),
        "unknown_held": sum(1 for s in final.values() if s == "unknown"),
        "lost": len(lost),
        "paid_twice": duplicates,
        "paid_twice_in_window": min(duplicates, resubmissions),
        "paid_twice_outside_window": max(0, duplicates - resubmissions),
        "resubmitted_unknown": resubmissions,
        "corrupted": len(corrupted),
        "report_complete": report_ok,
        "faults": stats["faults"],
    }
    return verdict


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cells", type=int, default=2000)
    parser.add_argument("--capacity", type=int, default=100)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    with tempfile.TemporaryDirectory(prefix="pipeline-soak-") as tmp:
        verdict = soak(Path(tmp), cells=args.cells, capacity=args.capacity, kills=args.kills,
                       seed=args.seed, kill_window=(2.0, 8.0))
    for key, value in verdict.items():
        print(f"{key:>26}: {value}")
    ok = (verdict["lost"] == 0 and verdict["paid_twice_outside_window"] == 0
          and verdict["corrupted"] == 0 and verdict["report_complete"])
    print("verdict:", "OK" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
