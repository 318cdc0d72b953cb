"""ratings.jsonl: the votes of a blind ranking (`pipeline review`'s /rank), one JSON object a line.

    {"format": 1, "rater": "ana", "a": CELL_ID, "b": CELL_ID, "winner": "a"|"b"|"tie",
     "at": "2026-12-01T09:30:00Z"}

`a` and `b` are the two cells a rater saw (a on the left), `winner` which was better ("tie":
no difference). The file lives in the job folder and is only ever appended to: each vote is one
`write` of one whole line on a descriptor opened O_APPEND, then fsync (`append_vote`), so a
process killed mid-vote loses that vote and nothing else (the torn line is cut off before the
next vote is appended). A reader (`read_votes`) skips a last
line without its newline (a vote torn by a kill) and refuses a line in a format it does not know
(naming the file and line). pipeline.report.ratings fits scores to the votes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import FormatError, StateError
from ..text import iso_now

FILE = "ratings.jsonl"
FORMAT = 1
WINNERS = ("a", "b", "tie")


def vote(rater: str, a: str, b: str, winner: str, at: str | None = None) -> dict[str, Any]:
    """One line of ratings.jsonl; a bad vote is a ValueError (a caller's mistake)."""
    if winner not in WINNERS:
        raise ValueError(f"winner must be one of {', '.join(WINNERS)}, not {winner!r}")
    if not rater or not a or not b or a == b:
        raise ValueError("a vote needs a rater and two different cells")
    return {"format": FORMAT, "rater": rater, "a": a, "b": b, "winner": winner,
            "at": at or iso_now()}


def append_vote(path: Path, line: dict[str, Any]) -> None:
    """Append one vote durably (one write of the whole line, then fsync)."""
    data = (json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StateError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        _drop_torn_tail(fd)
        if os.write(fd, data) != len(data):
            raise StateError(f"cannot write {path}: a short write (disk full?)")
        os.fsync(fd)
    except OSError as exc:
        raise StateError(f"cannot write {path}: {exc.strerror or exc}; free some space") \
            from None
    finally:
        os.close(fd)


def _drop_torn_tail(fd: int) -> None:
    """A vote torn by a kill (a last line without its newline) is cut off before the next
    one is appended, so it never joins that one's line."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return
    start = max(0, size - 65536)
    tail = os.pread(fd, size - start, start)
    cut = tail.rfind(b"\n")
    os.ftruncate(fd, start + cut + 1 if cut >= 0 else (0 if start == 0 else size))


def read_votes(path: Path) -> list[dict[str, Any]]:
    """Every whole vote of a ratings file (none when it does not exist)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise StateError(f"cannot read {path}: {exc.strerror or exc}") from None
    lines = data.split(b"\n")
    lines.pop()  # after the last newline: empty, or a vote torn by a kill
    out = []
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except ValueError:
            raise StateError(f"{path}:{n}: not a JSON line; remove the line (each line is one "
                             "vote)") from None
        if not isinstance(row, dict) or row.get("format") != FORMAT:
            written = row.get("format") if isinstance(row, dict) else None
            raise FormatError(f"{path}:{n}: a vote in format {written!r}; this version reads "
                              f"format {FORMAT}: upgrade pipeline")
        if row.get("winner") not in WINNERS or not row.get("a") or not row.get("b"):
            raise StateError(f"{path}:{n}: not a vote (it needs a, b and winner a, b or tie)")
        out.append(row)
    return out
