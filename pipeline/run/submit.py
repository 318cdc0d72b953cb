"""One submit of one cell: reserve its cost, journal the intent, POST, journal the answer.

The intent is durable before the POST and the request id right after the answer, so a crash
at any instant leaves either nothing sent, a request id to poll, or an `unknown` cell held for
the user (the API has no idempotency key). A not-accepted submit (429, connection refused) is
sent again after the client's backoff; a refusal for good fails the cell at once.
"""

from __future__ import annotations

import logging

from ..client import NOT_ACCEPTED
from ..errors import ApiUnreachable, AuthError, ClientError, SubmitError
from ..job import journal as ev
from ..prepare.expand import Cell
from .context import RunContext, crash_point

log = logging.getLogger("pipeline.run")

SUBMIT_TRIES = 8  # not-accepted submits (429, connection refused) tried per cell and run


async def submit(run: RunContext, cell: Cell) -> bool:
    """One attempt at a cell; True when the API accepted it (its request id is journalled)."""
    control = run.control
    rec = run.state.cell(cell.id)
    if not rec.described:
        run.write(ev.described(cell.id, cell.label, cell.values, cell.request,
                               cell.from_cell))
    estimate = run.estimate(cell.id)
    for tries in range(1, SUBMIT_TRIES + 1):
        if control.submitting_stopped:
            return False
        refusal = run.tally.ledger.reserve(cell.id, estimate)
        if refusal is not None:
            control.halt(refusal)
            return False
        n = len(rec.attempts) + 1
        run.write(ev.intent(cell.id, n, estimate))
        await run.journal.durable()
        crash_point("after_intent")
        try:
            sub = await run.client.submit(run.model_id, cell.request,
                                          base_dir=run.plan.manifest.folder,
                                          image_fields=run.plan.manifest.model.image_fields())
        except SubmitError as exc:
            permanent = exc.kind == NOT_ACCEPTED and bool(exc.permanent)
            run.write(ev.submit_failed(cell.id, n, exc.kind, exc.message, permanent))
            await run.journal.durable()
            if isinstance(exc.error, AuthError):
                control.fail(exc.error, "the API refused the token")
                return False
            if isinstance(exc.error, ApiUnreachable):
                control.fail(exc.error, "the API cannot be reached")
                return False
            if exc.kind != NOT_ACCEPTED:
                log.warning("cell %s: submit outcome unknown (%s); held as unknown",
                            cell.id, exc.message)
                return False
            if permanent:
                log.warning("cell %s: refused: %s", cell.id, exc.message)
                control.cell_failed()
                return False
            if await control.sleep(run.client.backoff(tries, exc.retry_after)):
                return False
            continue
        except ClientError as exc:  # e.g. a local image that cannot be sent
            run.write(ev.submit_failed(cell.id, n, NOT_ACCEPTED, str(exc), True))
            await run.journal.durable()
            control.cell_failed()
            return False
        crash_point("after_submit")
        run.write(ev.submitted(cell.id, n, sub.request_id))
        await run.journal.durable()
        return True
    return False
