"""The run report: report.json (against its schema), report.md and report.html, each built from
the state of real runs on the simulator: a normal run, one with failures, one interrupted in a
subprocess, one that sent nothing, one whose submits all ended unknown."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pytest
from imagefiles import MODEL, write_image, write_manifest

from pipeline import report as report_mod
from pipeline.api import RunOptions, run_plan
from pipeline.cli import main
from pipeline.prepare.plan import build_plan
from pipeline.report import build_report, percentile, write_reports
from pipeline.report.grid import Occupancy, choose_axes
from pipeline.sim import SimConfig

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "schemas" / "report.schema.json").read_text(encoding="utf-8"))
FAST = {"capacity": 4, "gen_time": (0.2, 0.4), "seed": 3}

SWEEP = f"""
name: sweep
model: {MODEL}
backend: sim
prompt: "{{{{ subject }}}} drift past the harbor {{{{ light }}}}"
inputs:
  image_urls: ["img.png"]
  number_of_frames: 121
vars:
  subject: the boats
matrix:
  light: [at dawn, at dusk]
  resolution: [720P, 1080P]
  seed: [1, 2, 3]
run:
  concurrency: 4
  max_attempts: 3
  polling: {{initial: 0.1, max: 0.5}}
"""


class Page(HTMLParser):
    """Every start tag of an HTML document, with its attributes."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append((tag, dict(attrs)))

    def find(self, tag: str, cls: str | None = None) -> list[dict]:
        return [a for t, a in self.tags
                if t == tag and (cls is None or cls in (a.get("class") or "").split())]


def job(folder: Path, text: str = SWEEP) -> Path:
    write_image(folder / "img.png", 1280, 720)
    return write_manifest(folder, text)


def simulate(manifest: Path, out: Path, **sim) -> object:
    plan = build_plan(manifest)
    return run_plan(plan, RunOptions(out=out, progress=False, sim=SimConfig(**{**FAST, **sim})))


def valid(data: dict) -> dict:
    errors = [f"{list(e.absolute_path)}: {e.message}"
              for e in jsonschema.Draft202012Validator(SCHEMA).iter_errors(data)]
    assert not errors, errors
    return data


def page_data(html: str) -> dict:
    """The data report.html's script builds its grid from: settings and one record per tile."""
    text = html.split('<script type="application/json" id="report-data">', 1)[1]
    return json.loads(text.split("</script>", 1)[0])


def load(folder: Path) -> tuple[dict, str, str]:
    return (json.loads((folder / "report.json").read_text(encoding="utf-8")),
            (folder / "report.md").read_text(encoding="utf-8"),
            (folder / "report.html").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def normal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("normal")
    summary = simulate(job(base), base / "out")
    assert summary.exit_code == 0, summary.counts
    return base / "out"


@pytest.fixture(scope="module")
def failures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("failures")
    summary = simulate(job(base), base / "out", fail_rate=0.6)
    assert summary.counts["failed"] >= 1, summary.counts
    return base / "out"


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """`pipeline run` in a subprocess, sent SIGINT once its first video is downloaded."""
    base = tmp_path_factory.mktemp("interrupted")
    manifest = job(base, SWEEP.replace("concurrency: 4", "concurrency: 2"))
    out = base / "out"
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "run", str(manifest), "--out",
                             str(out), "--no-progress"], cwd=base, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    journal = out / "state.jsonl"
    while time.time() < deadline and proc.poll() is None:
        if journal.exists() and b'"e":"download"' in journal.read_bytes():
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, (stdout, stderr)
    return out, proc.returncode


@pytest.fixture(scope="module")
def empty(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run under a budget too small for one cell: it starts, and sends nothing."""
    base = tmp_path_factory.mktemp("empty")
    summary = simulate(job(base, SWEEP.replace("max_attempts: 3", "budget: 0.01")), base / "out")
    assert summary.counts["pending"] == 12, summary.counts
    return base / "out"


@pytest.fixture(scope="module")
def unknown(tmp_path_factory: pytest.TempPathFactory, fast_retries) -> Path:
    """Every connection dropped: each submit's outcome is unknown and the cell is held."""
    base = tmp_path_factory.mktemp("unknown")
    text = SWEEP.replace("seed: [1, 2, 3]", "seed: [1]")
    with fast_retries(attempts=2):
        summary = simulate(job(base, text), base / "out", drop_rate=1.0)
    assert summary.counts["unknown"] == 4, summary.counts
    return base / "out"


# --- report.json --------------------------------------------------------------------------

@pytest.mark.parametrize("scenario", ["normal", "failures", "interrupted", "empty", "unknown"])
def test_report_json_validates(scenario: str, request: pytest.FixtureRequest) -> None:
    """report.json of every kind of run validates against schemas/report.schema.json."""
    folder = request.getfixturevalue(scenario)
    folder = folder[0] if isinstance(folder, tuple) else folder
    data, _, _ = load(folder)
    valid(data)
    assert data["format"] == report_mod.FORMAT
    assert data["totals"]["cells"] == len(data["cells"]) == sum(data["totals"]["by_state"].values())


def test_json_normal_run(normal: Path) -> None:
    """A clean run reports every cell done with its request id, times, files, costs and
    percentiles, and axes in manifest order."""
    data, _, _ = load(normal)
    assert data["job"] == "sweep" and data["totals"]["by_state"]["done"] == 12
    assert [a["name"] for a in data["axes"]] == ["light", "resolution", "seed"]
    assert data["axes"][2]["values"] == [1, 2, 3]
    for cell in data["cells"]:
        assert cell["state"] == "done" and len(cell["request_ids"]) == len(cell["attempts"]) >= 1
        assert cell["generation_s"] is not None and cell["generation_s"] > 0
        assert cell["status_calls"] >= 1
        (f,) = cell["files"]
        assert f["exists"] and f["path"].startswith("videos/") and len(f["sha256"]) == 64
        assert f["probe"]["frames"] == 121 and f["check"]["ok"]
    gen = data["timings"]["generation_s"]
    assert gen["n"] >= 12 and 0 < gen["p50"] <= gen["p95"] <= gen["max"]
    assert data["timings"]["wall_s"] > 0 and data["runs"][0]["exit"] == 0
    assert data["cost"]["actual_usd"] > 0 and data["cost"]["estimated_usd"] > 0
    assert data["status_calls"]["per_cell_mean"] >= 1
    assert data["resume"]["needed"] is False and data["failures"] == []


def test_json_is_a_pure_function_of_the_state(normal: Path) -> None:
    """build_report reads the folder and writes nothing: same data twice, no new files."""
    before = sorted(p.name for p in normal.rglob("*"))
    a, b = build_report(normal), build_report(normal)
    a.pop("generated_at"), b.pop("generated_at")
    assert a == b
    assert sorted(p.name for p in normal.rglob("*")) == before


# --- report.md ----------------------------------------------------------------------------

def test_markdown_normal_run(normal: Path) -> None:
    """The Markdown report has totals, both costs, p50/p95 timings, one table row per cell, and
    says nothing needs resuming."""
    data, md, _ = load(normal)
    assert md.startswith("# Run report: sweep")
    assert "12/12 cells done" in md
    cost = data["cost"]
    assert f"- spent: ${cost['spent_usd']:,.2f}" in md and cost["spent_usd"] > 0
    assert f"- committed: ${cost['committed_usd']:,.2f}" in md
    assert "- estimated for the whole sweep: $" in md and "- price: catalog" in md
    assert "| queue |" in md and "| generation |" in md and "Wall time:" in md
    for cell in data["cells"]:
        assert f"| `{cell['id']}` | {cell['label']} | done |" in md
    assert "Nothing to resume" in md


def test_markdown_lists_failures_with_reasons(failures: Path) -> None:
    """Each failed cell appears under Failures with its attempts and the server's error, and
    the resume hint names --retry-failed."""
    data, md, _ = load(failures)
    failed = [c for c in data["cells"] if c["state"] == "failed"]
    section = md.split("## Failures", 1)[1].split("## Held as unknown", 1)[0]
    for cell in failed:
        line = next(ln for ln in section.splitlines() if cell["id"] in ln)
        assert "3 attempts" in line and cell["reason"] in line
        assert cell["reason"] == cell["attempts"][-1]["error"]
    assert "--retry-failed" in md.split("## How to resume", 1)[1]


def test_interrupted_run_reports_progress_and_resume(interrupted: tuple[Path, int]) -> None:
    """An interrupted run (SIGINT, exit 130) still leaves all three reports; they say the run was
    interrupted, count the cells not done and give the command that resumes it."""
    out, _ = interrupted
    data, md, html = load(out)
    assert data["runs"][-1]["exit"] == 130 and data["runs"][-1]["stopped"] == "interrupted"
    counts = data["totals"]["by_state"]
    assert counts["done"] >= 1 and counts["done"] < 12
    assert data["resume"]["needed"] is True
    assert "(interrupted)" in md and f"--out {out}" in md.split("## How to resume", 1)[1]
    assert len(page_data(html)["cells"]) == 12


def test_empty_run(empty: Path) -> None:
    """A run that sent nothing reports every cell pending, no timings (shown as –), an estimate
    but nothing spent or committed, and a pending tile per cell."""
    data, md, html = load(empty)
    assert data["totals"]["by_state"]["pending"] == 12 and data["totals"]["attempts"] == 0
    assert data["timings"]["generation_s"] == {"n": 0, "p50": None, "p95": None, "max": None}
    cost = data["cost"]
    assert cost["spent_usd"] == cost["actual_usd"] == cost["committed_usd"] == 0
    assert cost["estimated_usd"] > 0 and cost["to_go_usd"] == cost["estimated_usd"]
    assert "budget" in (data["runs"][0]["stopped"] or "")
    assert "| generation | 0 | – | – | – |" in md
    tiles = page_data(html)["cells"]
    assert len(tiles) == 12 and all(t["state"] == "pending" for t in tiles)
    assert not [t for t in tiles if "video" in t or "strip" in t]


def test_unknown_cells_held_with_time(unknown: Path) -> None:
    """Cells whose submit outcome is unknown are listed with the time they are held since, the
    reason, and the advice to check the dashboard before --resubmit-unknown."""
    data, md, html = load(unknown)
    assert len(data["unknown"]) == 4
    section = md.split("## Held as unknown", 1)[1].split("## How to resume", 1)[0]
    for u in data["unknown"]:
        assert u["held_since"] and f"`{u['id']}`" in section and u["held_since"] in section
    assert "dashboard" in section and "--resubmit-unknown" in md
    held = [t for t in page_data(html)["cells"] if t["state"] == "unknown"]
    assert "held since" in html and len(held) == 4 and all(t["held"] for t in held)


# --- report.html --------------------------------------------------------------------------

def test_html_one_tile_per_cell_with_relative_videos(normal: Path) -> None:
    """The page has one tile per cell, each video linked by a relative path that exists, with
    a JPEG poster and a JPEG frame strip made from the video, also relative."""
    data, _, html = load(normal)
    tiles = page_data(html)["cells"]
    assert [t["id"] for t in tiles] == [c["id"] for c in data["cells"]]
    assert len([t for t in tiles if "video" in t]) == 12
    for t in tiles:
        for key, folder in (("video", "videos/"), ("poster", "posters/"), ("strip", "strips/")):
            assert t[key].startswith(folder) and (normal / t[key]).is_file()
        assert (normal / t["poster"]).read_bytes()[:3] == b"\xff\xd8\xff"
        assert (normal / t["strip"]).read_bytes()[:3] == b"\xff\xd8\xff"
        assert t["check"] == {"ok": True, "text": "121 frames · 24 fps · 256×144 · h264 · "
                                                  "simulator placeholder"}
    for cell in data["cells"]:
        assert cell["files"][0]["strip"] == f"strips/{cell['id']}.jpg"


def test_html_is_self_contained(normal: Path) -> None:
    """report.html loads nothing from the network: no http(s) URL anywhere, no external script
    or stylesheet; its CSS and JS are inline."""
    _, _, html = load(normal)
    assert "http://" not in html and "https://" not in html and "//cdn" not in html
    page = Page(html)
    assert all("src" not in a for a in page.find("script"))
    assert not [a for a in page.find("link") if a.get("rel") == "stylesheet"]
    assert "<style>" in html and "playTogether" in html


def test_html_grid_facets_and_default_axes(normal: Path) -> None:
    """Every varying matrix key is a facet; by default the grid lays out the two with the
    most values, seed last; --rows/--cols choose others; each tile knows its value numbers."""
    _, _, html = load(normal)
    data = page_data(html)
    settings = data["settings"]
    assert [f["name"] for f in settings["facets"]] == ["light", "resolution", "seed"]
    assert (settings["rows"], settings["cols"]) == ("resolution", "light")
    assert settings["facets"][2]["values"] == ["1", "2", "3"]
    assert sorted(tuple(t["k"]) for t in data["cells"]) == sorted(
        (a, b, c) for a in range(2) for b in range(2) for c in range(3))
    write_reports(normal, rows="seed", cols="resolution")
    settings = page_data((normal / "report.html").read_text(encoding="utf-8"))["settings"]
    assert (settings["rows"], settings["cols"]) == ("seed", "resolution")
    write_reports(normal)


def test_rows_are_one_facet_and_random_seeds_do_not_make_a_grid(tmp_path: Path) -> None:
    """Zipped `rows` columns are one facet (the row, labelled by its values); seeds drawn per
    cell are never paired with the rows into a sparse grid: the rows go down the page with
    their clips side by side."""
    write_image(tmp_path / "b.png", 1280, 720)
    text = SWEEP.replace("light: [at dawn, at dusk]\n  resolution: [720P, 1080P]\n  seed: "
                         "[1, 2, 3]", "rows:\n    - {light: at dawn, mood: calm}\n    - "
                         "{light: at dusk, mood: wild}\n  seed: {random: 2}")
    simulate(job(tmp_path, text), tmp_path / "out")
    settings = page_data((tmp_path / "out" / "report.html").read_text())["settings"]
    assert [(f["name"], f["values"]) for f in settings["facets"]] == [
        ("rows", ["at dawn · calm", "at dusk · wild"]),
        ("seed", settings["facets"][1]["values"])]
    assert len(settings["facets"][1]["values"]) == 4
    assert (settings["rows"], settings["cols"]) == ("rows", None)


@pytest.mark.parametrize("sizes, rows, cols, expected", [
    ({"a": 2, "b": 2}, None, None, ("b", "a")),
    ({"a": 2, "b": 5, "c": 3}, None, None, ("b", "c")),
    ({"a": 4}, None, None, (None, "a")),
    ({}, None, None, (None, None)),
    ({"a": 2, "b": 5, "c": 3}, "a", None, ("a", "b")),
    ({"a": 2, "b": 5, "c": 3}, None, "b", ("c", "b")),
    ({"a": 4}, "a", None, ("a", None)),
    ({"seed": 9, "b": 2, "c": 3}, None, None, ("c", "b")),
    ({"seed": 9, "b": 2}, None, None, ("seed", "b")),
])
def test_choose_axes(sizes: dict, rows: str | None, cols: str | None, expected: tuple) -> None:
    """Default and partly chosen grid axes: the two largest, seed last, the longer as rows; a
    named axis is kept where it was named."""
    assert choose_axes(sizes, rows, cols) == expected


def test_choose_axes_skips_a_facet_nested_in_another() -> None:
    """A facet whose values differ in every row (seeds drawn per cell) is not paired with it:
    the grid is one facet down the page, its cells side by side."""
    sizes = {"rows": 4, "seed": 8}
    occupancy = Occupancy(sizes, 8)
    for r in range(4):
        for k in range(2):
            occupancy.add([r, 2 * r + k])
    assert not occupancy.dense("rows", "seed")
    assert choose_axes(sizes, None, None, occupancy=occupancy) == ("rows", None)
    full = Occupancy({"a": 2, "seed": 2}, 4)
    for a in range(2):
        for s in range(2):
            full.add([a, s])
    assert choose_axes({"a": 2, "seed": 2}, None, None, occupancy=full) == ("seed", "a")


def test_html_failed_tiles_show_reason(failures: Path) -> None:
    """Failed cells stay in the grid as tiles without a video, with their reason."""
    data, _, html = load(failures)
    tiles = {t["id"]: t for t in page_data(html)["cells"]}
    failed = [c for c in data["cells"] if c["state"] == "failed"]
    assert failed
    for cell in failed:
        assert "video" not in tiles[cell["id"]] and tiles[cell["id"]]["reason"] == cell["reason"]


def test_user_text_is_escaped(tmp_path: Path) -> None:
    """Prompts and labels from the manifest are HTML-escaped in report.html."""
    text = SWEEP.replace("subject: the boats", "subject: '<script>alert(\"x\")</script> & co'")
    text = text.replace("seed: [1, 2, 3]", "seed: [1]").replace("resolution: [720P, 1080P]",
                                                                "resolution: [720P]")
    simulate(job(tmp_path, text), tmp_path / "out")
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "<script>alert" not in html and "</script>alert" not in html
    assert "\\u003cscript\\u003ealert" in html  # inside the page's JSON, read as text
    tile = page_data(html)["cells"][0]
    assert tile["pick"]["prompt"].startswith('<script>alert("x")</script> & co')


def test_multiple_outputs_and_missing_files(normal: Path, tmp_path: Path) -> None:
    """A cell with two outputs links both; a video deleted from disk shows as missing, with no
    player, in every format. (The simulator makes one output: the second is appended to a copy
    of a real run's journal.)"""
    folder = tmp_path / "out"
    shutil.copytree(normal, folder)
    data = build_report(folder)
    first, second = data["cells"][0], data["cells"][1]
    extra = "http://sim.invalid/extra.mp4"
    shutil.copy(folder / first["files"][0]["path"], folder / "videos" / "extra.mp4")
    with open(folder / "state.jsonl", "a", encoding="utf-8") as fh:
        a = first["attempts"][-1]
        old = json.loads(next(ln for ln in (folder / "state.jsonl").read_text().splitlines()
                              if '"e":"result"' in ln and first["id"] in ln))
        ev = dict(old, outputs=old["outputs"] + [extra], t=time.time())
        fh.write(json.dumps(ev) + "\n")
        fh.write(json.dumps({"e": "download", "cell": first["id"], "url": extra,
                             "path": "videos/extra.mp4", "size": 1, "sha256": "0" * 64,
                             "t": time.time()}) + "\n")
        assert a["result"] == "succeeded"
    (folder / second["files"][0]["path"]).unlink()
    write_reports(folder)
    data, md, html = load(folder)
    valid(data)
    assert [f["path"] for f in data["cells"][0]["files"]][1] == "videos/extra.mp4"
    assert data["totals"]["missing_files"] == 1 and not data["cells"][1]["files"][0]["exists"]
    assert "(missing)" in md and "+1" in md
    tiles = {t["id"]: t for t in page_data(html)["cells"]}
    assert tiles[first["id"]]["more"] == [["videos/extra.mp4", True]]
    assert "video" not in tiles[second["id"]]
    assert tiles[second["id"]]["missing"] == second["files"][0]["path"]
    assert len([t for t in tiles.values() if "video" in t]) == 11


def test_job_without_matrix(tmp_path: Path) -> None:
    """A job with no matrix axes is one row of tiles, with no filters."""
    text = SWEEP.split("matrix:")[0] + "run:\n  polling: {initial: 0.1, max: 0.5}\n"
    simulate(job(tmp_path, text.replace("{{ light }}", "at noon")), tmp_path / "out")
    data, _, html = load(tmp_path / "out")
    valid(data)
    assert data["axes"] == [] and data["cells"][0]["values"] == {}
    shown = page_data(html)
    assert len(shown["cells"]) == 1 and "video" in shown["cells"][0]
    assert shown["settings"]["facets"] == [] and shown["settings"]["rows"] is None


def test_writes_are_atomic_and_leave_no_temp_files(normal: Path) -> None:
    """Writing the reports again replaces them whole and leaves no temporary files behind."""
    paths = write_reports(normal)
    assert [p.name for p in paths] == ["report.md", "report.html", "report.json"]
    assert not list(normal.glob(".*.tmp")) and not list((normal / "posters").glob(".*.tmp"))


def test_run_writes_the_reports(normal: Path) -> None:
    """`run_job` (and so `pipeline run`) writes the three reports at the end of a run."""
    assert all((normal / n).is_file() for n in ("report.md", "report.html", "report.json"))


def test_templates_live_in_the_package() -> None:
    """The Jinja templates, CSS and JS are files inside the pipeline package (so in the wheel)."""
    folder = Path(report_mod.__file__).parent / "templates"
    for name in ("report.html.j2", "report.md.j2", "report.css", "report.js"):
        assert (folder / name).is_file()


# --- the command line ---------------------------------------------------------------------

def test_cli_report_prints_paths(normal: Path, capsys: pytest.CaptureFixture) -> None:
    """`pipeline report MANIFEST --out DIR` prints the three paths and exits 0."""
    manifest = normal.parent / "job.yaml"
    assert main(["report", str(manifest), "--out", str(normal)]) == 0
    assert capsys.readouterr().out.split() == [str(normal / n) for n in
                                               ("report.md", "report.html", "report.json")]


@pytest.mark.parametrize("argv, expected", [
    (["--rows", "nope"],
     "error: --rows nope: not a matrix axis of this job (axes: light, resolution, seed)"),
    (["--cols", "colour"],
     "error: --cols colour: not a matrix axis of this job (axes: light, resolution, seed)"),
    (["--rows", "seed", "--cols", "seed"],
     "error: --rows and --cols both name 'seed': pick two different axes"),
])
def test_cli_bad_axis_is_one_line(normal: Path, capsys: pytest.CaptureFixture, argv: list,
                                  expected: str) -> None:
    """A bad --rows/--cols is a one-line usage error naming the known axes, exit 2."""
    manifest = normal.parent / "job.yaml"
    assert main(["report", str(manifest), "--out", str(normal), *argv]) == 2
    assert capsys.readouterr().err.splitlines() == [expected]


def test_cli_never_run_job(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Reporting a job that never ran is a one-line error saying to run it first, exit 2."""
    manifest = job(tmp_path)
    assert main(["report", str(manifest), "--out", str(tmp_path / "none")]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: nothing to report in ") and "pipeline run" in line


# --- pure parts ---------------------------------------------------------------------------

@pytest.mark.parametrize("values, q, expected", [
    ([], 50, None),
    ([4.0], 95, 4.0),
    ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
    ([3.0, 1.0, 2.0], 50, 2.0),
    ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0,
      17.0, 18.0, 19.0, 20.0, 21.0], 95, 20.0),
    ([1.0, 2.0], 95, 1.95),
])
def test_percentile(values: list, q: float, expected: float | None) -> None:
    """Percentiles interpolate linearly between the closest ranks; none without values."""
    got = percentile(values, q)
    assert got == pytest.approx(expected) if expected is not None else got is None
