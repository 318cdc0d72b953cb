"""`pipeline picks` and the preview -> final loop from the command line: picks written from a
terminal are the lines the page writes, a final run records where each cell came from, and
its report links back to the preview's tiles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from imagefiles import MODEL, final_manifest, write_image, write_manifest

from pipeline.api import RunOptions, run_plan
from pipeline.cli import main
from pipeline.prepare.plan import build_plan
from pipeline.sim import SimConfig

FAST = SimConfig(capacity=4, gen_time=(0.05, 0.15), seed=2)

PREVIEW = f"""
name: preview
model: {MODEL}
backend: sim
prompt: "{{{{ caption }}}}, steady camera"
inputs:
  image_urls: ["{{{{ image }}}}"]
  resolution: 720P
matrix:
  rows:
    - {{image: a.png, caption: boats}}
    - {{image: a.png, caption: gulls}}
  seed: {{random: 2}}
run:
  polling: {{initial: 0.1, max: 0.5}}
"""

FINAL = final_manifest(backend="sim") + "run:\n  polling: {initial: 0.1, max: 0.5}\n"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository with a preview job that has run (outputs/preview)."""
    root = tmp_path_factory.mktemp("project")
    (root / ".git").mkdir()
    write_image(root / "jobs" / "a.png", 1280, 720)
    manifest = write_manifest(root / "jobs", PREVIEW, "preview.yaml")
    assert run_plan(build_plan(manifest), RunOptions(progress=False, sim=FAST)).exit_code == 0
    return root


def report_of(folder: Path) -> dict:
    return json.loads((folder / "report.json").read_text(encoding="utf-8"))


def test_picks_from_the_terminal_are_the_pages_lines(project: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    """`pipeline picks MANIFEST --only cell=PREFIX` writes picks.jsonl beside the manifest with
    the very lines the report page offers for those cells; without --only it lists them."""
    manifest = project / "jobs" / "preview.yaml"
    picks = project / "jobs" / "picks.jsonl"
    assert main(["picks", str(manifest)]) == 0
    assert "no picks yet" in capsys.readouterr().out
    cells = report_of(project / "outputs" / "preview")["cells"]
    chosen = [cells[0]["id"], cells[3]["id"]]
    assert main(["picks", str(manifest), "--only", f"cell={chosen[1][:8]}",
                 "--only", f"cell={chosen[0]}"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{picks}: 2 picks" and chosen[0] in out[1] and chosen[1] in out[2]
    rows = [json.loads(line) for line in picks.read_text().splitlines()]
    html = (project / "outputs" / "preview" / "report.html").read_text(encoding="utf-8")
    data = json.loads(html.split('id="report-data">', 1)[1].split("</script>", 1)[0])
    page = {t["id"]: t["pick"] for t in data["cells"]}
    assert rows == [page[chosen[0]], page[chosen[1]]]
    assert rows[0]["out"] == "outputs/preview" and rows[0]["values"]["seed"] == cells[0]["seed"]
    assert main(["picks", str(manifest)]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0] == f"{picks}: 2 picks"
    assert all("(done)" in line for line in listed[1:]) and len(listed) == 3


@pytest.mark.parametrize("argv, expected", [
    (["--only", "cell=zz"], "error: --only cell=zz: a cell id is hex digits; give at least 6"),
    (["--only", "caption=whales"], "error: --only caption=whales: no cell has caption=whales"),
])
def test_a_bad_selector_is_one_line(project: Path, capsys: pytest.CaptureFixture,
                                    argv: list, expected: str) -> None:
    """A selector that picks nothing is a one-line usage error (the owner of --only says it)."""
    assert main(["picks", str(project / "jobs" / "preview.yaml"), *argv]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(expected)


def test_the_final_records_and_links_its_origin(project: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    """A final run from the picks records each cell's from_cell in its journal and plan.json;
    its report links each tile back to the preview tile, by a relative path."""
    cells = report_of(project / "outputs" / "preview")["cells"]
    assert main(["picks", str(project / "jobs" / "preview.yaml"), "--only",
                 f"cell={cells[1]['id']}", "--out", str(project / "jobs" / "final-picks.jsonl")
                 ]) == 0
    capsys.readouterr()
    final = write_manifest(project / "jobs", FINAL.replace("picks.jsonl", "final-picks.jsonl"),
                           "final.yaml")
    assert main(["plan", str(final)]) == 0
    table = capsys.readouterr().out
    assert f"preview:{cells[1]['id'][:8]}" in table and "1080P" in table
    assert run_plan(build_plan(final), RunOptions(progress=False, sim=FAST)).exit_code == 0
    out = project / "outputs" / "final"
    origin = {"job": "preview", "cell": cells[1]["id"], "out": "outputs/preview"}
    [event] = [json.loads(line) for line in (out / "state.jsonl").read_text().splitlines()
               if '"e":"cell"' in line]
    assert event["from_cell"] == origin
    assert json.loads((out / "plan.json").read_text())["cells"][0]["from_cell"] == origin
    [cell] = report_of(out)["cells"]
    href = f"../preview/report.html#cell-{cells[1]['id']}"
    assert cell["from_cell"] == {**origin, "href": href}
    assert (out / href.split("#")[0]).resolve() == \
        (project / "outputs" / "preview" / "report.html").resolve()
    assert f"]({href})" in (out / "report.md").read_text()
    assert cell["seed"] == cells[1]["seed"] and cell["prompt"] == cells[1]["prompt"]


TAKES = f"""
name: takes
model: {MODEL}
backend: sim
prompt: "{{{{ caption }}}}, take {{{{ replicate | default(0) }}}}"
inputs:
  image_urls: ["{{{{ image }}}}"]
matrix:
  rows:
    - {{image: a.png, caption: boats}}
repeat: 2
run:
  polling: {{initial: 0.1, max: 0.5}}
"""

TAKES_FINAL = f"""
name: takes-final
model: {MODEL}
backend: sim
prompt: "{{{{ caption }}}}, take {{{{ replicate }}}}"
inputs:
  image_urls: ["{{{{ image }}}}"]
  resolution: 1080P
matrix:
  rows: {{file: takes-picks.jsonl}}
"""


def test_a_pick_keeps_its_replicate_and_the_final_renders_the_same_prompt(
        project: Path, capsys: pytest.CaptureFixture) -> None:
    """A pick of take 1 carries `replicate: 1` (the page's line and the terminal's alike), and a
    final over the picks renders the prompt the preview cell was made from ("take 1", never a
    silent "take 0"), even with `{{ replicate }}` and no default."""
    manifest = write_manifest(project / "jobs", TAKES, "takes.yaml")
    assert run_plan(build_plan(manifest), RunOptions(progress=False, sim=FAST)).exit_code == 0
    cells = report_of(project / "outputs" / "takes")["cells"]
    [take1] = [c for c in cells if c["prompt"].endswith("take 1")]
    picks = project / "jobs" / "takes-picks.jsonl"
    assert main(["picks", str(manifest), "--only", f"cell={take1['id']}",
                 "--out", str(picks)]) == 0
    capsys.readouterr()
    [row] = [json.loads(line) for line in picks.read_text().splitlines()]
    assert row["values"]["replicate"] == 1
    html = (project / "outputs" / "takes" / "report.html").read_text(encoding="utf-8")
    data = json.loads(html.split('id="report-data">', 1)[1].split("</script>", 1)[0])
    assert {t["id"]: t["pick"] for t in data["cells"]}[take1["id"]] == row
    final = write_manifest(project / "jobs", TAKES_FINAL, "takes-final.yaml")
    [cell] = build_plan(final).cells
    assert cell.request["prompt"] == "boats, take 1" == take1["prompt"]
    assert cell.values["replicate"] == 1
