"""Serving the simulator in-process (pipeline.serving: uvicorn in a background thread, on a
socket bound first, so its port is known at once)."""

from __future__ import annotations

from typing import Any

from ..serving import BackgroundServer
from .app import SimApp, build_app
from .config import SimConfig


class Simulator(BackgroundServer):
    """An in-process simulator: `with Simulator(cfg) as sim: httpx.get(sim.base_url + ...)`."""

    what = "the simulator"
    thread_name = "pipeline-sim"
    backlog = 2048
    must_stop = True

    def __init__(self, config: SimConfig | None = None, host: str = "127.0.0.1",
                 port: int = 0):
        super().__init__(host, port)
        self.config = config or SimConfig()
        self.app: SimApp = build_app(self.config)

    def asgi(self) -> SimApp:
        return self.app

    def _starting(self) -> None:
        self.app.state.stopping = False

    def _stopping(self) -> None:
        self.app.state.stopping = True

    def stats(self) -> dict[str, Any]:
        """The same counters as `GET /__sim__/stats`."""
        return self.app.state.stats()

    def reset(self) -> None:
        """Forget requests and counters (same as `POST /__sim__/reset`)."""
        self.app.state.reset()
