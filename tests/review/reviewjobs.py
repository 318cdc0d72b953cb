"""A rated sweep for the review tests: 3 rows x 2 resolutions x 2 random seeds (12 cells), run
on the simulator, in a project folder (jobs/preview.yaml, outputs/preview)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from imagefiles import preview_manifest, write_image, write_manifest

PREVIEW = preview_manifest(pier="a.png")


def make_project(root: Path) -> Path:
    """The project (its .git, an image, the manifest); the manifest's path."""
    (root / ".git").mkdir(parents=True, exist_ok=True)
    write_image(root / "jobs" / "a.png", 1280, 720)
    return write_manifest(root / "jobs", PREVIEW, "preview.yaml")


def run_job(manifest: Path, only: tuple = ()) -> None:
    """Run the job on the simulator in a worker thread (a browser test's loop owns this one)."""
    from pipeline.api import RunOptions, run_plan
    from pipeline.prepare.plan import build_plan
    from pipeline.sim import SimConfig

    config = SimConfig(capacity=8, gen_time=(0.05, 0.15), seed=5)
    with ThreadPoolExecutor(1) as pool:
        summary = pool.submit(run_plan, build_plan(manifest),
                              RunOptions(progress=False, sim=config, only=only)
                              ).result(timeout=180)
    assert summary.exit_code == 0, summary.counts


def snapshot(*folders: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file under the folders: size, mtime and content (to prove nothing changed)."""
    out = {}
    for folder in folders:
        for dirpath, _, names in os.walk(folder):
            for name in names:
                p = Path(dirpath) / name
                st = p.stat()
                out[str(p)] = (st.st_size, st.st_mtime_ns, p.read_bytes())
    return out
