"""One submit of one cell: reserve its cost, journal the intent, POST, journal the answer.

The intent is durable before the POST and the request id right after the answer, so a crash
at any instant leaves either nothing sent, a request id to poll, or an `unknown` cell held for
the user (the API has no idempotency key). A not-accepted submit (429, connection refused) is
sent again after the client's backoff, up to `Retries.submit` times (pipeline.run.policy); a
refusal for good fails the cell at once, and is told to the refusal breaker
(pipeline.run.stopping), which stops submitting when the same refusal answers several submits
in a row. Insufficient balance stops submitting at once and leaves the cell pending (it is not
the cell's fault); a refused token, or an API that cannot be reached, stops the run
(policy.FATAL).
"""

from __future__ import annotations

import logging
import time

from ..client import NOT_ACCEPTED
from ..errors import ClientError, SubmitError
from ..job import journal as ev
from ..prepare.expand import Cell
from .advice import for_refusal, is_balance
from .context import RunContext, crash_point

log = logging.getLogger("pipeline.run")

async def submit(run: RunContext, cell: Cell) -> bool:
    """One attempt at a cell; True when the API accepted it (its request id is journalled)."""
    control, stopping = run.control, run.control.stopping
    rec = run.state.cell(cell.id)
    if not rec.described:
        run.write(ev.described(cell.id, cell.label, cell.values, cell.request,
                               cell.from_cell))
    estimate = run.estimate(cell.id)
    tries = counted = 0
    while counted < run.retries.submit:
        tries += 1
        counted += 1
        if stopping.submitting_stopped:
            return False
        n = len(rec.attempts) + 1
        if run.team is not None and not await run.team.acquire(cell.id, n, estimate, stopping):
            return False
        refusal = run.tally.ledger.reserve(cell.id, estimate)
        if refusal is not None:
            stopping.halt(refusal)
            if run.team is not None:  # the slot taken for it goes back
                run.team.changed(cell.id, n)
            return False
        run.write(ev.intent(cell.id, n, estimate))
        await run.journal.durable()
        crash_point("after_intent")
        try:
            model = run.model_of(cell)
            control.requests.posting(cell.id)  # (its request can exist from now on)
            sub = await run.client.submit(model.id, cell.request,
                                          base_dir=run.plan.manifest.folder,
                                          image_fields=model.image_fields())
        except SubmitError as exc:
            control.requests.unsent(cell.id)
            balance = is_balance(exc.status_code, exc.error_code)
            permanent = exc.kind == NOT_ACCEPTED and bool(exc.permanent) and not balance
            run.write(ev.submit_failed(cell.id, n, exc.kind, exc.message, permanent))
            await run.journal.durable()
            if stopping.fail_on(exc.error):  # (policy.FATAL: the token, the API's host)
                return False
            if exc.kind != NOT_ACCEPTED:
                stopping.refusals.answered()
                # it may run unseen (pipeline.run.auto), from when it was sent
                control.requests.outcome_unknown(rec.last.intent_at if rec.last else None)
                log.warning("cell %s: submit outcome unknown (%s); held as unknown",
                            cell.id, exc.message)
                return False
            if permanent or balance:
                log.warning("cell %s: refused: %s", cell.id, exc.message)
                said = getattr(exc.error, "message", None) or exc.message  # the server's words
                todo = for_refusal(exc.status_code, exc.error_code, said,
                                   data_uri=sends_data_uri(run, cell))
                run.watch.refused(cell.id, todo)
                stopping.refused(exc.status_code, exc.error_code, said, todo)
                if permanent:
                    stopping.cell_failed()
                return False
            if exc.status_code == 429:
                control.requests.rate_limited(time.time())
            if run.client.unreachable:  # the client's own patience bounds these (ApiUnreachable)
                counted -= 1
            if await stopping.sleep(run.client.backoff(tries, exc.retry_after)):
                return False
            continue
        except ClientError as exc:  # e.g. a local image that cannot be sent
            control.requests.unsent(cell.id)
            run.write(ev.submit_failed(cell.id, n, NOT_ACCEPTED, str(exc), True))
            await run.journal.durable()
            stopping.cell_failed()
            return False
        crash_point("after_submit")
        stopping.refusals.answered()
        run.write(ev.submitted(cell.id, n, sub.request_id))
        await run.journal.durable()
        return True
    return False


def sends_data_uri(run: RunContext, cell: Cell) -> bool:
    """Whether the cell's request carries an image as a data: URI (a local file is sent so)."""
    for name in run.plan.manifest.model.image_fields():
        value = cell.request.get(name)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and item and not item.startswith(("http://", "https://")):
                return True
    return False
