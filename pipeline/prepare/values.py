"""A cell's matrix values: when two are the same (`same`), and how they are shown in one short
line (`describe`, `difference`, `shorten`).

A module of its own because many read them: the combinations and the matrix checks compare
values, expanding and the plan's warnings show a cell by its values, and the labels
(pipeline.prepare.identity) shorten them. Pure, and importing nothing of the package, so that
each of those can import it.
"""

from __future__ import annotations

from typing import Any


def same(a: Any, b: Any) -> bool:
    """Matrix value equality: 1 and True differ, 1 and 1.0 do not."""
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def describe(values: dict[str, Any], limit: int = 80) -> str:
    """`{k=v, k=v}` of a cell's values in about `limit` characters: long values are shortened,
    and the pairs left out are counted (`and 2 more`)."""
    pairs = [f"{k}={shorten(v)}" for k, v in values.items()]
    shown: list[str] = []
    for i, pair in enumerate(pairs):
        if shown and len(", ".join(shown + [pair])) > limit - 12 and i < len(pairs) - 1 or \
                shown and len(", ".join(shown + [pair])) > limit:
            return "{" + ", ".join(shown) + f" and {len(pairs) - i} more" + "}"
        shown.append(pair)
    return "{" + ", ".join(shown) + "}"


def difference(a: dict[str, Any], b: dict[str, Any]) -> tuple[str, str]:
    """Two cells' values as `describe` shows them, but only where they differ, so that what
    tells them apart is never cut off."""
    keys = [k for k in {**a, **b} if k not in a or k not in b or not same(a[k], b[k])]
    return (describe({k: a.get(k, "(not set)") for k in keys}),
            describe({k: b.get(k, "(not set)") for k in keys}))


def shorten(value: Any, n: int = 24) -> str:
    text = str(value)
    return text if len(text) <= n else text[: n - 1] + "…"
