"""What report.html's script is given: the grid's facets and one small record per tile.

The page builds its grid from these records (templates/report.js), so the grid's axes can be
changed in the browser, large sweeps are paged instead of cut, and picks are exported from
it. Each record carries the cell's pick line as pipeline.prepare.picks builds it, so the
page's "Download picks" writes exactly what `pipeline picks` writes. Text is escaped for a
`<script type="application/json">` block (no `<`, `>` or `&` in it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .. import jsonio
from ..job.records import states_json
from ..media.posters import IMAGE_SUFFIXES
from ..media.probe import PLACEHOLDER
from ..prepare.picks import pick
from ..project import project_root
from ..text import money
from .grid import Facets, Occupancy, choose_axes

PAGE_TILES = 200  # tiles a page shows at most: beyond, the grid pages
EAGER_VIDEOS = 48  # pages with up to this many videos load them at once (preload=auto)
MAX_FILTER_VALUES = 500  # a facet with more values is an axis choice, not a filter list


class PageContext:
    """What every tile of one job shares: the job, its folder as picks name it, its model."""

    def __init__(self, job: str | None, model: str | None, manifest: str | None,
                 folder: Path):
        self.folder, self.job, self.model = folder, job, model
        self.root = project_root(Path(manifest)) if manifest else None
        self.out = folder_name(folder, self.root)

    @classmethod
    def of(cls, report: dict, folder: Path) -> PageContext:
        return cls(report.get("job"), report.get("model"), report.get("manifest"), folder)

    def href(self, source: dict) -> str | None:
        """A relative link from this report to the tile a picked cell came from (its job's
        report.html#cell-ID), or None when the pick does not say where that job is."""
        out = source.get("out") or (f"outputs/{source['job']}" if source.get("job") else None)
        if not out or not source.get("cell"):
            return None
        target = Path(out) if Path(out).is_absolute() or self.root is None else self.root / out
        href = os.path.relpath(target / "report.html", self.folder).replace(os.sep, "/")
        return f"{href}#cell-{source['cell']}"


def folder_name(folder: Path, root: Path | None) -> str:
    """A job folder as picks name it (their `out`): relative to the project root when inside
    it (so a repository moved or cloned elsewhere still finds it), else absolute."""
    folder = folder.resolve()
    if root is not None:
        try:
            return folder.relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    return str(folder)


def check_axes(facets: Facets, rows: str | None, cols: str | None) -> None:
    """A bad --rows/--cols is a usage error before anything is written."""
    choose_axes({}, rows, cols, names=facets.names())


def shown_facets(facets: Facets, rows: str | None, cols: str | None) -> list[str]:
    """The facets the page offers: every varying one, and a named axis that does not vary."""
    names = facets.varying()
    return names + [n for n in (rows, cols) if n is not None and n not in names]


def settings(report: dict, facets: Facets, ctx: PageContext, names: list[str],
             rows: str | None, cols: str | None, occupancy: Occupancy,
             served: dict[str, Any] | None = None) -> dict[str, Any]:
    """The page's settings: its facets, default axes, where picks are kept, and the
    cell-state table (what each state means, which are problems). `served`: a page served by
    `pipeline review` (pipeline.review): where its API is and what the page was made from;
    the page then keeps its picks there instead of in the browser."""
    sizes = facets.sizes()
    row_axis, col_axis = choose_axes({n: sizes[n] for n in names}, rows, cols,
                                     names=facets.names(), occupancy=occupancy)
    first_run = report["runs"][0]["started_at"] if report["runs"] else ""
    return {
        "job": ctx.job,
        "out": ctx.out,
        "picks_key": f"pipeline-picks:v1:{ctx.job}:{first_run or report.get('manifest_sha256')}",
        "picks_hint": str(Path(report["manifest"]).parent / "picks.jsonl")
        if report.get("manifest") else "picks.jsonl",
        "facets": facets.described(names),
        "rows": row_axis,
        "cols": col_axis,
        "page_tiles": PAGE_TILES,
        "eager_videos": EAGER_VIDEOS,
        "max_filter_values": MAX_FILTER_VALUES,
        "states": states_json(),  # the cell-state table: the page has no state words of its own
        **({"served": served} if served else {}),
    }


def tile(c: dict, numbers: list[int], ctx: PageContext) -> dict[str, Any]:
    """One tile's record (keys left out when empty, to keep a 100,000-cell page small)."""
    f = c["files"][0] if c["files"] else None
    t: dict[str, Any] = {"id": c["id"], "state": c["state"], "k": numbers}
    if c["seed"] is not None:
        t["seed"] = c["seed"]
    if f and f["exists"]:
        t["image" if f["path"].lower().endswith(IMAGE_SUFFIXES) else "video"] = f["path"]
        if f.get("poster"):
            t["poster"] = f["poster"]
        if f.get("strip"):
            t["strip"] = f["strip"]
    elif f and f["path"]:
        t["missing"] = f["path"]
    if f and f["check"]:
        t["check"] = {"ok": bool(f["check"].get("ok")), "text": check_text(f)}
    fps = ((f or {}).get("probe") or {}).get("fps")
    if fps:
        t["fps"] = fps  # compare steps one frame of this clip
    for key, value in (("queue", c["queue_s"]), ("gen", c["generation_s"])):
        if value is not None:
            t[key] = value
    if c["cost_usd"] is not None:
        t["cost"] = money(c["cost_usd"])
    elif c["estimated_cost_usd"] is not None:
        t["cost"] = "~" + money(c["estimated_cost_usd"])
    if c["attempts"]:
        t["tries"] = len(c["attempts"])
    if c["reason"]:
        t["reason"] = c["reason"]
    if c["held_since"]:
        t["held"] = c["held_since"]
    if c["request_ids"]:
        t["rid"] = c["request_ids"][-1]
    if len(c["files"]) > 1:
        t["more"] = [[x["path"], x["exists"]] for x in c["files"][1:]]
    for key in ("qa", "rating"):  # triage flags and motion; blind-ranking score (when known)
        if c.get(key):
            t[key] = c[key]
    source = c.get("from_cell")
    if source:
        t["from"] = {"text": f"{source.get('job') or '?'} · {str(source.get('cell'))[:8]}",
                     "href": source.get("href")}
    t["pick"] = pick_of(c, ctx)
    return t


def pick_of(c: dict, ctx: PageContext, by: str | None = None) -> dict[str, Any]:
    """A report.json cell's picks.jsonl line (what the page's stars save)."""
    return pick(cell=c["id"], job=ctx.job, out=ctx.out, label=c["label"], values=c["values"],
                request={"prompt": c["prompt"], "seed": c["seed"]},
                model=c.get("model") or ctx.model, by=by)  # a sweep of models: its own


def check_text(f: dict) -> str:
    """The media check as a tile shows it: what the probe saw, then what is wrong, if any."""
    p = f.get("probe") or {}
    parts = ["not probed"] if not p else [
             f"{p['frames']} frames" if p.get("frames") is not None else None,  # None: image
             f"{p.get('fps'):g} fps" if p.get("fps") else None,
             f"{p.get('width')}×{p.get('height')}" if p.get("width") else None, p.get("codec")]
    text = " · ".join(x for x in parts if x)
    check = f["check"]
    if not check.get("ok"):
        return f"{text} — {'; '.join(check.get('problems') or [])}"
    resolution = check.get("resolution")
    if resolution == PLACEHOLDER:
        text += " · simulator placeholder"  # a tile is narrow: the check says it in full
    elif resolution and resolution != "not checked":
        text += f" · {resolution}"
    return text


def script_json(value: Any) -> str:
    """JSON safe inside <script type="application/json"> (it cannot close the element)."""
    text = jsonio.compact(value)
    # str.replace, not translate: ten times faster, and a 100,000-tile page makes it count
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
