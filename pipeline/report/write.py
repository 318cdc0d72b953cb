"""Writing the report's three files from one scan of the job folder, cell by cell.

report.md is rendered whole (it lists the first MD_ROWS cells); report.json and report.html
are streamed: their heads, then each cell as it is read back from the scan, then their tails,
so that a report of 100,000 cells never holds them all. Every file is written atomically (a
temp file in the same folder, fsync, os.replace), so a reader never sees half a report. HTML
is autoescaped (the cells' data is escaped JSON, see pipeline.report.page); Markdown table
cells are escaped by the `mdcell` filter. Posters and frame strips missing from an older job
are made here (pipeline.media.posters).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import ExitStack
from itertools import islice
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

import jinja2
from markupsafe import Markup

from .. import jsonio, text
from ..durable import atomic_writer, write_atomic
from ..job.folder import REPORTS
from ..job.records import STATE_INFO
from ..media.strips import add_previews
from . import page
from .grid import Occupancy, show
from .scan import Scanned, scan

TEMPLATES = Path(__file__).parent / "templates"
NAMES = REPORTS  # pipeline.job.folder names them
MD_ROWS = 500  # cells listed in report.md's table; all of them are in the HTML and the JSON
HTML_LIST = 1_000  # failures or unknown cells listed in report.html (report.md lists all)
_CELLS = "\0cells\0"  # where the streamed cells go in a rendered head (no path holds a NUL)


def write_reports(folder: Path, *, rows: str | None = None, cols: str | None = None,
                  only: tuple = (), running: bool | None = None) -> list[Path]:
    """Write report.md, report.html and report.json into the job folder; their paths. `only`:
    a selection of cells (`--only`), which the report then names; `running`: see `scan`."""
    folder = Path(folder)
    with scan(folder, only, running=running) as scanned:
        report = scanned.report
        page.check_axes(scanned.facets, rows, cols)  # a bad --rows/--cols: before any write
        md = render_markdown(report, list(islice(scanned.cells(), MD_ROWS)), scanned.count)
        write_atomic(folder / "report.md", md)
        json_head, json_tail = _split(json.dumps({**report, "cells": _CELLS}, indent=2,
                                                 ensure_ascii=False) + "\n")
        with ExitStack() as files:
            html = files.enter_context(atomic_writer(folder / "report.html"))
            data = files.enter_context(atomic_writer(folder / "report.json"))
            data.write(json_head)

            def each(i: int, cell: dict) -> None:
                data.write(("," if i else "") + "\n" + _indented(cell))

            stream_page(scanned, folder, html, rows=rows, cols=cols, each=each)
            data.write(("\n  " if scanned.count else "") + json_tail)
    return [folder / name for name in NAMES]


def stream_page(scanned: Scanned, folder: Path, html: TextIO, *, rows: str | None = None,
                cols: str | None = None, each: Callable[[int, dict], None] | None = None,
                served: dict[str, Any] | None = None) -> None:
    """report.html of a scan, written to `html` cell by cell (`each` is given every cell as
    well); `served`: the settings of a page served by `pipeline review` (see page.settings)."""
    report, facets = scanned.report, scanned.facets
    ctx = page.PageContext.of(report, folder)
    names = page.shown_facets(facets, rows, cols)
    sizes = facets.sizes()
    occupancy = Occupancy({n: sizes[n] for n in names}, scanned.count)
    html_head, html_tail = _split(render_html(report, scanned))
    html.write(html_head)
    for i, cell in enumerate(scanned.cells()):
        add_previews(folder, cell, i)
        numbers = facets.numbers(cell["values"], names)
        occupancy.add(numbers)
        html.write(("," if i else "") + "\n" + page.script_json(page.tile(cell, numbers, ctx)))
        if each is not None:
            each(i, cell)
    # the page's settings follow its cells: the default grid depends on all of them
    chosen = page.settings(report, facets, ctx, names, rows, cols, occupancy, served=served)
    html.write('\n],"settings":' + page.script_json(chosen) + html_tail[1:])


def _split(text: str) -> tuple[str, str]:
    """A rendered head and tail around the cells' place; a JSON head's quoted marker opens
    the cells' array."""
    quoted = json.dumps(_CELLS)
    if quoted in text:
        before, after = text.split(quoted, 1)
        return before + "[", "]" + after
    before, after = text.split(_CELLS, 1)
    return before, after


def _indented(cell: dict) -> str:
    """A cell as report.json has always laid it out: two spaces a level, at its depth."""
    return "    " + jsonio.indented(cell).replace("\n", "\n    ")


def _environment(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             autoescape=autoescape, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(money=text.money, secs=text.secs, mdcell=mdcell, urlpath=urlpath, show=show)
    env.globals.update(asset=_asset, states=STATE_INFO)  # the cell-state table, by name
    return env


def _asset(name: str) -> Markup:
    """A CSS or JS file from templates/, inlined as it is (it is ours, not user data)."""
    return Markup((TEMPLATES / name).read_text(encoding="utf-8"))


def render_markdown(report: dict, cells: list[dict], count: int) -> str:
    """report.md from the report's head and its first cells (`count`: all of them)."""
    return _environment(False).get_template("report.md.j2").render(
        r=report, cells=cells, count=count, limit=MD_ROWS)


def render_html(report: dict, scanned: Scanned) -> str:
    """report.html with the marker _CELLS where the tiles' records are to be streamed (and,
    after them, the page's settings)."""
    return _environment(True).get_template("report.html.j2").render(
        r=report, count=scanned.count, list_limit=HTML_LIST,
        data=Markup('{"cells":[' + _CELLS + "]}"))


def mdcell(value: Any) -> str:
    """Text safe inside a Markdown table cell (no pipes or newlines breaking the row)."""
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def urlpath(path: str) -> str:
    """A relative file path as a relative URL (each segment percent-encoded)."""
    return quote(path, safe="/")
