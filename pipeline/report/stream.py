"""Reading a job folder one cell at a time: plan.json as a stream of cells, and an index of
where each cell's events are in the journal.

A report of a 100,000-cell job cannot hold the replayed journal and the plan with every
detail (that took 1.7 GB): `PlanStream` yields plan.json's cells one by one without loading
the file whole, and `JournalIndex` reads the journal once, keeping per event only its cell's
number and its byte span, so that `record(cell)` replays one cell's events on demand
(pipeline.job.journal's own rule book, `JobState.apply`).
"""

from __future__ import annotations

import json
import os
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from ..errors import StateError
from ..job.folder import JobFolder, check_plan
from ..job.journal import JobState
from ..job.lines import JournalLines
from ..job.records import CellRecord

CELLS = "cells"
SIZE_BITS = 24  # a journal line is far shorter than 16 MB (a request is at most ~100 KB)
SIZE_MASK = (1 << SIZE_BITS) - 1


class PlanStream:
    """plan.json read as a stream: `header` is every key before its `cells`; `cells()`
    yields the cells one at a time (and may be called again). A plan.json of a format this
    version does not read is refused (pipeline.job.folder.check_plan)."""

    def __init__(self, path: Path):
        self.path = path
        self.header: dict[str, Any] = {}
        for _ in self._walk(header_only=True):
            pass
        check_plan(self.header, path)

    def cells(self) -> Iterator[dict]:
        yield from self._walk(header_only=False)

    def _walk(self, *, header_only: bool) -> Iterator[dict]:
        try:
            with open(self.path, encoding="utf-8") as fh:
                yield from _Reader(fh, self.path).top(self.header, header_only)
        except (OSError, UnicodeDecodeError) as exc:
            raise StateError(f"cannot read {self.path}: {exc}; run the job again to rewrite "
                             "it") from None


class _Reader:
    """Just enough of an incremental JSON reader for one object holding a long array: each
    value is decoded by the json module from a window of the file."""

    CHUNK = 1 << 20

    def __init__(self, fh: Any, path: Path):
        self.fh, self.path = fh, path
        self.buf, self.pos, self.eof = "", 0, False
        self.decoder = json.JSONDecoder()

    def _more(self) -> bool:
        if self.eof:
            return False
        chunk = self.fh.read(self.CHUNK)
        if not chunk:
            self.eof = True
            return False
        self.buf = self.buf[self.pos:] + chunk
        self.pos = 0
        return True

    def _char(self) -> str:
        """The next character that is not white space (not consumed); '' at the end."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < len(self.buf) or not self._more():
                return self.buf[self.pos:self.pos + 1]

    def _expect(self, chars: str) -> str:
        c = self._char()
        if not c or c not in chars:
            raise StateError(f"{self.path} is not a plan (expected {chars!r} at "
                             f"{c!r}); run the job again to rewrite it")
        self.pos += 1
        return c

    def _value(self) -> Any:
        self._char()
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError:
                if self._more():
                    continue
                raise StateError(f"{self.path} is not valid JSON; run the job again to rewrite "
                                 "it") from None
            if end == len(self.buf) and self._more():  # a number may go on in the next chunk
                continue
            self.pos = end
            return value

    def top(self, header: dict, header_only: bool) -> Iterator[dict]:
        self._expect("{")
        if self._char() == "}":
            return
        while True:
            key = self._value()
            self._expect(":")
            if key == CELLS:
                if header_only:
                    return
                self._expect("[")
                if self._char() == "]":
                    self.pos += 1
                else:
                    while True:
                        yield self._value()
                        if self._expect(",]") == "]":
                            break
            else:
                value = self._value()
                if header_only:
                    header[key] = value
            if self._expect(",}") == "}":
                return


class JournalIndex:
    """Where each cell's events are in the journal: O(events) small numbers in memory."""

    def __init__(self, folder: JobFolder):
        self.path = folder.journal
        self.folder = folder
        self.runs: list[dict] = []
        self.ends: list[dict] = []
        self.last_t: list[float | None] = []  # per run: the time of its last event
        self.ids: dict[str, int] = {}  # cell id -> its number, in first-seen order
        self.names: list[str] = []  # its number -> the very string object `ids` holds
        lines = JournalLines(self.path)
        # Per event, its span packed in one number (start << SIZE_BITS | size) and the next
        # event of the same cell (a chain per cell, in journal order): 12 bytes an event,
        # built in one pass, never copied (100,000 cells: ~8 MB).
        spans, after = array("Q"), array("I")
        first, last = array("I"), array("I")  # per cell: its first and last event (+1; 0: none)
        try:
            for lineno, start, end, event in lines:
                kind = event.get("e")
                if kind == "run":
                    try:
                        JobState(folder.path).apply(event)  # refuses a format it cannot read
                    except StateError as exc:  # a FormatError stays one
                        raise type(exc)(f"{self.path}:{lineno}: {exc}") from None
                    self.runs.append(event)
                    self.last_t.append(event.get("t"))
                    continue
                if kind == "end":
                    self.ends.append(event)
                    continue
                try:
                    cid = event["cell"]
                    number = self.ids.setdefault(cid, len(self.ids))
                except (KeyError, TypeError):
                    raise StateError(f"{self.path}:{lineno}: malformed {kind!r} event (no "
                                     "cell)") from None
                if number == len(self.names):
                    self.names.append(cid)
                    first.append(0)
                    last.append(0)
                size = end - start
                if size >= 1 << SIZE_BITS:
                    raise StateError(f"{self.path}:{lineno}: a journal line of {size:,} bytes; "
                                     "this is not a journal pipeline wrote")
                spans.append(start << SIZE_BITS | size)
                after.append(0)
                here = len(spans)  # this event's number + 1
                if last[number]:
                    after[last[number] - 1] = here
                else:
                    first[number] = here
                last[number] = here
                if self.last_t and event.get("t"):
                    self.last_t[-1] = max(self.last_t[-1] or 0.0, event["t"])
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StateError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        self.torn_tail, self.valid_bytes = lines.torn_tail, lines.valid_bytes
        self._spans, self._after, self._first = spans, after, first
        self._fd: int | None = None
        self._state = JobState(folder.path)

    @property
    def header(self) -> dict:
        return self.runs[-1] if self.runs else {}

    def same(self, cell_id: str) -> str:
        """The index's own string for a cell id, so that the report's tally and sums hold one
        string per cell, not one per reading (100,000 cells: ~13 MB)."""
        number = self.ids.get(cell_id)
        return cell_id if number is None else self.names[number]

    def record(self, cell_id: str) -> CellRecord | None:
        """Everything the journal says about one cell (None: never in the journal)."""
        number = self.ids.get(cell_id)
        if number is None:
            return None
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        state = self._state
        state.cells.clear()
        at = self._first[number]
        while at:
            span = self._spans[at - 1]
            line = os.pread(self._fd, span & SIZE_MASK, span >> SIZE_BITS)
            event = orjson.loads(line)
            try:
                state.apply(event)
            except (KeyError, TypeError) as exc:
                raise StateError(f"{self.path}: malformed {event.get('e')!r} event of cell "
                                 f"{cell_id} ({exc})") from None
            at = self._after[at - 1]
        return state.cells.pop(cell_id, None)

    def close(self) -> None:
        """Close the journal and drop the spans (the ids and runs stay)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._spans, self._after, self._first = array("Q"), array("I"), array("I")

    def __enter__(self) -> JournalIndex:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
