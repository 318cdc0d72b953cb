"""pipeline.jsonio through orjson where it can: `plan --json` is written cell by cell
(dump_indented), the same text, byte for byte, as json.dump(indent=2, ensure_ascii=False) of the
whole plan; and `canonical` (cell ids are hashes of it) is the same text as json's."""

from __future__ import annotations

import datetime
import enum
import io
import json
import random
from typing import Any

import pytest

from pipeline.jsonio import Streamed, canonical, dump_indented

CASES: list[dict[str, Any]] = [
    {},
    {"cells": []},
    {"cells": [{}, [], {"a": []}], "after": {"x": [1, {}]}},
    {"head": "é\n\u2028\x00\x7f\"\\😀", "cells": [{"id": "ab", "values": {"seed": 3},
                                                   "request": {"p": "x", "l": ["a", "b"]},
                                                   "estimated_cost": 0.25}]},
    # what orjson writes otherwise: NaN, tiny floats, wide integers, keys that are no strings
    {"cells": [{"f": float("nan")}, {"f": 2.5e-07, "g": [1e-05, 0.0]}, {"w": 2**70},
               {"k": {1: 2, None: 3}}, {"inf": [float("inf")]}, {"big": 1e16}]},
]


@pytest.mark.parametrize("data", CASES)
def test_same_text_as_json_dump(data: dict[str, Any]) -> None:
    """Every value json writes, orjson's differences included, comes out the same."""
    streamed = {k: Streamed(lambda v=v: iter(v)) if k == "cells" else v for k, v in data.items()}
    out = io.StringIO()
    dump_indented(streamed, out.write)
    assert out.getvalue() == json.dumps(data, indent=2, ensure_ascii=False)


def _json_canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=repr)


class _Kind(int, enum.Enum):
    A = 1


def _value(rng: random.Random, depth: int = 0) -> Any:
    chars = "abzAZ09 _-é€😀\u2028\x00\x1f\"\\\ud800\uffff"

    def text() -> str:
        return "".join(rng.choice(chars) for _ in range(rng.randint(0, 6)))

    r = rng.random()
    if depth < 3 and r < 0.2:
        return {text(): _value(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    if depth < 3 and r < 0.3:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return rng.choice([text(), rng.randint(-2**70, 2**70), rng.randint(-9, 9), True, None,
                       rng.random() * 10 ** rng.randint(-9, 20), float("nan"), -0.0,
                       float("inf"), datetime.date(2024, 1, 2), (1, "a"), _Kind.A, {1: 2}])


def test_canonical_is_json_text() -> None:
    """canonical gives json's text for 20,000 random values (wide integers, tiny floats, NaN,
    surrogates, keys out of code point order, dates and enums through `default=repr`)."""
    rng = random.Random(21)
    for _ in range(20_000):
        value = _value(rng)
        try:
            expected = _json_canonical(value)
        except (TypeError, ValueError) as exc:
            with pytest.raises(type(exc)):
                canonical(value)
            continue
        assert canonical(value) == expected, value


def test_dump_indented_is_json_text_for_random_items() -> None:
    """dump_indented gives json's text for 3,000 random items, or raises as json does."""
    rng = random.Random(7)
    for _ in range(3_000):
        data = {"cells": [_value(rng) for _ in range(3)]}
        try:
            expected = json.dumps(data, indent=2, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            with pytest.raises(type(exc)):
                dump_indented({"cells": Streamed(lambda d=data: d["cells"])}, io.StringIO().write)
            continue
        out = io.StringIO()
        dump_indented({"cells": Streamed(lambda d=data: d["cells"])}, out.write)
        assert out.getvalue() == expected, data


def test_many_items_in_chunks() -> None:
    """Items are written by the chunk; a chunk with one item orjson writes otherwise (a NaN)
    is written item by item, the others whole: the text is json's all the same."""
    cells = [{"id": f"{i:04x}", "values": {"seed": i}, "request": {"p": "x", "l": ["a"]},
              "estimated_cost": 0.25 if i != 700 else float("nan")} for i in range(1500)]
    data = {"head": 1, "cells": cells, "tail": [2]}
    out = io.StringIO()
    dump_indented({**data, "cells": Streamed(lambda: iter(cells))}, out.write)
    assert out.getvalue() == json.dumps(data, indent=2, ensure_ascii=False)
