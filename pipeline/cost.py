"""Cost estimates from a price sheet: per second of output or per output, maybe by resolution.

A price sheet (`schemas/models/<id>/price.json`, a manifest's `run.price`, or the API catalog):
    {"unit": "second" | "output" | "unknown", "usd": 0.05 | {"720P": 0.05, "1080P": 0.1},
     "by": "resolution"}
An unknown price is None all the way through: shown as unknown, never as $0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

DEFAULT_FPS = 24


@dataclass(frozen=True)
class Estimate:
    """What a set of cells should cost and take."""

    count: int
    usd: float | None  # None: the price is unknown
    unpriced: int  # cells whose price could not be told
    seconds_of_video: float
    duration_s: float | None  # wall time guess at the run's concurrency
    per_cell_s: float | None
    source: str  # where the price came from


def video_seconds(request: dict, fps: int = DEFAULT_FPS) -> float:
    frames = request.get("number_of_frames")
    if isinstance(frames, int) and frames > 0:
        return frames / fps
    duration = request.get("duration")
    return float(duration) if isinstance(duration, (int, float)) else 0.0


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


def estimate(requests: Iterable[dict], price: dict | None, *, concurrency: int,
             per_cell_s: float | None, fps: int = DEFAULT_FPS, source: str = "") -> Estimate:
    total, unpriced, count, seconds = 0.0, 0, 0, 0.0
    for request in requests:
        count += 1
        seconds += video_seconds(request, fps)
        cost = cell_cost(price, request, fps)
        if cost is None:
            unpriced += 1
        else:
            total += cost
    duration = None
    if per_cell_s is not None and count:
        duration = math.ceil(count / max(1, concurrency)) * per_cell_s
    return Estimate(count, None if unpriced else round(total, 4), unpriced, seconds, duration,
                    per_cell_s, source)


def money(usd: float | None) -> str:
    return "unknown" if usd is None else f"${usd:,.2f}"


def span(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")
