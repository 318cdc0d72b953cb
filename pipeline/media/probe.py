"""Probing downloaded videos (PyAV) and images (Pillow), and comparing them with the request.

A simulator's placeholder video (it says so in its MP4 comment, `wire.PLACEHOLDER_COMMENT`) is
a small preview: its frames and fps are judged, its size is not.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

from .. import wire

RESOLUTION_SHORT_SIDE = {"480P": 480, "720P": 720, "1080P": 1080, "2K": 1440, "4K": 2160}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif")


def probe_image(path: Path) -> dict[str, Any]:
    """Width, height and format of a downloaded image (decoded whole: a truncated file fails
    here, not in the report); raises ValueError."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            return {"frames": None, "fps": None, "width": im.width, "height": im.height,
                    "codec": (im.format or "?").lower(), "duration_s": None}
    except Exception as exc:  # Pillow raises many kinds for a broken file
        raise ValueError(f"not a readable image ({type(exc).__name__}: {exc})") from None


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
            placeholder = container.metadata.get("comment") == wire.PLACEHOLDER_COMMENT
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


PLACEHOLDER = "not checked (a simulator's placeholder)"  # a preview's size: not judged


def check(info: dict[str, Any], request: dict[str, Any], *, fps: float) -> dict[str, Any]:
    """Compare a probe with the request: frames, fps and (but for a placeholder) resolution."""
    problems = []
    frames = request.get("number_of_frames")
    if isinstance(frames, int) and info.get("frames") != frames:
        problems.append(f"{info.get('frames')} frames, asked {frames}")
    if fps and abs((info.get("fps") or 0) - fps) > 0.01:
        problems.append(f"{info.get('fps')} fps, expected {fps:g}")
    seconds = request.get("duration")
    if not isinstance(frames, int) and isinstance(seconds, (int, float)) and \
            not isinstance(seconds, bool) and info.get("duration_s") is not None and \
            abs(info["duration_s"] - seconds) > 0.5:  # a "5 s" clip may be 120 or 121 frames
        problems.append(f"{info['duration_s']:g} s long, asked {seconds:g} s")
    short = RESOLUTION_SHORT_SIDE.get(str(request.get("resolution", "")))
    resolution = PLACEHOLDER if info.get("placeholder") else "not checked"
    if short and not info.get("placeholder"):
        got = min(info.get("width") or 0, info.get("height") or 0)
        resolution = "as requested" if got == short else f"short side {got}, asked {short}"
        if got != short:
            problems.append(resolution)
    return {"ok": not problems, "problems": problems, "resolution": resolution}
