"""A job's crash-safe state: an append-only JSONL journal, its events, and their replay.

One journal per job, `<job folder>/state.jsonl`. Every event is one line of JSON; a line is
durable once `JournalWriter.durable()` returns (pipeline.job.journal_writer writes it: one
fsync covers every line written before it, so many cells share one fsync). The rules that
make a kill -9 at any instant safe:

- the intent to submit is durable *before* the POST, the request_id the moment it returns;
- a torn last line (the process died mid-write) is ignored on replay and cut off before the
  next append; a bad line anywhere else is corruption and stops everything (StateError);
- after a failed write or fsync the run stops: the data may not be on disk.

The constructors of every event are below, beside `JobState.apply`, the replay that reads them.
Each run starts with a `run` event carrying the journal's FORMAT; a journal of a format this
version does not know is refused, never guessed at. Readers (`pipeline status`, the report)
replay the journal without taking the lock, so they work while a run is going.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import FormatError, StateError
from .folder import JobFolder
from .lines import JournalLines
from .records import Attempt, CellRecord, FileRecord

FORMAT = 2  # bump (and teach `apply` the old one, or refuse it) on any change a reader notices
READABLE = frozenset({1, 2})  # 2 added the `canary` event


# --- the events ------------------------------------------------------------------------------
def run_started(*, job: str, model: str, manifest: str, manifest_sha256: str,
                schema_sha256: str | None, backend: str, base_url: str, concurrency: int,
                max_attempts: int, cells: int, price: dict[str, Any] | None, price_source: str,
                budget: float | None, uid: str, canary: int = 0,
                models: dict[str, Any] | None = None,
                auto: dict[str, Any] | None = None) -> dict[str, Any]:
    """A run begins: what it runs, where, with which price, limits and canary (run.canary).
    A sweep of several models also records each model's schema hash and price (`models`);
    `auto` ({"queue_ahead"}) with `concurrency: auto`, `concurrency` then being what the ETA
    assumes. `uid` names the job wherever it is (the first run's, kept by every later run: see
    JobState.uid)."""
    event = {"e": "run", "format": FORMAT, "uid": uid, "job": job, "model": model,
             "manifest": manifest,
             "manifest_sha256": manifest_sha256, "schema_sha256": schema_sha256,
             "backend": backend, "base_url": base_url, "pid": os.getpid(),
             "concurrency": concurrency, "max_attempts": max_attempts, "cells": cells,
             "price": price, "price_source": price_source, "budget": budget, "canary": canary}
    if models:
        event["models"] = models
    if auto:
        event["auto"] = auto
    return event


def described(cell: str, label: str, values: dict[str, Any], request: dict[str, Any],
              from_cell: dict[str, Any] | None = None) -> dict[str, Any]:
    """A cell's label, matrix values and request, written before its first submit; and the
    picked cell it renders again, if any (pipeline.prepare.picks)."""
    event = {"e": "cell", "cell": cell, "label": label, "values": values, "request": request}
    if from_cell:
        event["from_cell"] = from_cell
    return event


def intent(cell: str, n: int, estimate: float | None) -> dict[str, Any]:
    """Attempt n is about to be POSTed (durable before the POST); its estimated cost."""
    return {"e": "intent", "cell": cell, "n": n, "usd": estimate}


def submitted(cell: str, n: int, request_id: str) -> dict[str, Any]:
    return {"e": "submitted", "cell": cell, "n": n, "request_id": request_id}


def submit_failed(cell: str, n: int, kind: str, error: str, permanent: bool) -> dict[str, Any]:
    """The POST failed: `kind` is not_accepted (safe to send again) or outcome_unknown."""
    return {"e": "submit_failed", "cell": cell, "n": n, "kind": kind, "error": error,
            "permanent": permanent}


def status_seen(cell: str, n: int, status: str, queue_position: int | None,
                calls: int) -> dict[str, Any]:
    """A status call saw a new status word or queue position; `calls` so far this attempt."""
    return {"e": "status", "cell": cell, "n": n, "status": status,
            "queue_position": queue_position, "calls": calls}


def result(cell: str, n: int, verdict: str, *, error: str | None = None,
           cost: float | None = None, outputs: list[str] | None = None, calls: int | None = None,
           server_times: dict[str, Any] | None = None, permanent: bool = False) -> dict[str, Any]:
    """The attempt ended: succeeded | failed | cancelled | lost, with the server's cost."""
    event: dict[str, Any] = {"e": "result", "cell": cell, "n": n, "result": verdict,
                             "error": error, "cost": cost}
    if outputs is not None:
        event["outputs"] = outputs
    if calls is not None:
        event["calls"] = calls
    if server_times is not None:
        event["server_times"] = server_times
    if permanent:
        event["permanent"] = True
    return event


def downloaded(cell: str, url: str, path: str, size: int, sha256: str, probe: dict[str, Any] | None,
               check: dict[str, Any]) -> dict[str, Any]:
    return {"e": "download", "cell": cell, "url": url, "path": path, "size": size,
            "sha256": sha256, "probe": probe, "check": check}


def download_failed(cell: str, url: str, error: str) -> dict[str, Any]:
    return {"e": "download_error", "cell": cell, "url": url, "error": error}


def cancel_answered(cell: str, n: int, outcome: str) -> dict[str, Any]:
    """The server's answer to a cancel: cancelled, not_cancellable, or an error text."""
    return {"e": "cancel", "cell": cell, "n": n, "outcome": outcome}


def retry_failed(cell: str) -> dict[str, Any]:
    """--retry-failed: earlier failures of this cell no longer count."""
    return {"e": "retry_failed", "cell": cell}


def resubmit_unknown(cell: str, n: int) -> dict[str, Any]:
    """--resubmit-unknown: attempt n is given up (it may still run, and be billed)."""
    return {"e": "resubmit_unknown", "cell": cell, "n": n}


def canary(cell: str, ok: bool, findings: list[str], *, estimate: float | None,
           cost: float | None, sheet: dict[str, Any] | None,
           model: str | None = None) -> dict[str, Any]:
    """A canary cell was judged: proven or not, what it found, what it was billed (`cost`)
    against its `estimate` at its model's uncorrected price `sheet` (pipeline.job.price)."""
    event = {"e": "canary", "cell": cell, "ok": ok, "findings": findings, "estimate": estimate,
             "cost": cost, "sheet": sheet}
    if model is not None:
        event["model"] = model
    return event


def ended(exit_code: int, stopped: str | None, counts: dict[str, int]) -> dict[str, Any]:
    return {"e": "end", "exit": exit_code, "stopped": stopped, "counts": counts}


# --- the replay ------------------------------------------------------------------------------
_WORDS: dict[str, str] = {}


def _word(text: Any) -> Any:
    """One shared copy of each short status word (the journal repeats them per cell)."""
    if isinstance(text, str) and len(text) < 32:
        return _WORDS.setdefault(text, text)
    return text


@dataclass
class JobState:
    """A replayed journal: the job's header events and its cells.

    `lean` keeps only what running needs (states, request ids, output URLs and hashes, costs,
    reasons), not the copies of requests, probes and server timestamps that reports read:
    a 100,000-cell job then replays in well under half the memory."""

    folder: Path
    lean: bool = False
    runs: list[dict[str, Any]] = field(default_factory=list)  # one `run` event per start
    canaries: list[dict[str, Any]] = field(default_factory=list)  # `canary` events, oldest first
    cells: dict[str, CellRecord] = field(default_factory=dict)
    ends: list[dict[str, Any]] = field(default_factory=list)
    torn_tail: bool = False
    valid_bytes: int = 0
    cell_events: int = 0  # events about cells (not run headers or ends)

    @property
    def header(self) -> dict[str, Any]:
        return self.runs[-1] if self.runs else {}

    def only(self, ids: Any) -> JobState:
        """The same journal seen through a selection of its cells (`--only`): the others are
        left out, not counted as orphaned."""
        return replace(self, cells={cid: rec for cid, rec in self.cells.items() if cid in ids})

    @property
    def billed_canaries(self) -> dict[str | None, dict[str, Any]]:
        """Per model, its last canary event with a cost: what prices that model in the job
        (pipeline.job.price); keyed None for events from before canaries named their model."""
        out: dict[str | None, dict[str, Any]] = {}
        for c in self.canaries:
            if c.get("cost") is not None:
                out[c.get("model")] = c
        return out

    @property
    def uid(self) -> str | None:
        """The job's own id, as its first run that wrote one gave it (journals from before
        ids have none until their next run)."""
        return next((r["uid"] for r in self.runs if r.get("uid")), None)

    def cell(self, cell_id: str) -> CellRecord:
        found = self.cells.get(cell_id)
        if found is None:
            found = self.cells[cell_id] = CellRecord(cell_id)
        return found

    def apply(self, ev: dict[str, Any]) -> None:
        """Fold one event into the state (the replay's only rule book)."""
        kind = ev.get("e")
        if kind == "run":
            written = ev.get("format", 1)
            if written not in READABLE:
                raise FormatError(f"this journal is in format {written!r}, written by another "
                                 f"version of pipeline; this one reads format {FORMAT} (upgrade "
                                 "pipeline, or use a new output folder with --out)")
            self.runs.append(ev)
            return
        if kind == "end":
            self.ends.append(ev)
            return
        if kind == "canary":
            self.canaries.append(ev)
            return
        self.cell_events += 1
        rec = self.cell(ev["cell"])
        t = ev.get("t", 0.0)
        if kind == "cell":
            rec.described = True
            if not self.lean:
                rec.label, rec.values, rec.request = ev["label"], ev["values"], ev["request"]
                rec.from_cell = ev.get("from_cell")
            return
        if kind == "intent":
            rec.attempts.append(Attempt(n=ev["n"], intent_at=t, estimate=ev.get("usd")))
            return
        if kind == "retry_failed":
            rec.retry_from = len(rec.attempts)
            return
        if kind in ("download", "download_error"):
            if kind == "download":
                lean = self.lean
                rec.files[ev["url"]] = FileRecord(ev["url"], ev["path"], ev["size"], ev["sha256"],
                                                  None if lean else ev.get("probe"),
                                                  None if lean else ev.get("check"))
            else:
                rec.download_errors = [*rec.download_errors,
                                       {"t": t, "url": ev["url"], "error": ev["error"]}]
            return
        a = rec.last
        if a is None or a.n != ev.get("n", a.n):
            raise StateError(f"journal event {kind!r} for cell {rec.id} names attempt "
                             f"{ev.get('n')} it never started")
        if kind == "submitted":
            a.request_id, a.submitted_at = ev["request_id"], t
        elif kind == "submit_failed":
            a.submit_kind, a.submit_error = ev["kind"], ev["error"]
            a.permanent = bool(ev.get("permanent"))
        elif kind == "status":
            a.status, a.queue_position = _word(ev["status"]), ev.get("queue_position")
            a.first_seen.setdefault(a.status, t)
            a.status_calls = ev.get("calls", a.status_calls)
        elif kind == "result":
            a.result, a.result_at = _word(ev["result"]), t
            a.error, a.cost = ev.get("error"), ev.get("cost")
            a.outputs = ev.get("outputs", [])
            a.permanent = bool(ev.get("permanent"))
            if not self.lean:
                a.server_times = ev.get("server_times", {})
            a.status_calls = ev.get("calls", a.status_calls)
        elif kind == "cancel":
            a.cancel_outcome, a.cancel_at = ev["outcome"], t
        elif kind == "resubmit_unknown":
            a.resubmitted_unknown = True
        else:
            raise StateError(f"unknown journal event {kind!r}")


def read_state(folder: JobFolder | Path, lean: bool = False) -> JobState:
    """Replay a job's journal (missing journal: empty state). No lock is taken."""
    folder = JobFolder.at(folder)
    state = JobState(folder.path, lean=lean)
    lines = JournalLines(folder.journal)
    try:
        for lineno, _, _, event in lines:
            try:
                state.apply(event)
            except (KeyError, TypeError) as exc:
                raise StateError(f"{lines.path}:{lineno}: malformed {event.get('e')!r} event "
                                 f"({exc})") from None
            except StateError as exc:  # a FormatError stays one
                raise type(exc)(f"{lines.path}:{lineno}: {exc}") from None
    except FileNotFoundError:
        return state
    except OSError as exc:
        raise StateError(f"cannot read {lines.path}: {exc.strerror or exc}") from None
    state.torn_tail, state.valid_bytes = lines.torn_tail, lines.valid_bytes
    return state
