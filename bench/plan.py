"""Expanding + validating 100,000 cells, against a bare jsonschema loop over the same bodies.

    python bench/plan.py [--cells 100000]

Prints both wall times (best of --repeat runs each) and their ratio (target: the whole plan
within 1.5x of the bare loop, which does nothing but `validator.iter_errors(body)` per body),
and the process's peak RSS. Both run in this process, one after the other.
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import tempfile
import time
from pathlib import Path

import jsonschema

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from imagefiles import write_image, write_manifest

from pipeline.models.catalogue import load_model
from pipeline.prepare.plan import build_plan


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cells", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2, help="best of N runs of each")
    args = parser.parse_args()
    seeds = args.cells // 4
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_image(folder / "img.png", 1280, 720)
        path = write_manifest(folder, f"""
            name: bench
            model: bytedance/dreamina-3-0/image-to-video
            prompt: "the {{{{ subject }}}} at the harbor, {{{{ resolution }}}} take"
            inputs:
              image_urls: [img.png]
            vars:
              subject: boats
            matrix:
              seed: {{from: 1, to: {seeds}}}
              resolution: [720P, 1080P]
              number_of_frames: [121, 241]
            """)
        ours = float("inf")
        for _ in range(args.repeat):  # best of N: the machine is shared and noisy
            plan = None
            gc.collect()
            start = time.perf_counter()
            plan = build_plan(path)
            ours = min(ours, time.perf_counter() - start)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        bodies = [c.request for c in plan.cells]

        schema = load_model("bytedance/dreamina-3-0/image-to-video").input_schema
        validator = jsonschema.Draft7Validator(schema)
        bare = float("inf")
        for _ in range(args.repeat):
            gc.collect()
            start = time.perf_counter()
            bad = 0
            for body in bodies:
                for _ in validator.iter_errors(body):
                    bad += 1
            bare = min(bare, time.perf_counter() - start)
    print(f"cells:                        {len(bodies):,}")
    print(f"plan (load+expand+validate):  {ours:.2f} s   peak RSS of the process {peak:.0f} MB")
    print(f"bare jsonschema loop:         {bare:.2f} s   ({bad} errors)")
    print(f"ratio plan / bare:            {ours / bare:.2f}  (target <= 1.5)")


if __name__ == "__main__":
    main()
