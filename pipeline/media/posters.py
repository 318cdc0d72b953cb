"""Poster frames: the first picture of each downloaded video, as a JPEG beside the report.

`posters/<cell id>.jpg` (`<cell id>-<n>.jpg` for a cell's further outputs). A poster is made
with the clip's frame strip, in the same decode, when the video is downloaded; the report
makes those missing or older than their video (both in pipeline.media.strips). A video that
cannot be decoded gets no poster; the report says so through the media check instead.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from .probe import IMAGE_SUFFIXES  # outputs shown as they are

log = logging.getLogger("pipeline.report")

FOLDER = "posters"
MAX_SIDE = 640  # posters are shown at tile size; keep them small
MAX_POSTERS = 5_000  # beyond this a sweep is browsed by pages and filters; players show their
#                      first frame by themselves


def poster_name(cell_id: str, index: int) -> str:
    return f"{FOLDER}/{cell_id}{f'-{index}' if index else ''}.jpg"


def save_jpeg(image: Any, path: Path) -> bool:
    """Write a Pillow image as a JPEG, atomically (temp file, then rename); True on success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        image.convert("RGB").save(tmp, format="JPEG", quality=82)
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("cannot write %s: %s", path, exc)
        tmp.unlink(missing_ok=True)
        return False
    return True


def is_video(f: dict) -> bool:
    return bool(f["exists"] and f["path"] and not f["path"].lower().endswith(IMAGE_SUFFIXES))

