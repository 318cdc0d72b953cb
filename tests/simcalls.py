"""Helpers for tests that speak to the simulator's HTTP API directly (no runner)."""

from __future__ import annotations

import time
from typing import Any

import httpx

from pipeline import wire


def wait_result(client: httpx.Client, rid: str, params: Any = None) -> dict[str, Any]:
    """The result of request `rid` once it has ended (at most 10 s)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        answer = client.get(wire.RESULT_PATH.format(request_id=rid), params=params).json()
        if answer["status"] not in wire.LIVE_STATUSES:
            return dict(answer)
        time.sleep(0.02)
    raise AssertionError(f"request {rid} did not finish")
