"""Serving an ASGI app in-process: uvicorn on its own event loop in a background thread.

The listening socket is bound here before uvicorn starts, so the port (any free one with 0) is
known at once and `start()` only waits for uvicorn to say it is serving. `stop()` asks uvicorn
to exit, joins the thread (the loop's worker threads are shut down by `asyncio.run`) and closes
the socket, so nothing is left behind. The simulator (pipeline.sim.server) and `pipeline
review` (pipeline.review.server) are served so, and their commands serve `until_stopped`.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import uvicorn

START_TIMEOUT = 10.0

S = TypeVar("S", bound="BackgroundServer")


@contextlib.contextmanager
def until_stopped() -> Iterator[Callable[[], int]]:
    """For the block, SIGTERM asks to stop (the handler before is put back after); the
    callable it gives waits until then (exit code 0) or Ctrl-C (130): how a serving command
    ends."""
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def wait() -> int:
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            return 130
        return 0

    try:
        yield wait
    finally:
        signal.signal(signal.SIGTERM, previous)


class BackgroundServer:
    """A server of one ASGI app (`asgi()`) on `host:port`; a subclass names itself (`what`),
    its thread and its listen backlog."""

    what = "the server"  # how its errors name it
    thread_name = "pipeline-server"
    backlog = 128
    must_stop = False  # True: a thread still alive 10 s after stop() is an error

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.host, self.port = host, port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._error: BaseException | None = None

    def asgi(self) -> Any:
        """The app to serve."""
        raise NotImplementedError

    def _starting(self) -> None:
        """Called just before the serving thread starts."""

    def _stopping(self) -> None:
        """Called first thing in stop()."""

    @property
    def base_url(self) -> str:
        """`http://HOST:PORT` of the running server."""
        if self._socket is None:
            raise RuntimeError(f"{self.what} is not running; call start() first")
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"http://{host}:{self.port}"

    def start(self: S) -> S:
        """Bind, start serving in a background thread, return once it answers."""
        import uvicorn

        if self._thread is not None:
            raise RuntimeError(f"{self.what} is already running")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted sockets only when the
        # proto says TCP, and without it every answer waits ~40 ms (Nagle vs delayed ACK).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(self.backlog)
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        self._socket = sock
        self.port = sock.getsockname()[1]
        # h11: the simulator's drop faults close uvicorn's transport for the connection
        config = uvicorn.Config(self.asgi(), log_config=None, log_level="warning",
                                access_log=False, lifespan="off", proxy_headers=False,
                                http="h11", loop="asyncio", ws="none",
                                timeout_graceful_shutdown=1, backlog=self.backlog)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._starting()
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.what} did not start: {self._error!r}")
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
        self._stopping()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            if self.must_stop and self._thread.is_alive():
                raise RuntimeError(f"{self.what}'s thread did not stop within 10 s")
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self: S) -> S:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
