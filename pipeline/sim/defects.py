"""Defective clips on purpose (`SimConfig.defect_rate`), for testing the triage
(pipeline.media.qa): a fraction of the generated videos is black, frozen or flickering.

Which request gets a defect, and which, is drawn from `random.Random(f"{seed}:defect:{digest}")`
where `digest` is the request body's hash: the same body under the same `--seed` always meets
the same fate, whatever order requests arrive in. With a defect rate, each request's clip is
also its own (`variant`: the body's hash picks a shape's path and colour, see
pipeline.sim.video), as a model's clips differ from seed to seed: otherwise every request for
one image would get the very same placeholder, and a sweep would be all near-duplicates.
`Defects.drawn` says which request got which defect (the stats' `defects`).
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
from typing import Any

KINDS = ("black", "frozen", "flicker")


class Defects:
    """The defects drawn so far, by request id (thread-safe: the stats read them)."""

    def __init__(self, seed: int, rate: float):
        self.seed, self.rate = seed, rate
        self._lock = threading.Lock()
        self.drawn: dict[str, str] = {}

    def reset(self) -> None:
        with self._lock:
            self.drawn = {}

    def draw(self, request_id: str, body: dict[str, Any]) -> tuple[int | None, str | None]:
        """The clip's variant (None without a defect rate: the shared placeholder) and its
        defect (None: a good clip)."""
        if not self.rate:
            return None, None
        digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode())
        variant = int.from_bytes(digest.digest()[:8], "big")
        rng = random.Random(f"{self.seed}:defect:{digest.hexdigest()}")
        kind = rng.choice(KINDS) if rng.random() < self.rate else None
        if kind is not None:
            with self._lock:
                self.drawn[request_id] = kind
        return variant, kind

    def snapshot(self) -> dict[str, str]:
        with self._lock:
            return dict(self.drawn)
