"""Reading a journal file line by line, in chunks, with each line's byte span.

The one place that knows how a journal's bytes become events: a torn last line (the process
died mid-write) ends the reading quietly; a corrupt line anywhere else is a StateError naming
its line. The replay (pipeline.job.journal.read_state) and the report's journal index
(pipeline.report.stream) both read through it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from ..errors import StateError


class JournalLines:
    """The events of a journal file, each with its line number and byte span, read in chunks
    (a 100,000-cell journal is never held whole). A torn last line (the process died
    mid-write) ends the iteration and sets `torn_tail`; a corrupt line anywhere else is a
    StateError. `valid_bytes`: the length of the whole lines read."""

    CHUNK = 1 << 20

    def __init__(self, path: Path):
        self.path = path
        self.torn_tail = False
        self.valid_bytes = 0

    def __iter__(self) -> Iterator[tuple[int, int, int, dict[str, Any]]]:
        """(line number, start offset, end offset, event) per whole line, in file order."""
        path = self.path
        with open(path, "rb") as fh:
            buf = b""
            base = 0  # file offset of buf[0]
            lineno = 0
            while True:
                chunk = fh.read(self.CHUNK)
                buf = buf + chunk if buf else chunk
                pos = 0
                while True:
                    end = buf.find(b"\n", pos)
                    if end == -1:
                        break
                    lineno += 1
                    try:
                        # orjson: 3x json's speed, and replay is on every start and status
                        event = orjson.loads(buf[pos:end])
                        if not isinstance(event, dict):
                            raise ValueError("not an object")
                    except ValueError:
                        rest = buf[end + 1:] + fh.read()
                        if b"\n" not in rest and not rest.strip():
                            self.torn_tail = True  # a torn last line that ended in a newline
                            return
                        raise StateError(f"{path}:{lineno}: corrupt journal line; the state "
                                         "cannot be trusted (restore it from a backup or start "
                                         "a new output folder)") from None
                    yield lineno, base + pos, base + end + 1, event
                    self.valid_bytes = base + end + 1
                    pos = end + 1
                buf = buf[pos:]
                base += pos
                if not chunk:
                    self.torn_tail = bool(buf)  # no newline: the process died mid-write
                    return
