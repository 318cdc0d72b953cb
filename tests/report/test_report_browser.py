"""report.html in a real browser, headless Chromium (Debian's `chromium`, driven by Playwright's
Python package), never a console error: the README's demo (every video decodes, H.264
included; play controls; a narrow window); a rows x resolution x random-seeds preview (every
cell in view on open, axes changed in the page, stars kept over a reload and downloaded as
picks.jsonl that a final manifest plans, keyboard, compare, frame strips from the job folder
only); a 40-cell sweep (a screenshot shows its 40 videos; pages, and a link to a tile);
sweeps of rows x random seeds that fit four 1400 x 900 screens with no sideways scroll;
compare (covers the page, frame steps, loop, one clip heard, wipe); the flag and order
controls that appear when cells carry qa or rating data."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import browsers
import pytest
import yaml
from imagefiles import MODEL, final_manifest, preview_manifest, write_image, write_manifest
from PIL import Image, ImageStat

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True, scope="module")
def _browser() -> None:
    """Chromium and Playwright are there (else skipped here, failed in CI)."""
    browsers.require()

EVERY_VIDEO_READY = ("() => { const v = Array.from(document.querySelectorAll('video'));"
                     " return v.length > 0 && v.every(x => x.readyState >= 2); }")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README's demo job, run end to end on the simulator in a subprocess."""
    out = tmp_path_factory.mktemp("demo") / "out"
    proc = subprocess.run([sys.executable, "-m", "pipeline", "run", "jobs/demo.yaml", "--out",
                           str(out), "--no-progress"], cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert f"report: {out / 'report.html'}" in proc.stdout
    return out


@pytest.fixture(scope="module")
def browser():
    yield from browsers.chromium()


def open_report(browser, folder: Path, width: int = 1280, name: str = "report.html"):
    """The report opened in a new page (of a browser, or of a context), with its problems."""
    page = browser.new_page()
    page.set_viewport_size({"width": width, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.goto((folder / name).as_uri())
    return page, problems


def test_demo_report_in_chromium(demo: Path, browser, tmp_path: Path) -> None:
    """The demo's report opens with no console errors, every video reaches readyState >= 2,
    and a screenshot is saved."""
    page, problems = open_report(browser, demo)
    page.wait_for_function(EVERY_VIDEO_READY, timeout=30_000)
    states = page.evaluate("Array.from(document.querySelectorAll('video'))"
                           ".map(v => [v.readyState, v.videoWidth, v.error && v.error.code])")
    assert len(states) == 4 and all(s[0] >= 2 and s[1] > 0 and s[2] is None for s in states)
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    assert problems == []
    page.close()


def test_play_row_in_sync_and_filters(demo: Path, browser) -> None:
    """▶ row plays exactly that row's videos, together from the start; pause stops them; the
    state filter hides tiles; all without a console error."""
    page, problems = open_report(browser, demo)
    page.wait_for_function(EVERY_VIDEO_READY, timeout=30_000)
    page.click('button[data-play="row"][data-index="0"]')
    page.wait_for_function("() => Array.from(document.querySelectorAll("
                           "'.slot[data-row=\"0\"] video')).every(v => !v.paused && "
                           "v.currentTime > 0.3)", timeout=10_000)
    playing = page.evaluate("Array.from(document.querySelectorAll('video'))"
                            ".map(v => [v.closest('.slot').dataset.row, !v.paused, v.currentTime])")
    row0 = [t for r, p, t in playing if r == "0"]
    assert all(p for r, p, _ in playing if r == "0")
    assert not any(p for r, p, _ in playing if r != "0")
    assert max(row0) - min(row0) < 0.3  # in step
    page.click('button[data-play="pause"]')
    assert page.evaluate("Array.from(document.querySelectorAll('video')).every(v => v.paused)")
    page.select_option("select[data-states]", "problem")
    assert page.evaluate("document.querySelectorAll('.tile:not([hidden])').length") == 0
    assert "0 of 4 cells shown" in page.inner_text(".controls .count")
    assert problems == []
    page.close()


def test_narrow_window(demo: Path, browser, tmp_path: Path) -> None:
    """In a phone-sized window the grid becomes one column with nothing wider than the screen."""
    page, problems = open_report(browser, demo, width=390)
    page.wait_for_function(EVERY_VIDEO_READY, timeout=30_000)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(tmp_path / "report-narrow.png"), full_page=True)
    assert problems == []
    page.close()


# --- a preview sweep: rows x resolution x random seeds ----------------------------------------
PREVIEW = preview_manifest()

FINAL = final_manifest("{{ caption }}, slow push-in", backend="sim")


def run_beside(manifest: Path, out: Path, exit_code: int = 0, **sim) -> None:
    """Run a job on the simulator in a worker thread (Playwright's loop owns this one)."""
    from pipeline.api import RunOptions, run_plan
    from pipeline.prepare.plan import build_plan
    from pipeline.sim import SimConfig

    config = SimConfig(**{"capacity": 8, "gen_time": (0.05, 0.15), "seed": 5, **sim})
    with ThreadPoolExecutor(1) as pool:
        summary = pool.submit(run_plan, build_plan(manifest),
                              RunOptions(out=out, progress=False, sim=config)).result(timeout=180)
    assert summary.exit_code == exit_code, summary.counts


@pytest.fixture(scope="module")
def preview(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The preview sweep (3 rows x 2 resolutions x 2 random seeds = 12 cells), run; its folder
    holds the manifest (the project root, as a repository would), the job is in out/."""
    base = tmp_path_factory.mktemp("preview")
    (base / ".git").mkdir()
    write_image(base / "a.png", 1280, 720)
    write_image(base / "b.png", 960, 720)
    run_beside(write_manifest(base, PREVIEW, "preview.yaml"), base / "out")
    return base


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The preview sweep with about half its generations failing for good (max_attempts 1):
    a job of done and failed cells."""
    base = tmp_path_factory.mktemp("mixed")
    (base / ".git").mkdir()
    write_image(base / "a.png", 1280, 720)
    write_image(base / "b.png", 960, 720)
    text = PREVIEW.replace("name: preview", "name: mixed").replace(
        "  concurrency: 6\n", "  concurrency: 6\n  max_attempts: 1\n")
    run_beside(write_manifest(base, text, "mixed.yaml"), base / "out", exit_code=1,
               fail_rate=0.5)
    return base / "out"


def visible_tiles(page) -> list[str]:
    return page.evaluate("Array.from(document.querySelectorAll('.grid .tile'))"
                         ".filter(t => t.offsetParent !== null).map(t => t.dataset.id)")


def test_preview_opens_with_every_cell_in_view(preview: Path, browser) -> None:
    """A rows x resolution x random-seeds sweep opens with all its cells in view: every
    filter on "all", rows (one facet, labelled by the row) down the page and resolution
    across, the two seeds of each side by side; changing the axes in the page re-lays it."""
    page, problems = open_report(browser, preview / "out")
    report = json.loads((preview / "out" / "report.json").read_text())
    assert sorted(visible_tiles(page)) == sorted(c["id"] for c in report["cells"])
    assert page.inner_text(".controls .count") == "12 of 12 cells shown"
    assert page.eval_on_selector_all("select[data-filter]", "s => s.map(x => x.value)") == [""]
    assert page.input_value('select[data-axis="rows"]') == "rows"
    assert page.input_value('select[data-axis="cols"]') == "resolution"
    heads = page.eval_on_selector_all(".rowhead b", "b => b.map(x => x.textContent)")
    assert heads == ["a.png · boats at dawn", "b.png · a pier in rain",
                     "a.png · lanterns at night"]
    assert page.eval_on_selector_all(".slot", "s => s.map(x => x.querySelectorAll('.tile')"
                                              ".length)") == [2] * 6
    # another layout, in the page: resolution down, rows across
    page.select_option('select[data-axis="rows"]', "resolution")
    assert page.input_value('select[data-axis="cols"]') == "rows"  # swapped, not lost
    assert len(page.query_selector_all(".rowhead")) == 2
    assert len(page.query_selector_all(".colhead")) == 3
    assert len(visible_tiles(page)) == 12
    by_id = {c["id"]: c for c in report["cells"]}
    for slot in page.query_selector_all(".slot"):
        ids = slot.eval_on_selector_all(".tile", "t => t.map(x => x.dataset.id)")
        assert len({by_id[i]["values"]["resolution"] for i in ids}) == 1
        assert len({by_id[i]["values"]["caption"] for i in ids}) == 1
    # a filter on the seed, then back to all
    page.select_option('select[data-axis="cols"]', "")
    page.select_option('select[data-filter="seed"]', index=1)
    assert page.inner_text(".controls .count") == "1 of 12 cells shown"
    page.select_option('select[data-filter="seed"]', "")
    assert len(visible_tiles(page)) == 12
    assert problems == []
    page.close()


def test_the_page_s_states_are_the_state_table(mixed: Path, browser) -> None:
    """The page's settings carry the cell-state table (pipeline.job.records) and the page
    follows it: the states it treats as problems are records.PROBLEMS, "problems only" shows
    exactly the cells in them and "<state> only" exactly that state's; a failed tile says its
    reason, and the table's meaning and advice on hover. Marking `done` a problem in the
    settings makes the filter show the done cells too: the page has no list of its own."""
    from pipeline.job import records

    page, problems = open_report(browser, mixed)
    settings = "JSON.parse(document.getElementById('report-data').textContent).settings"
    states = page.evaluate(settings + ".states")
    assert states == records.states_json()
    assert {k for k, v in states.items() if v["problem"]} == records.PROBLEMS
    by_state: dict[str, set[str]] = {}
    for c in json.loads((mixed / "report.json").read_text())["cells"]:
        by_state.setdefault(c["state"], set()).add(c["id"])
    assert set(by_state) == {records.DONE, records.FAILED}, by_state
    page.select_option("select[data-states]", "problem")
    assert set(visible_tiles(page)) == set().union(
        *(ids for k, ids in by_state.items() if k in records.PROBLEMS))
    for state, ids in by_state.items():
        page.select_option("select[data-states]", state)
        assert set(visible_tiles(page)) == ids, state
    page.select_option("select[data-states]", "*")
    failed = records.STATE_INFO[records.FAILED]
    hover = page.get_attribute(f"#cell-{min(by_state[records.FAILED])} .placeholder", "title")
    assert failed.means in hover and failed.advice in hover
    assert problems == []
    page.close()
    # the same page with `done` marked a problem in its settings: the filter follows
    html = (mixed / "report.html").read_text(encoding="utf-8")
    row = '"done":{"live":false,"on_server":false,"settled":true,"problem":false'
    assert html.count(row) == 1
    (mixed / "report-done-a-problem.html").write_text(
        html.replace(row, row.replace('"problem":false', '"problem":true')), encoding="utf-8")
    page, problems = open_report(browser, mixed, name="report-done-a-problem.html")
    page.select_option("select[data-states]", "problem")
    assert set(visible_tiles(page)) == by_state[records.DONE] | by_state[records.FAILED]
    assert problems == []
    page.close()


def test_picks_survive_a_reload_and_plan_the_final(preview: Path, browser,
                                                   tmp_path: Path) -> None:
    """Starring two tiles, reloading and downloading picks gives a picks.jsonl with exactly
    those two cells and their values (pinned seed included); a final manifest built on it
    plans those cells with the same seeds and prompts at the new resolution, each with its
    from_cell; Copy as YAML gives the same picks to paste."""
    from pipeline.prepare.plan import build_plan

    report = json.loads((preview / "out" / "report.json").read_text())
    chosen = [report["cells"][1], report["cells"][6]]
    context = browser.new_context(accept_downloads=True)
    page, problems = open_report(context, preview / "out")
    # the tiles settled first (their videos loaded, so nothing moves under the pointer), and
    # each star seen pressed before the reload: what the reload must keep
    page.wait_for_function(EVERY_VIDEO_READY, timeout=30_000)
    for cell in chosen:
        page.click(f"#cell-{cell['id']} .star")
        page.wait_for_selector(f"#cell-{cell['id']} .star[aria-pressed=true]", timeout=5_000)
    assert page.inner_text(".picks .picked") == "★ 2 picks"
    # and kept by the browser: another page of the context reads them back (localStorage
    # reaches the browser's own store asynchronously; a reload must not outrun it)
    key = json.loads(page.inner_text("#report-data"))["settings"]["picks_key"]
    other = context.new_page()
    other.goto((preview / "out" / "report.html").as_uri())
    other.wait_for_function("([k, ids]) => ids.every(i => (localStorage.getItem(k) || '')"
                            ".includes(i))", arg=[key, [c["id"] for c in chosen]],
                            timeout=5_000)
    other.close()
    page.reload()
    page.wait_for_selector(".grid .tile")
    starred = page.eval_on_selector_all(".tile.picked", "t => t.map(x => x.dataset.id)")
    assert sorted(starred) == sorted(c["id"] for c in chosen)
    assert page.inner_text(".picks .picked") == "★ 2 picks"
    with page.expect_download() as download:
        page.click('[data-picks="download"]')
    assert download.value.suggested_filename == "picks.jsonl"
    final = tmp_path / "final"
    final.mkdir()
    download.value.save_as(final / "picks.jsonl")
    rows = [json.loads(line) for line in (final / "picks.jsonl").read_text().splitlines()]
    assert [r["cell"] for r in rows] == [c["id"] for c in chosen]
    for row, cell in zip(rows, chosen, strict=True):
        assert row["values"] == cell["values"] and row["values"]["seed"] == cell["seed"]
        assert row["prompt"] == cell["prompt"] and row["job"] == "preview"
        assert row["out"] == "out" and row["model"] == MODEL
    page.click('[data-picks="yaml"]')
    pasted = yaml.safe_load(page.input_value(".yaml-view textarea"))
    assert [(r["cell"], r["values"]) for r in pasted["rows"]] == \
        [(r["cell"], r["values"]) for r in rows]
    assert problems == []
    context.close()

    (final / ".git").mkdir()
    for name in ("a.png", "b.png"):
        shutil.copy(preview / name, final / name)
    plan = build_plan(write_manifest(final, FINAL, "final.yaml"))
    assert [(c.request["seed"], c.request["prompt"], c.request["resolution"],
             c.request["number_of_frames"]) for c in plan.cells] == \
        [(c["seed"], c["prompt"], "1080P", 241) for c in chosen]
    assert [c.from_cell for c in plan.cells] == \
        [{"job": "preview", "cell": c["id"], "out": "out"} for c in chosen]


def test_keyboard_and_compare(preview: Path, browser) -> None:
    """Arrows move between tiles, space plays the focused clip, `s` stars it; two tiles
    selected for compare open large, side by side, playing in sync; Esc closes them."""
    page, problems = open_report(browser, preview / "out")
    page.wait_for_function(EVERY_VIDEO_READY, timeout=30_000)
    page.focus(".grid .tile")
    first = page.evaluate("document.activeElement.dataset.id")
    page.keyboard.press("ArrowRight")
    second = page.evaluate("document.activeElement.dataset.id")
    assert second and second != first
    page.keyboard.press("ArrowDown")
    below = page.evaluate("document.activeElement.dataset.id")
    assert below not in (first, second)
    page.keyboard.press("s")
    assert page.get_attribute(f"#cell-{below} .star", "aria-pressed") == "true"
    page.keyboard.press("s")
    assert page.get_attribute(f"#cell-{below} .star", "aria-pressed") == "false"
    page.keyboard.press(" ")
    page.wait_for_function(f"() => !document.querySelector('#cell-{below} video').paused")
    page.keyboard.press(" ")
    assert page.evaluate(f"document.querySelector('#cell-{below} video').paused")
    page.check(f"#cell-{first} .cmp")
    page.check(f"#cell-{second} .cmp")
    page.click("[data-compare]")
    assert page.is_visible(".compare-view")
    page.wait_for_function("() => { const v = Array.from(document.querySelectorAll("
                           "'.compare-panes video')); return v.length === 2 && "
                           "v.every(x => !x.paused && x.currentTime > 0.3); }", timeout=10_000)
    times = page.eval_on_selector_all(".compare-panes video", "v => v.map(x => x.currentTime)")
    assert max(times) - min(times) < 0.3
    width = page.eval_on_selector(".compare-panes video", "v => v.getBoundingClientRect().width")
    assert width > 500  # large: half a 1280 px window each
    page.keyboard.press("Escape")
    assert not page.is_visible(".compare-view")
    assert problems == []
    page.close()


def test_frame_strips_come_from_the_job_folder(preview: Path, browser) -> None:
    """Every done clip has a frame strip, made at download time, and the page loads it (and
    everything else) from the job folder only: no request leaves it."""
    out = preview / "out"
    report = json.loads((out / "report.json").read_text())
    for cell in report["cells"]:
        strip = out / "strips" / f"{cell['id']}.jpg"
        assert cell["files"][0]["strip"] == f"strips/{cell['id']}.jpg" and strip.is_file()
        assert strip.stat().st_mtime <= (out / "report.json").stat().st_mtime
    urls: list[str] = []
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("request", lambda r: urls.append(r.url))
    page.goto((out / "report.html").as_uri())
    page.check("[data-details]")  # strips are among a tile's details
    page.wait_for_function("() => Array.from(document.querySelectorAll('img.strip'))"
                           ".every(i => i.complete && i.naturalWidth > 0)", timeout=20_000)
    loaded = page.eval_on_selector_all("img.strip", "i => i.map(x => x.src)")
    assert len(loaded) == 12
    root = out.resolve().as_uri() + "/"
    assert urls and all(u.startswith((root, "data:", "blob:")) for u in urls), \
        [u for u in urls if not u.startswith(root)]
    assert {u for u in urls if "/strips/" in u} == set(loaded)
    page.close()


# --- a 40-cell sweep: every tile on the screen ------------------------------------------------
FORTY = f"""
name: forty
model: {MODEL}
backend: sim
prompt: "{{{{ caption }}}}"
inputs:
  image_urls: [a.png]
  number_of_frames: 121
matrix:
  rows:
    - {{caption: one}}
    - {{caption: two}}
    - {{caption: three}}
    - {{caption: four}}
    - {{caption: five}}
  resolution: [720P, 1080P]
  seed: [1, 2, 3, 4]
run:
  concurrency: 8
  polling: {{initial: 0.1, max: 0.5}}
"""


def pattern(path: Path) -> Path:
    """A 1280x720 picture with structure all over (a flat one would look like an empty player
    to the screenshot's check)."""
    from PIL import ImageDraw

    img = Image.merge("RGB", [Image.linear_gradient("L").resize((1280, 720)),
                              Image.radial_gradient("L").resize((1280, 720)),
                              Image.linear_gradient("L").rotate(90).resize((1280, 720))])
    draw = ImageDraw.Draw(img)
    for i in range(0, 1280, 80):
        draw.line([(i, 0), (1280 - i, 720)], fill=(255, 255, 255), width=6)
    img.save(path)
    return path


@pytest.fixture(scope="module")
def forty(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("forty")
    pattern(base / "a.png")
    run_beside(write_manifest(base, FORTY), base / "out")
    return base / "out"


def test_screenshot_of_a_forty_cell_sweep_shows_forty_videos(forty: Path, browser,
                                                             tmp_path: Path) -> None:
    """The opened report of a 40-cell sweep, as a screenshot: the box of each of its 40
    video tiles holds a picture (not the empty player), so all 40 are on screen."""
    page, problems = open_report(browser, forty)
    page.wait_for_function(EVERY_VIDEO_READY, timeout=30_000)
    assert page.inner_text(".controls .count") == "40 of 40 cells shown"
    shot = tmp_path / "forty.png"
    page.screenshot(path=str(shot), full_page=True)
    boxes = page.eval_on_selector_all(".grid .tile video", """vs => vs.map(v => {
        const r = v.getBoundingClientRect();
        return [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height]; })""")
    image = Image.open(shot).convert("L")
    shown = 0
    for left, top, width, height in boxes:
        inside = (left >= 0 and top >= 0 and left + width <= image.width and
                  top + height <= image.height and width > 100 and height > 50)
        # the upper middle of the picture, clear of the player's controls
        crop = image.crop((int(left + width * 0.1), int(top + height * 0.1),
                           int(left + width * 0.9), int(top + height * 0.6)))
        if inside and ImageStat.Stat(crop).stddev[0] > 8:
            shown += 1
    assert shown == 40
    assert problems == []
    page.close()


def test_a_large_sweep_pages_instead_of_hiding(forty: Path, browser, monkeypatch) -> None:
    """Past a page's tiles, the grid pages by whole rows and says how many cells are in view;
    the next page shows the next rows, and every cell is on some page."""
    from pipeline.report import page as page_mod
    from pipeline.report import write_reports

    monkeypatch.setattr(page_mod, "PAGE_TILES", 16)
    write_reports(forty)
    try:
        page, problems = open_report(browser, forty)
        seen = []
        for n, expected in enumerate(["16 of 40 cells shown · page 1 of 3",
                                      "16 of 40 cells shown · page 2 of 3",
                                      "8 of 40 cells shown · page 3 of 3"]):
            if n:
                page.click('[data-page="1"]')
            assert page.inner_text(".controls .count") == expected
            assert len(page.query_selector_all(".rowhead")) == (2 if n < 2 else 1)
            seen += visible_tiles(page)
        assert len(set(seen)) == 40
        # a link to a tile on another page (the final report's link back) opens that page
        page.goto((forty / "report.html").as_uri() + f"#cell-{seen[-1]}")
        page.wait_for_selector(f"#cell-{seen[-1]}.target")
        assert page.inner_text(".controls .count").endswith("page 3 of 3")
        assert page.evaluate("document.activeElement.dataset.id") == seen[-1]
        assert problems == []
        page.close()
    finally:
        monkeypatch.undo()
        write_reports(forty)


# --- sweeps of rows x random seeds fit a 1400 x 900 screen a few times over -------------------
def seeds_sweep(rows: int, seeds: int, repeat: int = 1, include: str = "") -> str:
    captions = "\n".join(f"    - {{caption: caption number {i} of a longer prompt}}"
                         for i in range(rows))
    return (f"name: sweep\nmodel: {MODEL}\nbackend: sim\nprompt: \"{{{{ caption }}}}\"\n"
            + (f"repeat: {repeat}\n" if repeat > 1 else "")
            + "inputs:\n  image_urls: [a.png]\n  number_of_frames: 121\n"
            + f"matrix:\n  rows:\n{captions}\n  seed: {{random: {seeds}}}\n{include}"
            + "run:\n  concurrency: 8\n  polling: {initial: 0.1, max: 0.5}\n")


SWEEPS = {  # name: (rows, random seeds, repeat, include)
    "12 rows x 4 seeds": (12, 4, 1, ""),
    "24 rows x 2 seeds": (24, 2, 1, ""),
    "6 rows x 8 seeds": (6, 8, 1, ""),
    "3 rows x 10 seeds": (3, 10, 1, ""),
    "12 rows x 2 seeds x repeat 2, one include": (12, 2, 2, "  include:\n    - {caption: an "
                                                  "extra one, seed: 7}\n"),
}


@pytest.fixture(scope="module", params=list(SWEEPS))
def sweep(request, tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows, seeds, repeat, include = SWEEPS[request.param]
    base = tmp_path_factory.mktemp("sweep")
    (base / ".git").mkdir()
    write_image(base / "a.png", 1280, 720)
    run_beside(write_manifest(base, seeds_sweep(rows, seeds, repeat, include)), base / "out",
               gen_time=(0.01, 0.03))
    return base / "out"


def test_a_sweep_of_rows_and_seeds_fits_four_screens(sweep: Path, browser) -> None:
    """At 1400 x 900, a sweep of rows x random seeds (48 or 50 cells; 3 rows of 10 seeds) opens
    no taller than four screens and no wider than the window: every tile inside it, none
    narrower than 190 px, a row's seeds side by side (wrapping, never stacked one a line)."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.goto((sweep / "report.html").as_uri())
    cells = len(json.loads((sweep / "report.json").read_text())["cells"])
    assert page.inner_text(".controls .count") == f"{cells} of {cells} cells shown"
    height, width = page.evaluate("[document.documentElement.scrollHeight, "
                                  "document.documentElement.scrollWidth]")
    assert height <= 4 * 900, height
    assert width <= 1400, width
    boxes = page.eval_on_selector_all(".grid .tile", "ts => ts.map(t => { const r = "
                                      "t.getBoundingClientRect(); return [r.left, r.right, "
                                      "r.width, r.top]; })")
    assert len(boxes) == cells
    assert all(left >= 0 and right <= 1400 and w >= 190 for left, right, w, _ in boxes), boxes
    # a row's tiles: at most ceil(n / 2) lines when it has more than one, never one a line
    for slot in page.query_selector_all(".slot"):
        tops = slot.eval_on_selector_all(".tile", "ts => ts.map(t => Math.round("
                                                 "t.getBoundingClientRect().top))")
        if len(tops) > 1:
            assert len(set(tops)) <= (len(tops) + 1) // 2, tops
    assert problems == []
    page.close()


# --- compare: covers the page; wipe, frame steps, loop, which clip is heard -------------------
def test_compare_covers_the_page_wipes_steps_and_hears_one(preview: Path, browser) -> None:
    """Compare hides the whole page (every point of the window hits the overlay, the page
    does not scroll behind it); `,` and `.` step every clip one frame, together; 1 and 2 make
    that clip the one heard, m mutes all; l toggles loop; w lays the second clip over the
    first, cut where the wipe slider says."""
    page, problems = open_report(browser, preview / "out", width=1400)
    page.wait_for_function(EVERY_VIDEO_READY, timeout=30_000)
    first, second = page.eval_on_selector_all(".grid .tile", "t => t.map(x => x.dataset.id)")[:2]
    page.check(f"#cell-{first} .cmp")
    page.check(f"#cell-{second} .cmp")
    page.click("[data-compare]")
    page.wait_for_function("() => Array.from(document.querySelectorAll('.compare-panes video'))"
                           ".every(x => !x.paused && x.currentTime > 0.2)", timeout=10_000)
    covered = page.evaluate("""() => { const out = [];
        for (let x = 2; x < innerWidth; x += 97) for (let y = 2; y < innerHeight; y += 61) {
          const e = document.elementFromPoint(x, y);
          out.push(Boolean(e && e.closest('.compare-view'))); }
        return out; }""")
    assert covered and all(covered)
    assert page.evaluate("getComputedStyle(document.body).overflow") == "hidden"
    videos = ".compare-panes video"
    fps = json.loads(page.inner_text("#report-data"))["cells"][0]["fps"]
    assert fps == 24
    page.keyboard.press(",")
    assert page.eval_on_selector_all(videos, "v => v.every(x => x.paused)")
    frame = page.evaluate(f"Math.floor(document.querySelector('{videos}').currentTime * {fps}"
                          " + 1e-3)")
    for key, step in ((".", 1), (".", 2), (",", 1)):
        page.keyboard.press(key)
        page.wait_for_function(f"""() => Array.from(document.querySelectorAll('{videos}'))
            .every(v => !v.seeking && Math.floor(v.currentTime * {fps} + 1e-3) ===
                   {frame + step})""", timeout=5_000)
    assert page.inner_text(".cmp-time").startswith(f"frame {frame + 1} ")
    muted = f"Array.from(document.querySelectorAll('{videos}')).map(v => v.muted)"
    assert page.evaluate(muted) == [True, True]
    page.keyboard.press("2")
    assert page.evaluate(muted) == [True, False]
    page.keyboard.press("1")
    assert page.evaluate(muted) == [False, True]
    page.keyboard.press("m")
    assert page.evaluate(muted) == [True, True]
    loops = f"Array.from(document.querySelectorAll('{videos}')).map(v => v.loop)"
    assert page.evaluate(loops) == [True, True]
    page.keyboard.press("l")
    assert page.evaluate(loops) == [False, False]
    page.click("[data-compare-loop]")
    assert page.evaluate(loops) == [True, True]
    # wipe: the two clips in one place, the second cut at the slider
    page.click('[data-compare-mode="wipe"]')
    rects = page.eval_on_selector_all(".compare-panes .screen", "s => s.map(x => { const r = "
                                      "x.getBoundingClientRect(); return [r.left, r.top, "
                                      "r.width, r.height].map(Math.round); })")
    assert rects[0] == rects[1] and rects[0][2] > 1000
    page.fill("[data-compare-wipe]", "300")
    page.dispatch_event("[data-compare-wipe]", "input")
    clip = page.eval_on_selector(".compare-panes .pane:nth-child(2) .screen",
                                 "s => getComputedStyle(s).clipPath")
    assert clip == "inset(0px 0px 0px 30%)", clip
    page.keyboard.press("w")
    assert not page.evaluate("document.querySelector('.compare-panes').classList.contains('wipe')")
    page.keyboard.press("Escape")
    assert not page.is_visible(".compare-view")
    assert page.evaluate("getComputedStyle(document.body).overflow") != "hidden"
    assert problems == []
    page.close()


# --- what other parts of the report add to cells: qa flags and motion, a rating ---------------
def with_cells(folder: Path, name: str, change) -> str:
    """A copy of the folder's report.html whose page data has each cell changed by
    `change(cell, index)` (as report.json's cells[].qa and .rating would reach it)."""
    from pipeline.report.page import script_json

    html = (folder / "report.html").read_text(encoding="utf-8")
    start = html.index('<script type="application/json" id="report-data">') + len(
        '<script type="application/json" id="report-data">')
    end = html.index("</script>", start)
    data = json.loads(html[start:end])
    for i, cell in enumerate(data["cells"]):
        change(cell, i)
    (folder / name).write_text(html[:start] + script_json(data) + html[end:], encoding="utf-8")
    return name


def test_flag_and_order_controls_appear_with_their_data(preview: Path, browser) -> None:
    """Without qa or rating data the page shows no flag or order control; with them a flagged
    tile has a badge naming its flags, "hide flagged" hides exactly those, and the order
    follows motion (either way) or the rating score (best first, the rank on the tile)."""
    out = preview / "out"

    def bare(cell: dict, i: int) -> None:  # a job measured by no triage and rated by no one
        cell.pop("qa", None)
        cell.pop("rating", None)

    page, problems = open_report(browser, out, name=with_cells(out, "report-bare.html", bare))
    assert not page.is_visible(".controls .hideflagged")
    assert not page.is_visible(".controls .sortby")
    assert page.query_selector_all(".tile .flags:not([hidden]), .tile .score:not([hidden])") == []
    page.close()

    flagged = {1: ["frozen"], 4: ["black", "flicker"], 9: ["duplicate"]}

    def change(cell: dict, i: int) -> None:
        cell["qa"] = {"flags": flagged.get(i, []), "motion": round(0.05 * ((i * 7) % 12), 2)}
        cell["rating"] = {"score": round(1.0 - 0.13 * ((i * 5) % 12), 2), "votes": 4,
                          "wins": 2, "losses": 1, "ties": 1}

    data = json.loads((out / "report.json").read_text())
    ids = [c["id"] for c in data["cells"]]
    name = with_cells(out, "report-qa.html", change)
    page, problems = open_report(browser, out, name=name)
    cells = json.loads(page.inner_text("#report-data"))["cells"]
    assert [c["id"] for c in cells] == ids
    assert page.is_visible(".controls .hideflagged")
    assert page.inner_text(".controls .hideflagged .n") == "(3)"
    assert page.inner_text(f"#cell-{ids[4]} .flags") == "⚠ black, flicker"
    assert not page.is_visible(f"#cell-{ids[0]} .flags")
    page.check("[data-hide-flagged]")
    assert sorted(visible_tiles(page)) == sorted(x for i, x in enumerate(ids) if i not in flagged)
    assert page.inner_text(".controls .count") == "9 of 12 cells shown"
    page.uncheck("[data-hide-flagged]")
    assert len(visible_tiles(page)) == 12
    # orders: one list (no axes), then within the default grid
    options = page.eval_on_selector_all("select[data-sort] option", "o => o.map(x => x.value)")
    assert options == ["", "score", "motion-", "motion+"]
    page.select_option('select[data-axis="rows"]', "")
    page.select_option('select[data-axis="cols"]', "")
    motion = {c["id"]: c["qa"]["motion"] for c in cells}
    score = {c["id"]: c["rating"]["score"] for c in cells}
    page.select_option("select[data-sort]", "motion-")
    assert [motion[i] for i in visible_tiles(page)] == sorted(motion.values(), reverse=True)
    page.select_option("select[data-sort]", "motion+")
    assert [motion[i] for i in visible_tiles(page)] == sorted(motion.values())
    page.select_option("select[data-sort]", "score")
    assert [score[i] for i in visible_tiles(page)] == sorted(score.values(), reverse=True)
    best = max(score, key=lambda i: score[i])
    assert page.inner_text(f"#cell-{best} .score") == f"{score[best]:.2f}"
    # in the grid: each slot best first, the row holding the best cell first
    page.select_option('select[data-axis="rows"]', "rows")
    page.select_option('select[data-axis="cols"]', "resolution")
    assert visible_tiles(page)[0] == best
    for slot in page.query_selector_all(".slot"):
        shown = slot.eval_on_selector_all(".tile", "t => t.map(x => x.dataset.id)")
        assert [score[i] for i in shown] == sorted((score[i] for i in shown), reverse=True)
    assert problems == []
    page.close()
