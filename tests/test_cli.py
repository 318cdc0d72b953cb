"""The command line: exit codes, output shapes, and one-line errors for `validate` and `plan`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cli import main

REPO = Path(__file__).resolve().parent.parent
JOBS = sorted(str(p) for p in (REPO / "jobs").glob("*.yaml"))


def run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


def test_checked_in_jobs_validate() -> None:
    """`pipeline validate jobs/*.yaml` exits 0 and names each manifest with its cell count."""
    proc = run("validate", *JOBS)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count(": ok, ") == len(JOBS)


def test_plan_json_shape() -> None:
    """`plan --json` prints the job, model, count and each cell's id, values and request."""
    proc = run("plan", "jobs/demo.yaml", "--json")
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["job"] == "demo" and plan["model"] == "bytedance/dreamina-3-0/image-to-video"
    assert plan["count"] == len(plan["cells"]) == 4
    cell = plan["cells"][0]
    assert set(cell) >= {"id", "values", "request"}
    assert cell["request"]["image_urls"] == ["images/harbor.jpg"]  # a path, not a data URI
    assert len({c["id"] for c in plan["cells"]}) == 4


def test_plan_table_shows_count_cost_and_duration(capsys: pytest.CaptureFixture) -> None:
    """The readable plan lists cells and ends with the count, cost and duration estimates."""
    assert main(["plan", str(REPO / "jobs" / "harbor-sweep.yaml")]) == 0
    out = capsys.readouterr().out
    assert "19 cells" in out
    assert "estimated cost: unknown" in out  # never $0 for an unknown price
    assert "estimated duration:" in out and "budget: $40.00" in out


def _demo_with_price(folder: Path, backend: str) -> Path:
    (folder / "images").mkdir()
    (folder / "images" / "harbor.jpg").write_bytes((REPO / "jobs/images/harbor.jpg").read_bytes())
    text = (REPO / "jobs" / "demo.yaml").read_text().replace(
        "run:\n", "run:\n  price: {unit: second, by: resolution, usd: {720P: 0.1, 1080P: 0.2}}\n"
    ).replace("backend: sim", f"backend: {backend}")
    (folder / "demo.yaml").write_text(text)
    return folder / "demo.yaml"


def test_plan_with_a_known_price_estimates_money(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """With no catalog to ask, run.price gives per-cell and total estimates by resolution,
    billed on the clip's nominal seconds (121 frames: 5 s), and says it is the source."""
    for name in ("RUNCOMFY_API_TOKEN", "RUNCOMFY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    manifest = _demo_with_price(tmp_path, "runcomfy")
    assert main(["plan", str(manifest), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    costs = sorted(c["estimated_cost"] for c in plan["cells"])
    assert costs == pytest.approx([5 * 0.1] * 2 + [5 * 0.2] * 2)
    assert plan["estimate"]["usd"] == plan["estimated_usd"] == pytest.approx(sum(costs), abs=1e-3)
    assert plan["price"]["source"] == "run.price"
    assert plan["figures"]["to_go_usd"] == pytest.approx(sum(costs), abs=1e-3)


def test_plan_says_when_the_catalog_price_overrides_run_price(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The catalog's price wins over run.price, and plan says so: the price plan estimates
    with is the one the run will use."""
    manifest = _demo_with_price(tmp_path, "sim")  # the built-in simulator's catalog: $0.05/s
    assert main(["plan", str(manifest), "--json"]) == 0
    captured = capsys.readouterr()
    plan = json.loads(captured.out)
    assert plan["price"]["source"].startswith("catalog")
    assert [c["estimated_cost"] for c in plan["cells"]] == pytest.approx([0.25] * 4)
    assert "run.price" in captured.err and "the catalog's price is used" in captured.err


@pytest.mark.parametrize("args,expected", [
    (["plan", "nope.yaml"], "nope.yaml: no such file"),
    (["validate", "README.md"], "README.md:"),
])
def test_user_errors_are_one_line_exit_2(args: list[str], expected: str) -> None:
    """A missing or non-manifest file is reported on one line, exit code 2, no traceback."""
    proc = run(*args)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert expected in proc.stderr.splitlines()[0]


@pytest.mark.parametrize("name", ["pipeline", "runcomfy-batch"])
def test_console_script_is_installed(name: str) -> None:
    """Both console scripts, `pipeline` and `runcomfy-batch` (the same command), exist and
    answer --help and --version (the version of pipeline.__version__)."""
    from pipeline import __version__

    exe = Path(sys.executable).parent / name
    assert exe.exists(), f"{exe}: not installed (pip install -e '.[test,docs]' again)"
    proc = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "validate" in proc.stdout and "plan" in proc.stdout
    proc = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == f"pipeline {__version__}"


COMMANDS = frozenset({"validate", "plan", "run", "status", "cancel", "report", "sim", "account"})
VERBS = {"account": frozenset({"init", "set", "status", "sweep"})}


@pytest.mark.parametrize(("argv", "expected"), [
    (["--json", "status", "x.yaml"], ["status", "--json", "x.yaml"]),
    (["status", "x.yaml", "--json"], ["status", "x.yaml", "--json"]),
    (["--no-progress", "--out", "o", "run", "x.yaml"], ["run", "--no-progress", "--out", "o",
                                                        "x.yaml"]),
    (["plan", "x.yaml", "--verbose"], ["--verbose", "plan", "x.yaml"]),
    (["-v", "--json", "plan", "x.yaml", "-v"], ["-v", "plan", "--json", "x.yaml"]),
    (["--version"], ["--version"]),
    (["--help", "plan"], ["--help", "plan"]),
    (["run", "x.yaml", "--", "--json"], ["run", "x.yaml", "--", "--json"]),
    (["--json", "account", "status"], ["account", "status", "--json"]),
    (["--json", "account", "--ledger", "u", "status"], ["account", "--json", "--ledger", "u",
                                                         "status"]),
])
def test_global_options_may_come_before_or_after_the_command(argv: list[str],
                                                             expected: list[str]) -> None:
    """Options before the command move after it; --verbose goes to `pipeline` itself."""
    from pipeline.cli import hoist_global_options

    assert hoist_global_options(argv, COMMANDS, VERBS) == expected


def test_verbose_shows_own_debug_lines_only(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """With --verbose, pipeline.* debug lines show; other libraries' debug and stamina's retry
    warnings do not; other libraries' warnings still do."""
    import logging

    assert main(["--verbose", "validate", "--offline", str(REPO / "jobs" / "demo.yaml")]) == 0
    logging.getLogger("pipeline.test").debug("own detail")
    logging.getLogger("PIL.PngImagePlugin").debug("STREAM b'IHDR'")
    logging.getLogger("stamina").warning("stamina.retry_scheduled")
    logging.getLogger("httpx").warning("a library's warning")
    err = capsys.readouterr().err
    assert "DEBUG pipeline.test: own detail" in err
    assert "IHDR" not in err and "stamina" not in err
    assert "a library's warning" in err
    main(["validate", "--offline", str(REPO / "jobs" / "demo.yaml")])
    logging.getLogger("pipeline.test").debug("hidden")
    assert "hidden" not in capsys.readouterr().err


@pytest.mark.parametrize("argv,expected", [
    (["run", "x.yaml", "--concurency", "4"],
     "pipeline run: error: unrecognized arguments: --concurency 4 (did you mean --concurrency?)"),
    (["account", "status", "--ledgr", "u"],
     "pipeline account status: error: unrecognized arguments: --ledgr u (did you mean "
     "--ledger?)"),
    (["plna", "x.yaml"], "(did you mean plan?)"),
    (["models", "chek"], "(did you mean check?)"),
    (["run", "x.yaml", "--json"], "pipeline run: error: unrecognized arguments: --json (see "),
])
def test_a_mistyped_flag_or_command_gets_a_did_you_mean(argv: list[str], expected: str,
                                                        capsys: pytest.CaptureFixture) -> None:
    """A usage error is one line naming the command, with the nearest option or command as
    manifest keys get it (none when nothing is near), and exit 2."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert expected in line and line.endswith("--help)") and not captured.out
