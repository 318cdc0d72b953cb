"""The summary `pipeline status` prints, and a job read back from its folder.

`view_job(folder)` replays the journal against plan.json into a Tally (pipeline.job.tally);
the report reads a job the same way, so both show the same figures. Read-only: `job_status`
works from another terminal while a run holds the lock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import text
from ..media import qa
from ..models import cost
from .folder import JobFolder
from .found_capacity import capacity_figures, kept, service
from .journal import JobState, read_state
from .next_run import resume_for
from .planned import planned_cells
from .records import FAILED, PENDING, advice_for
from .select import Only, describe_only, select_cells
from .tally import Tally, figures_line


def summarize(tally: Tally, state: JobState, *, job: str | None, model: str | None,
              folder: JobFolder,
              running: bool, concurrency: int, price_source: str | None,
              budget: float | None, manifest_sha256: str | None = None,
              now: float | None = None, models: Mapping[str, str | None] | None = None
              ) -> dict[str, Any]:
    """The status of a job (what `pipeline status --json` prints) from its tally; with
    several `models` (model id -> where its price is from), their figures one by one too."""
    failed, unknown = [], []
    for cid, st in tally.listed.items():
        rec = state.cells[cid]
        label = tally.planned[cid].label if cid in tally.planned else rec.label
        if st == FAILED:
            failed.append({"id": cid, "label": label, "attempts": len(rec.attempts),
                           "reason": rec.reason()})
        else:
            last = rec.last  # listed and not failed: unknown, so it has an attempt
            assert last is not None
            unknown.append({"id": cid, "label": label, "since": text.iso(last.intent_at),
                            "reason": rec.reason() or "the process stopped during the submit"})
    pending: dict[str, dict[str, Any]] = {}  # why cells tried and not accepted wait, by reason
    for cid, rec in state.cells.items():
        if rec.attempts and cid in tally.planned and tally.state_of(cid) == PENDING:
            reason = rec.reason()
            if reason:
                group = pending.setdefault(reason, {"reason": reason, "cells": 0, "example": cid})
                group["cells"] += 1
    triage = qa.Triage()
    for cid, rec in state.cells.items():
        triage.add_brief(cid, rec.qa_brief)
    header = state.header
    by_model = {}
    if models and len(models) > 1:
        by_model = {"models": {k: {**f, "price_source": models.get(k)}
                               for k, f in tally.per_model().items()}}
    return {
        "job": job,
        "model": model,
        "manifest_sha256": manifest_sha256,
        "out": str(folder),
        "running": running,
        **tally.figures(concurrency, now),
        "budget_usd": budget,
        "price_source": price_source,
        "concurrency": concurrency,
        "failed": failed,
        "unknown": unknown,
        "pending_reasons": sorted(pending.values(), key=lambda g: -g["cells"]),
        # the clips' triage (pipeline.media.qa): clips measured, cells flagged, by flag
        "qa": triage.figures(),
        "torn_tail": state.torn_tail,
        "journal_bytes": state.valid_bytes,
        "cell_events": state.cell_events,
        "last_run": text.iso(header.get("t")) if header else None,
        **by_model,
    }


def team_ledger_lines(news: Mapping[str, Any] | None) -> list[str]:
    """What the team ledger knows of the job that its journal does not (`team_ledger`, from
    pipeline.account.admin.job_news), as `status` says it."""
    if not news:
        return []
    if news.get("error"):
        return [f"the team ledger could not be asked: {news['error']}"]
    lines = []
    if news.get("waiting"):
        lines.append(f"the run is {news['waiting']}")
    if news.get("ended"):
        n = news["ended"]
        lines.append(
            f"the team ledger knows more: {n} request{'s' if n != 1 else ''} counted here as "
            f"live ended ({news['billed']} billed, {text.money(news['billed_usd'])}; seen by "
            "`pipeline account sweep` or another runner): the next `pipeline run` of this job "
            "collects them and brings these figures up to date")
    return lines


def status_text(s: Mapping[str, Any]) -> str:
    lines = [f"job {s['job']} ({s['out']}){': a run is going' if s['running'] else ''}",
             figures_line(s)]
    if s.get("selection"):
        lines.insert(1, f"selected: {s['selection']['only']} ({s['total']} of "
                        f"{s['selection']['of']} cells)")
    if s.get("report_stale"):
        lines.append("the reports are older than the journal (a run was killed before it "
                     "wrote them?): `pipeline report` writes them again")
    lines += team_ledger_lines(s.get("team_ledger"))
    if s.get("manifest_changed"):
        lines.append("the manifest changed since the last run: these are the figures of the "
                     "last run's plan (`pipeline plan` shows what a run would do now)")
    details = []
    if s.get("models"):
        details.append("price: per model (below)")
    elif s.get("price_source"):
        details.append(f"price: {s['price_source']}")
    if s.get("per_cell_s") is not None:
        details.append(f"{s['per_cell_s']:g} s per cell ({s['duration_source']})")
    if s.get("status_calls_per_cell"):
        details.append(f"{s['status_calls_per_cell']} status calls per cell")
    if details:
        lines.append("; ".join(details))
    triage = s.get("qa") or {}
    if triage.get("flagged"):
        lines.append(f"{qa.flagged_line(triage)} (of {triage['measured']} clips triaged; "
                     "report.md lists them)")
    for model_id, f in (s.get("models") or {}).items():
        counts = f["counts"]
        lines.append(f"  {model_id}: {counts['done']}/{f['cells']} done"
                     + "".join(f", {k} {v}" for k, v in counts.items() if v and k != "done")
                     + f"; spent {text.money(f['spent_usd'])}, to go "
                       f"{text.money(f['to_go_usd'])}; price: "
                       f"{f.get('price_source') or 'unknown'}")
    for f in s["failed"]:
        lines.append(f"failed  {f['id']}  {f['label']}: {f['reason']} ({f['attempts']} attempts)")
    for u in s["unknown"]:
        lines.append(f"unknown {u['id']}  {u['label']}: since {u['since']}: {u['reason']}")
    for p in s.get("pending_reasons", [])[:5]:
        lines.append(f"pending {p['cells']} cell{'s' if p['cells'] != 1 else ''} (e.g. "
                     f"{p['example']}), last try not accepted: {p['reason']}")
    if len(s.get("pending_reasons", [])) > 5:
        lines.append(f"pending: and {len(s['pending_reasons']) - 5} more reasons (status --json "
                     "lists them)")
    for name, advice in advice_for(s["counts"]).items():  # the cell-state table's
        lines.append(f"  {name}: {advice}")
    return "\n".join(lines)


# --- a job from its folder -------------------------------------------------------------------
@dataclass
class JobView:
    """A job as `status` shows it: its journal replayed (or the run's own state, at the end of
    a run), the header of its plan snapshot (plan.json without its cells), their tally, and
    the settings read from both (`settings_of`)."""

    folder: JobFolder
    state: JobState
    plan: Mapping[str, Any]  # plan.json (its cells are not read here)
    tally: Tally
    running: bool
    settings: Settings

    def summary(self, now: float | None = None) -> dict[str, Any]:
        """What `pipeline status --json` prints: the one builder, for `status` and for the
        summary a run leaves in status.json."""
        plan, header, s = self.plan, self.state.header, self.settings
        out = summarize(self.tally, self.state, job=plan.get("job") or header.get("job"),
                        model=plan.get("model") or header.get("model"), folder=self.folder,
                        running=self.running, concurrency=s.concurrency,
                        price_source=s.price_source, budget=s.budget,
                        manifest_sha256=plan.get("manifest_sha256"), now=now,
                        models={x["id"]: (x.get("price") or {}).get("source")
                                for x in plan.get("models") or () if "id" in x})
        if plan.get("selection"):
            out["selection"] = plan["selection"]
        if s.capacity is not None:
            out["capacity"] = s.capacity
        return out


def view_of(folder: JobFolder, state: JobState, plan: Mapping[str, Any], tally: Tally, *,
            running: bool) -> JobView:
    """A job from a state and a tally already counted (a run's, as it ends)."""
    return JobView(folder, state, plan, tally, running, settings_of(plan, state.header, folder))


DEFAULT_MAX_ATTEMPTS = 3  # the manifest's default, for journals that do not say


@dataclass(frozen=True)
class Settings:
    """What a job's plan snapshot (else its journal's last run) says of how it runs."""

    model: str
    sheet: dict[str, Any] | None
    fps: int
    rates: dict[str, Any]  # model id -> (price sheet, fps), for a sweep of several models
    max_attempts: int
    concurrency: int  # with concurrency: auto, the capacity the runs found, if they have
    budget: float | None
    price_source: str | None
    typical: Any  # seconds a cell, or per model id
    capacity: dict[str, Any] | None  # with concurrency: auto, what the runs found
    guess: str | None = None  # where `typical` comes from when not the models' own times


def settings_of(plan: Mapping[str, Any], header: Mapping[str, Any],
                folder: JobFolder | None = None) -> Settings:
    """The settings of a job from plan.json's header (without its cells) and the journal's
    last `run` event (and, with concurrency: auto, the capacity kept in `folder`); the one
    reading of both, for `status` and the report."""
    settings = plan.get("run") or {}
    price = plan.get("price") or {}
    concurrency = header.get("concurrency") or settings.get("concurrency") or 1
    auto = header.get("auto")
    capacity = None
    if auto and folder is not None:  # the ETA assumes the capacity the run has found, if any
        found = kept(folder, service(header.get("backend"), header.get("base_url")))
        capacity = capacity_figures(found["capacity"] if found else None,
                                    auto.get("queue_ahead", 2), None)
        concurrency = found["capacity"] if found else concurrency
    fps = plan.get("fps") or cost.DEFAULT_FPS
    models = plan.get("models") or []  # a sweep of several models prices each on its own
    rates = {x["id"]: ((x.get("price") or {}).get("sheet"), x.get("fps") or fps)
             for x in models if isinstance(x, dict) and "id" in x}
    typical: Any = plan.get("typical_s")
    guess = plan.get("typical_guess")
    if len(rates) > 1 and not guess:
        typical = {x["id"]: x.get("typical_s") for x in models}
    return Settings(
        model=plan.get("model") or header.get("model") or "",
        sheet=price.get("sheet") if price else header.get("price"),
        fps=fps, rates=rates,
        max_attempts=settings.get("max_attempts") or header.get("max_attempts") or
        DEFAULT_MAX_ATTEMPTS,
        concurrency=concurrency,
        budget=settings.get("budget", header.get("budget")),
        price_source=price.get("source") if price else header.get("price_source"),
        typical=typical, capacity=capacity, guess=guess)


def new_tally(s: Settings, cells: Iterable[Any], state: JobState, running: bool) -> Tally:
    """A tally of the planned `cells` with nothing counted yet: `update` it per cell (the
    report, one cell at a time) or count a replayed journal into it (`view_job`)."""
    header = state.header
    return Tally(planned_cells(cells, s.model, s.sheet, s.fps, models=s.rates),
                 max_attempts=s.max_attempts, budget=s.budget,
                 live_since=header.get("t") if running and header else None,
                 resume=resume_for(state, running=running), typical=s.typical, guess=s.guess)


def view_job(folder: JobFolder | Path, plan: dict[str, Any] | None = None,
             only: Only = ()) -> JobView:
    """Replay a job folder and tally it against its plan (plan.json unless given); `only`
    narrows both to the cells it selects (pipeline.job.select)."""
    folder = JobFolder.at(folder)
    running = folder.is_running()
    state = read_state(folder)
    plan = plan if plan is not None else folder.read_plan()
    header = state.header
    if plan is None:  # no plan.json (older versions): the journal's cells are the job
        plan = {"cells": [{"id": cid, "label": rec.label, "values": rec.values,
                           "request": rec.request} for cid, rec in state.cells.items()]}
    if only:
        cells = select_cells(plan["cells"], only)
        plan = {**plan, "cells": cells,
                "selection": {"only": describe_only(only), "of": len(plan["cells"])}}
        state = state.only({c["id"] for c in cells})
    s = settings_of(plan, header, folder)
    tally = new_tally(s, plan["cells"], state, running)
    tally.count(state)
    if running and header:  # the run going is still waiting for its canary's cells
        tally.canary = max(0, header.get("canary", 0) - sum(
            1 for c in state.canaries if c.get("ok") and c.get("t", 0) >= header.get("t", 0)))
    return JobView(folder, state, plan, tally, running, s)
