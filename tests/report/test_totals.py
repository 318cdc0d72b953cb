"""report.json's sums over its cells (pipeline.report.data.Totals), cell by cell: attempts,
files and their problems, the queue and generation time spreads (succeeded attempts only, per
model too), and the failure classes read from the cell-state table."""

from __future__ import annotations

from typing import Any

from pipeline.job.records import PROBLEMS, STATES
from pipeline.report.data import Totals


def cell(cid: str, state: str, *, attempts: list[dict[str, Any]] = (), files: list = (),
         reason: str | None = None, model: str = "m") -> dict[str, Any]:
    return {"id": cid, "label": cid, "state": state, "attempts": list(attempts),
            "files": list(files), "reason": reason, "held_since": None, "model": model}


def attempt(result: str | None, queue: float | None, gen: float | None) -> dict[str, Any]:
    return {"result": result, "queue_s": queue, "generation_s": gen}


def blank() -> dict[str, Any]:
    return {"totals": {}, "timings": {}}


def test_totals_count_attempts_files_and_succeeded_times() -> None:
    """Queue times of every attempt seen running; generation times of succeeded ones only,
    kept per model; a missing file and a failed media check are counted apart."""
    t = Totals()
    t.add(cell("a", "done", attempts=[attempt("failed", 1.0, 9.0), attempt("succeeded", 3.0, 5.0)],
               files=[{"exists": True, "check": {"ok": True}}]))
    t.add(cell("b", "done", attempts=[attempt("succeeded", None, 7.0)], model="n",
               files=[{"exists": False, "check": {"ok": False}}]))
    t.add(cell("c", "pending"))
    report = blank()
    t.into(report)
    assert report["totals"] == {"attempts": 3, "files": 2, "missing_files": 1,
                                "media_problems": 1}
    assert sorted(t.queue) == [1.0, 3.0] and sorted(t.gen) == [5.0, 7.0]
    assert {k: list(v) for k, v in t.gen_by_model.items()} == {"m": [5.0], "n": [7.0]}
    assert report["failures"] == [] and report["unknown"] == []


def test_failure_classes_follow_the_state_table() -> None:
    """Unknown cells are listed apart; every other problem state of the table, and a pending
    cell whose last try was not accepted, is a failure; no other state is listed."""
    t = Totals()
    for n, state in enumerate(STATES):
        t.add(cell(f"c{n}", state, reason="why"))
    t.add(cell("quiet", "pending"))  # never tried: not a failure
    report = blank()
    t.into(report)
    listed = {f["state"] for f in report["failures"]}
    assert listed == (PROBLEMS - {"unknown"}) | {"pending"}
    assert [u["state"] for u in report["unknown"]] == ["unknown"]
    assert all(f["reason"] == "why" for f in report["failures"])
