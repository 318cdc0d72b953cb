"""What the journal says about one cell, what state that is, and what a run does with it.

This module is the one owner of three facts that every command shows:

- the state of a cell (`CellRecord.state`), with the names `pipeline status --json` prints;
- what a run does with a cell in each state (`resume_action`: one table, read by `plan`,
  `run` and `status` alike);
- what a cell has cost (`money`): the attempts the server billed, and the estimates held for
  requests that are (or may be) live on the server.

Records are plain data filled by the journal's replay (pipeline.job.journal); nothing here
does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .. import wire

# Shared, read-only empties: a 100,000-cell lean replay would otherwise hold a few hundred
# thousand empty dicts and lists (tens of MB) for fields it never fills.
EMPTY: Any = MappingProxyType({})

# The state names of a cell, as `pipeline status --json` prints them.
PENDING = "pending"
SUBMITTING = "submitting"
QUEUED = "queued"
RUNNING = "running"
DOWNLOADING = "downloading"
DONE = "done"
RETRY = "retry"
FAILED = "failed"
UNKNOWN = "unknown"
CANCELLED = "cancelled"
ORPHANED = "orphaned"


@dataclass(frozen=True)
class StateInfo:
    """One row of the cell-state table: what a state is, and what is done about it."""

    name: str
    live: bool  # holds a slot on the server, or may (a submit under way)
    on_server: bool  # a request the server holds now: `cancel` asks it to stop
    settled: bool  # a plain `pipeline run` does nothing with it
    problem: bool  # a person should look at it (a failure, a hold, a cancel)
    means: str  # what the state means
    next: str  # what a plain `pipeline run` does with it (resume_action says it exactly)
    advice: str = ""  # what the user can do about it, if anything


# The one table of cell states, read by the runner, `cancel`, `status`, the canary, report.md
# and the report page (given it in its settings). Order: the order every count is shown in.
STATE_TABLE: tuple[StateInfo, ...] = (
    StateInfo(PENDING, False, False, False, False,
              "nothing sent yet, or its last try was not accepted", "submit it"),
    StateInfo(SUBMITTING, True, False, False, False,
              "the run going now is sending it (its intent is on disk, no answer yet)",
              "wait for the answer"),
    StateInfo(QUEUED, True, True, False, False,
              "accepted by the service, waiting for a slot", "poll it",
              "`pipeline cancel` cancels it (not billed)"),
    StateInfo(RUNNING, True, True, False, False,
              "generating (billed: it can no longer be cancelled)", "poll it"),
    StateInfo(DOWNLOADING, False, False, False, False,
              "generated; its output files are not all on disk yet",
              "download them (not paid again)"),
    StateInfo(DONE, False, False, True, False,
              "generated, and every output file downloaded and checked", "skip it"),
    StateInfo(RETRY, False, False, False, True,
              "generation failed; attempts remain", "submit it again"),
    StateInfo(FAILED, False, False, True, True,
              "failed max_attempts times, or refused for good", "skip it",
              "run with --retry-failed to try failed cells again; a refused one is sent as "
              "it was, so fix what its refusal names first"),
    StateInfo(UNKNOWN, False, False, True, True,
              "a submit whose outcome is unknown: it may be running, and billed",
              "hold it",
              "check the RunComfy dashboard, then run with --resubmit-unknown to send it "
              "again: it may be billed twice"),
    StateInfo(CANCELLED, False, False, False, True,
              "cancelled on request before it ran (not billed)", "submit it again"),
    StateInfo(ORPHANED, False, False, True, False,
              "in the job's state but no longer in the manifest (kept on disk)", "leave it"),
)
STATE_INFO: dict[str, StateInfo] = {s.name: s for s in STATE_TABLE}
STATES = tuple(s.name for s in STATE_TABLE)
LIVE = frozenset(s.name for s in STATE_TABLE if s.live)
ON_SERVER = frozenset(s.name for s in STATE_TABLE if s.on_server)
SETTLED = frozenset(s.name for s in STATE_TABLE if s.settled)
PROBLEMS = frozenset(s.name for s in STATE_TABLE if s.problem)
# Settled problems (failed, unknown): a plain run leaves them as they are and the user decides
# with the table's advice. `status` lists them cell by cell; every resume hint gives it.
STUCK = SETTLED & PROBLEMS
# Settled and no problem (done, orphaned): nothing is left to do or decide about them.
FINISHED = SETTLED - PROBLEMS


def states_json() -> dict[str, dict[str, Any]]:
    """The table as the report page reads it (in its settings): name -> its row, in the
    table's order."""
    return {s.name: {"live": s.live, "on_server": s.on_server, "settled": s.settled,
                     "problem": s.problem, "means": s.means, "next": s.next,
                     "advice": s.advice}
            for s in STATE_TABLE}


def advice_for(counts: Mapping[str, int]) -> dict[str, str]:
    """The table's advice for each stuck state (STUCK) that `counts` has cells in, in the
    table's order: what the run's last line, `status` and the report say the user can do."""
    return {s.name: s.advice for s in STATE_TABLE if s.name in STUCK and counts.get(s.name)}


def resume_hint(manifest: str | None, counts: Mapping[str, int],
                out: str | None = None) -> dict[str, Any]:
    """How to go on with a job whose cells are `counts` (state -> cells): whether anything is
    left to do or decide (`needed`), the command that goes on (`--out` when given), and the
    table's advice (`hints`). The one builder of the run's "to resume" line and report.json's
    `resume`."""
    command = f"pipeline run {manifest or 'MANIFEST'}" + (f" --out {out}" if out else "")
    return {"needed": any(n for k, n in counts.items() if k not in FINISHED),
            "command": command, "hints": list(advice_for(counts).values())}


# Attempt results (the journal's `result` words).
SUCCEEDED, GEN_FAILED, RESULT_CANCELLED, LOST = "succeeded", "failed", "cancelled", "lost"


@dataclass(slots=True)
class FileRecord:
    """One downloaded output file."""

    url: str
    path: str  # relative to the job folder
    size: int
    sha256: str
    probe: dict[str, Any] | None = None  # frames, fps, width, height, codec
    check: dict[str, Any] | None = None  # {"ok": bool, "problems": [...]}


@dataclass(slots=True)
class Attempt:
    """One try at generating a cell: from the intent to submit to the server's verdict."""

    n: int
    intent_at: float
    estimate: float | None = None  # USD the run expected this attempt to cost
    request_id: str | None = None
    submitted_at: float | None = None
    submit_kind: str | None = None  # not_accepted | outcome_unknown, when the submit failed
    submit_error: str | None = None
    permanent: bool = False  # a refusal that no retry can fix (bad body, auth)
    status: str | None = None  # last status seen
    queue_position: int | None = None
    first_seen: dict[str, Any] = field(default_factory=dict)  # status word -> time first seen
    status_calls: int = 0
    result: str | None = None  # succeeded | failed | cancelled | lost
    result_at: float | None = None
    error: str | None = None
    cost: float | None = None
    outputs: list[str] = field(default_factory=list)  # the output URLs
    server_times: dict[str, Any] = field(default_factory=dict)  # created_at / finished_at as sent
    cancel_outcome: str | None = None
    cancel_at: float | None = None
    resubmitted_unknown: bool = False

    @property
    def billed(self) -> bool:
        """The server ran (or judged) this request: it costs what its result says."""
        return self.request_id is not None and self.result in (SUCCEEDED, GEN_FAILED)

    @property
    def live(self) -> bool:
        """On the server, or maybe (a submit without an answer); its estimate is held."""
        if self.result is not None or self.resubmitted_unknown:
            return False
        return self.request_id is not None or self.submit_kind != "not_accepted"


@dataclass(frozen=True, slots=True)
class Money:
    """What one cell has cost: billed attempts (`spent`) and estimates held for live ones."""

    spent: float = 0.0
    held: float = 0.0
    estimated: bool = False  # `spent` includes an estimate (a result that gave no cost)
    unpriced: bool = False  # an attempt billed whose cost nothing can tell (part of spent)
    held_unpriced: bool = False  # an attempt live (or maybe: a submit under way) at no known
    #                              price (part of committed, not of spent: nothing was billed)


NOTHING = Money()


@dataclass(slots=True)
class CellRecord:
    """Everything the journal says about one cell."""

    id: str
    label: str = ""
    # replaced, never mutated, by the replay
    values: dict[str, Any] = field(default_factory=lambda: EMPTY)
    request: dict[str, Any] = field(default_factory=lambda: EMPTY)
    attempts: list[Attempt] = field(default_factory=list)
    files: dict[str, FileRecord] = field(default_factory=dict)  # by URL
    download_errors: Sequence[dict[str, Any]] = ()  # replaced by a longer one on each error
    retry_from: int = 0  # attempts before this index do not count (--retry-failed)
    described: bool = False  # its `cell` event (label, values, request) is in the journal
    # the picked cell it renders again (its `cell` event says)
    from_cell: dict[str, Any] | None = None
    # each downloaded video's triage (pipeline.media.qa), by its path; replaced, never mutated
    qa: dict[str, dict[str, Any]] = field(default_factory=lambda: EMPTY)
    # what `status` counts of it (pipeline.media.qa.brief): its flags, its hashes joined
    qa_brief: tuple[tuple[str, ...], str] | None = None
    # A done cell the runner no longer needs in detail keeps only these (see compact()).
    compacted: bool = False
    done_money: Money = NOTHING
    done_calls: int = 0
    done_slot_s: float | None = None

    @property
    def last(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    def failures(self) -> int:
        return sum(1 for a in self.attempts[self.retry_from:] if a.result == GEN_FAILED)

    def succeeded(self) -> Attempt | None:
        for a in reversed(self.attempts):
            if a.result == SUCCEEDED:
                return a
        return None

    def compact(self, fallback_estimate: float | None = None) -> None:
        """Forget the details of a done cell, keeping its money, status calls and slot time:
        a runner of a 100,000-cell job then holds a few hundred bytes per finished cell."""
        self.done_money = money(self, fallback_estimate)
        self.done_calls = self.status_calls()
        self.done_slot_s = slot_seconds(self)
        # Immutable empties: a compacted record takes no more events (a bug would fail loudly).
        self.attempts, self.files, self.download_errors = (), EMPTY, ()  # type: ignore[assignment]  # immutable on purpose
        self.compacted = True

    def status_calls(self) -> int:
        """Status calls made about the cell's accepted requests (all of its attempts)."""
        if self.compacted:
            return self.done_calls
        return sum(a.status_calls for a in self.attempts if a.request_id)

    def sent(self) -> bool:
        """Whether the server accepted a request of the cell: the cells `status_calls_per_cell`
        is a mean over (a cell whose every submit was refused was never polled)."""
        return self.compacted or any(a.request_id for a in self.attempts)

    def state(self, max_attempts: int, live_since: float | None = None) -> str:
        """The cell's state. `live_since`: the start of the run going now, if one is (an
        unanswered submit of that run is `submitting`; of an earlier one, `unknown`)."""
        if self.compacted:
            return DONE
        a = self.last
        if a is None:
            return PENDING
        won = self.succeeded()
        if won is not None:
            return DONE if all(u in self.files for u in won.outputs) else DOWNLOADING
        if a.request_id is None:
            if a.resubmitted_unknown:
                return PENDING
            if a.submit_kind == "not_accepted":
                return FAILED if a.permanent else PENDING
            if a.submit_kind is None and live_since is not None and a.intent_at >= live_since:
                return SUBMITTING
            return UNKNOWN
        if a.result is None:
            if a.status == wire.IN_PROGRESS or a.cancel_outcome == wire.OUTCOME_NOT_CANCELLABLE:
                return RUNNING
            return QUEUED
        if a.result == RESULT_CANCELLED:
            return CANCELLED
        if a.result == LOST:
            return PENDING
        if a.permanent:
            return FAILED
        return FAILED if self.failures() >= max_attempts else RETRY

    def reason(self) -> str:
        a = self.last
        if a is None:
            return ""
        return a.error or a.submit_error or ""


def money(rec: CellRecord | None, fallback_estimate: float | None = None) -> Money:
    """What a cell has cost so far. An attempt's estimate is the one journalled with its
    intent; `fallback_estimate` stands in for journals written before estimates were."""
    if rec is None:
        return NOTHING
    if rec.compacted:
        return rec.done_money
    spent = held = 0.0
    estimated = unpriced = held_unpriced = False
    for a in rec.attempts:
        guess = a.estimate if a.estimate is not None else fallback_estimate
        if a.billed:
            if a.cost is not None:
                spent += a.cost
            else:
                spent += guess or 0.0
                estimated = True
                unpriced = unpriced or guess is None
        elif a.live:
            held += guess or 0.0
            held_unpriced = held_unpriced or guess is None
    return Money(spent, held, estimated, unpriced, held_unpriced)


def slot_seconds(rec: CellRecord) -> float | None:
    """How long the cell's successful attempt held its slot: submitted to result (queue and
    generation both: what decides how fast a job goes at a given concurrency)."""
    if rec.compacted:
        return rec.done_slot_s
    won = rec.succeeded()
    if won is None or not won.submitted_at or not won.result_at:
        return None
    return max(0.0, won.result_at - won.submitted_at)


# --- what a run does with a cell -------------------------------------------------------------
SUBMIT, POLL, DOWNLOAD, SKIP, HOLD = "submit", "poll", "download", "skip", "hold"


@dataclass(frozen=True)
class Action:
    """What a run does with one cell, why (as `plan` shows it), and the journal marker written
    before doing it (`retry_failed`, `resubmit_unknown` or `lost`), if any."""

    does: str
    why: str
    mark: str | None = None


@dataclass(frozen=True)
class ResumeOptions:
    """The choices that change what a run does with a cell."""

    retry_failed: bool = False
    resubmit_unknown: bool = False
    # Requests live on an in-process simulator that has stopped died with it: attempts whose
    # intent is older than this are lost and sent again. None: requests outlive runs.
    lost_before: float | None = None


def resume_action(rec: CellRecord | None, state: str, max_attempts: int,
                  options: ResumeOptions = ResumeOptions()) -> Action:
    """The one table of what a run does with a cell in each state."""
    if rec is None or state == PENDING:
        return Action(SUBMIT, "new: submit")
    if state in (QUEUED, RUNNING, DOWNLOADING, SUBMITTING) and options.lost_before is not None \
            and rec.last is not None and rec.last.intent_at < options.lost_before:
        return Action(SUBMIT, "lost with the simulator that held it: submit again", "lost")
    if state == DONE:
        return Action(SKIP, "done: skip")
    if state in (QUEUED, RUNNING):
        return Action(POLL, "in flight: re-poll")
    if state == DOWNLOADING:
        return Action(DOWNLOAD, "generated: download")
    if state == RETRY:
        return Action(SUBMIT, f"retry: attempt {rec.failures() + 1} of {max_attempts}")
    if state == FAILED:
        if options.retry_failed:
            return Action(SUBMIT, "failed: retry (--retry-failed)", "retry_failed")
        return Action(SKIP, "failed: skip (retry with --retry-failed)")
    if state == UNKNOWN:
        if options.resubmit_unknown:
            return Action(SUBMIT, "unknown: resubmit (--resubmit-unknown; may pay twice)",
                          "resubmit_unknown")
        return Action(HOLD, "unknown: held (check the RunComfy dashboard; --resubmit-unknown "
                            "to resend)")
    if state == CANCELLED:
        return Action(SUBMIT, "cancelled: submit again")
    if state == SUBMITTING:
        return Action(HOLD, "submitting: the running run is sending it")
    return Action(SKIP, "orphaned: no longer in the manifest (kept on disk)")
