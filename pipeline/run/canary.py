"""The canary: on a service never proven, one cell first, and the rest only once it is done.

Much of what we know of the real service is read from documentation (pipeline.wire), so a
run's first cells are where an unknown shows up. Until `run.canary` cells (default 1 on the
runcomfy backend) are done, result read, file downloaded, media check passed, the run lets
only that many be live: `Control.limit()` says so, and the runner lets those cells keep their
slots through their download until `judge` has looked at them. No second loop: the slots
that hold the rest back are the ones every cell takes. In a sweep of several models each
model is proven by cells of its own (`first` puts them ahead: its route, output key and bill
are its own), and what each was billed re-prices its own model.

A canary cell the service ran and reported failed (a generation failure, with its reason) is
sent again, still alone, while it has attempts left (`run.max_attempts`): one fluke of a
service that fails a generation in ten does not stop the night (`fluke` says when). A failure
that says the wire or the request is wrong (a refusal, a result without output, a video that
does not match the request, a status word nobody knows) stops the run at once, and so do
failures that used every attempt; the line that stops the run says which.

`judge(run, cell)` says what a canary cell found (the status words the service sent, where
the video's URL was, the media check, what it was billed against its estimate), journals it
(a `canary` event, from which pipeline.job.price corrects the job's price before anything
else is reserved) and either counts the cell as proven or stops the run before anything else
is submitted, in one line with the service's reason and what to do.
"""

from __future__ import annotations

import logging
from typing import Any

from .. import text, wire
from ..job import journal as ev
from ..job.forecast import Forecast, planned_at
from ..job.plan_json import write_snapshot
from ..job.price import billed_ratio
from ..job.records import (
    DONE,
    DOWNLOADING,
    GEN_FAILED,
    PENDING,
    RETRY,
    STATE_INFO,
    UNKNOWN,
    CellRecord,
)
from ..models import cost
from ..prepare.expand import Cell
from .context import RunContext
from .poll import NO_OUTPUT
from .watch import Seen

log = logging.getLogger("pipeline.canary")


def first(cells: list[Cell], needs: dict[str, int]) -> list[Cell]:
    """The cells to submit, the canary's first: per model, its first `needs[model]` cells
    (plan order), so that each model of a sweep is proven by cells of its own before the rest
    of any model is sent; then the others, in plan order."""
    left = dict(needs)
    ahead, rest = [], []
    for cell in cells:
        if left.get(cell.model, 0) > 0:
            left[cell.model] -= 1
            ahead.append(cell)
        else:
            rest.append(cell)
    return ahead + rest


def fluke(run: RunContext, cell: Cell) -> bool:
    """Whether a canary cell's last attempt is one to send again (alone): the service ran it
    and its result said failed (a generation failure), attempts are left, and nothing it showed
    says the wire or the request is wrong (a status word nobody knows, a result without
    output). Logs the retry."""
    rec = run.state.cells.get(cell.id)
    a = rec.last if rec is not None else None
    if rec is None or a is None or rec.state(run.max_attempts) != RETRY:
        return False
    seen = run.watch.cells.get(cell.id, Seen())
    if a.request_id is None or a.result != GEN_FAILED or a.error == NO_OUTPUT or \
            seen.result not in wire.RESULT_FAILURE or _unknown(seen):
        return False
    log.warning("the canary cell %s %s failed on the service (%s), attempt %d of %d: sending "
                "it again, still alone", cell.id, _label(cell), rec.reason() or "no reason given",
                rec.failures(), run.max_attempts)
    return True


def _unknown(seen: Seen) -> list[str]:
    """The status words a canary cell showed that neither the docs nor RunComfy's code name."""
    known = wire.ALL_LIVE_STATUSES | wire.STATUS_FINISHED
    return [w for w in seen.statuses if w not in known]


async def judge(run: RunContext, cell: Cell) -> None:
    """Look at a canary cell whose drive has ended: prove it, or stop the run."""
    control = run.control
    seen = run.watch.cells.pop(cell.id, Seen())
    rec = run.state.cells.get(cell.id)
    st = rec.state(run.max_attempts) if rec is not None else PENDING
    model = run.model_of(cell)
    base = run.price.of(model.id).uncorrected
    estimate = cost.cell_cost(base.sheet, cell.request, model.fps)
    billed = seen.cost if st == DONE else None  # a done record keeps no attempts
    problems = [p for _, _, check in seen.media for p in check.get("problems", [])]
    ok = st == DONE and not problems
    findings = _findings(seen, estimate, billed)
    run.write(ev.canary(cell.id, ok, findings, estimate=estimate, cost=billed,
                        sheet=base.sheet, model=model.id))
    await run.journal.durable()
    price = run.price.corrected(run.state.billed_canaries)
    if price != run.price:
        reprice(run, price)
        findings.append(f"the rest of the job is estimated at what it was billed "
                        f"(price: {price.of(model.id).source})")
    if findings:
        log.info("canary %s %s: %s", cell.id, _label(cell), "; ".join(findings))
    if ok:
        await control.pool.canary_proven()
        run.tally.canary = control.pool.canary  # the ETA no longer waits for this cell
        if not control.pool.canary:
            run.watch.active = False
            run.watch.cells.clear()
            log.info("canary proven: submitting the rest at concurrency %d",
                     control.pool.limit())
        return
    control.stopping.halt(f"the canary cell {cell.id} {_label(cell)} "
                 + _failure(run, rec, st, seen, problems)
                 + "; nothing else was submitted")


def reprice(run: RunContext, price: Any) -> None:
    """Estimate the rest of the job at `price`: the tally (money to go, the budget's
    reservations) and plan.json, which `status` and the report read."""
    run.price = price
    run.tally.reprice(planned_at(run.plan.manifest, run.plan.cells, price), run.state)
    write_snapshot(run.folder, Forecast(run.plan, price, run.state, run.tally,
                                        run.control.slots))


def _label(cell: Cell) -> str:
    return f"({cell.label})" if cell.label else ""


def _findings(seen: Seen, estimate: float | None, billed: float | None) -> list[str]:
    out = []
    if seen.statuses:
        out.append("status words " + ", ".join(seen.statuses))
    if seen.result:
        out.append(f"result {seen.result!r}")
    if seen.video_from:
        out.append(f"video URL in {seen.video_from}")
    for path, probe, check in seen.media:
        if probe is None:
            out.append(f"{path}: {'; '.join(check.get('problems', [])) or 'unreadable'}")
            continue
        if probe.get("frames") is None:  # an image model's picture (pipeline.media.probe)
            what = f"{path}: a {probe.get('width')}x{probe.get('height')} {probe.get('codec')}"
        else:
            what = (f"{path}: {probe.get('frames')} frames at {probe.get('fps'):g} fps, "
                    f"{probe.get('width')}x{probe.get('height')}, resolution "
                    f"{check.get('resolution')}")
        out.append(what + ("" if check.get("ok") else
                           f" (does not match the request: {'; '.join(check['problems'])})"))
    ratio = billed_ratio(estimate, billed)
    if billed is None:
        if estimate is not None and seen.result:
            out.append(f"no cost reported (estimate {text.money(estimate)})")
    elif ratio is None or estimate is None:  # (a ratio needs an estimate)
        out.append(f"billed {text.money(billed)} (no estimate to compare)")
    else:
        out.append(f"billed {text.money_exact(billed)} against an estimate of "
                   f"{text.money_exact(estimate)} ({(ratio - 1) * 100:+.0f}%)")
    return out


def _failure(run: RunContext, rec: CellRecord | None, st: str, seen: Seen,
             problems: list[str]) -> str:
    """Why the canary cell is not proven, with the service's reason and what to do."""
    a = rec.last if rec is not None else None
    reason = rec.reason() if rec is not None else ""
    if st == DONE:
        paths = ", ".join(path for path, _, _ in seen.media)
        return (f"made a video that does not match the request ({'; '.join(problems)}): look "
                f"at {paths}; if it is right, run again to go on (the canary counts as done), "
                "else fix the manifest")
    if a is not None and a.request_id is None and a.submit_kind is not None:
        if st == UNKNOWN:
            info = STATE_INFO[UNKNOWN]
            return f"is {UNKNOWN} ({reason}): {info.means}; {info.advice}"
        if st == PENDING:
            return (f"could not be submitted ({reason}): check RUNCOMFY_BASE_URL and the "
                    "service, then run again")
        return f"was refused ({reason}): {seen.refusal or 'fix the cause, then run again'}"
    if st == DOWNLOADING:
        errors = rec.download_errors if rec is not None else ()
        last = errors[-1]["error"] if errors else "no answer"
        return (f"was generated but its video could not be downloaded ({last}): run again "
                f"to {STATE_INFO[DOWNLOADING].next}")
    if a is not None and a.error == NO_OUTPUT:
        return (f"succeeded but its result named no output URL (result {seen.result!r}): the "
                "service's result format is not what pipeline.wire expects; report it, with "
                "`pipeline run --verbose`")
    if a is not None and a.result is not None and (unknown := _unknown(seen)):
        return (f"failed ({reason or 'no reason given'}) after status words the API does not "
                f"document ({', '.join(unknown)}): the service's status format is not what "
                "pipeline.wire expects; report it, with `pipeline run --verbose`")
    if a is not None and a.result is not None:
        tries = rec.failures() if rec is not None else 0
        used = ""
        if tries >= run.max_attempts:
            used = (f" in all {tries} attempts (max_attempts {run.max_attempts})" if tries > 1
                    else " (max_attempts 1: not sent again)")
        return (f"failed on the service{used}: {reason or 'no reason given'}; fix what it "
                "names, or if it was a fluke run again (the canary goes first again)")
    return f"ended {st}: {reason or 'no reason given'}; fix the cause, then run again"
