"""The simulator's HTTP surface: RunComfy's queue routes as a Starlette app, faults in front.

Route templates, field names and status words come from `pipeline.wire`, the one place that
records what is known of the real wire format. `build_app` returns a plain ASGI callable: an
outer layer counts calls and injects faults (it must see uvicorn's own `receive` to be able to
drop a connection), the Starlette router behind it answers.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .. import wire
from . import faults as faultlib
from .checks import BodyCheck, Refusal, check_data_uris, check_token
from .config import SimConfig
from .defects import Defects
from .faults import FaultPlan
from .listing import Catalog, billed
from .outputs import FILES_PATH, download, output_of, planned_outputs
from .queue import QueueEngine, View
from .stats import Counters
from .video import VideoCache, image_spec

# What the wallet route says with no balance configured (unlimited) [GUESS]: more than any run.
UNLIMITED_USD = 1_000_000.0
STATS_PATH = "/__sim__/stats"
RESET_PATH = "/__sim__/reset"
LIST_LIMIT = 20  # catalog entries per page unless `limit` says otherwise


def _route(template: str) -> str:
    """A wire.py path template as a Starlette route (model ids keep their slashes)."""
    return template.replace("{model_id}", "{model_id:path}")


class SimState:
    """Everything one simulator instance knows: config, queue, faults, counters, videos."""

    def __init__(self, config: SimConfig):
        self.config = config
        self.engine = QueueEngine(config.capacity, config.gen_span, config.fail_rate, config.seed)
        self.faults = FaultPlan(config)
        self.counters = Counters()
        self.videos = VideoCache(config.video_long_side, config.fetch_timeout)
        self.defects = Defects(config.seed, config.defect_rate)
        self.catalog = Catalog(config.models_dirs)
        self.bodies = BodyCheck(config.fetch_timeout)
        self.stopping = False  # set by Simulator.stop(): slow answers stop waiting
        self.bills: dict[str, float] = {}  # request id -> what it was billed (the wallet's)
        self._wallet_lock = threading.Lock()

    async def slow_down(self) -> None:
        """Wait `slow_delay` seconds, or less if the simulator is being stopped."""
        end = time.monotonic() + self.config.slow_delay
        while not self.stopping and (left := end - time.monotonic()) > 0:
            await asyncio.sleep(min(left, 0.05))

    def reset(self) -> None:
        """Forget requests and counters, restart the seeded streams (videos stay cached)."""
        self.engine.reset()
        self.faults.reset()
        self.counters.reset()
        self.defects.reset()
        with self._wallet_lock:
            self.bills = {}

    def balance(self) -> float | None:
        """The wallet now: the configured balance less every bill so far (None: unlimited).
        A request is billed when it succeeds, as /result reports its cost."""
        if self.config.balance is None:
            return None
        with self._wallet_lock:
            for view in self.engine.succeeded_since(set(self.bills)):
                self.bills[view.request.id] = self.cost(view)
            return round(self.config.balance - sum(self.bills.values()), 6)

    def stats(self) -> dict[str, Any]:
        out = self.counters.snapshot(self.engine.counts(), self.videos.encodes,
                                     self.config.as_dict())
        out["balance_usd"] = self.balance()
        out["defects"] = self.defects.snapshot()  # request id -> black | frozen | flicker
        return out

    def error(self, refusal: Refusal, headers: dict[str, str] | None = None) -> JSONResponse:
        """An error body; with the quirk switched on, sometimes or always sent as HTTP 200."""
        body: dict[str, Any] = {wire.ERROR_STATUS_CODE: refusal.status,
                                wire.ERROR_CODE: refusal.code,
                                wire.ERROR_MESSAGE_FIELDS[0]: refusal.message}
        if refusal.detail is not None:
            body[wire.ERROR_DETAIL] = refusal.detail
        status = refusal.status
        if self.faults.quirk():
            self.counters.fault("error_code_quirk")
            status = 200
        return JSONResponse(body, status_code=status, headers=headers)

    # -- helpers ----------------------------------------------------------------------------

    def not_found(self, request_id: str) -> JSONResponse:
        return self.error(Refusal(404, wire.ERROR_CODE_NOT_FOUND,
                                  f"ResourceNotFound: no request {request_id!r}"))

    def status_word(self, view: View) -> str:
        if view.state == wire.SUCCEEDED:
            return self.config.status_success_word
        if view.state == wire.FAILED:
            return self.config.status_on_failure
        if view.state == wire.CANCELLED:
            return self.config.cancelled_word
        return view.state

    def cost(self, view: View) -> float:
        if view.state != wire.SUCCEEDED:
            return 0.0
        return billed(self.catalog.get(view.request.model_id), view.request.body, self.config)

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


def _route_name(method: str, path: str) -> str | None:
    """Which API route a call is for (None: not an API call, so no faults)."""
    if path.startswith("/v1/models/"):
        return "submit" if method == "POST" else "model"
    if path == wire.MODELS_PATH:
        return "catalog"

    if path.startswith("/v1/requests/"):
        for name in ("status", "result", "cancel"):
            if path.endswith("/" + name):
                return name
    return None


class SimApp:
    """The ASGI entry point: count the call, inject its faults, let the router answer."""

    def __init__(self, state: SimState):
        self.state = state
        self.router = Starlette(routes=[
            Route(_route(wire.SUBMIT_PATH), submit, methods=["POST"]),
            Route(_route(wire.MODEL_PATH), model_entry, methods=["GET"]),
            Route(wire.MODELS_PATH, model_list, methods=["GET"]),
            Route(wire.STATUS_PATH, status, methods=["GET"]),
            Route(wire.RESULT_PATH, result, methods=["GET"]),
            Route(wire.CANCEL_PATH, cancel, methods=["POST"]),
            Route(wire.BALANCE_PATH, balance, methods=["GET"]),
            Route(FILES_PATH, download, methods=["GET"]),
            Route(STATS_PATH, sim_stats, methods=["GET"]),
            Route(RESET_PATH, sim_reset, methods=["POST"]),
        ])
        self.router.state.sim = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = _route_name(scope.get("method", ""), scope.get("path", "")) \
            if scope["type"] == "http" else None
        if route is None:
            return await self.router(scope, receive, send)
        sim = self.state
        sim.counters.call(route)
        scope["sim"] = box = {"accepted": False}
        plan = sim.faults.for_call(route)
        if plan.slow:
            sim.counters.fault("slow")
            await sim.slow_down()
        if plan.drop == "before":
            sim.counters.fault("drop_before")
            return await faultlib.drop(receive, send)
        if plan.rate_limited:
            sim.counters.fault("rate_limit")
            wait = sim.config.retry_after
            response = sim.error(
                Refusal(429, wire.ERROR_CODE_RATE_LIMITED, "RateLimited: simulated rate limit"),
                headers={wire.RETRY_AFTER_HEADER: f"{wait:g}"})
            return await response(scope, receive, send)
        if plan.error_status or plan.drop == "after":
            if plan.drop == "after" or plan.process_before_error:
                await self.router(scope, receive, _swallow)
                if box["accepted"]:
                    sim.counters.add("submissions_accepted_unacknowledged")
            if plan.drop == "after":
                sim.counters.fault("drop_after")
                return await faultlib.drop(receive, send)
            sim.counters.fault("error")
            assert plan.error_status is not None
            response = sim.error(Refusal(plan.error_status, wire.ERROR_CODE_SERVER,
                                         f"InternalError: simulated HTTP {plan.error_status}"))
            return await response(scope, receive, send)
        await self.router(scope, receive, send)


async def _swallow(message: Any) -> None:
    """A `send` that throws the answer away (the call was processed; the client never hears)."""


def build_app(config: SimConfig) -> SimApp:
    """The simulator's ASGI app for one config (its state is `app.state`)."""
    return SimApp(SimState(config))
