"""What the service showed of the canary's cells, as it came, for the canary to judge.

The pollers, the submit and the collector tell a `Watch` what they saw of each cell (status
words, the result word, where the video's URL was, the bill, a refusal, the media check);
pipeline.run.canary reads it when it judges a canary cell. Once the canary is proven the watch
records nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Seen:
    """What the service showed of one canary cell, as it came (before normalising)."""

    statuses: list[str] = field(default_factory=list)  # /status words, in order, once each
    result: str | None = None  # the /result word
    video_from: str | None = None  # where in the result the video URL was found
    cost: float | None = None  # what the result said it cost
    refusal: str | None = None  # what to do about a refused submit (pipeline.run.advice)
    media: list[tuple[str, dict | None, dict]] = field(default_factory=list)  # file, probe, check


class Watch:
    """Collects what the canary's cells showed; records nothing once the canary is proven."""

    def __init__(self, active: bool):
        self.active = active
        self.cells: dict[str, Seen] = {}

    def _seen(self, cell_id: str) -> Seen | None:
        return self.cells.setdefault(cell_id, Seen()) if self.active else None

    def status(self, cell_id: str, word: Any) -> None:
        seen = self._seen(cell_id)
        if seen is not None and isinstance(word, str) and word not in seen.statuses:
            seen.statuses.append(word)

    def result(self, cell_id: str, word: Any, video_from: str | None,
               billed: float | None) -> None:
        seen = self._seen(cell_id)
        if seen is not None:
            seen.result = word if isinstance(word, str) else None
            seen.video_from, seen.cost = video_from, billed

    def refused(self, cell_id: str, todo: str) -> None:
        seen = self._seen(cell_id)
        if seen is not None:
            seen.refusal = todo

    def media(self, cell_id: str, path: str, probe: dict | None, check: dict) -> None:
        seen = self._seen(cell_id)
        if seen is not None:
            seen.media.append((path, probe, check))
