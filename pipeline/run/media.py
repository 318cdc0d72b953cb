"""Probing downloaded videos with PyAV and comparing them with what was asked for.

`check` is the one place that decides what a media check says. A placeholder made by the
simulator (its MP4 carries wire.SIM_PLACEHOLDER_TAG) is small on purpose: its resolution is
not judged, whichever simulator made it; any other file at the wrong resolution is a problem.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

from .. import wire

RESOLUTION_SHORT_SIDE = {"480P": 480, "720P": 720, "1080P": 1080, "2K": 1440, "4K": 2160}


def probe(path: Path) -> dict[str, Any]:
    """Frames, fps, width, height and codec of a video's first video stream; raises ValueError."""
    import av

    try:
        with av.open(str(path)) as container:
            streams = container.streams.video
            if not streams:
                raise ValueError("no video stream")
            stream = streams[0]
            frames = stream.frames
            if not frames:  # some containers do not say: count them
                frames = sum(1 for _ in container.demux(stream) if _.size)
            rate = stream.average_rate or stream.guessed_rate or Fraction(0)
            key, mark = wire.SIM_PLACEHOLDER_TAG
            placeholder = (container.metadata or {}).get(key) == mark
            return {
                "frames": int(frames),
                "fps": round(float(rate), 3),
                "width": stream.codec_context.width,
                "height": stream.codec_context.height,
                "codec": stream.codec_context.name,
                "duration_s": round(float(stream.duration * stream.time_base), 3)
                if stream.duration and stream.time_base else None,
                **({"placeholder": True} if placeholder else {}),
            }
    except ValueError:
        raise
    except Exception as exc:  # PyAV raises its own error classes for broken media
        raise ValueError(f"not a readable video ({type(exc).__name__}: {exc})") from None


PLACEHOLDER = "simulator placeholder"  # its resolution is a preview's: not judged


def check(info: dict[str, Any], request: dict[str, Any], *, fps: float) -> dict[str, Any]:
    """Compare a probe with the request: frames, fps and resolution (not for the simulator's
    placeholders, whose size is a preview's)."""
    problems = []
    frames = request.get("number_of_frames")
    if isinstance(frames, int) and info.get("frames") != frames:
        problems.append(f"{info.get('frames')} frames, asked {frames}")
    if fps and abs((info.get("fps") or 0) - fps) > 0.01:
        problems.append(f"{info.get('fps')} fps, expected {fps:g}")
    short = RESOLUTION_SHORT_SIDE.get(str(request.get("resolution", "")))
    resolution = "not checked"
    if short and info.get("placeholder"):
        resolution = PLACEHOLDER
    elif short:
        got = min(info.get("width") or 0, info.get("height") or 0)
        resolution = "as requested" if got == short else f"short side {got}, asked {short}"
        if got != short:
            problems.append(resolution)
    return {"ok": not problems, "problems": problems, "resolution": resolution}
