"""capacity.json: what `concurrency: auto` runs found, kept per service under one key, in a
format of its own (2), a file written before it had one (1) still read, an unknown one refused."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipeline import __version__
from pipeline.errors import FormatError, StateError
from pipeline.job.folder import JobFolder
from pipeline.job.found_capacity import SIM, keep, kept, planning_concurrency, service

AUTO = SimpleNamespace(auto=True, concurrency=4)


def test_the_service_is_the_base_url_and_the_built_in_simulator_is_one() -> None:
    """One key per service: the base URL (a trailing slash is the same URL), the
    environment's without one; the built-in simulator, whose port changes every run, is
    "sim" whatever its URL."""
    assert service("runcomfy", "https://api.example/") == "https://api.example"
    assert service(SIM, "http://127.0.0.1:41234") == service(SIM, "http://127.0.0.1:5") == "sim"


def test_the_service_of_a_run_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNCOMFY_BASE_URL", "http://10.0.0.1:9000/")
    assert service("runcomfy") == "http://10.0.0.1:9000"


def test_each_service_keeps_its_own_capacity(tmp_path: Path) -> None:
    """What a run found on one service neither hides nor stands for another's; the file opens
    with its format and the writing version."""
    folder = JobFolder(tmp_path)
    keep(folder, "sim", 3, 2)
    keep(folder, "https://api.example", 40, 2)
    keep(folder, "sim", 5, 1)  # the newest wins
    assert kept(folder, "sim")["capacity"] == 5 and kept(folder, "sim")["queue_ahead"] == 1
    assert kept(folder, "https://api.example")["capacity"] == 40
    assert kept(folder, "https://other.example") is None
    assert planning_concurrency(AUTO, folder, "https://api.example") == 40
    assert planning_concurrency(AUTO, folder, "https://other.example") == 4  # the guess
    assert planning_concurrency(SimpleNamespace(auto=False, concurrency=7), folder, "sim") == 7
    data = json.loads(folder.capacity.read_text())
    assert data["format"] == 2 and data["pipeline"] == __version__
    assert set(data["services"]) == {"sim", "https://api.example"}


def test_a_file_written_before_formats_still_reads(tmp_path: Path) -> None:
    """A capacity.json with no "format" (format 1: the last run's one entry, with its base
    URL) reads as that service's; keeping another service's capacity keeps it too."""
    folder = JobFolder(tmp_path)
    folder.capacity.write_text(json.dumps({"capacity": 6, "queue_ahead": 2,
                                           "base_url": "https://api.example/", "at": 1.0}))
    assert kept(folder, "https://api.example")["capacity"] == 6
    assert kept(folder, "sim") is None
    keep(folder, "sim", 2, 2)
    assert kept(folder, "https://api.example")["capacity"] == 6
    assert json.loads(folder.capacity.read_text())["format"] == 2


@pytest.mark.parametrize("content", [{"format": 3, "pipeline": "9.1.0", "services": {}},
                                     {"format": "2", "services": {}}])
def test_an_unknown_format_is_refused_by_name(tmp_path: Path, content: dict) -> None:
    """capacity.json in a format this version does not read stops plan, run and status with
    the file's name and what to do; it is never guessed at, nor overwritten."""
    folder = JobFolder(tmp_path)
    folder.capacity.write_text(json.dumps(content))
    with pytest.raises(FormatError, match=r"capacity\.json is in format .*reads format 1 or 2"
                                          r": delete it .*or upgrade pipeline") as caught:
        kept(folder, "sim")
    assert isinstance(caught.value, StateError) and caught.value.exit_code == 2
    with pytest.raises(FormatError):
        keep(folder, "sim", 3, 2)
    assert json.loads(folder.capacity.read_text()) == content
    if "pipeline" in content:
        assert "written by pipeline 9.1.0" in str(caught.value)
