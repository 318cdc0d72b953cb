"""A job's status as it stands now: the summary its journal gives (status.json, or the journal
replayed) completed with what only the moment can say: whether a run is going, whether the
reports are older than the journal, whether the manifest changed since, and what the team
ledger knows that the journal does not. `pipeline status` and every run's answer
(pipeline.api) show it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .report_stamp import reports_stale

if TYPE_CHECKING:
    from .job.opening import Job

__all__ = ["as_status", "team_news"]


def as_status(job: Job, summary: dict[str, Any], *, running: bool) -> dict[str, Any]:
    """A job's summary (status.json, or its journal replayed) as `status` shows it: with
    `running`, `report_stale`, `manifest_changed` and `team_ledger`."""
    summary.pop("inputs", None)  # status.json's own key (what the plan was made from)
    summary["running"] = running
    # reports older than the journal (a run killed, a cancel of an older version): say so
    summary["report_stale"] = None if running else reports_stale(job.folder)
    summary["manifest_changed"] = bool(summary.get("manifest_sha256")) and \
        summary["manifest_sha256"] != job.manifest.sha256
    summary["team_ledger"] = team_news(job, summary, running=running)
    return summary


def team_news(job: Job, summary: dict[str, Any], *, running: bool) -> dict[str, Any] | None:
    """What the team ledger (PIPELINE_LEDGER) knows of this job that its journal does not
    (requests seen to end by `pipeline account sweep`; a run waiting for a slot): asked only
    while a run is going or the journal counts requests as live (pipeline.account.admin)."""
    import os

    from .account import LEDGER_ENV_VAR

    url = os.environ.get(LEDGER_ENV_VAR, "").strip()
    counts = summary.get("counts") or {}
    if not url or not (running or any(counts.get(k) for k in ("submitting", "queued",
                                                               "running", "unknown"))):
        return None
    from .account.admin import job_news

    return job_news(url, job.folder)
