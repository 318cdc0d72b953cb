"""Where a job's folder is (never the current directory's business), and whose it is."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipeline.errors import StateError
from pipeline.job import journal as ev
from pipeline.job.folder import JobFolder
from pipeline.project import project_root


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
