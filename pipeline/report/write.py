"""Rendering the report's three files from its data, with Jinja templates kept in `templates/`.

Every file is written atomically (a temp file in the same folder, fsync, os.replace), so a
reader never sees half a report. HTML is autoescaped; Markdown table cells are escaped by the
`mdcell` filter.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from markupsafe import Markup

from ..job.durable import write_atomic
from ..prepare import cost as costs
from .grid import layout, show, value_key
from .model import build_report
from .posters import IMAGE_SUFFIXES, add_posters

TEMPLATES = Path(__file__).parent / "templates"
NAMES = ("report.md", "report.html", "report.json")
MD_ROWS = 500  # cells listed in report.md's table; all of them are in the HTML and the JSON
EAGER_VIDEOS = 48  # up to this many videos load at once (preload=auto); more load on demand


def write_reports(folder: Path, *, rows: str | None = None, cols: str | None = None,
                  only: tuple = ()) -> list[Path]:
    """Write report.md, report.html and report.json into the job folder; their paths. `only`:
    a selection of cells (`--only`), which the report then names."""
    folder = Path(folder)
    report = build_report(folder, only)
    grid = layout(report, rows, cols)  # a bad --rows/--cols fails before anything is written
    add_posters(folder, report)
    md = render_markdown(report)
    html = render_html(report, grid)
    data = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    paths = []
    for name, text in zip(NAMES, (md, html, data)):
        paths.append(write_atomic(folder / name, text))
    return paths


def _environment(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             autoescape=autoescape, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(money=costs.money, secs=secs, mdcell=mdcell, urlpath=urlpath, show=show,
                       vkey=value_key, media=media_line,
                       is_image=lambda p: p.lower().endswith(IMAGE_SUFFIXES))
    env.globals["asset"] = _asset
    return env


def _asset(name: str) -> Markup:
    """A CSS or JS file from templates/, inlined as it is (it is ours, not user data)."""
    return Markup((TEMPLATES / name).read_text(encoding="utf-8"))


def render_markdown(report: dict) -> str:
    return _environment(False).get_template("report.md.j2").render(r=report, limit=MD_ROWS)


def render_html(report: dict, grid: dict) -> str:
    videos = sum(1 for c in report["cells"] for f in c["files"][:1]
                 if f["exists"] and not f["path"].lower().endswith(IMAGE_SUFFIXES))
    return _environment(True).get_template("report.html.j2").render(
        r=report, g=grid, preload="auto" if videos <= EAGER_VIDEOS else "metadata")


def secs(value: float | None) -> str:
    """Seconds for people: 0.8 s, 12.3 s, 4m05s."""
    if value is None:
        return "–"
    if value < 60:
        return f"{value:.1f} s"
    return costs.span(value)


def mdcell(value: Any) -> str:
    """Text safe inside a Markdown table cell (no pipes or newlines breaking the row)."""
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def urlpath(path: str) -> str:
    """A relative file path as a relative URL (each segment percent-encoded)."""
    return quote(path, safe="/")


def media_line(f: dict) -> str:
    """What the probe saw: '121 frames · 24 fps · 256×144 · h264'."""
    p = f.get("probe") or {}
    if not p:
        return "not probed"
    parts = [f"{p.get('frames')} frames" if p.get("frames") is not None else None,
             f"{p.get('fps'):g} fps" if p.get("fps") else None,
             f"{p.get('width')}×{p.get('height')}" if p.get("width") else None, p.get("codec")]
    return " · ".join(x for x in parts if x)


