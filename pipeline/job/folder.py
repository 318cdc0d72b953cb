"""The job folder: the only place that knows where a job's files are, and which job owns them.

A job's folder does not depend on the current directory. By default it is `outputs/<name>`
under the manifest's project root: the nearest folder at or above the manifest's own that holds
`.git`, else the manifest's own folder. A relative `run.output` resolves from that root too;
`--out` is taken as given. The journal's first `run` event names the manifest the folder
belongs to, so a different manifest pointed at the same folder is refused instead of mixing
two jobs.

It also owns two of the files' formats (docs/formats.md lists every file): plan.json, which
`read_plan` and the report's stream (`check_plan`) refuse in a format they do not know, and
status.json, a cache of the last run's status that is used only while it describes the
journal byte for byte and was written by this very version (`settled_summary`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .. import __version__, text
from ..durable import write_atomic
from ..errors import JobLocked, StateError
from ..jsonio import check_format, stamped, unstamped
from ..project import project_root

JOURNAL = "state.jsonl"
PLAN_FORMAT = 1  # plan.json (pipeline.job.plan_json): bump on a change a reader notices
PLAN_READABLE = frozenset({1})  # 1: also a plan.json with no "format" (written before it had one)
SUMMARY_FORMAT = 1  # status.json (pipeline.job.status.JobView.summary), read by this version only


def check_plan(header: Any, path: Path) -> int:
    """The format of plan.json from its header (every key before its cells); one this version
    does not read is a FormatError naming the file and what to do."""
    return check_format(header, path, PLAN_READABLE, "run the job with this version of "
                        "pipeline to rewrite it (or upgrade pipeline)")


REPORTS = ("report.md", "report.html", "report.json")


@dataclass(frozen=True)
class JobFolder:
    """Every path of one job: journal, lock, plan snapshot, summary, videos, posters."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @classmethod
    def at(cls, folder: JobFolder | str | os.PathLike[str]) -> JobFolder:
        return folder if isinstance(folder, JobFolder) else cls(Path(folder))

    @classmethod
    def of(cls, manifest: Any, out: str | os.PathLike[str] | None = None) -> JobFolder:
        """The folder of a manifest's job (`out`: the user's --out, taken as given)."""
        if out is not None:
            return cls(Path(out))
        root = project_root(manifest.path)
        return cls(root / (manifest.run.output or Path("outputs") / manifest.name))

    def __str__(self) -> str:
        return str(self.path)

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    # The files of a job, each named once.
    journal = property(lambda self: self.path / JOURNAL)
    lock = property(lambda self: self.path / ".lock")
    lock_owner = property(lambda self: self.path / ".lock.owner")
    ballast = property(lambda self: self.path / ".ballast")  # see JournalWriter
    plan = property(lambda self: self.path / "plan.json")  # every cell of the last run's plan
    plan_fingerprint = property(lambda self: self.path / ".plan.fingerprint")
    summary = property(lambda self: self.path / "status.json")  # the last run's status
    catalog = property(lambda self: self.path / "catalog.json")  # the model's catalog entry
    capacity = property(lambda self: self.path / "capacity.json")  # what concurrency auto found
    report_stamp = property(lambda self: self.path / ".report.stamp")
    # `pipeline cancel` asks the run going to stop by leaving this file (pipeline.api.cancel
    # writes it, the runner reads it: pipeline.run.runner); never a signal to a PID
    cancel_request = property(lambda self: self.path / "cancel.request")
    # the votes of `pipeline review`'s blind ranking (pipeline.job.ratings owns the format)
    ratings = property(lambda self: self.path / "ratings.jsonl")
    # the reports pipeline.report.write writes (named here, so that status can look at them
    # without loading the report stage)
    reports = property(lambda self: [self.path / n for n in REPORTS])
    videos = property(lambda self: self.path / "videos")
    posters = property(lambda self: self.path / "posters")
    strips = property(lambda self: self.path / "strips")  # frame strips (pipeline.media.strips)

    def exists(self) -> bool:
        return self.path.is_dir()

    def is_running(self) -> bool:
        """True while some process holds the job's lock (a run is going)."""
        import filelock

        if not self.lock.exists():
            return False
        lock = filelock.FileLock(str(self.lock), timeout=0)
        try:
            lock.acquire()
        except filelock.Timeout:
            return True
        lock.release()
        return False

    def read_plan(self) -> dict[str, Any] | None:
        """plan.json (every cell of the last run's plan), or None when there is none."""
        try:
            with open(self.plan, "rb") as fh:
                data = orjson.loads(fh.read())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise StateError(f"cannot read {self.plan}: {exc}; run the job again to rewrite "
                             "it") from None
        check_plan(data, self.plan)  # a JSON object, in a format this version reads
        plan: dict[str, Any] = data
        if not isinstance(plan.get("cells", []), list):
            raise StateError(f"{self.plan} is not a plan (no list of cells); run the job again "
                             "to rewrite it")
        return plan

    def write_summary(self, summary: dict[str, Any]) -> None:
        """status.json: the status of the job as a run left it (pipeline.job.status.JobView),
        stamped with its format and this pipeline's version (written atomically)."""
        write_atomic(self.summary, json.dumps(stamped(SUMMARY_FORMAT, summary), indent=2,
                                              ensure_ascii=False))

    def settled_summary(self) -> dict[str, Any] | None:
        """status.json (without its stamp), when it still describes the journal byte for byte
        and was written in this format by this version of pipeline; else None (the journal is
        replayed instead: an older summary is never served as current). The one judge of that
        summary's validity."""
        try:
            summary = json.loads(self.summary.read_text(encoding="utf-8"))
            if not isinstance(summary, dict) or summary.get("format") != SUMMARY_FORMAT or \
                    summary.get("pipeline") != __version__:
                return None
            if summary.get("journal_bytes") != self.journal.stat().st_size:
                return None
        except (OSError, ValueError):
            return None
        return unstamped(summary)

    def owner(self) -> str | None:
        """The manifest named by the journal's first run event (None: no journal yet)."""
        try:
            with open(self.journal, "rb") as fh:
                first = fh.readline()
            event = orjson.loads(first)
        except (OSError, ValueError):
            return None
        return event.get("manifest") if isinstance(event, dict) else None

    def check_owner(self, manifest_path: Path) -> None:
        """Refuse a manifest other than the one this folder's journal belongs to.

        A recorded manifest that no longer exists is taken to have moved (accepted); a
        relative one was written by an older version from an unknown directory (accepted)."""
        recorded = self.owner()
        if not recorded or not os.path.isabs(recorded) or not os.path.exists(recorded):
            return
        try:
            same = os.path.samefile(recorded, manifest_path)
        except OSError:
            same = False
        if not same:
            raise StateError(f"the job folder {self.path} belongs to {recorded}, not "
                             f"{manifest_path}: two manifests with the same name would mix "
                             "their cells there; give this one another `name` or `--out`")


class JobLock:
    """An exclusive lock per job that dies with its owner (flock via the filelock package)."""

    def __init__(self, folder: JobFolder | Path):
        import filelock

        self.folder = JobFolder.at(folder)
        self.folder.path.mkdir(parents=True, exist_ok=True)
        self._lock = filelock.FileLock(str(self.folder.lock), timeout=0)

    def __enter__(self) -> JobLock:
        import filelock

        try:
            self._lock.acquire()
        except filelock.Timeout:
            owner = ""
            try:
                owner = self.folder.lock_owner.read_text().strip()
            except OSError:
                pass
            raise JobLocked(f"another `pipeline run` is running this job ({owner or 'pid ?'}); "
                            f"wait for it, or stop it, then run again "
                            f"(lock: {self.folder.lock})") from None
        try:
            self.folder.lock_owner.write_text(f"pid {os.getpid()} since "
                                              f"{text.local_time()}\n")
        except OSError:
            pass
        return self

    def __exit__(self, *exc: Any) -> None:
        self._lock.release()
