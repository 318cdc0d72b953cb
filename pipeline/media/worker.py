"""A process of its own for the CPU-heavy part of a run's media: decoding clips for their frame
strips, posters and triage (pipeline.media.strips.Previews hands it its work).

A decode holds the GIL for much of its time (frames to Pillow pictures, the triage's
measures): in the run's own process it competes with the event loop that submits, polls and
downloads, and at a thousand live requests that loop is the run's limit (docs/benchmarks.md,
issue 21). One child process, started with `spawn` (never `fork`: the run's process has
threads), takes the work one item at a time over a pipe: `call(fn, *args)` sends a picklable
top-level function with its arguments and waits for its answer. The child ends when it reads
`None` (`close`) or the end of its pipe (the run's process is gone, a crash included: it never
outlives the run by more than the decode it is in).

Nothing here is worth a run: a child that cannot be started, or dies, raises `Unavailable`, and
the caller does the work in its own process instead.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable
from typing import Any

log = logging.getLogger("pipeline.media")

NICE = 5  # the child's niceness above the run's: on a small machine the run's own loop (and a
#           local simulator) go first; previews catch up when it waits on the network


class Unavailable(Exception):
    """The worker process could not be started, or it died: do the work in this process."""


class WorkerProcess:
    """One child process that runs calls for its parent, one at a time, started on first use.
    Used from one thread at a time (the previews' worker thread)."""

    def __init__(self) -> None:
        self._conn: Any = None
        self._proc: Any = None
        self.broken = False  # set once it failed: no new child is tried in this run

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """`fn(*args)` in the child, its result here; an exception `fn` raised is raised here
        as a RuntimeError with its text. Unavailable when there is no child to do it."""
        if self.broken:
            raise Unavailable("the worker process failed before")
        try:
            if self._proc is None:
                self._start()
            self._conn.send((fn, args))
            ok, value = self._conn.recv()
        except (OSError, EOFError, ValueError, RuntimeError) as exc:
            # cannot start a process (no fork allowed, out of memory, ...) or it died (killed,
            # a crash inside the decoder): this item and the rest are done by the caller
            self.broken = True
            log.info("the media worker process is not available: %s", exc or type(exc).__name__)
            self._stop(kill=True)
            raise Unavailable(str(exc)) from exc
        if not ok:
            raise RuntimeError(value)
        return value

    def _start(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        here, there = ctx.Pipe()
        proc = ctx.Process(target=_serve, args=(there,), name="pipeline-media", daemon=True)
        proc.start()
        there.close()  # the child's end: its death is then this end's EOF
        self._conn, self._proc = here, proc

    def close(self) -> None:
        """Let the child finish and end (it has nothing queued: calls are one at a time)."""
        if self._proc is not None:
            try:
                self._conn.send(None)
            except OSError:
                pass
            self._stop(kill=False)

    def _stop(self, kill: bool) -> None:
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if proc is None:
            return
        if not kill:
            proc.join(timeout=30)
        if proc.is_alive():
            proc.kill()
            proc.join(timeout=5)
        conn.close()


def _keep_freed_memory() -> None:
    """Keep the memory a decode frees for the next one (glibc only). A decoder's frame buffers
    are freed when its clip is closed; glibc then gives the top of its heap back to the system
    and the next clip's buffers fault every page in again: ~550 page faults and ~1 ms of
    system time a simulator clip, a sixth of its decode. A fixed trim threshold of 64 MB (a
    freed top kept up to that) and large buffers from the heap rather than mmaps of their own
    (up to 32 MB: a 4K frame) make them one allocation for the process's life."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name:
        return
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
    mallopt(m_trim_threshold, 64 << 20)
    mallopt(m_mmap_threshold, 32 << 20)


def _serve(conn: Any) -> None:
    """The child: answer each call until told to stop or the parent is gone."""
    try:
        os.nice(NICE)
    except OSError:
        pass
    _keep_freed_memory()
    while True:
        try:
            item = conn.recv()
        except (EOFError, OSError):  # the run's process ended (or was killed)
            return
        if item is None:
            return
        fn, args = item
        try:
            answer = (True, fn(*args))
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which logs it
            answer = (False, f"{type(exc).__name__}: {exc}")
        try:
            conn.send(answer)
        except OSError:
            return
