"""A job's crash-safe state: an append-only JSONL journal, replayed into per-cell records.

One journal per job, `<output folder>/state.jsonl`. Every event is one line of JSON; a line is
durable once `Journal.durable()` returns (one fsync covers every line written before it, so many
cells share one fsync). The rules that make a kill -9 at any instant safe:

- the intent to submit is durable *before* the POST, the request_id the moment it returns;
- a torn last line (the process died mid-write) is ignored on replay and cut off before the
  next append; a bad line anywhere else is corruption and stops everything (StateError);
- after a failed write or fsync the run stops: the data may not be on disk.

Readers (`pipeline status`, the report) replay the journal without taking the lock, so they
work while a run is going.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import orjson

from .durable import fsync_dir
from .errors import JobLocked, StateError

JOURNAL = "state.jsonl"
LOCK = ".lock"
FORMAT = 1

# The state names of a cell, as `pipeline status --json` prints them.
PENDING = "pending"  # nothing sent yet (or its last try was not accepted / was lost)
QUEUED = "queued"  # accepted by the server, waiting for a slot
RUNNING = "running"  # generating
DOWNLOADING = "downloading"  # generated; output files not all on disk yet
DONE = "done"  # generated and every output file downloaded and hashed
FAILED = "failed"  # generation failed max_attempts times, or was refused for good
RETRY = "retry"  # generation failed, attempts remain: the next run tries again
UNKNOWN = "unknown"  # a submit whose outcome is unknown: held until --resubmit-unknown
CANCELLED = "cancelled"  # cancelled on request before it ran (not billed)
ORPHANED = "orphaned"  # in the state but no longer in the manifest
STATES = (PENDING, QUEUED, RUNNING, DOWNLOADING, DONE, RETRY, FAILED, UNKNOWN, CANCELLED,
          ORPHANED)
LIVE = frozenset({QUEUED, RUNNING})


@dataclass(slots=True)
class FileRecord:
    """One downloaded output file."""

    url: str
    path: str  # relative to the output folder
    size: int
    sha256: str
    probe: dict | None = None  # frames, fps, width, height, codec
    check: dict | None = None  # {"ok": bool, "problems": [...]}


@dataclass(slots=True)
class Attempt:
    """One try at generating a cell: from the intent to submit to the server's verdict."""

    n: int
    intent_at: float
    request_id: str | None = None
    submitted_at: float | None = None
    submit_kind: str | None = None  # not_accepted | outcome_unknown, when the submit failed
    submit_error: str | None = None
    permanent: bool = False  # a refusal that no retry can fix (bad body, auth)
    status: str | None = None  # last status seen
    queue_position: int | None = None
    first_seen: dict = field(default_factory=dict)  # status word -> time first seen
    status_calls: int = 0
    result: str | None = None  # succeeded | failed | cancelled | lost
    result_at: float | None = None
    error: str | None = None
    cost: float | None = None
    outputs: list = field(default_factory=list)
    server_times: dict = field(default_factory=dict)  # created_at / finished_at as sent
    cancel_outcome: str | None = None
    cancel_at: float | None = None
    resubmitted_unknown: bool = False


@dataclass(slots=True)
class CellRecord:
    """Everything the journal says about one cell."""

    id: str
    label: str = ""
    values: dict = field(default_factory=dict)
    request: dict = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    files: dict[str, FileRecord] = field(default_factory=dict)  # by URL
    download_errors: list = field(default_factory=list)
    retry_from: int = 0  # attempts before this index do not count (--retry-failed)
    described: bool = False  # its `cell` event (label, values, request) is in the journal
    # A finished cell the runner no longer needs in detail keeps only these (see compact()).
    compacted: bool = False
    done_cost: float | None = None
    done_calls: int = 0

    @property
    def last(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    def failures(self) -> int:
        return sum(1 for a in self.attempts[self.retry_from:] if a.result == "failed")

    def succeeded(self) -> Attempt | None:
        for a in reversed(self.attempts):
            if a.result == "succeeded":
                return a
        return None

    def compact(self, spend: float | None = None) -> None:
        """Forget the details of a done cell, keeping its cost and status calls: a runner of a
        100,000-cell job then holds a few hundred bytes per finished cell, not kilobytes."""
        self.done_cost = spend if spend is not None else self.cost()
        self.done_calls = sum(a.status_calls for a in self.attempts if a.request_id)
        self.attempts, self.files, self.download_errors = [], {}, []
        self.compacted = True

    def state(self, max_attempts: int) -> str:
        if self.compacted:
            return DONE
        a = self.last
        if a is None:
            return PENDING
        won = self.succeeded()
        if won is not None:
            return DONE if all(u in self.files for u in won.outputs) else DOWNLOADING
        if a.request_id is None:
            if a.submit_kind == "not_accepted" and not a.resubmitted_unknown:
                return FAILED if a.permanent else PENDING
            if a.resubmitted_unknown:
                return PENDING
            return UNKNOWN
        if a.result is None:
            return RUNNING if a.status == "in_progress" else QUEUED
        if a.result == "cancelled":
            return CANCELLED
        if a.result == "lost":
            return PENDING
        if a.permanent:
            return FAILED
        return FAILED if self.failures() >= max_attempts else RETRY

    def cost(self) -> float | None:
        if self.compacted:
            return self.done_cost
        known = [a.cost for a in self.attempts if a.cost is not None]
        return sum(known) if known else None

    def reason(self) -> str:
        a = self.last
        if a is None:
            return ""
        return a.error or a.submit_error or ""


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
    runs: list[dict] = field(default_factory=list)  # one `run` event per start
    cells: dict[str, CellRecord] = field(default_factory=dict)
    ends: list[dict] = field(default_factory=list)
    torn_tail: bool = False
    valid_bytes: int = 0
    cell_events: int = 0  # events about cells (not run headers or ends)

    @property
    def header(self) -> dict:
        return self.runs[-1] if self.runs else {}

    def cell(self, cell_id: str) -> CellRecord:
        found = self.cells.get(cell_id)
        if found is None:
            found = self.cells[cell_id] = CellRecord(cell_id)
        return found

    def apply(self, ev: dict) -> None:
        """Fold one event into the state (the replay's only rule book)."""
        kind = ev.get("e")
        if kind == "run":
            self.runs.append(ev)
            return
        if kind == "end":
            self.ends.append(ev)
            return
        self.cell_events += 1
        rec = self.cell(ev["cell"])
        t = ev.get("t", 0.0)
        if kind == "cell":
            rec.described = True
            if not self.lean:
                rec.label, rec.values, rec.request = ev["label"], ev["values"], ev["request"]
            return
        if kind == "intent":
            rec.attempts.append(Attempt(n=ev["n"], intent_at=t))
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
                rec.download_errors.append({"t": t, "url": ev["url"], "error": ev["error"]})
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

    def counts(self, max_attempts: int, ids: Iterable[str] | None = None) -> dict[str, int]:
        out = dict.fromkeys(STATES, 0)
        wanted = set(ids) if ids is not None else None
        for cid, rec in self.cells.items():
            if wanted is not None and cid not in wanted:
                out[ORPHANED] += 1
            else:
                out[rec.state(max_attempts)] += 1
        if wanted is not None:
            out[PENDING] += len(wanted - set(self.cells))
        return out


def read_state(folder: Path, lean: bool = False) -> JobState:
    """Replay a job's journal (missing journal: empty state). No lock is taken."""
    state = JobState(folder, lean=lean)
    path = folder / JOURNAL
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return state
    except OSError as exc:
        raise StateError(f"cannot read {path}: {exc.strerror or exc}") from None
    pos = 0
    lineno = 0
    while pos < len(raw):
        end = raw.find(b"\n", pos)
        lineno += 1
        if end == -1:  # no newline: the process died mid-write; ignore the torn tail
            state.torn_tail = True
            break
        line = raw[pos:end]
        try:
            event = orjson.loads(line)  # 3x json's speed: replay is on every start and status
            if not isinstance(event, dict):
                raise ValueError("not an object")
        except ValueError:
            if raw.find(b"\n", end + 1) == -1 and not raw[end + 1:].strip():
                state.torn_tail = True  # a torn last line that happened to end in a newline
                break
            raise StateError(f"{path}:{lineno}: corrupt journal line; the state cannot be "
                             "trusted (restore it from a backup or start a new output "
                             "folder)") from None
        try:
            state.apply(event)
        except (KeyError, TypeError) as exc:
            raise StateError(f"{path}:{lineno}: malformed {event.get('e')!r} event ({exc})") \
                from None
        pos = end + 1
    state.valid_bytes = pos
    return state


BALLAST = ".ballast"
BALLAST_BYTES = 1 << 20  # room for ~1,000 events once the disk is full


class Journal:
    """The append side of the journal; one per run, under the job's lock.

    A ballast file of BALLAST_BYTES is kept beside it while the run lives. When the disk fills,
    the ballast is given up so that the events already owed (above all the request ids of
    submits the API has just accepted) still reach the journal; `low_space` then tells the
    runner to stop. Without this, a full disk right after a POST would leave a paid request
    that the next run can only hold as unknown."""

    def __init__(self, folder: Path, state: JobState, ballast: int = BALLAST_BYTES):
        self.path = folder / JOURNAL
        folder.mkdir(parents=True, exist_ok=True)
        self.ballast = folder / BALLAST
        self.low_space = False
        try:
            with open(self.ballast, "wb") as fh:
                fh.write(b"\0" * ballast)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            self.ballast.unlink(missing_ok=True)
            raise StateError(f"cannot write in {folder}: {exc.strerror or exc}; free some space "
                             "and run again to resume") from None
        new = not self.path.exists()
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if state.torn_tail:
            os.ftruncate(self.fd, state.valid_bytes)  # cut the torn line before appending
            os.fsync(self.fd)
        if new:
            fsync_dir(folder)
        self.state = state
        self.written = 0
        self.synced = 0
        self._lock: asyncio.Lock | None = None
        self.failed: BaseException | None = None
        self.listener = None  # called with each event after it is applied

    def write(self, event: dict) -> dict:
        """Append one event (durable only after `durable()`/`sync()`), and apply it."""
        if self.failed is not None:
            raise StateError(f"the journal {self.path} could not be written earlier "
                             f"({self.failed}); stopping")
        event.setdefault("t", round(time.time(), 3))
        try:
            line = orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE)
        except TypeError:  # e.g. an integer wider than 64 bits in a request
            line = (json.dumps(event, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
        view = memoryview(line)
        while view:  # a short write is retried so the OS can say why
            try:
                view = view[os.write(self.fd, view):]
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.EDQUOT) and self.ballast.exists():
                    self.ballast.unlink()  # the disk is full: spend the reserve, then stop
                    self.low_space = True
                    continue
                self.failed = exc
                raise StateError(f"cannot write the journal {self.path}: "
                                 f"{exc.strerror or exc}; free some space and run again to "
                                 "resume") from None
        self.written += 1
        self.state.apply(event)
        if self.listener is not None:
            self.listener(event)
        return event

    def sync(self) -> None:
        if self.synced >= self.written:
            return
        target = self.written
        try:
            os.fsync(self.fd)
        except OSError as exc:
            self.failed = exc
            raise StateError(f"cannot sync the journal {self.path}: {exc.strerror or exc}; "
                             "stopping (the last events may not be on disk)") from None
        self.synced = target

    async def durable(self) -> None:
        """Wait until every event written so far is on disk; concurrent callers share fsyncs."""
        if self.synced >= self.written:
            return
        if self._lock is None:
            self._lock = asyncio.Lock()
        target = self.written
        async with self._lock:
            if self.synced >= target:
                return
            upto = self.written
            try:
                await asyncio.to_thread(os.fsync, self.fd)
            except OSError as exc:
                self.failed = exc
                raise StateError(f"cannot sync the journal {self.path}: "
                                 f"{exc.strerror or exc}; stopping") from None
            self.synced = max(self.synced, upto)

    def close(self) -> None:
        try:
            self.sync()
        finally:
            os.close(self.fd)
            self.ballast.unlink(missing_ok=True)


class JobLock:
    """An exclusive lock per job that dies with its owner (flock via the filelock package)."""

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / LOCK
        self.owner_path = folder / ".lock.owner"
        import filelock

        self._lock = filelock.FileLock(str(self.path), timeout=0)

    def __enter__(self) -> "JobLock":
        import filelock

        try:
            self._lock.acquire()
        except filelock.Timeout:
            owner = ""
            try:
                owner = self.owner_path.read_text().strip()
            except OSError:
                pass
            raise JobLocked(f"another `pipeline run` is running this job ({owner or 'pid ?'}); "
                            f"wait for it, or stop it, then run again "
                            f"(lock: {self.path})") from None
        try:
            self.owner_path.write_text(f"pid {os.getpid()} since "
                                       f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        except OSError:
            pass
        return self

    def __exit__(self, *exc: Any) -> None:
        self._lock.release()
