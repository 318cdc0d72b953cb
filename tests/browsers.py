"""The headless Chromium the page tests drive (report, review): Debian's chromium through
Playwright's Python package, skipped here when either is missing and failed in CI."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from conftest import unavailable

CHROMIUM = next((p for p in (os.environ.get("PIPELINE_CHROMIUM"), "/usr/bin/chromium",
                             shutil.which("chromium"), shutil.which("chromium-browser")) if p
                 and Path(p).is_file()), None)
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

try:
    import playwright.sync_api as playwright_api
except ImportError:
    playwright_api = None


def require() -> None:
    """Chromium and Playwright are there (else the test is skipped, or failed in CI)."""
    if playwright_api is None:
        unavailable("Playwright's Python package is not installed (pip install playwright; "
                    "no `playwright install` needed, Debian's chromium is used)")
    if CHROMIUM is None:
        unavailable("Chromium not found at /usr/bin/chromium or on PATH (apt-get install "
                    "chromium); the browser test needs it")


def chromium(*extra: str) -> Iterator[Any]:
    """A launched browser (for a module-scoped fixture to yield from), closed after."""
    assert playwright_api is not None
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, *extra])
        yield b
        b.close()
