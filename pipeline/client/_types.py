"""Plain values the client returns; no I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# How a failed submit ended, from the caller's side (see pipeline.client._submit.SUBMIT_TABLE).
NOT_ACCEPTED = "not_accepted"  # the API surely did not take the request: safe to submit again
OUTCOME_UNKNOWN = "outcome_unknown"  # the API may have taken it (and charge): never resend blindly


@dataclass(frozen=True)
class Submission:
    """What an accepted submit answered: the request id and the URLs the API gave for it."""

    request_id: str
    status_url: str | None = None
    result_url: str | None = None
    cancel_url: str | None = None


@dataclass(frozen=True)
class StatusInfo:
    """One /status answer: `status` is in_queue, in_progress, completed, failed or cancelled.

    `completed` only means "finished": success or failure is read from /result.
    An unrecognised word is passed through as it came (lower-cased) and counts as not finished.
    """

    status: str
    queue_position: int | None
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @property
    def finished(self) -> bool:
        """True once /result can tell how the run ended."""
        return self.status in ("completed", "failed", "cancelled")


@dataclass(frozen=True)
class ResultInfo:
    """One /result answer, normalised.

    `status` is one of succeeded, failed, cancelled, or a word of a request not finished
    (in_queue, in_progress, pending, ..., or an unknown word as it came); `outputs` holds every
    http(s) URL found in `output` (walk order); `video_url` is the chosen video and `video_from`
    where it was found (e.g. `output.video`); `error` a readable string for a failed run; `cost`
    in USD when the API reported it.
    """

    status: str
    outputs: tuple[str, ...] = ()
    video_url: str | None = None
    video_from: str | None = None
    cost: float | None = None
    error: str | None = None
    created_at: str | None = None
    finished_at: str | None = None
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)


@dataclass(frozen=True)
class CancelInfo:
    """A cancel answer: `outcome` is cancelled, not_cancellable or another word (re-read /status).

    The `status` of a cancel answer is not to be trusted (the docs' own example contradicts itself).
    """

    outcome: str
    status: str | None
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @property
    def cancelled(self) -> bool:
        return self.outcome == "cancelled"


@dataclass(frozen=True)
class ModelEntry:
    """A catalog entry: its price fields and schemas (None when absent)."""

    price_usd: float | None
    price_unit: str | None
    note: str | None
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)
    input_schema: dict[str, Any] | None = field(default=None, repr=False)
    output_schema: dict[str, Any] | None = field(default=None, repr=False)
    model_id: str | None = None


@dataclass(frozen=True)
class DownloadInfo:
    """A file downloaded and checked: where it is, its size, SHA-256 and declared type."""

    path: Path
    size: int
    sha256: str
    content_type: str | None
    url: str
