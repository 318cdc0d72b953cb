"""Sustained throughput of one runner against a large simulator: cells per second, against the
ideal C/T and against a bare httpx loop on the same simulator.

    python bench/throughput.py [--capacity 100 --capacity 1000] [--cells N ...] [--gen 5:10]

For each capacity C: a simulator in its own process (`pipeline sim --capacity C --gen-time
MIN:MAX`), then in another process `pipeline run` of N cells at concurrency C (no canary, plain
progress), then in this process the bare loop (bench/bare.py: the same four calls per cell,
16 HTTP calls in flight, each cell's first status call when the quickest generation ends,
then every 0.25 s). Printed per capacity: cells/s of each (N over first submit to last video on
disk; the bare loop: over its wall time), the ideal C / mean(T), the ratios runner/ideal,
bare/ideal and runner/bare (target >= 0.9), the CPU seconds per cell of the runner (its
process and its children: the previews' worker process), the bare loop and the simulator in
each phase (the simulator's own CPU is what keeps both from C/T on a small machine), and how
long the runner went on after its last video (previews and triage catching up, the reports).
Default sizes: 4 waves of cells (N = 4 C), a few minutes here.
`--no-previews`: the runner makes no frame strips or posters (how much of its CPU they take).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from bare import MODEL, NO_PREVIEWS, bare_loop, start_sim
from PIL import Image


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) a live process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def write_job(folder: Path, cells: int, concurrency: int) -> Path:
    Image.new("RGB", (320, 320), (30, 90, 150)).save(folder / "img.png")
    path = folder / f"tp-{concurrency}.yaml"
    path.write_text(textwrap.dedent(f"""\
        name: tp-{concurrency}
        model: {MODEL}
        prompt: "throughput, take {{{{ seed }}}}"
        inputs:
          image_urls: [img.png]
          number_of_frames: 121
        matrix:
          seed: {{from: 1, to: {cells}}}
        run:
          concurrency: {concurrency}
          canary: 0
        """))
    return path


def runner(job: Path, out: Path, url: str, previews: bool = True
           ) -> tuple[float, float, int, float]:
    """(cells/s over first submit to last video, CPU s of the process and its children, exit
    code, seconds from the last video to the process's end: previews and triage catching up,
    the reports)."""
    env = {**os.environ, "RUNCOMFY_API_TOKEN": "bench", "RUNCOMFY_BASE_URL": url,
           "PYTHONUNBUFFERED": "1"}
    with tempfile.TemporaryFile() as err:
        cmd = [sys.executable] + (["-m", "pipeline"] if previews else ["-c", NO_PREVIEWS])
        proc = subprocess.Popen(cmd + ["run", str(job), "--out",
                                 str(out), "--no-progress"], env=env,
                                stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        ended = time.time()
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            err.seek(0)
            print(err.read().decode(errors="replace")[-2000:])
    events = [json.loads(line) for line in (out / "state.jsonl").read_text().splitlines()]
    first = min(e["t"] for e in events if e["e"] == "intent")
    last = max(e["t"] for e in events if e["e"] == "download")
    done = sum(1 for e in events if e["e"] == "download")
    return done / (last - first), usage.ru_utime + usage.ru_stime, code, ended - last


def one_capacity(capacity: int, cells: int, gen: str, tmp: Path, previews: bool) -> None:
    lo, hi = (float(x) for x in gen.split(":"))
    ideal = capacity / ((lo + hi) / 2)
    sim, url = start_sim(capacity, gen)
    try:
        job = write_job(tmp, cells, capacity)
        sim_before = cpu_of(sim.pid)
        rate, cpu, code, tail = runner(job, tmp / f"out-{capacity}", url, previews)
        sim_runner = cpu_of(sim.pid) - sim_before
        out = tmp / "bare"
        out.mkdir(exist_ok=True)
        before = resource.getrusage(resource.RUSAGE_SELF)
        sim_before = cpu_of(sim.pid)
        start = time.perf_counter()
        asyncio.run(bare_loop(url, cells, capacity, (tmp / "img.png").read_bytes(), out,
                              in_flight=16, poll=0.25, first_poll=lo))
        bare_rate = cells / (time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_SELF)
        sim_bare = cpu_of(sim.pid) - sim_before
        bare_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        shutil.rmtree(out, ignore_errors=True)
    finally:
        sim.terminate()
        sim.wait(timeout=30)
    print(f"capacity {capacity}, {cells:,} cells, generation {lo:g}-{hi:g} s: ideal C/T "
          f"{ideal:.1f} cells/s")
    label = "pipeline run" + ("" if previews else ", no previews")
    print(f"  {label}: {rate:.1f} cells/s = {rate / ideal:.3f} of ideal; CPU "
          f"{cpu / cells * 1000:.1f} ms/cell (simulator {sim_runner / cells * 1000:.1f} ms/cell); "
          f"ended {tail:.1f} s after its last video"
          + ("" if code == 0 else f"; exit {code}"))
    print(f"  bare httpx loop: {bare_rate:.1f} cells/s = {bare_rate / ideal:.3f} of ideal; CPU "
          f"{bare_cpu / cells * 1000:.1f} ms/cell (simulator {sim_bare / cells * 1000:.1f} "
          "ms/cell)")
    print(f"  runner / bare loop: {rate / bare_rate:.3f} (target >= 0.9)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--capacity", type=int, action="append",
                        help="simulator capacity = runner concurrency (repeatable; default "
                             "100 and 1000)")
    parser.add_argument("--cells", type=int, action="append",
                        help="cells per capacity, in the same order (default 4 waves: 4 C)")
    parser.add_argument("--gen", default="5:10", help="generation time MIN:MAX seconds")
    parser.add_argument("--no-previews", action="store_true",
                        help="the runner makes no frame strips or posters (nor its report)")
    args = parser.parse_args()
    capacities = args.capacity or [100, 1000]
    sizes = args.cells or [4 * c for c in capacities]
    tmp = Path(tempfile.mkdtemp(prefix="pipeline-throughput-"))
    try:
        for capacity, cells in zip(capacities, sizes, strict=True):
            one_capacity(capacity, cells, args.gen, tmp, not args.no_previews)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
