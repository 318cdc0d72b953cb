"""Plain progress (stderr not a terminal): a line on every change of the counts, throttled, and a
line at least every LOG_EVERY seconds even when nothing changes."""

from __future__ import annotations

import asyncio
import io
import sys

import pytest

from pipeline.run import progress as progress_module
from pipeline.run.progress import Progress


def figures(done: int, retrying: int = 0) -> dict:
    counts = {"pending": 3 - done, "done": done}
    return {"total": 3, "counts": counts, "spent_usd": 0.0, "committed_usd": 0.0,
            "to_do": 3 - done, "to_go_usd": 0.0, "eta_s": 1.0, "retrying": retrying}


def run_progress(script, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The lines a plain Progress writes while `script(progress, state)` runs."""
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setattr(progress_module, "LOG_EVERY", 0.4)
    monkeypatch.setattr(progress_module, "CHANGE_GAP", 0.1)
    state = {"f": figures(0)}

    async def main() -> None:
        p = Progress("job", lambda: state["f"], mode="plain")
        await script(p, state)
        p.close()

    asyncio.run(main())
    return err.getvalue().splitlines()


def test_a_silent_run_still_prints_a_line_every_log_every_seconds(monkeypatch) -> None:
    """Nothing changes for 1.3 s with LOG_EVERY 0.4 s: the first line and at least 3 more."""
    async def script(p, state):
        await asyncio.sleep(1.3)

    lines = run_progress(script, monkeypatch)
    assert len(lines) >= 1 + 3, lines  # first, heartbeats (closing repeats no line)
    assert all(line.startswith("[job] 0/3 done, pending 3") for line in lines)


def test_each_change_of_the_counts_is_shown_but_bursts_are_throttled(monkeypatch) -> None:
    """Changes 0.2 s apart each get a line; twenty changes in one instant get one line."""
    async def script(p, state):
        for done in (1, 2):
            await asyncio.sleep(0.2)
            state["f"] = figures(done)
            p.changed()
        await asyncio.sleep(0.15)
        for _ in range(20):
            state["f"] = figures(3, retrying=1)
            p.changed()
        await asyncio.sleep(0.15)

    lines = run_progress(script, monkeypatch)
    shown = [line.split(" done")[0] for line in lines]
    assert shown[:3] == ["[job] 0/3", "[job] 1/3", "[job] 2/3"], lines
    # the change, once: closing does not print the line just shown again
    assert sum(1 for line in lines if "3/3 done" in line) == 1, lines
    assert lines[-1].endswith("; retrying (1)"), lines


def test_the_bar_shows_every_count_beside_done_and_no_stray_comma() -> None:
    """Beside the bar (which shows done/total itself): the other counts, then money and ETA."""
    from pipeline.run.progress import bar_text

    f = figures(1)
    f["counts"] = {**f["counts"], "queued": 1, "running": 1, "pending": 0}
    text = bar_text(f)
    assert text.startswith("queued 1, running 1; spent $"), text
    assert not text.startswith(",")


def test_a_simulated_job_is_timed_by_the_simulator_not_the_real_model() -> None:
    """The demo (backend sim) plans at the built-in simulator's generation time, not the
    real model's 90 s: its ETA is seconds, and it says where the time comes from."""
    from runjobs import REPO

    from pipeline import api
    from pipeline.sim.config import BUILTIN_GEN_TIME

    figures_ = api.plan(REPO / "jobs" / "demo.yaml", offline=True).as_json()["figures"]
    assert figures_["per_cell_s"] == sum(BUILTIN_GEN_TIME) / 2
    assert figures_["duration_source"].startswith("the simulator's generation time")
