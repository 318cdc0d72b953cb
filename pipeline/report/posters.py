"""Poster frames: the first picture of each downloaded video, as a JPEG beside the report.

`posters/<cell id>.jpg` (`<cell id>-<n>.jpg` for a cell's further outputs), made with PyAV and
Pillow, remade only when the video is newer than its poster. A video that cannot be decoded
gets no poster; the report says so through the media check instead.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger("pipeline.report")

FOLDER = "posters"
MAX_SIDE = 640  # posters are shown at tile size; keep them small
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif")  # outputs shown as they are


def poster_name(cell_id: str, index: int) -> str:
    return f"{FOLDER}/{cell_id}{f'-{index}' if index else ''}.jpg"


def make_poster(video: Path, poster: Path) -> bool:
    """Write the first frame of `video` to `poster` (atomically); True when the poster exists."""
    try:
        if poster.is_file() and poster.stat().st_mtime >= video.stat().st_mtime:
            return True
    except OSError:
        return False
    import av

    try:
        with av.open(str(video)) as container:
            frame = next(container.decode(video=0), None)
            if frame is None:
                return False
            image = frame.to_image()
    except Exception as exc:  # noqa: BLE001 (PyAV raises its own classes for broken media)
        log.info("no poster for %s: %s", video, exc)
        return False
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    poster.parent.mkdir(parents=True, exist_ok=True)
    tmp = poster.with_name(f".{poster.name}.tmp")
    try:
        image.convert("RGB").save(tmp, format="JPEG", quality=82)
        os.replace(tmp, poster)
    except OSError as exc:
        log.warning("cannot write the poster %s: %s", poster, exc)
        tmp.unlink(missing_ok=True)
        return False
    return True


MAX_POSTERS = 5_000  # beyond this a sweep is browsed by filters; players show their first frame


def add_posters(folder: Path, report: dict, limit: int = MAX_POSTERS) -> None:
    """Make a poster per video file that exists (the first `limit` cells), and note its
    relative path in the report."""
    for n, cell in enumerate(report["cells"]):
        if n >= limit:
            for f in cell["files"]:
                f["poster"] = None
            continue
        for i, f in enumerate(cell["files"]):
            f["poster"] = None
            if f["exists"] and f["path"] and not f["path"].lower().endswith(IMAGE_SUFFIXES):
                name = poster_name(cell["id"], i)
                if make_poster(folder / f["path"], folder / name):
                    f["poster"] = name
