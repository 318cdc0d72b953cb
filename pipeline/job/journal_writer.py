"""The append side of a job's journal (pipeline.job.journal holds its events and replay):
one writer per run, under the job's lock, that makes each event durable before anything that
costs money depends on it, and survives a full disk long enough not to lose a paid request.
"""

from __future__ import annotations

import asyncio
import errno
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import jsonio
from ..durable import fsync_dir
from ..errors import StateError
from .folder import JobFolder
from .journal import JobState

BALLAST_BYTES = 1 << 20  # room for ~1,000 events once the disk is full


class JournalWriter:
    """The append side of the journal; one per run, under the job's lock.

    A ballast file of BALLAST_BYTES is kept beside it while the run lives. When the disk fills,
    the ballast is given up so that the events already owed (above all the request ids of
    submits the API has just accepted) still reach the journal; `low_space` is set, and
    `on_full` (the run's stop rule: pipeline.run.stopping.Stopping.disk_full) is called once,
    after the event that spent it. Without this, a full disk right after a POST would leave a
    paid request that the next run can only hold as unknown."""

    def __init__(self, folder: JobFolder | Path, state: JobState, ballast: int = BALLAST_BYTES):
        folder = JobFolder.at(folder)
        self.path = folder.journal
        folder.path.mkdir(parents=True, exist_ok=True)
        self.ballast = folder.ballast
        self.low_space = False
        try:
            with open(self.ballast, "wb") as fh:
                fh.write(b"\0" * ballast)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            self.ballast.unlink(missing_ok=True)
            raise StateError(f"cannot write in {folder.path}: {exc.strerror or exc}; free some "
                             "space and run again to resume") from None
        new = not self.path.exists()
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if state.torn_tail:
            os.ftruncate(self.fd, state.valid_bytes)  # cut the torn line before appending
            os.fsync(self.fd)
        if new:
            fsync_dir(folder.path)
        self.size = state.valid_bytes if state.torn_tail else os.fstat(self.fd).st_size
        self.state = state
        self.written = 0
        self.synced = 0
        self._lock: asyncio.Lock | None = None
        self.failed: BaseException | None = None
        self.listener: Callable[[dict[str, Any]], None] | None = None  # each event, applied
        self.on_full: Callable[[], None] | None = None  # called once the ballast is spent
        self._told_full = False

    def write(self, event: dict[str, Any]) -> dict[str, Any]:
        """Append one event (durable only after `durable()`/`sync()`), and apply it."""
        if self.failed is not None:
            raise StateError(f"the journal {self.path} could not be written earlier "
                             f"({self.failed}); stopping")
        event.setdefault("t", round(time.time(), 3))
        line = jsonio.line(event)
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
        self.size += len(line)
        self.state.valid_bytes = self.size
        self.state.apply(event)
        if self.listener is not None:
            self.listener(event)
        if self.low_space and not self._told_full and self.on_full is not None:
            self._told_full = True
            self.on_full()
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
