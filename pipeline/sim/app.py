"""The simulator's HTTP surface: RunComfy's queue routes as a Starlette app, faults in front.

Route templates, field names and status words come from `pipeline.wire`, the one place that
records what is known of the real wire format. `build_app` returns a plain ASGI callable: an
outer layer counts calls and injects faults (it must see uvicorn's own `receive` to be able to
drop a connection), the Starlette router behind it answers.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .. import wire
from ..errors import ModelNotFound
from ..prepare.models import load_model
from . import faults as faultlib
from .checks import Refusal, check_body, check_data_uris, check_token
from .config import SimConfig
from .faults import FaultPlan
from .queue import QueueEngine, View
from .stats import Counters
from .video import VideoCache, image_spec

FILES_PATH = "/files/{name}"  # outputs, served without auth (like RunComfy's storage host)
STATS_PATH = "/__sim__/stats"
RESET_PATH = "/__sim__/reset"
DEFAULT_FRAMES = 121


def _route(template: str) -> str:
    """A wire.py path template as a Starlette route (model ids keep their slashes)."""
    return template.replace("{model_id}", "{model_id:path}")


class SimState:
    """Everything one simulator instance knows: config, queue, faults, counters, videos."""

    def __init__(self, config: SimConfig):
        self.config = config
        self.engine = QueueEngine(config.capacity, config.gen_time, config.fail_rate, config.seed)
        self.faults = FaultPlan(config)
        self.counters = Counters()
        self.videos = VideoCache(config.video_long_side, config.fetch_timeout)
        self.stopping = False  # set by Simulator.stop(): slow answers stop waiting

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

    def stats(self) -> dict[str, Any]:
        return self.counters.snapshot(self.engine.counts(), self.videos.encodes,
                                      self.config.as_dict())

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
            return wire.COMPLETED
        if view.state == wire.FAILED:
            return self.config.status_on_failure
        return view.state

    def cost(self, view: View) -> float:
        if view.state != wire.SUCCEEDED:
            return 0.0
        usd = self.config.price_usd * self.config.cost_factor  # the catalog's, unless told
        if self.config.price_unit == "output":
            return round(usd, 6)
        frames = view.request.body.get("number_of_frames", DEFAULT_FRAMES)
        seconds = wire.billed_seconds(frames)
        return round(usd * seconds, 6)


def _urls(request: Request, request_id: str) -> dict[str, str]:
    base = str(request.base_url).rstrip("/")
    return {key: base + path.format(request_id=request_id) for key, path in (
        (wire.STATUS_URL, wire.STATUS_PATH), (wire.RESULT_URL, wire.RESULT_PATH),
        (wire.CANCEL_URL, wire.CANCEL_PATH))}


def _state(request: Request) -> SimState:
    return request.app.state.sim  # type: ignore[no-any-return]


def _auth(request: Request) -> JSONResponse | None:
    sim = _state(request)
    refusal = check_token(request.headers.get("authorization"), sim.config)
    return None if refusal is None else sim.error(refusal)


async def submit(request: Request) -> Response:
    sim = _state(request)
    model_id = request.path_params["model_id"]
    refusal = _auth(request)
    if refusal is None:
        try:
            model = load_model(model_id)
        except ModelNotFound:
            refusal = sim.error(Refusal(400, wire.ERROR_CODE_BAD_MODEL,
                                        f"InvalidResourceIdentifier: unknown model {model_id!r}"))
    if refusal is None:
        try:
            raw = await request.body()
        except ClientDisconnect:  # the client went away mid-body (killed): nothing to answer
            return Response(status_code=499)
        try:
            body: Any = json.loads(raw)
        except ValueError as exc:
            problem = Refusal(422, wire.ERROR_CODE_VALIDATION, f"Validation Error: body: {exc}",
                              [{"loc": ["body"], "msg": "invalid JSON", "type": "json_invalid"}])
        else:
            problem = check_body(body, model) or check_data_uris(body, sim.config)
        if problem is not None:
            refusal = sim.error(problem)
    if refusal is not None:
        sim.counters.add("submissions_refused")
        return refusal
    view, duplicate = sim.engine.submit(model_id, body)
    view.request.extra["image"] = image_spec(body, model.image_fields())
    request.scope["sim"]["accepted"] = True
    sim.counters.add("submissions_accepted")
    if duplicate:
        sim.counters.add("duplicate_submissions")
    if view.request.error:
        sim.counters.fault("fail")
    return JSONResponse({wire.REQUEST_ID: view.request.id, **_urls(request, view.request.id)})


async def model_entry(request: Request) -> Response:
    sim = _state(request)
    model_id = request.path_params["model_id"]
    refusal = _auth(request)
    if refusal is not None:
        return refusal
    try:
        model = load_model(model_id)
    except ModelNotFound:
        return sim.error(Refusal(400, wire.ERROR_CODE_BAD_MODEL,
                                 f"InvalidResourceIdentifier: unknown model {model_id!r}"))
    return JSONResponse({
        wire.MODEL_ID: model.id,
        wire.PRICE_USD: sim.config.price_usd,
        wire.PRICE_UNIT: sim.config.price_unit,
        wire.PRICE_NOTE: f"simulated price: ${sim.config.price_usd} per {sim.config.price_unit}",
        wire.INPUT_SCHEMA: model.input_schema,
    })


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
    body: dict[str, Any] = {wire.REQUEST_ID: req.id, wire.MODEL_ID: req.model_id,
                            "status": view.state, wire.CREATED_AT: sim.engine.iso(req.submitted)}
    if view.state in (wire.SUCCEEDED, wire.FAILED, wire.CANCELLED):
        assert req.finished is not None
        body[wire.FINISHED_AT] = sim.engine.iso(req.finished)
        if request.query_params.get("include_cost", "").lower() in ("true", "1"):
            body[wire.COST] = sim.cost(view)
    if view.state == wire.SUCCEEDED:
        body["status"] = sim.config.result_success_word
        url = str(request.base_url).rstrip("/") + FILES_PATH.format(name=f"{req.id}.mp4")
        key = sim.config.output_key
        body[wire.OUTPUT] = {key: [url] if key == wire.OUTPUT_VIDEOS else url}
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


class TruncatedResponse(Response):
    """Announces the whole file, sends the first half, then closes the connection."""

    def __init__(self, data: bytes, counters: Counters):
        super().__init__(media_type="video/mp4")
        self.data, self.counters = data, counters

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        sent = await faultlib.send_truncated(receive, send, 200, [
            (b"content-type", b"video/mp4")], self.data, len(self.data) // 2)
        self.counters.add("bytes_served", sent)


async def download(request: Request) -> Response:
    sim = _state(request)
    sim.counters.call("download")
    name = request.path_params["name"]
    view = sim.engine.view(name[:-4]) if name.endswith(".mp4") else None
    if view is None or view.state != wire.SUCCEEDED:
        return JSONResponse({"error": f"no such file {name!r}"}, status_code=404)
    req = view.request
    fault = None if view.now < req.outage_until else sim.faults.for_download(not req.outage_used)
    if view.now < req.outage_until or fault == "outage":
        if fault == "outage":
            req.outage_used, req.outage_until = True, view.now + sim.config.download_outage
        sim.counters.fault("download_404")
        return JSONResponse({"error": f"file {name!r} not available yet"}, status_code=404)
    frames = req.body.get("number_of_frames", DEFAULT_FRAMES)
    data = await sim.videos.get(req.extra.get("image"), frames)
    if fault == "truncate":
        sim.counters.fault("download_truncated")
        return TruncatedResponse(data, sim.counters)
    if request.method != "HEAD":
        sim.counters.add("bytes_served", len(data))
        sim.counters.add("downloads_completed")
    return Response(data, media_type="video/mp4")


async def sim_stats(request: Request) -> Response:
    return JSONResponse(_state(request).stats())


async def sim_reset(request: Request) -> Response:
    _state(request).reset()
    return JSONResponse({"reset": True})


def _route_name(method: str, path: str) -> str | None:
    """Which API route a call is for (None: not an API call, so no faults)."""
    if path.startswith("/v1/models/"):
        return "submit" if method == "POST" else "model"
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
            Route(wire.STATUS_PATH, status, methods=["GET"]),
            Route(wire.RESULT_PATH, result, methods=["GET"]),
            Route(wire.CANCEL_PATH, cancel, methods=["POST"]),
            Route(FILES_PATH, download, methods=["GET"]),
            Route(STATS_PATH, sim_stats, methods=["GET"]),
            Route(RESET_PATH, sim_reset, methods=["POST"]),
        ])
        self.router.state.sim = state

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
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
