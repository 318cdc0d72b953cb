"""Whether a job's reports show its whole journal, and writing them again when they do not.

`.report.stamp` in the job folder says what the reports of a whole job were written from: the
journal's size and plan.json's time; this module is its one writer and reader. After a run or
a cancel (pipeline.api) the reports are written again only when the stamp differs; `status`
says `report_stale` when it does; `pipeline report` stamps a report of the whole job.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .job.folder import JobFolder
    from .job.select import Only

__all__ = ["refresh_reports", "reports_stale", "stamp_now", "write_job_reports",
           "written_from"]

log = logging.getLogger("pipeline")  # the API's logger: its warnings read `pipeline: ...`


def stamp_now(folder: JobFolder) -> str:
    """What the reports of a whole job would be written from now: the journal's size and
    plan.json's time (kept in .report.stamp)."""
    def stat(path: Path, field: str) -> int:
        try:
            return int(getattr(path.stat(), field))
        except OSError:
            return 0
    return f"{stat(folder.journal, 'st_size')} {stat(folder.plan, 'st_mtime_ns')}"


def refresh_reports(folder: JobFolder) -> list[Path]:
    """Write the reports (they stream over the journal: any job size) unless they already
    show the whole journal; a report problem never hides how the run ended."""
    from .report import write_reports

    try:
        stamp = stamp_now(folder)
        paths = folder.reports
        if all(p.exists() for p in paths) and written_from(folder) == stamp:
            return paths  # a run that changed nothing leaves the report as it was
        paths = write_reports(folder.path, running=False)
        folder.report_stamp.write_text(stamp)
        return paths
    except Exception as exc:  # noqa: BLE001 - the run's own outcome is the answer
        log.warning("the report could not be written: %s", exc)
        return []


def written_from(folder: JobFolder) -> str | None:
    try:
        return folder.report_stamp.read_text()
    except OSError:
        return None


def reports_stale(folder: JobFolder) -> bool | None:
    """Whether the job's reports are older than its journal (a run killed before writing
    them, say); None when there are none."""
    if not folder.reports[-1].exists():
        return None
    return written_from(folder) != stamp_now(folder)


def write_job_reports(folder: JobFolder, *, rows: str | None, cols: str | None,
                      only: Only) -> list[Path]:
    """Write report.md, report.html and report.json as `pipeline report` asks; stamped when
    they show the whole job."""
    from .report import write_reports

    stamp = stamp_now(folder)
    folder.report_stamp.unlink(missing_ok=True)
    paths = write_reports(folder.path, rows=rows, cols=cols, only=only)
    # a report of some cells, or of a run going on, leaves no stamp: the next run writes the
    # whole job's report again
    if not only and not folder.is_running() and stamp == stamp_now(folder):
        folder.report_stamp.write_text(stamp)
    return paths
