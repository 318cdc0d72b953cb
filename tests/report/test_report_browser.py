"""report.html in a real browser: the README's demo run, then the page opened in headless
Chromium (Debian's `chromium`, driven by Playwright's Python package): no console errors, every
video decodes (H.264 included), the play controls work, and a screenshot is kept."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import unavailable

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = next((p for p in (os.environ.get("PIPELINE_CHROMIUM"), "/usr/bin/chromium",
                             shutil.which("chromium"), shutil.which("chromium-browser")) if p
                 and Path(p).is_file()), None)
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

try:
    import playwright.sync_api as playwright_api
except ImportError:
    playwright_api = None


@pytest.fixture(autouse=True, scope="module")
def _browser() -> None:
    """Chromium and Playwright are there (else skipped here, failed in CI)."""
    if playwright_api is None:
        unavailable("Playwright's Python package is not installed (pip install playwright; "
                    "no `playwright install` needed, Debian's chromium is used)")
    if CHROMIUM is None:
        unavailable("Chromium not found at /usr/bin/chromium or on PATH (apt-get install "
                    "chromium); the browser test needs it")

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
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def open_report(browser, folder: Path, width: int = 1280):
    page = browser.new_page(viewport={"width": width, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.goto((folder / "report.html").as_uri())
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
    assert all(p for r, p, _ in playing if r == "0") and not any(p for r, p, _ in playing if r != "0")
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


def test_filters_on_a_three_axis_sweep(tmp_path: Path, browser) -> None:
    """With three axes, the third is a filter set to its first value (half the tiles shown);
    choosing `all` shows every tile; every video still loads, with no console error."""
    sys.path.insert(0, str(Path(__file__).parent))
    from test_report import SWEEP, job, simulate

    with ThreadPoolExecutor(1) as pool:  # Playwright's loop owns this thread: run beside it
        pool.submit(simulate, job(tmp_path, SWEEP), tmp_path / "out").result(timeout=120)
    page, problems = open_report(browser, tmp_path / "out")
    page.wait_for_function(EVERY_VIDEO_READY, timeout=30_000)
    assert page.inner_text(".controls .count") == "6 of 12 cells shown"
    page.select_option("select[data-filter]", "*")
    assert page.inner_text(".controls .count") == "12 of 12 cells shown"
    page.click('button[data-play="col"][data-index="1"]')
    page.wait_for_function("() => Array.from(document.querySelectorAll("
                           "'.slot[data-col=\"1\"] video')).every(v => !v.paused)",
                           timeout=10_000)
    page.screenshot(path=str(tmp_path / "sweep.png"), full_page=True)
    assert problems == []
    page.close()
