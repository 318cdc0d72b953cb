"""The simulator's HTTP surface: RunComfy's queue routes as a Starlette app, faults in front.

Route templates, field names and status words come from `pipeline.wire`, the one place that
records what is known of the real wire format. `build_app` returns a plain ASGI callable: an
outer layer counts calls and injects faults (it must see uvicorn's own `receive` to be able to
drop a connection), the Starlette router behind it answers.

What each route answers is in `routes`; what one simulator instance knows (its queue, faults,
counters, wallet), in `state`.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .. import wire
from . import faults as faultlib
from .checks import Refusal
from .config import SimConfig
from .outputs import FILES_PATH, download
from .routes import (
    balance,
    cancel,
    model_entry,
    model_list,
    result,
    sim_reset,
    sim_stats,
    status,
    submit,
)
from .state import SimState

STATS_PATH = "/__sim__/stats"
RESET_PATH = "/__sim__/reset"


def _route(template: str) -> str:
    """A wire.py path template as a Starlette route (model ids keep their slashes)."""
    return template.replace("{model_id}", "{model_id:path}")


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
