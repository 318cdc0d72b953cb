"""Progress of a run: an observer of the job's figures, told by the runner when they change.

It is handed a function that returns the figures (pipeline.job.status: the same dict `status`
prints), never the runner. Modes: `bar` (tqdm on a terminal), `plain` (a line every LOG_EVERY
seconds while something changes), `json` (one JSON object per change, with the journal's size
it reflects, for scripts that follow a run), `none`.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from ..job.tally import figures_line
from ..prepare import cost

LOG_EVERY = 10.0  # seconds between plain progress lines
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
        self.every = LOG_EVERY if self.mode == "plain" else REFRESH_EVERY
        self.pending = False
        self.bar = None
        if self.mode == "bar":
            from tqdm import tqdm

            # tqdm's own rate and remaining time are left out: the ETA shown is the job's.
            self.bar = tqdm(total=figures()["total"], unit="cell", dynamic_ncols=True,
                            file=sys.stderr, desc=job,
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n}/{total} "
                                       "[{elapsed}] {postfix}")
        self.show(force=True)

    def changed(self) -> None:
        """The figures may have changed (called after every journal event)."""
        if self.mode == "json":
            if not self.pending:  # one line per turn of the loop, however many events
                self.pending = True
                asyncio.get_running_loop().call_soon(self._emit)
        elif self.mode != "none" and time.monotonic() - self.last >= self.every:
            self.show()

    def _emit(self) -> None:
        self.pending = False
        self.show()

    def show(self, force: bool = False) -> None:
        if self.mode == "none":
            return
        now = time.monotonic()
        f = self.figures()
        self.last = now
        if self.mode == "json":
            _line(json.dumps({"job": self.job, "t": round(time.time(), 3), **f}))
            return
        if self.bar is not None:
            self.bar.n = f["counts"]["done"]
            self.bar.set_postfix_str(figures_line(f).split("; ", 1)[-1], refresh=False)
            self.bar.refresh()
            return
        key = (f["counts"], f["spent_usd"], f["committed_usd"])
        if force or key != self.shown:
            self.shown = key
            _line(f"[{self.job}] {figures_line(f)} ({cost.span(now - self.started)})")

    def close(self) -> None:
        if self.pending:
            self._emit()
        self.show(force=True)
        if self.bar is not None:
            self.bar.close()


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
