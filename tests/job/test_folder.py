"""Where a job's folder is (never the current directory's business), and whose it is."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipeline import __version__
from pipeline.errors import FormatError, StateError
from pipeline.job import journal as ev
from pipeline.job.folder import PLAN_FORMAT, SUMMARY_FORMAT, JobFolder
from pipeline.project import project_root
from pipeline.report.stream import PlanStream


def manifest(path: Path, name: str = "big", output: str | None = None) -> SimpleNamespace:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"name: {name}\n")
    return SimpleNamespace(path=path, name=name, run=SimpleNamespace(output=output))


def test_project_root_is_the_nearest_git_folder_else_the_manifests(tmp_path: Path) -> None:
    """The root is the nearest folder at or above the manifest's holding .git."""
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    deep = tmp_path / "repo" / "myjobs" / "sub" / "big.yaml"
    manifest(deep)
    assert project_root(deep) == tmp_path / "repo"
    loose = tmp_path / "loose" / "x.yaml"
    manifest(loose)
    assert project_root(loose) == tmp_path / "loose"


def test_the_job_folder_does_not_depend_on_the_current_directory(tmp_path: Path,
                                                                 monkeypatch) -> None:
    """From the repository root, from the manifest's folder or from anywhere, a manifest names
    the same folder: outputs/<name> (or run.output) under its project root."""
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    m = manifest(tmp_path / "repo" / "myjobs" / "big.yaml")
    seen = set()
    for cwd in (tmp_path / "repo", tmp_path / "repo" / "myjobs", tmp_path):
        monkeypatch.chdir(cwd)
        relative = SimpleNamespace(**{**vars(m), "path": Path(os.path.relpath(m.path, cwd))})
        seen.add(JobFolder.of(relative).path.resolve())
    assert seen == {tmp_path / "repo" / "outputs" / "big"}
    custom = manifest(tmp_path / "repo" / "myjobs" / "c.yaml", output="runs/c")
    assert JobFolder.of(custom).path == tmp_path / "repo" / "runs" / "c"
    assert JobFolder.of(m, "elsewhere").path == Path("elsewhere")  # --out: as given


def test_another_manifest_with_the_same_name_is_refused(tmp_path: Path) -> None:
    """A folder whose journal belongs to one manifest refuses another one, naming both; the
    same manifest reached by another path is accepted."""
    a = manifest(tmp_path / "a" / "big.yaml")
    b = manifest(tmp_path / "b" / "big.yaml")
    folder = JobFolder(tmp_path / "out")
    folder.path.mkdir()
    first = ev.run_started(job="big", model="m", manifest=str(a.path.resolve()),
                           manifest_sha256="", schema_sha256="", backend="sim", base_url="",
                           concurrency=1, max_attempts=1, cells=1, price=None,
                           price_source="", budget=None, uid="u1")
    folder.journal.write_text(__import__("json").dumps(first) + "\n")
    folder.check_owner(a.path)
    folder.check_owner(tmp_path / "a" / ".." / "a" / "big.yaml")
    with pytest.raises(StateError) as err:
        folder.check_owner(b.path)
    assert str(a.path.resolve()) in str(err.value) and str(b.path) in str(err.value)
    a.path.unlink()  # the first manifest moved away: the folder is the new one's to use
    folder.check_owner(b.path)


# --- plan.json and status.json: their formats ------------------------------------------------
CELL = {"id": "c1", "label": "seed=1", "values": {"seed": 1}, "request": {"prompt": "p"}}


def test_plan_json_of_an_unknown_format_is_refused_by_name(tmp_path: Path) -> None:
    """Both readers of plan.json (status's and the report's stream) refuse a format this
    version does not read, naming the file, who wrote it and what to do."""
    folder = JobFolder(tmp_path)
    folder.plan.write_text(json.dumps({"format": PLAN_FORMAT + 1, "pipeline": "9.0.0",
                                       "job": "j", "cells": [CELL]}))
    wanted = (rf"{re.escape(str(folder.plan))} is in format {PLAN_FORMAT + 1}, written by "
              rf"pipeline 9\.0\.0; this version reads format {PLAN_FORMAT}: run the job with "
              "this version")
    with pytest.raises(FormatError, match=wanted):
        folder.read_plan()
    with pytest.raises(FormatError, match=wanted):
        PlanStream(folder.plan)


def test_plan_json_written_before_formats_still_reads(tmp_path: Path) -> None:
    """A plan.json with no "format" (written before plan.json had one) is format 1."""
    folder = JobFolder(tmp_path)
    folder.plan.write_text(json.dumps({"job": "j", "count": 1, "cells": [CELL]}))
    assert folder.read_plan()["cells"] == [CELL]
    stream = PlanStream(folder.plan)
    assert stream.header == {"job": "j", "count": 1} and list(stream.cells()) == [CELL]


def test_status_json_is_used_only_when_this_version_wrote_it(tmp_path: Path) -> None:
    """status.json, a cache of the last run's status, is served (without its stamp) while it
    describes the journal byte for byte and this very version wrote it in its format; one
    written by another version or in another format, or before status.json had one, is not
    used (the journal is replayed instead)."""
    folder = JobFolder(tmp_path)
    folder.journal.write_text('{"e": "run"}\n')
    summary = {"job": "j", "counts": {"done": 1}, "journal_bytes": folder.journal.stat().st_size}
    folder.write_summary(summary)
    written = json.loads(folder.summary.read_text())
    assert list(written)[:2] == ["format", "pipeline"]
    assert written["format"] == SUMMARY_FORMAT and written["pipeline"] == __version__
    assert folder.settled_summary() == summary  # the stamp does not reach status --json
    for stale in ({**written, "format": SUMMARY_FORMAT + 1}, {**written, "pipeline": "0.0.1"},
                  summary):  # the last: no stamp (written before status.json had one)
        folder.summary.write_text(json.dumps(stale))
        assert folder.settled_summary() is None, stale
    folder.summary.write_text(json.dumps(written))
    with folder.journal.open("a") as fh:
        fh.write('{"e": "end"}\n')
    assert folder.settled_summary() is None  # the journal moved on
