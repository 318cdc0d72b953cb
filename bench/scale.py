"""A 100,000-cell job on the simulator (generation time 0): plan, run, report, status, no-op
resume.

    python bench/scale.py [--cells 100000] [--ratio-cells 5000] [--concurrency 100]
                          [--rounds 3] [--only-ratio]

Each step runs as its own `pipeline` subprocess against a simulator in another process, and is
measured for wall time and peak RSS (the child's ru_maxrss). `run` includes the report it
writes at its end (every job size); `report` writes it again alone (its previews already
made). Targets: `status` < 1 s, a no-op resume < 3 s, peak memory < 300 MB; the figures of the
version before the one-truth redesign (commit 44035fb, measured on this machine class) are
printed beside them. Then the runner's own overhead: CPU seconds per cell of
`pipeline run` on --ratio-cells cells, against a bare httpx loop doing the same four calls per
cell (submit, status, result, download) with no state, no journal, no checks (bench/bare.py:
as a quick script holds its connections, and with the runner's own admission of 16 calls in
flight), printed as ratios;
four times: as the run is (each video's frame strip and poster made, and its triage, as it is
downloaded); with previews but no triage (what "with previews" meant when issue 21's targets
were set, before issue 22's triage); with previews off (the bench sets
pipeline.media.strips.MAX_PREVIEWS to 0 in the child, so neither the run nor its report makes
any; each clip is still decoded whole by its triage); and with no decoding at all (no
previews, no triage: the runner's own work). The loops and the runs take turns, --rounds
times; each round's ratios are against its own bare loop, and their medians are printed last.
`--only-ratio` leaves out the 100,000-cell steps.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from bare import MODEL, NO_PREVIEWS, bare_loop, start_sim
from PIL import Image

# wall s and peak RSS MB per step at commit 44035fb (before the one-truth redesign), 100,000
# cells, on a 2-core machine of this class: `python bench/scale.py` then.
# The run did not write its report past 20,000 cells then; `report` before the streamed report
# (commit 9995410) on a synthetic 100,000-cell job folder of the same shape: 86 s, 1,730 MB.
BEFORE = {"plan": (8.29, 231), "run": (1066.05, 294), "report": (86.2, 1730),
          "status": (0.53, 60), "resume (nothing to do)": (4.93, 228)}


IN_FLIGHT = 16  # HTTP calls the runner's client lets into httpx at once (run/session.py)
# `pipeline` that decodes no clip at all: no previews, and no triage (pipeline.media.qa, a whole
# decode of each clip, added after issue 21's targets were set): the runner's own work alone
NO_DECODING = ("import sys, pipeline.media.strips as s; s.MAX_PREVIEWS = 0; "
               "s.Previews.add = lambda *a, **k: None; "
               "from pipeline.cli import main; sys.exit(main())")

def write_job(folder: Path, cells: int, concurrency: int, name: str) -> Path:
    # A flat 320x320 PNG: a valid input of ~1 kB, so the simulator keeps 100k bodies cheaply.
    Image.new("RGB", (320, 320), (30, 90, 150)).save(folder / "img.png")
    seeds = max(1, cells // 2)
    path = folder / f"{name}.yaml"
    path.write_text(textwrap.dedent(f"""\
        name: {name}
        model: {MODEL}
        prompt: "scale test, take {{{{ seed }}}}"
        inputs:
          image_urls: [img.png]
          number_of_frames: 121
        matrix:
          seed: {{from: 1, to: {seeds}}}
          resolution: [720P, 1080P]
        run:
          concurrency: {concurrency}
          polling: {{initial: 0.05, max: 1}}
        """))
    return path


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float, int, str]:
    """(wall s, CPU s, peak RSS MB, exit code, stderr tail) of one child process. Its stderr
    goes to a file: a run's plain progress (a line a second) would fill a pipe nobody reads
    until the end, and block the run."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        err.seek(max(0, err.seek(0, os.SEEK_END) - 500))
        tail = err.read().decode(errors="replace")
    code = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, code, tail


def big_steps(tmp: Path, args: argparse.Namespace, env: dict[str, str],
              pipeline: list[str]) -> None:
    """plan, run, report, status and a no-op resume of --cells cells, each timed."""
    big = write_job(tmp, args.cells, args.concurrency, "scale")
    out = tmp / "out"
    print(f"{args.cells:,} cells, simulator capacity {args.concurrency}, generation time 0")
    print(f"{'step':<28}{'wall':>9}{'CPU':>9}{'peak RSS':>11}  exit"
          f"{'before: wall':>16}{'peak RSS':>11}")
    steps = [
        ("plan", pipeline + ["plan", str(big), "--json"]),
        ("run", pipeline + ["run", str(big), "--out", str(out), "--no-progress"]),
        ("report", pipeline + ["report", str(big), "--out", str(out)]),
        ("status", pipeline + ["status", str(big), "--out", str(out), "--json"]),
        ("resume (nothing to do)", pipeline + ["run", str(big), "--out", str(out),
                                               "--no-progress"]),
    ]
    results = {}
    for name, cmd in steps:
        wall, cpu, rss, code, err = timed(cmd, env)
        results[name] = (wall, cpu, rss)
        was_wall, was_rss = BEFORE[name]
        print(f"{name:<28}{wall:>8.2f}s{cpu:>8.1f}s{rss:>8.0f} MB  {code:>4}"
              f"{was_wall:>15.2f}s{was_rss:>8.0f} MB")
        if code not in (0, 1):
            print(err)
    print(f"targets: status < 1 s (got {results['status'][0]:.2f}), no-op resume < 3 s "
          f"(got {results['resume (nothing to do)'][0]:.2f}), peak memory < 300 MB "
          f"(got {max(r[2] for r in results.values()):.0f}; the run with its report "
          f"{results['run'][2]:.0f})")
    print(f"report: {results['report'][0]:.1f} s, peak {results['report'][2]:.0f} MB; "
          + ", ".join(f"{n} {(out / n).stat().st_size / 2**20:.0f} MB"
                      for n in ("report.json", "report.html", "report.md")
                      if (out / n).exists()))
    try:  # how the run ended, cell by state (a non-zero exit is explained here)
        counts = json.loads((out / "status.json").read_text())["counts"]
        print("run ended with:", {k: v for k, v in counts.items() if v})
    except (OSError, ValueError, KeyError):
        pass
    shutil.rmtree(out, ignore_errors=True)


# `pipeline` that makes previews but no triage: what "with previews" meant when issue 21's
# targets were set (the triage came after, with issue 22), neither by the run nor its report
NO_TRIAGE = ("import sys, pipeline.media.strips as s, pipeline.media.qa as q; "
             "s.Previews.on_qa = property(lambda self: None, lambda self, value: None); "
             "q.check_clip = lambda *a, **k: None; "
             "from pipeline.cli import main; sys.exit(main())")

RUNS = (  # (label, how `pipeline` is started, target ratio against the bare loop)
    ("pipeline run", None, 2.0),
    ("pipeline run, previews without triage", NO_TRIAGE, 2.0),
    ("pipeline run, no previews (triage on)", NO_PREVIEWS, None),
    ("pipeline run, no decoding (no previews, no triage)", NO_DECODING, 1.3),
)


def ratio_rounds(tmp: Path, args: argparse.Namespace, env: dict[str, str],
                 pipeline: list[str], url: str) -> None:
    """CPU per cell of the bare loops and of each kind of `pipeline run`, in turn, --rounds
    times: each round's ratios are against that round's bare loop, and the medians are
    printed last (the machine's load moves a single figure by 10-30 %)."""
    n = args.ratio_cells
    small = write_job(tmp, n, args.concurrency, "ratio")
    image = (tmp / "img.png").read_bytes()
    print(f"\nrunner overhead on {n:,} cells at concurrency {args.concurrency} (CPU ms per "
          "cell, whole process incl. start-up, plan, journal, probes and report; its decoding "
          "child process included), by round:")
    loops = (("bare httpx loop", None), (f"bare httpx loop, {IN_FLIGHT} calls in flight",
                                        IN_FLIGHT))
    rows: dict[str, list[float]] = {label: [] for label, _ in loops}
    rows.update({label: [] for label, _, _ in RUNS})
    for k in range(args.rounds):
        figures = []
        for label, in_flight in loops:
            bare_out = tmp / "bare-out"
            bare_out.mkdir()
            before = resource.getrusage(resource.RUSAGE_SELF)
            asyncio.run(bare_loop(url, n, args.concurrency, image, bare_out,
                                  in_flight=in_flight))
            after = resource.getrusage(resource.RUSAGE_SELF)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            rows[label].append(cpu / n * 1000)
            figures.append(f"{rows[label][-1]:.2f}")
            shutil.rmtree(bare_out, ignore_errors=True)
        for label, code, _ in RUNS:
            cmd = pipeline if code is None else [sys.executable, "-c", code]
            out_dir = tmp / "ratio-out"
            _, cpu, _, exit_code, err = timed(cmd + ["run", str(small), "--out", str(out_dir),
                                                     "--no-progress"], env)
            if exit_code != 0:
                print(err)
            shutil.rmtree(out_dir, ignore_errors=True)
            ms = cpu / n * 1000
            rows[label].append(ms)
            figures.append(f"{ms:.2f} ({ms / rows[loops[0][0]][-1]:.2f}x)")
        print(f"  round {k + 1}: bare {figures[0]}, {IN_FLIGHT} in flight {figures[1]}; "
              f"run {figures[2]}, previews without triage {figures[3]}, no previews "
              f"{figures[4]}, nothing decoded {figures[5]}")
    bare, tuned = (rows[label] for label, _ in loops)
    print(f"median of {args.rounds} round(s):")
    for label, _ in loops:
        print(f"  {label}: {statistics.median(rows[label]):.2f} ms/cell")
    for label, _, target in RUNS:
        ratios = [ours / b for ours, b in zip(rows[label], bare, strict=True)]
        tuned_ratios = [ours / b for ours, b in zip(rows[label], tuned, strict=True)]
        aim = f" (target <= {target})" if target is not None else ""
        print(f"  {label}: {statistics.median(rows[label]):.2f} ms/cell, ratio "
              f"{statistics.median(ratios):.2f}{aim}; against the loop with {IN_FLIGHT} in "
              f"flight {statistics.median(tuned_ratios):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cells", type=int, default=100_000)
    parser.add_argument("--ratio-cells", type=int, default=5_000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3,
                        help="times the overhead figures are measured, in turn (medians)")
    parser.add_argument("--only-ratio", action="store_true",
                        help="only the runner's overhead against the bare loop")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pipeline-scale-"))
    env = {**os.environ, "RUNCOMFY_API_TOKEN": "bench", "PYTHONUNBUFFERED": "1"}
    pipeline = [sys.executable, "-m", "pipeline"]
    sim, url = start_sim(args.concurrency)
    env["RUNCOMFY_BASE_URL"] = url
    try:
        if not args.only_ratio:
            big_steps(tmp, args, env, pipeline)
        # Overhead per cell: the runner vs a bare loop, same cells, same simulator.
        ratio_rounds(tmp, args, env, pipeline, url)
    finally:
        sim.terminate()
        sim.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
