"""Progress of a run: an observer of the job's figures, told by the runner when they change.

It is handed a function that returns the figures (pipeline.job.status: the same dict `status`
prints), never the runner. Modes: `bar` (tqdm on a terminal), `plain` (the default when stderr
is not a terminal: a line whenever the counts change, at most one per CHANGE_GAP seconds, and
at least one every LOG_EVERY seconds even when nothing changes, so that a run under CI,
`nohup` or `script` is never silent), `json` (one JSON object per change, with the journal's
size it reflects, for scripts that follow a run), `none`. While the API cannot be reached, the
line ends with `retrying (n)` (the figures' `retrying`: connections tried again). While a
canary is unproven the line says so: `canary: waiting for 1 cell before submitting 499`.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from .. import text
from ..job.tally import figures_line

LOG_EVERY = 10.0  # plain mode: a line at least this often (seconds), changed or not
CHANGE_GAP = 1.0  # plain mode: at most one line this often for changes of the counts
REFRESH_EVERY = 0.5  # seconds between bar refreshes
MODES = ("bar", "plain", "json", "none")


class Progress:
    """Shows a job's figures; cheap to tell about every change."""

    def __init__(self, job: str, figures: Callable[[], dict[str, Any]], mode: str | None = None):
        self.job = job
        self.figures = figures
        self.mode = mode or ("bar" if sys.stderr.isatty() else "plain")
        self.started = time.monotonic()
        self.last = 0.0
        self.shown: Any = None
        self.every = CHANGE_GAP if self.mode == "plain" else REFRESH_EVERY
        self.pending = False
        self.timer: asyncio.TimerHandle | None = None
        self.bar = None
        if self.mode == "bar":
            from tqdm import tqdm

            # tqdm's own rate and remaining time are left out: the ETA shown is the job's. The
            # figures go in {desc}, placed last (tqdm's {postfix} opens with a comma).
            name = job.replace("{", "{{").replace("}", "}}")
            self.bar = tqdm(total=figures()["total"], unit="cell", dynamic_ncols=True,
                            file=sys.stderr, desc="",
                            bar_format=name + ": {percentage:3.0f}%|{bar}| {n}/{total} "
                                       "[{elapsed}] {desc}")
        self.closed = False
        self.show(force=True)
        if self.mode == "plain":
            self._schedule_heartbeat()

    def changed(self) -> None:
        """The figures may have changed (called after every journal event)."""
        if self.mode == "json":
            if not self.pending:  # one line per turn of the loop, however many events
                self.pending = True
                asyncio.get_running_loop().call_soon(self._emit)
        elif self.mode == "plain":
            if not self.pending:  # shown once the gap since the last line has passed
                self.pending = True
                wait = max(0.0, self.last + self.every - time.monotonic())
                self._at(wait, self._emit)
        elif self.mode != "none" and time.monotonic() - self.last >= self.every:
            self.show()

    def _emit(self) -> None:
        if not self.pending:  # already shown (by close)
            return
        self.pending = False
        self.show()

    def _at(self, delay: float, what: Any) -> None:
        try:
            asyncio.get_running_loop().call_later(delay, what)
        except RuntimeError:  # no loop (a library user showing progress by hand)
            what()

    def _heartbeat(self) -> None:
        """Plain mode: a line when LOG_EVERY seconds passed without one; then check again."""
        self.timer = None
        if self.mode != "plain" or self.closed:
            return
        if time.monotonic() - self.last >= LOG_EVERY - 0.01:
            self.show(force=True)
        self._schedule_heartbeat()

    def _schedule_heartbeat(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        delay = max(0.05, self.last + LOG_EVERY - time.monotonic())
        self.timer = loop.call_later(delay, self._heartbeat)

    def show(self, force: bool = False) -> None:
        if self.mode == "none":
            return
        now = time.monotonic()
        f = self.figures()
        self.last = now
        if self.mode == "json":
            _line(json.dumps({"job": self.job, "t": round(time.time(), 3), **f}))
            return
        retrying = f" retrying ({f['retrying']})" if f.get("retrying") else ""
        if self.bar is not None:
            self.bar.n = f["counts"]["done"]
            self.bar.set_description_str(bar_text(f) + canary_text(f) + retrying,
                                         refresh=False)
            self.bar.refresh()
            return
        key = (f["counts"], f["spent_usd"], f["committed_usd"], f.get("retrying"),
               f.get("canary"))
        if force or key != self.shown:
            self.shown = key
            _line(f"[{self.job}] {figures_line(f)}{canary_text(f)} "
                  f"({text.span(now - self.started)})" + (";" + retrying if retrying else ""))

    def close(self) -> None:
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.pending:
            self._emit()
        # the last figures, unless the line just shown already says them (plain: no repeat)
        self.show(force=self.mode != "plain")
        if self.bar is not None:
            self.bar.close()


def bar_text(f: dict[str, Any]) -> str:
    """The figures beside the bar, which shows done/total itself: the other counts (queued,
    running, ...) and the money and ETA."""
    line = figures_line(f)
    head = f"{f['counts']['done']}/{f['total']} done"
    return line[len(head):].lstrip(",; ") if line.startswith(head) else line


def canary_text(f: dict[str, Any]) -> str:
    """`; canary: waiting for 1 cell before submitting 499` while a canary is unproven."""
    canary = f.get("canary")
    if not canary:
        return ""
    n = canary["waiting_for"]
    return (f"; canary: waiting for {n} cell{'s' if n != 1 else ''} before submitting "
            f"{canary['holding_back']}")


def _line(text: str) -> None:
    """One whole line on stderr. Written to the file descriptor until every byte is out: an
    unbuffered text stream can drop the rest of a write that a signal cut short (a run being
    stopped and continued), and a reader must never see two lines run together."""
    sys.stderr.flush()
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (a test's capture, say)
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
        return
    data = (text + "\n").encode("utf-8", "replace")
    while data:
        data = data[os.write(fd, data):]
