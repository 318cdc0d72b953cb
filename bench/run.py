"""Makespan and status calls per cell: the runner against the ideal and a naive baseline.

    python bench/run.py [--cells 200] [--capacity 20] [--gen 4:6] [--concurrency N ...]

One simulator (capacity C, generation time uniform in [min, max]) serves, one after the other:
- `pipeline` runs (one per --concurrency value; default C and C + C/4, i.e. without and with a
  few requests queued beyond the server's capacity, which hides polling lag),
- a plain thread-pool script: C threads, each submits, polls /status every 5 s, fetches the
  result and downloads the video.
Printed per run: the ideal makespan ceil(N/C) * mean(T), the measured one (first submit to
last video on disk; the baseline: its wall time), ideal/measured (target >= 0.95) and status
calls per cell (target <= 6). Note that the ideal ignores the spread of T: even a scheduler
that knew every T in advance ends the last wave later than ceil(N/C) * mean(T). The zero-lag
FIFO oracle is given twice: its mean over random draws of T, and "this run's own oracle", the
makespan a zero-lag runner would have had with the very T this run's requests drew (read from
the in-process simulator), which separates the runner's lag from the luck of the draw.
`concurrency: auto` is also run (not told the capacity), with the most requests live on the
server once settled (one generation after the first end).

`--canary` measures instead a whole `pipeline` process with a canary: N=120 cells, capacity
and concurrency 24, generation 4 s fixed, on the built-in simulator (so the cell's time is
known before it runs), one cell proven before the rest: the ideal is T + ceil((N-1)/C) * T,
and the figure is ideal / wall time of the process (start-up, plan, run, reports; target
>= 0.92).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from imagefiles import MODEL, write_image, write_manifest
from runjobs import LiveSampler

from pipeline.api import RunOptions, run_plan
from pipeline.job.folder import JobFolder
from pipeline.job.found_capacity import kept, service
from pipeline.prepare.plan import build_plan
from pipeline.sim import SimConfig, Simulator


def manifest(folder: Path, cells: int, concurrency: int) -> Path:
    write_image(folder / "img.png", 640, 360)
    return write_manifest(folder, f"""
        name: bench-run
        model: {MODEL}
        prompt: "bench take {{{{ seed }}}}"
        inputs:
          image_urls: [img.png]
        matrix:
          seed: {{from: 1, to: {cells}}}
        run:
          concurrency: {concurrency}
          polling: {{initial: 2, max: 30}}
        """, name=f"bench-{concurrency}.yaml")


def ours(sim: Simulator, folder: Path, cells: int, concurrency: int | str
         ) -> tuple[float, float, float]:
    """(makespan: first submit to last video on disk, wall time of run_job, status calls/cell)"""
    path = manifest(folder, cells, concurrency)
    os.environ["RUNCOMFY_BASE_URL"] = sim.base_url
    os.environ["RUNCOMFY_API_TOKEN"] = "bench"
    plan = build_plan(path)
    before = sim.stats()["calls"]["status"]
    out = folder / f"out-{concurrency}"
    start = time.perf_counter()
    # no canary: the makespan measured is the runner's at full concurrency
    summary = run_plan(plan, RunOptions(out=out, progress=False, no_canary=True))
    wall = time.perf_counter() - start
    assert summary.counts["done"] == cells, summary.counts
    events = [json.loads(line) for line in (out / "state.jsonl").read_text().splitlines()]
    first = min(e["t"] for e in events if e["e"] == "intent")
    last = max(e["t"] for e in events if e["e"] == "download")
    return last - first, wall, (sim.stats()["calls"]["status"] - before) / cells


def own_oracle(sim: Simulator, capacity: int) -> float:
    """The makespan a zero-lag runner would have had with the very generation times this run's
    requests drew (in the order they were submitted): the oracle of this run, free of the luck
    of the draw that the mean oracle averages over."""
    import heapq

    requests = sorted(sim.app.state.engine._requests.values(), key=lambda r: r.ordinal)
    free = [0.0] * capacity
    for r in requests:
        heapq.heappush(free, heapq.heappop(free) + r.duration)
    return max(free)


def baseline(sim: Simulator, folder: Path, cells: int, threads: int) -> tuple[float, float]:
    """What a quick script does: a thread per slot, a status call every 5 s."""
    import base64

    image = "data:image/png;base64," + base64.b64encode((folder / "img.png").read_bytes()).decode()
    headers = {"Authorization": "Bearer bench"}
    calls = 0
    lock = threading.Lock()

    def one(seed: int) -> None:
        nonlocal calls
        with httpx.Client(base_url=sim.base_url, headers=headers, timeout=30) as http:
            body = {"image_urls": [image], "prompt": f"baseline {seed}", "seed": seed}
            rid = http.post(f"/v1/models/{MODEL}", json=body).json()["request_id"]
            while True:
                time.sleep(5)
                with lock:
                    calls += 1
                if http.get(f"/v1/requests/{rid}/status").json()["status"] in (
                        "completed", "failed", "cancelled"):
                    break
            result = http.get(f"/v1/requests/{rid}/result").json()
            video = result["output"].get("video") or result["output"]["videos"][0]
            with httpx.Client(timeout=30) as dl:
                (folder / f"baseline-{seed}.mp4").write_bytes(dl.get(video).content)

    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(1, cells + 1)))
    return time.perf_counter() - start, calls / cells


def oracle(cells: int, capacity: int, lo: float, hi: float, trials: int = 2000) -> float:
    """Mean makespan of a zero-lag, work-conserving FIFO server with all cells queued at once
    (Monte Carlo): what a runner that noticed every finish instantly would get."""
    import heapq
    import random
    import statistics

    rng = random.Random(1)
    spans = []
    for _ in range(trials):
        free = [0.0] * capacity
        for _ in range(cells):
            heapq.heappush(free, heapq.heappop(free) + rng.uniform(lo, hi))
        spans.append(max(free))
    return statistics.mean(spans)


# one whole process: plan and run a job on the built-in simulator (its capacity and time given)
CANARY_CHILD = """
import sys
from pathlib import Path
from pipeline.api import RunOptions, run_plan
from pipeline.prepare.plan import build_plan
from pipeline.sim import SimConfig
path, out = Path(sys.argv[1]), Path(sys.argv[2])
capacity, gen = int(sys.argv[3]), float(sys.argv[4])
summary = run_plan(build_plan(path), RunOptions(out=out, progress=False, backend="sim",
                   sim=SimConfig(capacity=capacity, gen_time=(gen, gen))))
sys.exit(summary.exit_code)
"""


def canary_run(cells: int = 120, capacity: int = 24, gen: float = 4.0) -> None:
    """Whole process / ideal with a canary (see the module's docstring)."""
    import subprocess

    ideal = gen + math.ceil((cells - 1) / capacity) * gen
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_image(folder / "img.png", 640, 360)
        path = write_manifest(folder, f"""
            name: bench-canary
            model: {MODEL}
            prompt: "bench take {{{{ seed }}}}"
            inputs:
              image_urls: [img.png]
            matrix:
              seed: {{from: 1, to: {cells}}}
            run:
              concurrency: {capacity}
              canary: 1
            """, name="canary.yaml")
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", CANARY_CHILD, str(path), str(folder / "out"),
                               str(capacity), str(gen)], capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            print(proc.stderr[-2000:])
        events = [json.loads(line) for line in
                  (folder / "out" / "state.jsonl").read_text().splitlines()]
        first = min(e["t"] for e in events if e["e"] == "submitted")
        ended = min(e["t"] for e in events if e["e"] == "result")
        last = max(e["t"] for e in events if e["e"] == "download")
        second = sorted(e["t"] for e in events if e["e"] == "submitted")[1]
    print(f"{cells} cells, capacity {capacity}, generation {gen:g} s fixed, canary 1: ideal "
          f"{ideal:.1f} s; whole process {wall:.1f} s = {ideal / wall:.3f} of ideal "
          f"(target >= 0.92)")
    print(f"  the canary's result seen {ended - first - gen:+.2f} s after its {gen:g} s end; "
          f"the rest sent {second - first:.2f} s after it; first submit to last video "
          f"{last - first:.1f} s; start-up, plan and reports {wall - (last - first):.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cells", type=int, default=200)
    parser.add_argument("--capacity", type=int, default=20)
    parser.add_argument("--gen", default="4:6", help="generation time MIN:MAX seconds")
    parser.add_argument("--concurrency", type=int, action="append",
                        help="runner concurrency (repeatable; default C and C+2)")
    parser.add_argument("--no-auto", action="store_true",
                        help="leave out the run with concurrency: auto")
    parser.add_argument("--canary", action="store_true",
                        help="only the whole process with a canary (N=120, C=24, T=4 s)")
    args = parser.parse_args()
    if args.canary:
        canary_run()
        return
    lo, hi = (float(x) for x in args.gen.split(":"))
    ideal = math.ceil(args.cells / args.capacity) * (lo + hi) / 2
    best = oracle(args.cells, args.capacity, lo, hi)
    print(f"{args.cells} cells, capacity {args.capacity}, generation {lo:g}-{hi:g} s: "
          f"ideal makespan {ideal:.1f} s; a zero-lag FIFO oracle averages {best:.1f} s "
          f"(= {ideal / best:.3f} of ideal: the spread of T alone costs that much)")
    print(f"{'run':<34}{'makespan':>10}{'ideal/measured':>16}{'oracle/measured':>17}"
          f"{'status calls/cell':>19}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for concurrency in args.concurrency or [args.capacity,
                                                args.capacity + max(2, args.capacity // 4)]:
            with Simulator(SimConfig(capacity=args.capacity, gen_time=(lo, hi),
                                     seed=concurrency)) as sim:
                elapsed, wall, per_cell = ours(sim, folder, args.cells, concurrency)
                own = own_oracle(sim, args.capacity)
            print(f"{'pipeline, concurrency ' + str(concurrency):<34}{elapsed:>9.1f}s"
                  f"{ideal / elapsed:>16.3f}{best / elapsed:>17.3f}{per_cell:>19.2f}   "
                  f"(this run's own oracle {own:.1f} s = {own / elapsed:.3f}; wall time with "
                  f"start-up and reports {wall:.1f} s)")
        if not args.no_auto:
            with Simulator(SimConfig(capacity=args.capacity, gen_time=(lo, hi), seed=3)) as sim, \
                    LiveSampler(sim, every=0.1) as sampler:
                elapsed, wall, per_cell = ours(sim, folder, args.cells, "auto")
                own = own_oracle(sim, args.capacity)
                at = service("runcomfy", sim.base_url)  # a simulator served on its own port
            found = kept(JobFolder(folder / "out-auto"), at)
            found = found["capacity"] if found else None
            # settled: one generation after the first request ended (the capacity is known,
            # and what the first doubling put in the queue has drained)
            events = [json.loads(line) for line in
                      (folder / "out-auto" / "state.jsonl").read_text().splitlines()]
            settle = min(e["t"] for e in events if e["e"] == "result") + hi - sampler.started
            after = [n for t, n in sampler.samples if t >= settle]
            print(f"{'pipeline, concurrency auto':<34}{elapsed:>9.1f}s"
                  f"{ideal / elapsed:>16.3f}{best / elapsed:>17.3f}{per_cell:>19.2f}   "
                  f"(this run's own oracle {own:.1f} s = {own / elapsed:.3f}; capacity found "
                  f"{found}; most live after settling "
                  f"{max(after) if after else '-'}, allowed {args.capacity + 2})")
        with Simulator(SimConfig(capacity=args.capacity, gen_time=(lo, hi), seed=1)) as sim:
            elapsed, per_cell = baseline(sim, folder, args.cells, args.capacity)
        print(f"{'thread pool, poll every 5 s':<34}{elapsed:>9.1f}s{ideal / elapsed:>16.3f}"
              f"{best / elapsed:>17.3f}{per_cell:>19.2f}")
    print("targets: ideal/measured >= 0.95 with <= 6 status calls per cell; concurrency auto: "
          ">= 0.97 of the oracle, <= 3 status calls per cell, never more than capacity + 2 live "
          "after settling")


if __name__ == "__main__":
    main()
