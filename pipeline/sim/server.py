"""Serving the simulator: uvicorn on its own event loop in a background thread.

We bind the listening socket ourselves before starting uvicorn, so the port (ephemeral by
default) is known at once and `start()` only waits for uvicorn to say it is serving. `stop()`
asks uvicorn to exit, joins the thread (the loop's worker threads, used for encodes, are shut
down by `asyncio.run`) and closes the socket, so nothing is left behind.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import uvicorn

from .app import SimApp, build_app
from .config import SimConfig

START_TIMEOUT = 10.0


class Simulator:
    """An in-process simulator: `with Simulator(cfg) as sim: httpx.get(sim.base_url + ...)`."""

    def __init__(self, config: SimConfig | None = None, host: str = "127.0.0.1",
                 port: int = 0):
        self.config = config or SimConfig()
        self.host = host
        self.port = port
        self.app: SimApp = build_app(self.config)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._error: BaseException | None = None

    @property
    def base_url(self) -> str:
        """`http://HOST:PORT` of the running simulator."""
        if self._socket is None:
            raise RuntimeError("the simulator is not running; call start() first")
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"http://{host}:{self.port}"

    def start(self) -> Simulator:
        """Bind, start serving in a background thread, return once it answers."""
        if self._thread is not None:
            raise RuntimeError("the simulator is already running")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted sockets only when the
        # proto says TCP, and without it every answer waits ~40 ms (Nagle vs delayed ACK).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(2048)
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        self._socket = sock
        self.port = sock.getsockname()[1]
        # h11: the drop faults close uvicorn's transport for the connection (see faults.py).
        config = uvicorn.Config(self.app, log_config=None, log_level="warning",
                                access_log=False, lifespan="off", proxy_headers=False,
                                http="h11", loop="asyncio", ws="none",
                                timeout_graceful_shutdown=1, backlog=2048)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="pipeline-sim", daemon=True)
        self.app.state.stopping = False
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the simulator did not start: {self._error!r}")
            time.sleep(0.002)
        return self

    def _run(self) -> None:
        assert self._server is not None and self._socket is not None
        try:
            asyncio.run(self._server.serve(sockets=[self._socket]))
        except BaseException as exc:  # reported by start()
            self._error = exc

    def stop(self) -> None:
        """Stop serving, join the thread, release the port. Safe to call twice."""
        self.app.state.stopping = True
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            if self._thread.is_alive():
                raise RuntimeError("the simulator's thread did not stop within 10 s")
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def stats(self) -> dict[str, Any]:
        """The same counters as `GET /__sim__/stats`."""
        return self.app.state.stats()

    def reset(self) -> None:
        """Forget requests and counters (same as `POST /__sim__/reset`)."""
        self.app.state.reset()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
