"""Serving a review: uvicorn on its own event loop in a background thread, as the simulator
is served (pipeline.sim.server): the socket is bound first, so the port (any free one with 0)
is known at once; `stop()` asks uvicorn to exit, joins the thread and closes the socket."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path

import uvicorn

from .app import build_app
from .state import Review, new_key

START_TIMEOUT = 10.0


class ReviewServer:
    """`with ReviewServer(folder, picks) as s: open(s.url)` (`s.url` carries the key)."""

    def __init__(self, folder: Path, picks_path: Path, *, host: str = "127.0.0.1",
                 port: int = 0, key: str | None = None, seed: int | None = None):
        self.review = Review(folder, picks_path, key or new_key(), seed=seed)
        self.host, self.port = host, port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._error: BaseException | None = None

    @property
    def base_url(self) -> str:
        if self._socket is None:
            raise RuntimeError("the review server is not running; call start() first")
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """The page's URL with the key: what to give the people who may pick and vote."""
        return f"{self.base_url}/?key={self.review.key}"

    def start(self) -> ReviewServer:
        if self._thread is not None:
            raise RuntimeError("the review server is already running")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        self._socket = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(build_app(self.review), log_config=None, log_level="warning",
                                access_log=False, lifespan="off", proxy_headers=False,
                                http="h11", loop="asyncio", ws="none",
                                timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="pipeline-review", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the review server did not start: {self._error!r}")
            time.sleep(0.005)
        return self

    def _run(self) -> None:
        assert self._server is not None and self._socket is not None
        try:
            asyncio.run(self._server.serve(sockets=[self._socket]))
        except BaseException as exc:  # reported by start()
            self._error = exc

    def stop(self) -> None:
        """Stop serving, join the thread, release the port. Safe to call twice."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> ReviewServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
