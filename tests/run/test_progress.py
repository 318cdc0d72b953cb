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
    assert len(lines) >= 1 + 3 + 1, lines  # first, heartbeats, the closing line
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
    assert sum(1 for line in lines if "3/3 done" in line) == 2, lines  # the change and close
    assert lines[-1].endswith("; retrying (1)"), lines
