"""The HTTP transport of the client: httpx's own, with a cheaper look at pooled connections.

httpcore's pool asks every pooled connection, on every request it starts and every response it
closes, whether the server has closed it ("is the idle socket readable?"). Under anyio each
such question builds the stream's whole attribute table, `getpeername()` included, then
allocates a `select.poll` object: at a few thousand calls a second that was the largest single
cost of a run's process (a third of its CPU at generation time 0, measured by cProfile; see
docs/benchmarks.md). `Backend` answers the same question from the socket it keeps and one
poll object per connection: the same `poll(0)` system call, nothing else.

The pool still asks each of its connections twice per request (16 connections: 32 system
calls, each releasing the GIL and waiting to take it back from whichever thread holds it). So
the backend keeps one poll object for all its sockets (`_Readiness`) and asks it once per turn
of the event loop; a socket it did not find readable is not, for the rest of that turn (no
staler than a poll made a moment before the server closes), and one it found readable (a
response arriving, or a close) is asked again on its own: a connection is never taken for
closed on an old answer.

httpx does not let a caller choose httpcore's network backend, so `transport()` builds httpx's
transport and hands its pool this backend before any connection exists; should a later httpx
lay its transport out otherwise, the transport is left as httpx made it (only slower).
"""

from __future__ import annotations

import asyncio
import select
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx


class _Stream(httpcore.AsyncNetworkStream):
    """A network stream that answers `is_readable` from its own socket and poll object."""

    def __init__(self, inner: httpcore.AsyncNetworkStream, readiness: _Readiness | None = None):
        self._inner = inner
        self._sock: socket.socket | None = inner.get_extra_info("socket")
        self._fd = -1
        self._poll: Any = None
        self._readiness = readiness
        if readiness is not None and self._sock is not None and self._sock.fileno() >= 0:
            readiness.add(self._sock.fileno(), self)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        if self._readiness is not None and self._sock is not None:
            self._readiness.remove(self._sock.fileno(), self)
        await self._inner.aclose()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout),
                       self._readiness)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable" and self._sock is not None and hasattr(select, "poll"):
            return self._readable(self._sock)
        return self._inner.get_extra_info(info)

    def _readable(self, sock: socket.socket) -> bool:
        """httpcore's is_socket_readable, with the poll object kept: a socket without a file
        descriptor counts as readable (its next read returns the end)."""
        fd = sock.fileno()
        if fd < 0:
            return True
        if self._readiness is not None and not self._readiness.maybe_readable(fd):
            return False
        if fd != self._fd:
            self._poll = select.poll()
            self._poll.register(fd, select.POLLIN)
            self._fd = fd
        return bool(self._poll.poll(0))


class _Readiness:
    """One poll object for every socket of a pool, polled at most once per turn of the event
    loop: `maybe_readable(fd)` is False when the socket was not readable at this turn's poll
    (its stream then says "not readable" without a system call of its own)."""

    def __init__(self) -> None:
        self._poll = select.poll()
        self._owners: dict[int, _Stream] = {}
        self._ready: set[int] | None = None  # this turn's readable descriptors, once polled

    def add(self, fd: int, stream: _Stream) -> None:
        self._poll.register(fd, select.POLLIN)  # a descriptor used again is modified
        self._owners[fd] = stream
        if self._ready is not None:
            self._ready.add(fd)  # new this turn: asked on its own

    def remove(self, fd: int, stream: _Stream) -> None:
        if fd >= 0 and self._owners.get(fd) is stream:  # not a newer socket on the same number
            del self._owners[fd]
            self._poll.unregister(fd)

    def maybe_readable(self, fd: int) -> bool:
        if self._ready is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # not under asyncio: no turn to share the answer over
                return True
            self._ready = set()
            for ready, events in self._poll.poll(0):
                if events & select.POLLNVAL:  # closed behind our back: not ours to watch
                    self._poll.unregister(ready)
                    self._owners.pop(ready, None)
                self._ready.add(ready)  # asked on its own (a closed socket says so itself)
            loop.call_soon(self._forget)  # the next turn polls again
        return fd in self._ready

    def _forget(self) -> None:
        self._ready = None


class Backend(httpcore.AsyncNetworkBackend):
    """httpcore's automatic backend, its streams wrapped in `_Stream`, asked whether they are
    readable through one `_Readiness` per backend (per pool)."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._readiness = _Readiness() if hasattr(select, "poll") else None

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None
                          ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.connect_tcp(host, port, timeout=timeout,
                                                     local_address=local_address,
                                                     socket_options=socket_options),
                       self._readiness)

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[Any] | None = None
                                  ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.connect_unix_socket(path, timeout=timeout,
                                                             socket_options=socket_options),
                       self._readiness)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def transport(limits: httpx.Limits) -> httpx.AsyncHTTPTransport:
    """httpx's transport with `limits`, its pool on `Backend` (when httpx's layout allows)."""
    made = httpx.AsyncHTTPTransport(limits=limits)
    pool = getattr(made, "_pool", None)
    if isinstance(pool, httpcore.AsyncConnectionPool) and hasattr(pool, "_network_backend") \
            and not pool.connections:
        pool._network_backend = Backend()
    return made


def uses_backend(client: httpx.AsyncClient) -> bool:
    """Whether a client's own transport pools its connections on `Backend` (for tests)."""
    pool = getattr(getattr(client, "_transport", None), "_pool", None)
    return isinstance(getattr(pool, "_network_backend", None), Backend)
