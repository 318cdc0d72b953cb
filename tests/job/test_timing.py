"""How long a cell takes and the ETA: measured per duration key, else the model's guess."""

from __future__ import annotations

import pytest

from pipeline.job.timing import Timings, duration_key, eta

K720 = duration_key("m", {"resolution": "720P", "number_of_frames": 121})
K1080 = duration_key("m", {"resolution": "1080P", "number_of_frames": 121})


def test_duration_keys_tell_resolution_and_length_apart() -> None:
    """Cells of another resolution or length have another key; other inputs do not matter."""
    assert K720 != K1080
    assert duration_key("m", {"resolution": "720P", "number_of_frames": 121, "seed": 4}) == K720
    assert duration_key("m", {"resolution": "720P", "number_of_frames": 241}) != K720


def test_measured_times_replace_the_guess_per_key_then_overall() -> None:
    """Before any measurement the model's typical time; then the median of the key, or of
    all measured cells for a key not measured yet."""
    t = Timings(typical=90.0)
    assert t.per_cell(K720) == 90.0 and "guess" in t.source()
    for s in (2.0, 3.0, 10.0):
        t.add(K720, s)
    assert t.per_cell(K720) == 3.0
    assert t.per_cell(K1080) == 3.0  # not measured: the job's own median, not the guess
    t.add(K1080, 7.0)
    assert t.per_cell(K1080) == 7.0 and t.source() == "measured on 4 cells"
    assert Timings().per_cell(K720) is None


@pytest.mark.parametrize("todo,live,concurrency,expected", [
    ({}, [], 4, 0.0),  # nothing left: 0, not the time of a cell
    ({K720: 4}, [], 4, 3.0),  # one wave
    ({K720: 5}, [], 4, 6.0),  # two waves
    ({K720: 100}, [], 8, 39.0),  # ceil(100 / 8) = 13 waves
    ({K720: 3}, [(K720, 99.0)], 4, 3.0),  # a live cell 1 s in: 2 s left, beside 3 new ones
    ({K720: 4}, [(K720, 99.0)], 4, 5.0),  # the 4th new one waits for the live one
    ({}, [(K720, 50.0)], 4, 0.0),  # overdue: finishing any moment
])
def test_eta_places_cells_on_slots(todo, live, concurrency, expected) -> None:
    """The ETA places live cells first, then the cells still to do, each slot taking the next
    cell as it frees (at `now` = 100)."""
    t = Timings()
    t.add(K720, 3.0)
    assert eta(todo, live, concurrency, t, now=100.0) == pytest.approx(expected)


@pytest.mark.parametrize("todo,live,first,expected", [
    ({K720: 9}, [], 1, 9.0),  # the canary alone (3 s), then 8 cells on 4 slots (6 s)
    ({K720: 8}, [], 0, 6.0),  # without it: two waves
    ({K720: 9}, [(K720, 99.0)], 1, 11.0),  # the live cell is the canary: 2 s left, then 9
    ({K720: 2}, [], 3, 3.0),  # a canary larger than the work: all of it at once
    ({}, [], 1, 0.0),  # nothing left
])
def test_eta_under_a_canary_starts_the_rest_after_it(todo, live, first, expected) -> None:
    """The canary's cells (live ones first) end before any other cell starts (at `now` 100)."""
    t = Timings()
    t.add(K720, 3.0)
    assert eta(todo, live, 4, t, now=100.0, first=first) == pytest.approx(expected)


def test_eta_is_unknown_without_any_duration() -> None:
    """With no measurement and no typical time the ETA is unknown, never a made-up figure."""
    assert eta({K720: 1}, [], 4, Timings(), now=0.0) is None


def test_each_model_is_timed_by_its_own_cells_then_its_own_guess() -> None:
    """In a sweep of several models, a model's cells take its own measured median, else its
    own typical time; a model with no guess takes what the job has measured, else the sweep's
    guess (the median of the others'), so that the sweep's ETA is never unknown while the
    plan shows a time per cell."""
    fast, slow, unknown = (duration_key(m, {"resolution": "720P"}) for m in ("img", "vid", "new"))
    t = Timings(typical={"img": 8.0, "vid": 90.0, "new": None})
    assert (t.per_cell(fast), t.per_cell(slow)) == (8.0, 90.0)
    assert t.per_cell(unknown) == pytest.approx(49.0)
    assert eta({fast: 1, slow: 1, unknown: 1}, [], 3, t, now=0.0) == 90.0
    assert t.per_cell("") == pytest.approx(49.0)  # the job as a whole: the guesses' median
    t.add(duration_key("vid", {"resolution": "1080P"}), 60.0)
    assert t.per_cell(slow) == 60.0  # the same model at another resolution
    assert t.per_cell(fast) == 8.0  # still its own guess, not the video model's time
    assert t.per_cell(unknown) == 60.0  # no guess at all: what the job has measured
