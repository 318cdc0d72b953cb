"""Manifest errors: every problem on its own line, at the file, line and column at fault.

Each file in tests/scenarios/broken/ states what it must produce in `# expect: LINE:COL: text`
header lines (`# expect: DATA.csv:LINE:COL: text` for a problem located in a data file that
sits beside the scenario with the same stem); the test checks that exactly those problems come
out.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from imagefiles import MODEL, write_image, write_manifest

from pipeline.errors import ManifestError
from pipeline.prepare.manifest import load_manifest
from pipeline.prepare.plan import build_plan, validate_files

TESTS = Path(__file__).resolve().parents[1]
BROKEN = sorted((TESTS / "scenarios" / "broken").glob("*.yaml"))
MIB = 1024 * 1024


def stage(folder: Path, scenario: Path) -> Path:
    """Copy a scenario next to the images the scenarios use."""
    write_image(folder / "img.png", 640, 480)
    write_image(folder / "small.png", 300, 400)
    write_image(folder / "wide.png", 1120, 320)
    write_image(folder / "big.png", 640, 480, pad_to=int(4.8 * MIB))
    target = folder / scenario.name
    shutil.copy(scenario, target)
    for data in scenario.parent.glob(scenario.stem + ".*"):
        if data.suffix != ".yaml":
            shutil.copy(data, folder / data.name)
    return target


@pytest.mark.parametrize("scenario", BROKEN, ids=[p.stem for p in BROKEN])
def test_broken_scenario_reports_exactly_its_problems(tmp_path: Path, scenario: Path) -> None:
    """A broken manifest yields one line per problem, each at the expected line and column."""
    expected = re.findall(r"^# expect: (?:([\w.-]+\.(?:csv|jsonl|j2)):)?(\d*):?(\d*): (.*)$",
                          scenario.read_text(), re.M)
    assert expected, f"{scenario.name} states no expectation"
    path = stage(tmp_path, scenario)
    lines = validate_files([path]).lines()
    assert len(lines) == len(expected), lines
    for line, (file, row, col, text) in zip(
            sorted(lines, key=_line_no),
            sorted(expected, key=lambda e: (e[0], int(e[1] or 0), int(e[2] or 0))), strict=True):
        where = tmp_path / file if file else path
        prefix = f"{where}:{row}:{col}: " if row else f"{where}:"
        assert line.startswith(prefix), (line, prefix)
        assert text in line, (line, text)


def _line_no(line: str) -> tuple[str, int, int]:
    match = re.search(r"([\w.-]+\.(csv|jsonl|j2))?(?:\.yaml)?:(\d+):(\d+):", line)
    if not match:
        return ("", 0, 0)
    return (match.group(1) or "", int(match.group(3)), int(match.group(4)))


def test_cli_prints_one_line_per_problem_and_no_traceback(tmp_path: Path) -> None:
    """`pipeline validate` on broken manifests exits 2 with located lines and no traceback."""
    paths = [str(stage(tmp_path, s)) for s in BROKEN]
    proc = subprocess.run([sys.executable, "-m", "pipeline", "validate", *paths],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) >= len(BROKEN)
    assert all(re.match(r"^/.+\.(yaml|csv|jsonl):\d+:\d+: ", line)
               or re.match(r"^/.+\.yaml: ", line) for line in lines), lines


def test_prompt_from_a_file_next_to_the_manifest(tmp_path: Path) -> None:
    """`prompt: {file: ...}` reads a Jinja template from a file beside the manifest."""
    write_image(tmp_path / "img.png")
    (tmp_path / "prompt.j2").write_text("a {{ mood }} harbor\n")
    path = write_manifest(tmp_path, f"""
        name: t
        model: {MODEL}
        prompt: {{file: prompt.j2}}
        inputs: {{image_urls: [img.png], seed: 1}}
        matrix:
          mood: [calm]
        """)
    assert build_plan(path).cells[0].request["prompt"] == "a calm harbor"


def test_template_error_in_a_prompt_file_points_into_that_file(tmp_path: Path) -> None:
    """A template problem in a prompt file names the prompt file, not the manifest."""
    write_image(tmp_path / "img.png")
    (tmp_path / "prompt.j2").write_text("a {{ nope }} harbor\n")
    path = write_manifest(tmp_path, f"name: t\nmodel: {MODEL}\nprompt: {{file: prompt.j2}}\n"
                                    "inputs: {image_urls: [img.png], seed: 1}\n")
    with pytest.raises(ManifestError) as info:
        build_plan(path)
    [line] = info.value.lines()
    assert line.startswith(f"{tmp_path / 'prompt.j2'}:1:1: prompt: undefined template variable")


def test_missing_manifest_file(tmp_path: Path) -> None:
    """A manifest that does not exist is one line naming it."""
    with pytest.raises(ManifestError) as info:
        load_manifest(tmp_path / "nope.yaml")
    assert info.value.lines() == [f"{tmp_path / 'nope.yaml'}: no such file"]


def test_run_settings_are_read_with_defaults(tmp_path: Path) -> None:
    """The run block is validated and filled with defaults for later stages."""
    path = write_manifest(tmp_path, f"""
        name: t
        model: {MODEL}
        run:
          concurrency: 8
          budget: 40
          polling: {{initial: 2, max: 20}}
        """)
    run = load_manifest(path).run
    assert (run.concurrency, run.budget, run.max_attempts, run.fail_fast) == (8, 40, 3, False)
    assert (run.polling.initial, run.polling.max) == (2, 20)


@pytest.mark.parametrize("template,expected", [
    ("{{ range(10**9) | list | length }}", "refused by the sandbox"),
    ("{{ 'a' * 10**9 }}", "refused by the sandbox"),
    ("{{ cycler.__init__.__globals__ }}", "undefined template variable 'cycler'"),
    ("{{ joiner }}", "undefined template variable 'joiner'"),
])
def test_sandbox_bounds_hostile_templates(tmp_path: Path, template: str, expected: str) -> None:
    """Templates cannot reach Python internals or allocate without bound."""
    write_image(tmp_path / "img.png")
    path = write_manifest(tmp_path, f"name: t\nmodel: {MODEL}\nprompt: \"{template}\"\n"
                                    "inputs: {image_urls: [img.png], seed: 1}\n")
    with pytest.raises(ManifestError) as info:
        build_plan(path)
    assert expected in "\n".join(info.value.lines())


def test_checked_in_manifests_carry_the_schema_comment() -> None:
    """Every manifest under jobs/ points editors at the manifest schema."""
    jobs = sorted((TESTS.parent / "jobs").glob("*.yaml"))
    assert jobs
    for job in jobs:
        assert job.read_text().startswith(
            "# yaml-language-server: $schema=../schemas/manifest.schema.json"), job
