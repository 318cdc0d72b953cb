"""Frame strips: six frames across each clip in one small JPEG (three across, two down, read
like a line of text), so that motion can be scanned in the report without playing every video.

`strips/<cell id>.jpg` (`<cell id>-<n>.jpg` for a cell's further outputs), made once, when the
video is downloaded (pipeline.run.collect), by one decode with PyAV that also writes the
clip's poster (its first frame, pipeline.report.posters). The report makes the ones missing
(a job downloaded by an older version) the same way. Like posters, only the first
MAX_PREVIEWS cells of a job get them: past that a sweep is browsed by pages and filters, and
a player shows its first frame by itself.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .posters import MAX_POSTERS, MAX_SIDE, save_jpeg

log = logging.getLogger("pipeline.report")

FOLDER = "strips"
FRAMES = 6  # frames per strip, spread evenly over the clip
ACROSS = 3  # frames per line of the strip (a tile is too narrow for six in a line)
FRAME_HEIGHT = 90  # px per frame; the page shows the strip at tile width
MAX_PREVIEWS = MAX_POSTERS  # cells (in plan order) that get a strip and a poster


def strip_name(cell_id: str, index: int) -> str:
    return f"{FOLDER}/{cell_id}{f'-{index}' if index else ''}.jpg"


def wanted(index: int) -> bool:
    """Whether the cell at this place of the plan gets previews (the posters' limit)."""
    return index < MAX_PREVIEWS


def fresh(video: Path, made: Path) -> bool:
    """`made` exists and is not older than the video it was made from."""
    try:
        return made.is_file() and made.stat().st_mtime >= video.stat().st_mtime
    except OSError:
        return False


def make_previews(video: Path, strip: Path, poster: Path | None = None,
                  frames: int = FRAMES) -> bool:
    """Write the frame strip of `video` (and its poster, when a path is given) in one decode;
    True when the strip exists. A video that cannot be decoded gets neither (the media check
    says why)."""
    import av
    from PIL import Image

    picked: list = []
    first = None
    try:
        with av.open(str(video)) as container:
            stream = container.streams.video[0]
            total = stream.frames or _count(stream)
            targets = sorted({min(total - 1, int((k + 0.5) * total / frames))
                              for k in range(frames)}) if total else []
            wanted_at = iter(targets)
            target = next(wanted_at, None)
            for n, frame in enumerate(container.decode(stream)):
                if first is None:
                    first = frame.to_image()
                if target is not None and n == target:
                    picked.append(frame.to_image())
                    target = next(wanted_at, None)
                if target is None:
                    break
    except Exception as exc:  # noqa: BLE001 (PyAV raises its own classes for broken media)
        log.info("no frame strip for %s: %s", video, exc)
        return False
    if first is not None and poster is not None:
        thumb = first.copy()
        thumb.thumbnail((MAX_SIDE, MAX_SIDE))
        save_jpeg(thumb, poster)
    if not picked:
        return False
    width = max(2, round(picked[0].width * FRAME_HEIGHT / picked[0].height))
    across = min(ACROSS, len(picked))
    down = -(-len(picked) // across)
    sheet = Image.new("RGB", (width * across, FRAME_HEIGHT * down))
    for i, img in enumerate(picked):
        sheet.paste(img.convert("RGB").resize((width, FRAME_HEIGHT), Image.Resampling.BILINEAR),
                    ((i % across) * width, (i // across) * FRAME_HEIGHT))
    return save_jpeg(sheet, strip)


def _count(stream) -> int:  # noqa: ANN001
    """Frames of a stream whose container does not say, from its duration and rate."""
    if stream.duration and stream.time_base and stream.average_rate:
        return int(float(stream.duration * stream.time_base * stream.average_rate))
    return 0


def add_for_download(folder: Path, cell_id: str, cell_index: int, output: int,
                     video: Path) -> None:
    """The previews of a video just downloaded (the runner calls this, in a worker thread)."""
    if not wanted(cell_index):
        return
    from .posters import poster_name

    make_previews(video, folder / strip_name(cell_id, output),
                  folder / poster_name(cell_id, output))
