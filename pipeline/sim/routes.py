"""The simulator's answers to RunComfy's routes: submit, status, result and cancel of a
request, the model catalog (one entry, a page of it), the wallet, and the simulator's own
stats and reset. Each handler reads the instance's `SimState` from the router and answers as
`pipeline.wire` records the real service does.

Apart from `app` (the ASGI entry point that counts calls and injects faults in front of these)
because what a route answers is one concept and when an answer is lost or refused another.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from .. import wire
from .checks import Refusal, check_data_uris, check_token
from .listing import billed
from .outputs import output_of, planned_outputs
from .queue import View
from .state import SimState
from .video import image_spec

# What the wallet route says with no balance configured (unlimited) [GUESS]: more than any run.
UNLIMITED_USD = 1_000_000.0
LIST_LIMIT = 20  # catalog entries per page unless `limit` says otherwise


def _urls(request: Request, request_id: str) -> dict[str, str]:
    base = str(request.base_url).rstrip("/")
    return {key: base + path.format(request_id=request_id) for key, path in (
        (wire.STATUS_URL, wire.STATUS_PATH), (wire.RESULT_URL, wire.RESULT_PATH),
        (wire.CANCEL_URL, wire.CANCEL_PATH))}


def _state(request: Request) -> SimState:
    state: SimState = request.app.state.sim
    return state


def _auth(request: Request) -> JSONResponse | None:
    sim = _state(request)
    refusal = check_token(request.headers.get("authorization"), sim.config)
    return None if refusal is None else sim.error(refusal)


async def submit(request: Request) -> Response:
    sim = _state(request)
    model_id = request.path_params["model_id"]
    refusal = _auth(request)
    model = sim.catalog.get(model_id) if refusal is None else None
    if refusal is None and model is None:
        refusal = sim.error(Refusal(400, wire.ERROR_CODE_BAD_MODEL,
                                    f"InvalidResourceIdentifier: unknown model {model_id!r}"))
    if refusal is None:
        assert model is not None
        try:
            raw = await request.body()
        except ClientDisconnect:  # the client went away mid-body (killed): nothing to answer
            return Response(status_code=499)
        problem: Refusal | None
        try:
            body: Any = json.loads(raw)
        except ValueError as exc:
            problem = Refusal(422, wire.ERROR_CODE_VALIDATION, f"Validation Error: body: {exc}",
                              [{"loc": ["body"], "msg": "invalid JSON", "type": "json_invalid"}])
        else:
            problem = check_data_uris(body, sim.config) if isinstance(body, dict) else None
            if problem is None and sim.bodies.fetches(body, model):  # not on the event loop
                problem = await asyncio.to_thread(sim.bodies.check, body, model)
            elif problem is None:
                problem = sim.bodies.check(body, model)
        if problem is None:
            problem = _unaffordable(sim, model, body)
        if problem is not None:
            refusal = sim.error(problem)
    if refusal is not None:
        sim.counters.add("submissions_refused")
        return refusal
    assert model is not None  # (no refusal: the model was found)
    view, duplicate = sim.engine.submit(model_id, body)
    view.request.extra["image"] = image_spec(body, model.image_fields())
    view.request.extra.update(planned_outputs(model, body, sim.config))
    if view.request.extra["kind"] == "video":
        view.request.extra["variant"], view.request.extra["defect"] = sim.defects.draw(
            view.request.id, body)
    request.scope["sim"]["accepted"] = True
    sim.counters.add("submissions_accepted")
    if duplicate:
        sim.counters.add("duplicate_submissions")
    if view.request.error:
        sim.counters.fault("fail")
    return JSONResponse({wire.REQUEST_ID: view.request.id, **_urls(request, view.request.id)})


def _unaffordable(sim: SimState, model: Any, body: Any) -> Refusal | None:
    """The insufficient-balance refusal when the wallet cannot pay this request (spent, or
    less left than it will be billed) [GUESS: RunComfy does not say how it decides]."""
    left = sim.balance()
    if left is None or not isinstance(body, dict):
        return None
    price = billed(model, body, sim.config)
    if left > 0 and left >= price:
        return None
    sim.counters.add("submissions_refused_balance")
    return Refusal(wire.NO_BALANCE_STATUS, wire.ERROR_CODE_NO_BALANCE,
                   f"InsufficientResources: balance ${max(left, 0):.2f} cannot pay this "
                   f"request (${price:.2f})")


async def balance(request: Request) -> Response:
    """The account's wallet (RunComfy's core API route; served on the simulator's host; no
    faults: a run reads it once in a while, and the seeded fault streams stay as they were)."""
    sim = _state(request)
    sim.counters.call("balance")
    refusal = _auth(request)
    if refusal is not None:
        return refusal
    left = sim.balance()
    return JSONResponse({wire.BALANCE_USD: UNLIMITED_USD if left is None else left,
                         wire.BALANCE_CURRENCY: "USD"})


async def model_entry(request: Request) -> Response:
    sim = _state(request)
    model_id = request.path_params["model_id"]
    refusal = _auth(request)
    if refusal is not None:
        return refusal
    model = sim.catalog.get(model_id)
    if model is None:
        return sim.error(Refusal(400, wire.ERROR_CODE_BAD_MODEL,
                                 f"InvalidResourceIdentifier: unknown model {model_id!r}"))
    return JSONResponse(sim.catalog.entry(model, sim.config))


def _int_param(request: Request, name: str, default: int) -> int | None:
    text = request.query_params.get(name)
    if text is None:
        return default
    return int(text) if text.isdigit() else None


async def model_list(request: Request) -> Response:
    """The catalog, a page at a time: `?include_schema=true&limit=&offset=&search=`."""
    sim = _state(request)
    refusal = _auth(request)
    if refusal is not None:
        return refusal
    limit = _int_param(request, "limit", LIST_LIMIT)
    offset = _int_param(request, "offset", 0)
    if limit is None or offset is None or not 1 <= limit <= wire.CATALOG_LIMIT_MAX:
        return sim.error(Refusal(400, wire.ERROR_CODE_BAD_INPUT,
                                 f"InvalidInput: limit must be 1 to {wire.CATALOG_LIMIT_MAX} "
                                 "and offset a whole number"))
    search = request.query_params.get("search", "").lower()
    schema = request.query_params.get(wire.INCLUDE_SCHEMA_PARAM, "").lower() in ("true", "1")
    ids = [i for i in sim.catalog.ids() if search in i.lower()]
    entries = []
    for model_id in ids[offset:offset + limit]:
        model = sim.catalog.get(model_id)
        if model is not None:
            entries.append(sim.catalog.entry(model, sim.config, schema=schema))
    return JSONResponse({wire.CATALOG_MODELS: entries, wire.CATALOG_TOTAL: len(ids)})


def _lookup(request: Request) -> tuple[SimState, str, View] | Response:
    """The simulator, request id and current view of a /requests/{id}/... call, or the answer
    refusing it (bad token: 401/400; unknown id: 404)."""
    sim = _state(request)
    request_id = request.path_params["request_id"]
    refusal = _auth(request)
    if refusal is not None:
        return refusal
    view = sim.engine.view(request_id)
    if view is None:
        return sim.not_found(request_id)
    return sim, request_id, view


async def status(request: Request) -> Response:
    found = _lookup(request)
    if isinstance(found, Response):
        return found
    sim, request_id, view = found
    urls = _urls(request, request_id)
    body: dict[str, Any] = {wire.REQUEST_ID: request_id, "status": sim.status_word(view),
                            wire.STATUS_URL: urls[wire.STATUS_URL],
                            wire.RESULT_URL: urls[wire.RESULT_URL]}
    if view.queue_position is not None:
        body[wire.QUEUE_POSITION] = view.queue_position
    return JSONResponse(body)


async def result(request: Request) -> Response:
    found = _lookup(request)
    if isinstance(found, Response):
        return found
    sim, _, view = found
    req = view.request
    word = sim.config.cancelled_word if view.state == wire.CANCELLED else view.state
    body: dict[str, Any] = {wire.REQUEST_ID: req.id, wire.MODEL_ID: req.model_id,
                            "status": word, wire.CREATED_AT: sim.engine.iso(req.submitted)}
    if view.state in (wire.SUCCEEDED, wire.FAILED, wire.CANCELLED):
        assert req.finished is not None
        body[wire.FINISHED_AT] = sim.engine.iso(req.finished)
        if request.query_params.get("include_cost", "").lower() in ("true", "1"):
            body[wire.COST] = sim.cost(view)
    if view.state == wire.SUCCEEDED:
        body["status"] = sim.config.result_success_word
        body[wire.OUTPUT] = output_of(req, str(request.base_url).rstrip("/"),
                                      sim.config.output_key)
    elif view.state == wire.FAILED:
        body[wire.ERROR] = req.error
    return JSONResponse(body)


async def cancel(request: Request) -> Response:
    sim = _state(request)
    request_id = request.path_params["request_id"]
    refusal = _auth(request)
    if refusal is not None:
        return refusal
    answer = sim.engine.cancel(request_id)
    if answer is None:
        return sim.not_found(request_id)
    view, cancelled = answer
    if cancelled:
        sim.counters.add("cancellations")
    outcome = wire.OUTCOME_CANCELLED if cancelled else wire.OUTCOME_NOT_CANCELLABLE
    return JSONResponse({wire.REQUEST_ID: request_id, "status": sim.status_word(view),
                         wire.OUTCOME: outcome}, status_code=202)


async def sim_stats(request: Request) -> Response:
    return JSONResponse(_state(request).stats())


async def sim_reset(request: Request) -> Response:
    _state(request).reset()
    return JSONResponse({"reset": True})

