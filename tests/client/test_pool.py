"""The client's transport: httpx's pool on a backend that looks at pooled connections cheaply,
and still notices a connection the server closed; and what a submit sends over and over (one
image with many seeds) is encoded once."""

from __future__ import annotations

import asyncio
import socket

import httpx

from pipeline.client import RunComfyClient
from pipeline.client._pool import transport, uses_backend

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


def test_both_clients_pool_on_the_cheap_backend() -> None:
    """The API's client and the downloads' client use it; a transport given is left alone."""
    client = RunComfyClient("http://127.0.0.1:9", "token")
    assert uses_backend(client._http) and uses_backend(client._dl)
    mock = httpx.MockTransport(lambda request: httpx.Response(200))
    given = RunComfyClient("http://127.0.0.1:9", "token", transport=mock)
    assert not uses_backend(given._http) and not uses_backend(given._dl)
    asyncio.run(client.aclose())
    asyncio.run(given.aclose())


def test_a_connection_the_server_closed_is_not_reused() -> None:
    """A keep-alive connection the server closed while idle is seen as expired: the next
    request opens a new connection instead of failing on the dead one."""

    async def scenario() -> list[int]:
        accepted: list[int] = []

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.append(len(accepted))
            await reader.readuntil(b"\r\n\r\n")
            writer.write(RESPONSE)  # keep-alive by default, then closed by the server
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with httpx.AsyncClient(transport=transport(httpx.Limits(max_connections=2))) \
                as client:
            for _ in range(3):
                response = await client.get(f"http://127.0.0.1:{port}/")
                assert response.json() == {}
                await asyncio.sleep(0.05)  # the server's close reaches us
        server.close()
        await server.wait_closed()
        return accepted

    assert len(asyncio.run(scenario())) == 3


def test_an_image_sent_with_many_seeds_is_encoded_once_until_it_changes(tmp_path) -> None:
    """The data URI of an unchanged file is reused; a file rewritten is read again."""
    import os

    from PIL import Image

    from pipeline.client import _inline

    image = tmp_path / "img.png"
    Image.new("RGB", (8, 8), (10, 20, 30)).save(image)
    _inline._encoded.cache_clear()
    first = [_inline.to_data_uri(image) for _ in range(5)]
    assert len(set(first)) == 1 and _inline._encoded.cache_info().misses == 1
    Image.new("RGB", (8, 8), (200, 20, 30)).save(image)
    os.utime(image, ns=(1, 1))  # a different modification time, whatever the clock's grain
    assert _inline.to_data_uri(image) != first[0]
    assert _inline._encoded.cache_info().misses == 2


def test_readiness_is_polled_once_a_turn() -> None:
    """The pool's sockets are polled together once per turn of the event loop: a socket quiet
    at that poll is not readable for the rest of the turn, one found readable is asked on its
    own, and the next turn polls again."""
    from pipeline.client._pool import _Readiness

    async def scenario() -> None:
        readiness = _Readiness()
        quiet, talking = socket.socketpair(), socket.socketpair()
        talking[1].send(b"x")
        readiness.add(quiet[0].fileno(), object())  # type: ignore[arg-type]
        readiness.add(talking[0].fileno(), object())  # type: ignore[arg-type]
        assert not readiness.maybe_readable(quiet[0].fileno())
        assert readiness.maybe_readable(talking[0].fileno())
        quiet[1].close()  # the peer closes within the turn: seen on the next one
        assert not readiness.maybe_readable(quiet[0].fileno())
        await asyncio.sleep(0)
        assert readiness.maybe_readable(quiet[0].fileno())
        for pair in (quiet, talking):
            pair[0].close()
            pair[1].close()

    asyncio.run(scenario())
