"""The account's capacity a job's runs found (`concurrency: auto`), kept in its folder.

One owner for two facts: what a run of `concurrency: auto` starts from (the capacity the last
run found on the same server, else nothing: it learns), and what concurrency `plan`, `status`
and the ETA assume for such a job (that capacity, else the manifest's `concurrency`, 4 unless
set, as a guess until a run has measured it).
"""

from __future__ import annotations

import json
import time
from typing import Any

from ..durable import write_atomic
from ..prepare.manifest import RunSettings
from .folder import JobFolder


def kept(folder: JobFolder, base_url: str | None = None) -> dict[str, Any] | None:
    """What the last run found: {"capacity", "queue_ahead", "base_url", "at"}; None when no
    run has found it yet (or, given `base_url`, none on that server)."""
    try:
        found = json.loads(folder.capacity.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(found, dict) or not isinstance(found.get("capacity"), int):
        return None
    if base_url is not None and found.get("base_url") != base_url:
        return None
    return found


def keep(folder: JobFolder, capacity: int, queue_ahead: int, base_url: str) -> None:
    """Record the capacity a run found (written atomically; the newest wins)."""
    write_atomic(folder.capacity, json.dumps({"capacity": capacity, "queue_ahead": queue_ahead,
                                              "base_url": base_url, "at": time.time()}))


def planning_concurrency(settings: RunSettings, folder: JobFolder | None) -> int:
    """The concurrency an estimate assumes for a job: with `auto`, the capacity its last run
    found (requests beyond it wait, they do not run); else the manifest's `concurrency`."""
    if settings.auto and folder is not None:
        found = kept(folder)
        if found is not None:
            return max(1, int(found["capacity"]))
    return settings.concurrency


def capacity_figures(found: int | None, queue_ahead: int, limit: int | None) -> dict[str, Any]:
    """The `capacity` entry of a job's figures under `concurrency: auto` (status --json, the
    progress line, the report): what was found, what waits beyond it, the limit now."""
    out: dict[str, Any] = {"found": found, "queue_ahead": queue_ahead}
    if limit is not None:
        out["limit"] = limit
    return out
