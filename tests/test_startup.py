"""Each command imports only what it uses: `--version`, `--help`, `plan` and `status` start no
simulator, server or video library (issue 21: fast start).

Each case runs `pipeline.cli.main(argv)` in a fresh interpreter and reads `sys.modules` after
it; nothing here is timed (bench/startup.py prints the CPU times against a bare interpreter).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

SERVER = {"starlette", "uvicorn"}  # the simulator's web stack
VIDEO = {"av"}  # PyAV: probing and frame strips
IMAGES = {"PIL"}  # Pillow: image headers (a plan's image inputs), posters
CLIENT = {"httpx", "httpcore", "stamina"}  # the API client
LEDGER = {"psycopg", "psycopg_pool"}  # the team ledger
PLANNING = {"jinja2", "jsonschema", "yaml"}  # templates, request and manifest validation
WATCHED = SERVER | VIDEO | IMAGES | CLIENT | LEDGER | PLANNING | {"asyncio"}

PROBE = """
import contextlib, io, json, sys
from pipeline.cli import main
argv, watched = json.loads(sys.argv[1]), set(json.loads(sys.argv[2]))
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        code = main(argv)
    except SystemExit as exc:  # --version and --help exit from argparse
        code = exc.code
print(json.dumps({"code": code,
                  "loaded": sorted({m.split(".")[0] for m in sys.modules} & watched)}))
"""


def loaded_by(argv: list[str], cwd: Path) -> set[str]:
    """The watched top-level packages in sys.modules after `pipeline ARGV` (exit 0 asserted)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    env.pop("RUNCOMFY_API_TOKEN", None)
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argv),
                           json.dumps(sorted(WATCHED))], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert found["code"] in (0, None), f"pipeline {' '.join(argv)} exited {found['code']}"
    return set(found["loaded"])


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A copy of jobs/demo.yaml (with its image) in a folder of its own, never run."""
    shutil.copy(REPO / "jobs" / "demo.yaml", tmp_path / "demo.yaml")
    shutil.copytree(REPO / "jobs" / "images", tmp_path / "images")
    return tmp_path / "demo.yaml"


@pytest.mark.parametrize("argv", [["--version"], ["--help"]])
def test_version_and_help_import_no_library_of_a_command(argv: list[str],
                                                         tmp_path: Path) -> None:
    """`--version` and `--help` build the parser only: no server, video, image, HTTP client,
    ledger, template or schema library, not even asyncio."""
    assert loaded_by(argv, tmp_path) == set()


def test_plan_offline_imports_no_server_video_client_or_ledger(demo: Path) -> None:
    """`plan --offline` of the demo (backend sim) reads the simulator's catalog without its
    server, and fetches nothing: no Starlette, uvicorn, PyAV, HTTP client or ledger."""
    loaded = loaded_by(["plan", str(demo), "--offline"], demo.parent)
    assert loaded & (SERVER | VIDEO | CLIENT | LEDGER) == set()


def test_status_of_a_job_never_run_imports_no_server_video_client_or_ledger(demo: Path) -> None:
    """`status` of a job never run plans it offline: the same libraries as `plan --offline`."""
    loaded = loaded_by(["status", str(demo)], demo.parent)
    assert loaded & (SERVER | VIDEO | CLIENT | LEDGER) == set()


def test_status_of_a_job_that_ran_reads_its_folder_only(demo: Path) -> None:
    """`status` of a job that has run answers from its folder: no server, video or image
    library, no HTTP client, no ledger and no templates (the manifest is still read and
    checked: YAML and jsonschema)."""
    text = demo.read_text().replace("polling: {initial: 1, max: 5}",
                                    "polling: {initial: 0.2, max: 0.5}")
    demo.write_text(text)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("RUNCOMFY_API_TOKEN", None)
    proc = subprocess.run([sys.executable, "-m", "pipeline", "run", str(demo), "--progress",
                           "none"], cwd=demo.parent, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (demo.parent / "outputs" / "demo" / "status.json").exists()
    loaded = loaded_by(["status", str(demo)], demo.parent)
    assert loaded & (SERVER | VIDEO | IMAGES | CLIENT | LEDGER | {"jinja2", "asyncio"}) == set()
