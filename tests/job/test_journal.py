"""The journal on disk: events written by the writer are what the replay reads back; a torn
tail is cut, a corrupt line or an unknown format is refused with its line."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from pipeline.errors import FormatError, StateError
from pipeline.job import journal as ev
from pipeline.job.folder import JobFolder
from pipeline.job.journal import FORMAT, read_state
from pipeline.job.journal_writer import JournalWriter


def header(**extra) -> dict:
    return {**ev.run_started(job="j", model="m", manifest="/x/j.yaml", manifest_sha256="s",
                             schema_sha256="h", backend="runcomfy", base_url="http://x",
                             concurrency=4, max_attempts=3, cells=2, price=None,
                             price_source="unknown", budget=None, uid="u1"), **extra}


def write(folder: Path, *events: dict) -> JournalWriter:
    journal = JournalWriter(folder, read_state(folder))
    for e in events:
        journal.write(e)
    asyncio.run(journal.durable())
    journal.close()
    return journal


def test_events_written_are_replayed_into_records(tmp_path: Path) -> None:
    """Every event constructor's output is folded by the replay into the record it names."""
    write(tmp_path, header(), ev.described("c", "seed=1", {"seed": 1}, {"seed": 1}),
          ev.intent("c", 1, 0.25), ev.submitted("c", 1, "r-1"),
          ev.status_seen("c", 1, "in_progress", None, 3),
          ev.result("c", 1, "succeeded", cost=0.2, outputs=["https://x/a.mp4"], calls=4,
                    server_times={"created_at": "a", "finished_at": "b"}),
          ev.downloaded("c", "https://x/a.mp4", "videos/c.mp4", 9, "ff", {"frames": 1},
                        {"ok": True}),
          ev.ended(0, None, {"done": 1}))
    state = read_state(tmp_path)
    assert state.header["format"] == FORMAT and state.ends[0]["exit"] == 0
    rec = state.cells["c"]
    a = rec.last
    assert (rec.label, a.estimate, a.request_id, a.status, a.cost, a.status_calls) == \
        ("seed=1", 0.25, "r-1", "in_progress", 0.2, 4)
    assert rec.files["https://x/a.mp4"].sha256 == "ff" and rec.state(3) == "done"
    assert state.valid_bytes == (tmp_path / "state.jsonl").stat().st_size
    lean = read_state(tmp_path, lean=True).cells["c"]
    assert lean.label == "" and lean.files["https://x/a.mp4"].probe is None  # details dropped


def test_journal_size_tracks_the_file(tmp_path: Path) -> None:
    """The writer's size is the file's size after every append (progress and status.json
    name the journal bytes they reflect)."""
    journal = JournalWriter(tmp_path, read_state(tmp_path))
    for e in (header(), ev.intent("c", 1, None)):
        journal.write(e)
        assert journal.size == (tmp_path / "state.jsonl").stat().st_size
    journal.close()
    again = JournalWriter(tmp_path, read_state(tmp_path))
    assert again.size == (tmp_path / "state.jsonl").stat().st_size
    again.close()


def test_a_torn_last_line_is_ignored_then_cut_before_the_next_append(tmp_path: Path) -> None:
    """A process killed mid-write leaves half a line: replay ignores it, the next writer cuts
    it off, and the journal stays one event per line."""
    write(tmp_path, header(), ev.intent("c", 1, 0.25))
    path = tmp_path / "state.jsonl"
    with open(path, "ab") as fh:
        fh.write(b'{"e":"submitted","cell":"c","n":1,"requ')
    state = read_state(tmp_path)
    assert state.torn_tail and state.cells["c"].last.request_id is None
    write(tmp_path, ev.submitted("c", 1, "r-1"))
    lines = path.read_bytes().splitlines()
    assert [json.loads(line)["e"] for line in lines] == ["run", "intent", "submitted"]
    assert read_state(tmp_path).cells["c"].last.request_id == "r-1"


def test_a_corrupt_line_in_the_middle_stops_with_its_line_number(tmp_path: Path) -> None:
    """Corruption anywhere but the tail is not guessed at: StateError names file and line."""
    write(tmp_path, header(), ev.intent("c", 1, 0.25), ev.submitted("c", 1, "r"))
    path = tmp_path / "state.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    lines[1] = b"not json\n"
    path.write_bytes(b"".join(lines))
    with pytest.raises(StateError, match=r"state\.jsonl:2: corrupt journal line"):
        read_state(tmp_path)


def raw(folder: Path, *events: dict) -> None:
    """Lines as another program (or another version) would have written them."""
    with open(folder / "state.jsonl", "a") as fh:
        for e in events:
            fh.write(json.dumps({"t": 1.0, **e}) + "\n")


def test_a_journal_of_an_unknown_format_is_refused(tmp_path: Path) -> None:
    """A journal written in a format this version does not know is refused, with the line
    and what to do, rather than replayed by the wrong rules."""
    raw(tmp_path, header(format=FORMAT + 1))
    with pytest.raises(FormatError, match=rf"state\.jsonl:1: this journal is in format "
                                          rf"{FORMAT + 1}.*reads format {FORMAT}.*--out"):
        read_state(tmp_path)


def test_an_event_for_an_attempt_never_started_is_refused(tmp_path: Path) -> None:
    """Events must follow their intent: a result for attempt 2 of a cell with one attempt is a
    malformed journal, refused with its line."""
    raw(tmp_path, header(), ev.intent("c", 1, 0.25), ev.result("c", 2, "failed"))
    with pytest.raises(StateError, match=r":3: journal event 'result' for cell c names "
                                         r"attempt 2"):
        read_state(tmp_path)


def test_a_journal_can_be_read_from_a_job_folder_or_a_path(tmp_path: Path) -> None:
    """read_state takes the JobFolder or its path alike."""
    write(tmp_path, header(), ev.intent("c", 1, 0.25))
    assert read_state(JobFolder(tmp_path)).cells.keys() == read_state(tmp_path).cells.keys()
