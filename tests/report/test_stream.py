"""Reading a job folder one cell at a time: plan.json as a stream, the journal by an index of
byte spans; both give what reading the files whole gives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.errors import StateError
from pipeline.job.folder import JobFolder
from pipeline.job.journal import read_state
from pipeline.report import stream
from pipeline.report.stream import JournalIndex, PlanStream


@pytest.mark.parametrize("chunk", [7, 64, 1 << 20])
def test_plan_stream_reads_what_json_reads(tmp_path: Path, monkeypatch, chunk: int) -> None:
    """Header keys before `cells` and every cell come out as json.loads gives them, whatever
    the chunk size (values, numbers and strings cut at a chunk's edge included)."""
    monkeypatch.setattr(stream._Reader, "CHUNK", chunk)
    cells = [{"id": f"{i:016x}", "values": {"seed": 12345678901 + i, "w": 0.125 * i,
                                            "text": "é \\\" ] } , " * (i % 3)},
              "request": {"prompt": "x" * i}} for i in range(40)]
    plan = {"job": "j", "price": {"sheet": {"usd": 0.05}}, "count": 40, "cells": cells,
            "after": [1, 2, {"x": None}]}
    path = tmp_path / "plan.json"
    for text in (json.dumps(plan), json.dumps(plan, indent=2),
                 json.dumps(plan, separators=(",", ":"), ensure_ascii=False)):
        path.write_text(text, encoding="utf-8")
        read = PlanStream(path)
        assert read.header == {"job": "j", "price": {"sheet": {"usd": 0.05}}, "count": 40}
        assert list(read.cells()) == cells
        assert list(read.cells()) == cells  # again, from the start


def test_plan_stream_refuses_what_is_not_a_plan(tmp_path: Path) -> None:
    """A plan.json that is not a JSON object, or is cut short, is a StateError naming it."""
    path = tmp_path / "plan.json"
    for text in ("[1, 2]", '{"job": "j", "cells": [{"id": "a"}, {"id": '):
        path.write_text(text)
        with pytest.raises(StateError, match="plan.json"):
            list(PlanStream(path).cells())


def test_journal_index_gives_each_cell_as_the_replay_does(tmp_path: Path) -> None:
    """Each cell's record from the index equals the whole journal's replay of it; runs, ends
    and a torn last line are read the same way."""
    events = [{"e": "run", "format": 1, "job": "j", "t": 1.0}]
    for n in range(3):
        for cid in ("aaaa", "bbbb", "cccc"):
            events.append({"e": "intent", "cell": cid, "n": n + 1, "usd": 0.25, "t": 2.0 + n})
            events.append({"e": "submitted", "cell": cid, "n": n + 1,
                           "request_id": f"{cid}-{n}", "t": 2.1 + n})
            events.append({"e": "result", "cell": cid, "n": n + 1,
                           "result": "failed" if n < 2 else "succeeded", "error": "boom",
                           "cost": 0.25, "outputs": [f"http://x/{cid}.mp4"], "t": 2.5 + n})
    events.append({"e": "end", "exit": 1, "stopped": None, "counts": {}, "t": 9.0})
    journal = tmp_path / "state.jsonl"
    journal.write_text("".join(json.dumps(e) + "\n" for e in events) + '{"e": "intent", "ce')
    whole = read_state(tmp_path)
    with JournalIndex(JobFolder(tmp_path)) as index:
        assert list(index.ids) == ["aaaa", "bbbb", "cccc"]
        assert index.runs == whole.runs and index.ends == whole.ends
        assert index.torn_tail and index.valid_bytes == whole.valid_bytes
        assert index.last_t == [4.5]  # its last cell event (the end event is apart)
        for cid in index.ids:
            assert index.record(cid) == whole.cells[cid]
        assert index.record("dddd") is None
