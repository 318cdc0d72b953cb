"""A small soak in CI: faults on, the runner killed -9 at random moments, then resumed.
The full size (2,000 cells, capacity 100, 20 kills) is `python bench/soak.py`."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from soak import soak  # noqa: E402


def test_soak_loses_nothing_and_pays_twice_only_when_asked(tmp_path: Path) -> None:
    """With every fault on and five kill -9s, no cell is lost, no video corrupted, the report
    is complete, and any duplicate payment lies inside the --resubmit-unknown window."""
    verdict = soak(tmp_path, cells=120, capacity=30, kills=5, seed=3,
                   gen_time=(0.3, 0.8), kill_window=(1.0, 2.5))
    assert verdict["kills"] >= 2, verdict
    assert verdict["lost"] == 0, verdict
    assert verdict["corrupted"] == 0, verdict
    assert verdict["paid_twice_outside_window"] == 0, verdict
    assert verdict["report_complete"], verdict
    assert verdict["done"] + verdict["failed"] + verdict["unknown_held"] == 120
