"""JSON as this project writes and reads it: one canonical form, and big integers kept.

orjson is fast (journal lines, report cells, page records) but refuses an integer wider than
64 bits, which a request may hold (a seed is any integer the schema allows): those values fall
back to the json module, here and nowhere else.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def canonical(value: Any) -> str:
    """Canonical JSON: sorted keys, compact, UTF-8 kept; equal values give equal text (cell
    ids and body keys are hashes of it: never change its output)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=repr)


def line(value: Any) -> bytes:
    """One compact JSON line, newline included (a journal event, a spooled report cell)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:  # an integer wider than 64 bits
        return (json.dumps(value, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


def compact(value: Any, *, sort_keys: bool = False) -> str:
    """Compact JSON text (a page record, a facet value's key)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS if sort_keys else 0).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys)


def indented(value: Any) -> str:
    """JSON indented two spaces a level (a cell of report.json)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
    except TypeError:
        return json.dumps(value, indent=2, ensure_ascii=False)


def loads(data: bytes | str) -> Any:
    """Parse JSON written by `line`/`compact` (orjson, else json for wide integers)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


STAMP = ("format", "pipeline")  # the keys `stamped` adds (docs/formats.md)


def stamped(fmt: int, data: dict[str, Any]) -> dict[str, Any]:
    """A stored file's content, opening with its format (and the writing pipeline's version,
    which says who wrote it). See docs/formats.md for every file and its format."""
    from . import __version__

    return {"format": fmt, "pipeline": __version__, **data}


def unstamped(data: dict[str, Any]) -> dict[str, Any]:
    """A stored file's content without what `stamped` added."""
    return {k: v for k, v in data.items() if k not in STAMP}


def check_format(data: Any, path: Any, readable: frozenset[int], fix: str) -> int:
    """The format of a stored file's content; content that is no JSON object, or of a format
    this version cannot read, is a FormatError (a StateError: exit 2) naming the file and
    what to do (`fix`). A file with no `format` was written before files had one: format 1."""
    from .errors import FormatError

    if not isinstance(data, dict):
        raise FormatError(f"{path} does not hold a JSON object; {fix}")
    written = data.get("format", 1)
    if type(written) is not int or written not in readable:
        by = data.get("pipeline")
        wrote = f"pipeline {by}" if isinstance(by, str) and by else "another version of pipeline"
        known = " or ".join(map(str, sorted(readable)))
        raise FormatError(f"{path} is in format {written!r}, written by {wrote}; this version "
                          f"reads format {known}: {fix}")
    return written
