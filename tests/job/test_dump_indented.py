"""`plan --json` is written cell by cell (pipeline.jsonio.dump_indented): the same text, byte for
byte, as json.dump(indent=2, ensure_ascii=False) of the whole plan."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from pipeline.jsonio import Streamed, dump_indented

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
