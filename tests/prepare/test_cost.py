"""Cost of one request from a price sheet: per second of the clip's nominal length, or per
output, maybe by an input; unknown stays unknown."""

from __future__ import annotations

import pytest

from pipeline.models.cost import cell_cost, normalized, video_seconds


@pytest.mark.parametrize("request_,seconds", [
    ({"number_of_frames": 121}, 5.0),  # the "5 s" clip: billed as 5 s, not 5.04
    ({"number_of_frames": 241}, 10.0),
    ({"duration": 8}, 8.0),
    ({}, 0.0),
    ({"number_of_frames": True}, 0.0),
])
def test_billed_seconds(request_, seconds) -> None:
    """A per-second price charges the nominal length of the clip."""
    assert video_seconds(request_) == seconds


@pytest.mark.parametrize("price,request_,usd", [
    ({"unit": "second", "usd": 0.05}, {"number_of_frames": 121}, 0.25),
    ({"unit": "output", "usd": 0.3}, {"number_of_frames": 241}, 0.3),
    ({"unit": "second", "by": "resolution", "usd": {"720P": 0.04, "1080P": 0.08}},
     {"number_of_frames": 241, "resolution": "1080P"}, 0.8),
    ({"unit": "second", "by": "resolution", "usd": {"720P": 0.04}},
     {"number_of_frames": 121, "resolution": "1080P"}, None),  # no price for this value
    ({"unit": "unknown"}, {"number_of_frames": 121}, None),
    (None, {"number_of_frames": 121}, None),
    ({"unit": "second", "usd": 0.05}, {}, None),  # no length to charge for
])
def test_cell_cost(price, request_, usd) -> None:
    """USD for one request, or None (unknown, never $0)."""
    got = cell_cost(price, request_)
    assert got == (pytest.approx(usd) if usd is not None else None)


def test_equal_prices_compare_equal_however_written() -> None:
    """Key order and int/float spelling do not make two prices differ."""
    a = {"unit": "second", "by": "resolution", "usd": {"720P": 0.05, "1080P": 1}}
    b = {"usd": {"1080P": 1.0, "720P": 0.05}, "unit": "second"}
    assert normalized(a) == normalized(b)
    assert normalized({"unit": "second", "usd": 0.05}) != normalized({"unit": "output",
                                                                       "usd": 0.05})
