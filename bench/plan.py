"""`pipeline plan --json > /dev/null` of a big sweep, against a bare jsonschema loop over the same
bodies, measured in the same run.

    python bench/plan.py [--cells 1000000] [--repeat 1]

The manifest: Dreamina image-to-video on the simulator's backend, one local image, a prompt
reading `take` and the matrix `take` 1..N/1000 x `seed` 1..1000 (issue 21's plan row). The
command runs in a fresh interpreter (this repository first on the path), its stdout to
/dev/null; its CPU time (user + system) and peak RSS come from the waited child's rusage. The
bare loop runs in another child: it reads the N bodies from the plan's own JSON (written once,
untimed) and times nothing but `Draft7Validator(schema).iter_errors(body)` for each. Prints
both CPU times and their ratio (target: <= 0.3), and the plan's peak RSS (target: <= 1 GB).
Best of --repeat runs of each: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = "bytedance/dreamina-3-0/image-to-video"
TARGET_RATIO = 0.3
TARGET_MB = 1024

BARE = """
import json, sys, time
import jsonschema
from pipeline.models.catalogue import load_model
with open(sys.argv[1], encoding="utf-8") as f:
    bodies = [c["request"] for c in json.load(f)["cells"]]
validator = jsonschema.Draft7Validator(load_model(sys.argv[2]).input_schema)
start = time.process_time()
bad = 0
for body in bodies:
    for _ in validator.iter_errors(body):
        bad += 1
print(len(bodies), time.process_time() - start, bad)
"""


def manifest(folder: Path, cells: int) -> Path:
    (folder / "images").mkdir()
    (folder / "images" / "harbor.jpg").write_bytes((ROOT / "jobs/images/harbor.jpg").read_bytes())
    takes = max(1, cells // 1000)
    path = folder / "bench.yaml"
    path.write_text(f"""\
name: bench
model: {MODEL}
backend: sim
prompt: "the boats at the harbor, take {{{{ take }}}}"
inputs:
  image_urls: ["images/harbor.jpg"]
  number_of_frames: 121
matrix:
  take: {{from: 1, to: {takes}}}
  seed: {{from: 1, to: {min(cells, 1000)}}}
""", encoding="utf-8")
    return path


def child(argv: list[str], env: dict[str, str], stdout: object) -> tuple[float, float, str]:
    """(CPU seconds, peak RSS in MB, stdout text if captured) of one waited child."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(argv, env=env, stdout=stdout, stderr=subprocess.PIPE, check=False,
                          text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr[-800:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # ru_maxrss of RUSAGE_CHILDREN is the largest of any waited child: run the plan first
    return cpu, after.ru_maxrss / 1024, done.stdout or ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=1, help="best of N runs of each")
    args = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = manifest(folder, args.cells)
        plan_cmd = [sys.executable, "-m", "pipeline", "plan", "--json", str(path)]
        ours, peak = float("inf"), 0.0
        for _ in range(args.repeat):
            with open(os.devnull, "w") as null:
                cpu, peak, _ = child(plan_cmd, env, null)
            ours = min(ours, cpu)
        with open(folder / "plan.json", "w") as out:  # the bodies for the bare loop
            child(plan_cmd, env, out)
        bare, count, bad = float("inf"), 0, 0
        for _ in range(args.repeat):
            _, _, text = child([sys.executable, "-c", BARE, str(folder / "plan.json"), MODEL],
                               env, subprocess.PIPE)
            n, seconds, errors = text.split()
            bare, count, bad = min(bare, float(seconds)), int(n), int(errors)
    ratio = ours / bare
    print(f"cells:                              {count:,}")
    print(f"pipeline plan --json > /dev/null:   {ours:.2f} s CPU (whole process), "
          f"peak RSS {peak:.0f} MB (target <= {TARGET_MB})")
    print(f"bare jsonschema loop, same bodies:  {bare:.2f} s CPU ({bad} errors)")
    print(f"ratio plan / bare:                  {ratio:.2f} (target <= {TARGET_RATIO})")


if __name__ == "__main__":
    main()
