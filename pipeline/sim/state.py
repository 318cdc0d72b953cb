"""One simulator instance's state: its config, queue, faults, counters, videos, catalog and
wallet, and the answers every route builds from them (an error body, a status word, a cost).

Apart from the routes (`routes`) and the ASGI entry point (`app`) because both read it: the
routes find it on the router (`request.app.state.sim`), the entry point holds it to count
calls and inject faults, and `Simulator` resets it and reads its stats.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from starlette.responses import JSONResponse

from .. import wire
from .checks import BodyCheck, Refusal
from .config import SimConfig
from .defects import Defects
from .faults import FaultPlan
from .listing import Catalog, billed
from .queue import QueueEngine, View
from .stats import Counters
from .video import VideoCache


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
