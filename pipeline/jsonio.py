"""JSON as this project writes and reads it: one canonical form, and big integers kept.

orjson is fast (journal lines, report cells, page records) but refuses an integer wider than
64 bits, which a request may hold (a seed is any integer the schema allows): those values fall
back to the json module, here and nowhere else.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Iterable
from typing import Any

import orjson


def canonical(value: Any) -> str:
    """Canonical JSON: sorted keys, compact, UTF-8 kept; equal values give equal text (cell
    ids and body keys are hashes of it: never change its output). Written by orjson when it
    writes the value as json does (see _plain: ~3x faster), else by json."""
    if _plain(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
        except TypeError:  # an integer wider than 64 bits, a lone surrogate
            pass
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


class Streamed:
    """A JSON array whose items are made one at a time as `dump_indented` writes them (a
    million-cell plan never holds a million item dicts at once); `items` makes them anew."""

    def __init__(self, items: Callable[[], Iterable[Any]]):
        self.items = items


def dump_indented(data: dict[str, Any], write: Callable[[str], Any]) -> None:
    """`json.dump(data, f, indent=2, ensure_ascii=False)`, the same text byte for byte, written
    piece by piece; a top-level value that is a Streamed is written one item at a time, each
    item through orjson (json's indented encoder is pure Python: ~5x slower)."""
    if not data:
        write("{}")
        return
    write("{")
    first = True
    for key, value in data.items():
        write(("\n  " if first else ",\n  ") + json.dumps(key, ensure_ascii=False) + ": ")
        first = False
        if not isinstance(value, Streamed):
            write(json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n  "))
            continue
        opened = False
        items = iter(value.items())
        while chunk := list(itertools.islice(items, 512)):
            write(("," if opened else "[") + _items(chunk))
            opened = True
        write("\n  ]" if opened else "[]")
    write("\n}")


def _items(chunk: list[Any]) -> str:
    """Items two levels deep, each on its own lines after a line break, joined by commas, as
    json.dumps(indent=2) writes them there: orjson writes the whole chunk in one call."""
    try:  # inside an object, the items are two levels deep: no indenting them again
        text = orjson.dumps({"": chunk}, default=_refuse, option=_AS_JSON | orjson.OPT_INDENT_2
                            ).decode()
    except TypeError:
        text = None
    if text is None or _suspect(text):  # one item at a time, each looked at
        return ",".join("\n    " + _item(item) for item in chunk)
    return text[_HEAD:-_TAIL]  # '{\n  "": [' and '\n  ]\n}' around "\n    {...},\n    {...}"


_HEAD, _TAIL = len('{\n  "": ['), len("\n  ]\n}")


def _item(value: Any) -> str:
    """One item two levels deep, as json.dumps(indent=2) writes it there."""
    try:
        text = orjson.dumps(value, default=_refuse, option=_AS_JSON | orjson.OPT_INDENT_2
                            ).decode()
    except TypeError:  # an integer wider than 64 bits, a lone surrogate, a date, ...
        text = None
    if text is None or _suspect(text) and not _plain(value):
        return json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n    ")
    return text.replace("\n", "\n    ")


def _suspect(text: str) -> bool:
    """Whether orjson's text may hold what json writes otherwise: NaN or an infinity (orjson
    writes a bare null), a float under 1e-4 without an exponent or with a one-digit one
    (0.00001, 2.5e-7: json 1e-05, 2.5e-07). Substring tests only (a regular expression over a
    large text is slow); a string that looks alike only costs the close look."""
    if ".0000" in text or "null" in text and text.count("null") > text.count('"null"'):
        return True
    at = text.find("e-")
    while at > 0:
        if text[at - 1].isdigit():
            return True
        at = text.find("e-", at + 2)
    return False


# types orjson would write its own way, given to `default` (_refuse) instead
_AS_JSON = (orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
            | orjson.OPT_PASSTHROUGH_SUBCLASS)


def _refuse(value: Any) -> Any:
    raise TypeError(type(value).__name__)


def _plain(value: Any) -> bool:
    """Whether orjson writes `value` as json does: only dicts with string keys, lists, strings,
    integers, booleans, None and floats, but no NaN or infinity (orjson writes null) nor a
    float under 1e-4 (orjson writes 0.00001 where json writes 1e-05); no subclass or other
    type (orjson writes dataclasses, dates, enums its own way)."""
    kind = type(value)
    if kind is dict:
        for k, v in value.items():
            if type(k) is not str:
                return False
            t = type(v)  # the leaves checked here: no call per string or integer
            if not (t is str or t is int or t is bool or v is None or _plain(v)):
                return False
        return True
    if kind is list or kind is tuple:
        for v in value:
            t = type(v)
            if not (t is str or t is int or t is bool or v is None or _plain(v)):
                return False
        return True
    if kind is float:
        return value == 0.0 or 1e-4 <= abs(value) < math.inf
    return kind is str or kind is int or kind is bool or value is None


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
