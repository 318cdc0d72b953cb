"""The one way into a job: its manifest read once, its folder found once, its owner checked.

Every command about a job (plan, run, status, cancel, report, picks) starts here:

    job = open_job("jobs/demo.yaml")            # Job(manifest, folder); the owner is checked
    with job.locked():                           # the job's lock, for what writes its state
        ...

`open_job` refuses a folder whose journal belongs to another manifest (two jobs with one name
would mix their cells). A command that goes on to plan the job passes `problems`: the
manifest's problems that do not stop its reading are then collected there, to be reported
together with the plan's own (pipeline.prepare.plan.plan_of), not one batch at a time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import ProblemList
from ..prepare.manifest import Manifest, load_manifest, read_manifest
from .folder import JobFolder, JobLock


@dataclass(frozen=True)
class Job:
    """A job as a command opened it: its manifest (read once) and its folder."""

    manifest: Manifest
    folder: JobFolder

    @property
    def name(self) -> str:
        return self.manifest.name

    @contextmanager
    def locked(self) -> Iterator[Job]:
        """Hold the job's lock (JobLocked, exit 2, when another process holds it)."""
        with JobLock(self.folder):
            yield self


def open_job(manifest: str | os.PathLike[str], out: str | os.PathLike[str] | None = None, *,
             allow_outside: bool = False, problems: ProblemList | None = None) -> Job:
    """The job of a manifest (`out`: the user's --out, taken as given). With `problems`, the
    manifest's collectable problems are left there for the caller to raise with its own."""
    if problems is None:
        m = load_manifest(manifest, allow_outside=allow_outside)
    else:
        m = read_manifest(manifest, problems, allow_outside=allow_outside)
    folder = JobFolder.of(m, Path(out) if out is not None else None)
    folder.check_owner(m.path)
    return Job(m, folder)
