"""The budget of one template rendering: steps, time, and the size of every value it builds.

A manifest may come from someone else: each rendering may take at most MAX_STEPS steps (loop
iterations, calls and filter uses) and MAX_SECONDS, and no value built inside it may weigh
more than MAX_SIZE characters or items. The sizes are judged *before* an operation builds its
value (`replaced_size`, `joined_size`, `printf_size`), so nothing large is ever made.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import jinja2

MAX_SIZE = 1_000_000  # characters (or items) any value built inside a template may weigh
MAX_REPEAT = MAX_SIZE  # a string or list may be repeated up to this size by `*`
MAX_STEPS = 1_000_000  # loop iterations, calls and filter uses in one rendering
MAX_SECONDS = 2.0  # wall-clock time one rendering may take
MAX_INT_BITS = 13_000  # integers computed in a template stay printable (< 4,000 digits)
PRINTF_WIDTH = re.compile(r"%[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def refuse(message: str) -> jinja2.exceptions.SecurityError:
    return jinja2.exceptions.SecurityError(message)


class Budget:
    __slots__ = ("steps", "until", "written")

    def __init__(self) -> None:
        self.steps = 0
        self.written = 0
        self.until = time.monotonic() + MAX_SECONDS


local = threading.local()  # the Budget of the rendering going on in this thread


def tick(n: int = 1) -> None:
    """One step of a rendering: refuse past MAX_STEPS steps or MAX_SECONDS seconds."""
    budget = getattr(local, "budget", None)
    if budget is None:  # constant folding at compile time
        return
    budget.steps += n
    if budget.steps > MAX_STEPS:
        raise refuse(f"the template takes more than {MAX_STEPS:,} steps (loop iterations "
                      "and calls)")
    if time.monotonic() > budget.until:
        raise refuse(f"the template took more than {MAX_SECONDS:g} s to render")


def weight(value: Any, limit: int = MAX_SIZE) -> int:
    """About how many characters `value` prints as; counting stops past `limit`."""
    if isinstance(value, (str, bytes)):
        return len(value)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return 8
    if isinstance(value, int):
        return value.bit_length() // 3 + 1
    if isinstance(value, (list, tuple, set, frozenset, dict)):
        total = 2 + 2 * len(value)
        items = value.items() if isinstance(value, dict) else value
        for item in items:
            if total > limit:
                break
            total += weight(item, limit - total)
        return total
    return 16


def check(value: Any, what: str = "a value") -> Any:
    size = weight(value)
    if size > MAX_SIZE:
        raise refuse(f"{what} would weigh more than {MAX_SIZE:,} characters")
    return value


def int_arg(value: Any, what: str) -> None:
    if isinstance(value, int) and abs(value) > MAX_SIZE:
        raise refuse(f"{what} {value} is larger than {MAX_SIZE:,}")


def replaced_size(s: Any, old: Any, new: Any, count: Any = -1) -> int:
    if not (isinstance(s, (str, bytes)) and isinstance(old, type(s))
            and isinstance(new, type(s))):
        return weight(s)
    hits = len(s) + 1
    if isinstance(s, str) and isinstance(old, str) and old:
        hits = s.count(old)
    elif isinstance(s, bytes) and isinstance(old, bytes) and old:
        hits = s.count(old)
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    return len(s) + hits * max(0, len(new) - len(old))


def joined_size(sep: Any, items: Any) -> int:
    items = list(items) if not isinstance(items, (list, tuple, str)) else items
    return weight(sep) * max(0, len(items) - 1) + weight(items)


def printf_size(fmt: str, args: Any) -> int:
    """An upper bound of len(fmt % args), widths included."""
    values = args if isinstance(args, tuple) else (args,)
    most = max((weight(v) for v in (values if not isinstance(args, dict) else args.values())),
               default=0)
    size = len(fmt)
    for match in PRINTF_WIDTH.finditer(fmt):
        size += most
        for part in match.groups():
            if part == "*":
                size += max((abs(v) for v in values if isinstance(v, int)), default=0)
            elif part:
                size += int(part) if len(part) < 12 else MAX_SIZE + 1
    return size


