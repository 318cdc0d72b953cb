"""Counters that tests and benchmarks read from `GET /__sim__/stats` or `Simulator.stats()`.

The headline is `duplicate_submissions`: bodies equal to an earlier accepted one that had not
failed or been cancelled, i.e. money a client would waste on the real service.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

ROUTES = ("submit", "status", "result", "cancel", "model", "download", "balance")
FAULTS = ("error", "rate_limit", "drop_before", "drop_after", "slow", "fail",
          "download_404", "download_truncated", "error_code_quirk")


class Counters:
    """Thread-safe named counters (one short lock per update)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._c: Counter[str] = Counter()
            self._calls: Counter[str] = Counter()
            self._faults: Counter[str] = Counter()

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._c[name] += n

    def call(self, route: str) -> None:
        with self._lock:
            self._calls[route] += 1

    def fault(self, kind: str) -> None:
        with self._lock:
            self._faults[kind] += 1

    def snapshot(self, requests_by_state: dict[str, int], videos_encoded: int,
                 config: dict[str, Any]) -> dict[str, Any]:
        """The stats document (stable keys, zero when nothing happened)."""
        with self._lock:
            c = self._c
            return {
                "submissions_accepted": c["submissions_accepted"],
                # accepted, but the client saw a 5xx or a dropped connection instead
                "submissions_accepted_unacknowledged": c["submissions_accepted_unacknowledged"],
                "submissions_refused": c["submissions_refused"],
                # of those, for insufficient balance (SimConfig.balance spent)
                "submissions_refused_balance": c["submissions_refused_balance"],
                "duplicate_submissions": c["duplicate_submissions"],
                "cancellations": c["cancellations"],
                "calls": {route: self._calls[route] for route in ROUTES},
                "requests_by_state": requests_by_state,
                "bytes_served": c["bytes_served"],
                "downloads_completed": c["downloads_completed"],
                "videos_encoded": videos_encoded,
                "faults": {kind: self._faults[kind] for kind in FAULTS},
                "config": config,
            }
