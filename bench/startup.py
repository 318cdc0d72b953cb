"""CPU time of starting the `pipeline` command, against a bare `python -c pass` in the same run.

    python bench/startup.py [--runs 9] [--skip-run]

Runs each command in a fresh interpreter (`python -m pipeline ...`, this repository first on
the path) `--runs` times, and prints the median CPU time (user + system, from the children's
rusage) of each, its difference from the bare interpreter's and their ratio. The commands:
`--version`, `--help`, `status` and `plan --offline` of a copy of jobs/demo.yaml never run (the
status of a job never run plans it, offline), and `status` of the same job after a run on the
built-in simulator (its status.json is the answer). Target (issue 21): `--version` within
0.15 s of the bare interpreter; `--version`, `--help`, `status` and `plan` import no simulator,
server or video library (tests/test_startup.py checks that part, untimed).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = 0.150  # seconds of CPU over a bare interpreter, for --version


def cpu_of(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    """CPU seconds (user + system) one run of argv took, from the rusage of waited children."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): "
                         f"{done.stderr.decode(errors='replace')[-500:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=9, help="runs of each command (median shown)")
    ap.add_argument("--skip-run", action="store_true",
                    help="leave out `status` after a run (no simulator run at setup)")
    args = ap.parse_args()

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    env.pop("RUNCOMFY_API_TOKEN", None)  # nothing here may reach the service
    py = [sys.executable]
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        fresh, ran = Path(tmp) / "fresh", Path(tmp) / "ran"
        for folder in (fresh, ran):
            folder.mkdir()
            shutil.copy(ROOT / "jobs" / "demo.yaml", folder / "demo.yaml")
            shutil.copytree(ROOT / "jobs" / "images", folder / "images")
        commands = {
            "python -c pass": py + ["-c", "pass"],
            "pipeline --version": py + ["-m", "pipeline", "--version"],
            "pipeline --help": py + ["-m", "pipeline", "--help"],
            "pipeline status (never run)": py + ["-m", "pipeline", "status",
                                                 str(fresh / "demo.yaml")],
            "pipeline plan --offline": py + ["-m", "pipeline", "plan", str(fresh / "demo.yaml"),
                                             "--offline"],
        }
        if not args.skip_run:
            subprocess.run(py + ["-m", "pipeline", "run", str(ran / "demo.yaml"),
                                 "--progress", "none"], env=env, cwd=ran, check=True,
                           stdout=subprocess.DEVNULL)
            commands["pipeline status (after a run)"] = py + ["-m", "pipeline", "status",
                                                             str(ran / "demo.yaml")]
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):  # interleaved, so a burst of load hits every command alike
            for name, argv in commands.items():
                times[name].append(cpu_of(argv, env, fresh))

    bare = statistics.median(times["python -c pass"])
    print(f"CPU time of each command, median of {args.runs} runs ({sys.executable}, "
          f"Python {sys.version.split()[0]})")
    print(f"{'command':<32} {'CPU ms':>8} {'over bare':>10} {'ratio':>6}")
    for name, values in times.items():
        cpu = statistics.median(values)
        print(f"{name:<32} {cpu * 1000:8.1f} {(cpu - bare) * 1000:+9.1f}  {cpu / bare:5.1f}x")
    over = statistics.median(times["pipeline --version"]) - bare
    print(f"--version over a bare interpreter: {over * 1000:.0f} ms (target <= "
          f"{TARGET * 1000:.0f} ms): {'met' if over <= TARGET else 'NOT met'}")


if __name__ == "__main__":
    main()
