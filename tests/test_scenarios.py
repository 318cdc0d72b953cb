"""Scenario files: manifests that state, in their own header comments, what must come out.

- `tests/scenarios/good/*.yaml` plan and run (on the simulator) with the requests they state:
  `# prompt: KEY=VALUE | KEY=VALUE => the prompt` and `# request: SELECTION => KEY=VALUE` name a
  cell by its values; every cell of the plan must be named, and what the run sent is checked
  too.
- `tests/scenarios/cli/*.yaml` are command-line sessions on a manifest: steps of
  `# run: ARGS` (a real `pipeline` subprocess, run in the scenario's folder), each followed by
  what it must do: `# exit: N`, `# stdout: text`, `# stderr: text`, `# no stderr: text`,
  `# stdout width: N` (no line longer), `# within: SECONDS`; `# env: KEY=VALUE` sets a variable
  for the steps after it, `# sim: key=value ...` starts a simulator (SimConfig fields;
  `gen_time=a:b`) that RUNCOMFY_BASE_URL points at, `# copy: broken/x.yaml` brings another
  scenario along. In ARGS and texts, `{manifest}`, `{dir}`, `{closed_port}` and `{cell:N}` (the
  first 8 hex digits of the plan's N-th cell id) are replaced.

(tests/scenarios/broken/ is read by tests/prepare/test_manifest.py.)
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from imagefiles import write_image

from pipeline.api import RunOptions, run_plan
from pipeline.job.journal import read_state
from pipeline.prepare.plan import build_plan
from pipeline.sim import SimConfig

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
GOOD = sorted((SCENARIOS / "good").glob("*.yaml"))
CLI = sorted((SCENARIOS / "cli").glob("*.yaml"))


def stage(folder: Path, scenario: Path) -> Path:
    """The scenario copied into `folder` with its data files (same stem) and an image."""
    write_image(folder / "img.png", 640, 480)
    target = folder / scenario.name
    shutil.copy(scenario, target)
    for data in scenario.parent.glob(scenario.stem + ".*"):
        if data.suffix != ".yaml":
            shutil.copy(data, folder / data.name)
    return target


def _selection(text: str) -> dict[str, str]:
    return dict(pair.strip().split("=", 1) for pair in text.split("|"))


def _the_cell(cells: list, selection: dict[str, str]):
    found = [c for c in cells if all(k in c.values and str(c.values[k]) == v
                                     for k, v in selection.items())]
    assert len(found) == 1, (selection, [c.values for c in cells])
    return found[0]


# --- good scenarios ----------------------------------------------------------------------------
@pytest.mark.parametrize("scenario", GOOD, ids=[p.stem for p in GOOD])
def test_good_scenario_plans_and_runs_with_the_stated_requests(tmp_path: Path,
                                                               scenario: Path) -> None:
    """Each cell the scenario names has the stated prompt (and request values) in the plan and
    in what the run sent; the plan has no other cell."""
    text = scenario.read_text()
    prompts = re.findall(r"^# prompt: (.+?) => (.*)$", text, re.M)
    requests = re.findall(r"^# request: (.+?) => (\w+)=(.*)$", text, re.M)
    assert prompts, f"{scenario.name} states no prompt"
    plan = build_plan(stage(tmp_path, scenario))
    named = {tuple(sorted(_selection(sel).items())) for sel, _ in prompts}
    assert len(plan.cells) == len(named), [c.values for c in plan.cells]
    for sel, prompt in prompts:
        assert _the_cell(plan.cells, _selection(sel)).request["prompt"] == prompt
    for sel, key, value in requests:
        assert str(_the_cell(plan.cells, _selection(sel)).request[key]) == value

    out = tmp_path / "out"
    summary = run_plan(plan, RunOptions(out=out, progress=False,
                                       sim=SimConfig(capacity=8, gen_time=(0.05, 0.1))))
    assert summary.exit_code == 0 and summary.counts["done"] == len(plan.cells)
    sent = read_state(out).cells
    for sel, prompt in prompts:
        assert sent[_the_cell(plan.cells, _selection(sel)).id].request["prompt"] == prompt


# --- command-line scenarios --------------------------------------------------------------------
@dataclass
class Step:
    args: str
    env: dict[str, str] = field(default_factory=dict)
    sim: dict | None = None
    expect: list[tuple[str, str]] = field(default_factory=list)


def _steps(text: str) -> tuple[list[Step], list[str], dict[str, str]]:
    steps: list[Step] = []
    copies: list[str] = []
    env: dict[str, str] = {}
    sim = None
    kinds = "run|env|sim|copy|exit|stdout|stderr|no stderr|stdout width|within"
    for kind, value in re.findall(rf"^# ({kinds}): (.*)$", text, re.M):
        if kind == "run":
            steps.append(Step(value, dict(env), sim))
            sim = None
        elif kind == "env":
            key, _, val = value.partition("=")
            env[key] = val
        elif kind == "sim":
            sim = dict(pair.split("=", 1) for pair in value.split())
        elif kind == "copy":
            copies.append(value)
        elif steps:
            steps[-1].expect.append((kind, value))
    return steps, copies, env


def _sim_config(spec: dict[str, str]) -> dict:
    out: dict = {}
    for key, value in spec.items():
        if ":" in value:
            out[key] = tuple(float(v) for v in value.split(":"))
        else:
            out[key] = float(value) if "." in value else int(value)
    return out


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("scenario", CLI, ids=[p.stem for p in CLI])
def test_cli_scenario(tmp_path: Path, scenario: Path, api_env) -> None:
    """Every step of the session exits and prints as its scenario states."""
    text = scenario.read_text()
    steps, copies, _ = _steps(text)
    assert steps and all(s.expect for s in steps), f"{scenario.name} states no expectation"
    manifest = stage(tmp_path, scenario)
    for name in copies:
        stage(tmp_path, SCENARIOS / name)
    values = {"manifest": manifest.name, "dir": str(tmp_path), "closed_port": str(_closed_port())}
    if "{cell:" in text:
        cells = build_plan(manifest, fetch_remote=False).cells
        values.update({f"cell:{i}": c.id[:8] for i, c in enumerate(cells)})

    def fill(s: str) -> str:
        return re.sub(r"\{([a-z_]+(?::\d+)?)\}", lambda m: values.get(m[1], m[0]), s)

    env = {k: v for k, v in os.environ.items() if not k.startswith("COLUMNS")}
    env["PYTHONUNBUFFERED"] = "1"
    for n, step in enumerate(steps, 1):
        if step.sim is not None:
            api_env(**_sim_config(step.sim))
            env.update({k: os.environ[k] for k in ("RUNCOMFY_BASE_URL", "RUNCOMFY_API_TOKEN")})
        env.update({k: fill(v) for k, v in step.env.items()})
        args = fill(step.args).split()
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
        took = time.monotonic() - start
        where = f"{scenario.name} step {n} `pipeline {' '.join(args)}`"
        assert "Traceback" not in proc.stderr, (where, proc.stderr)
        for kind, want in step.expect:
            want = fill(want)
            if kind == "exit":
                assert proc.returncode == int(want), (where, proc.stdout, proc.stderr)
            elif kind == "stdout":
                assert want in proc.stdout, (where, want, proc.stdout)
            elif kind == "stderr":
                assert want in proc.stderr, (where, want, proc.stderr)
            elif kind == "no stderr":
                assert want not in proc.stderr, (where, want, proc.stderr)
            elif kind == "stdout width":
                widest = max(map(len, proc.stdout.splitlines()), default=0)
                assert widest <= int(want), (where, widest, proc.stdout)
            elif kind == "within":
                assert took < float(want), (where, took)
            else:
                raise AssertionError(f"{where}: unknown expectation {kind!r}")
