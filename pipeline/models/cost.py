"""Cost estimates from a price sheet: per second of output or per output, maybe by an input.

A price sheet (`schemas/models/<id>/price.json`, a manifest's `run.price`, or the API catalog):
    {"unit": "second" | "output" | "unknown", "usd": 0.05 | {"720P": 0.05, "1080P": 0.1},
     "by": "resolution"}
An unknown price is None all the way through: shown as unknown, never as $0. Which sheet a
job uses is decided in one place, pipeline.job.price.
"""

from __future__ import annotations

from typing import Any

from .. import wire

DEFAULT_FPS = wire.OUTPUT_FPS


def video_seconds(request: dict, fps: int = DEFAULT_FPS) -> float:
    """Seconds of output a per-second price charges for (the nominal length of the clip)."""
    frames = request.get("number_of_frames")
    if isinstance(frames, int) and not isinstance(frames, bool) and frames > 0:
        return float(wire.billed_seconds(frames, fps))
    duration = request.get("duration")
    if isinstance(duration, str):  # some catalogs give lengths as text: "5", "10"
        try:
            duration = float(duration.strip().rstrip("s"))
        except ValueError:
            return 0.0
    if isinstance(duration, (int, float)) and not isinstance(duration, bool) and duration > 0:
        return float(duration)
    return 0.0


def cell_cost(price: dict | None, request: dict, fps: int = DEFAULT_FPS) -> float | None:
    """USD for one request, or None when the price is unknown for it."""
    if not price or price.get("unit") not in ("second", "output"):
        return None
    usd: Any = price.get("usd")
    if isinstance(usd, dict):
        usd = usd.get(str(request.get(price.get("by", "resolution"))))
    if not isinstance(usd, (int, float)) or isinstance(usd, bool):
        return None
    if price["unit"] == "output":
        return float(usd)
    seconds = video_seconds(request, fps)
    return float(usd) * seconds if seconds else None


def from_catalog(price_usd: float | None, price_unit: str | None) -> dict | None:
    """A price sheet from the API's catalog fields (base_price_usd, price_unit)."""
    if price_usd is None or price_unit not in ("second", "output"):
        return None
    return {"unit": price_unit, "usd": float(price_usd)}


def scaled(sheet: dict, factor: float) -> dict:
    """The same price sheet with every amount multiplied by `factor`."""
    usd = sheet.get("usd")
    if isinstance(usd, dict):
        usd = {k: round(float(v) * factor, 6) for k, v in usd.items()}
    elif isinstance(usd, (int, float)) and not isinstance(usd, bool):
        usd = round(float(usd) * factor, 6)
    return {**sheet, "usd": usd}


def normalized(sheet: dict) -> tuple:
    """A price sheet in a form where equal prices compare equal."""
    usd = sheet.get("usd")
    if isinstance(usd, dict):
        return (sheet.get("unit"), sheet.get("by", "resolution"),
                tuple(sorted((str(k), float(v)) for k, v in usd.items())))
    return (sheet.get("unit"), None, float(usd) if isinstance(usd, (int, float)) else usd)
