"""The account's capacity a job's runs found (`concurrency: auto`), kept in its folder.

One owner for two facts, read one way: what a run of `concurrency: auto` starts from (the
capacity the last run found on the same service, else nothing: it learns), and what
concurrency `plan`, `status` and the ETA assume for such a job (that capacity, else the
manifest's `concurrency`, 4 unless set, as a guess until a run has measured it).

capacity.json keeps what the runs found per service, under the one key `service` gives: the
base URL the run talks to, or "sim" for the built-in simulator (a new port every run, one
service all the same). `plan` asks for the service a plain `pipeline run` of the manifest
would talk to, a run for its own, `status` for its last run's: so for one job on one service
all three assume the same capacity. Format 2: {"format", "pipeline", "services": {key:
{"capacity", "queue_ahead", "at"}}}; format 1 (no "format": one entry with its "base_url",
the last run's) still reads, keyed by that URL.
"""

from __future__ import annotations

import json
import time
from typing import Any

from ..durable import write_atomic
from ..jsonio import check_format, stamped
from ..prepare.manifest import RunSettings
from .folder import JobFolder

SIM = "sim"  # the built-in simulator's backend, and its key in capacity.json
FORMAT = 2  # 2: one entry per service
READABLE = frozenset({1, 2})  # 1: the last run's entry alone (and no "format")


def service(backend: str | None, base_url: str | None = None) -> str:
    """The service a run talks to, as capacity.json keys what it found there: "sim" on the
    built-in simulator, else its base URL without a trailing slash (None: the one a client
    from the environment talks to, RUNCOMFY_BASE_URL)."""
    if backend == SIM:
        return SIM
    if base_url is None:
        from ..client import env_base_url

        base_url = env_base_url()
    return base_url.rstrip("/")


def _found(folder: JobFolder) -> dict[str, dict[str, Any]]:
    """Every service's entry of capacity.json (none when there is no file, or no JSON object
    in it); one of a format this version does not read is refused (FormatError)."""
    try:
        data = json.loads(folder.capacity.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    fmt = check_format(data, folder.capacity, READABLE, "delete it (a run of `concurrency: "
                       "auto` finds the capacity again), or upgrade pipeline")
    entries: dict[str, Any] = {}
    if fmt == 1:  # a built-in simulator's entry had its port's URL: not found again
        url = data.get("base_url")
        if isinstance(url, str):
            entries = {service(None, url): data}
    elif isinstance(data.get("services"), dict):
        entries = data["services"]
    return {k: v for k, v in entries.items()
            if isinstance(v, dict) and isinstance(v.get("capacity"), int)}


def kept(folder: JobFolder, at: str) -> dict[str, Any] | None:
    """What the last run on the service `at` (see `service`) found: {"capacity",
    "queue_ahead", "at"}; None when no run has found it there yet."""
    return _found(folder).get(at)


def keep(folder: JobFolder, at: str, capacity: int, queue_ahead: int) -> None:
    """Record the capacity a run found on the service `at` (written atomically; the newest
    wins; other services' entries stay)."""
    found = _found(folder)
    found[at] = {"capacity": capacity, "queue_ahead": queue_ahead, "at": time.time()}
    write_atomic(folder.capacity, json.dumps(stamped(FORMAT, {"services": found})))


def planning_concurrency(settings: RunSettings, folder: JobFolder | None, at: str) -> int:
    """The concurrency an estimate assumes for a job whose runs talk to the service `at`: with
    `auto`, the capacity its last run there found (requests beyond it wait, they do not run);
    else the manifest's `concurrency`."""
    if settings.auto and folder is not None:
        found = kept(folder, at)
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
