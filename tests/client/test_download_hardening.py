"""Downloads against hostile servers on 127.0.0.1: size cap, type and magic checks, redirects,
silence, dripping, short bodies, and the token never sent to a download host.

Every server here is a real socket on an ephemeral port; every handler loop is bounded in
count and in time, and ends at once when the test's server stops.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote

import httpx
import pytest

from pipeline.client import RunComfyClient
from pipeline.errors import DownloadError

TOKEN = "dl-Tok+en/7Qz=canary"
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(range(256)) * 40
GZIP_BOMB = gzip.compress(MP4 + b"\0" * 64 * 1024**2, compresslevel=9)  # ~65 KB, 64 MiB inflated
HANDLER_LIMIT = 10.0  # seconds any slow handler may run before it gives up on its own


# Backoff waits are zero here (stamina's testing mode), at most 2 attempts per download.
pytestmark = pytest.mark.fast_retries(attempts=2)


class Handler(BaseHTTPRequestHandler):
    """Answers by path with one behaviour each (see `ROUTES`); records every request's headers."""

    protocol_version = "HTTP/1.0"  # a body without Content-Length runs until the close

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:  # the name http.server calls
        server: Server = self.server  # type: ignore[assignment]
        path, _, query = self.path.partition("?")
        server.seen.append((self.path, dict(self.headers.items()), self.requestline))
        try:
            ROUTES[path](self, server, query)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up: fine
            pass

    def head(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.flush()


class Server(ThreadingHTTPServer):
    """A threaded HTTP server on an ephemeral 127.0.0.1 port, stopped (handlers too) on exit."""

    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.seen: list[tuple[str, dict[str, str], str]] = []
        self.stopping = threading.Event()
        self.written = 0  # body bytes the streaming routes managed to send
        self.finished = threading.Event()  # a streaming route sent its whole body
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()
        self.thread.join(timeout=5)

    def hits(self, path: str) -> int:
        return sum(1 for p, _, _ in self.seen if p.split("?")[0] == path)


def send(h: Handler, body: bytes, ctype: str = "video/mp4", length: int | None = None) -> None:
    headers = {"Content-Length": str(len(body) if length is None else length)}
    if ctype:
        headers["Content-Type"] = ctype
    h.head(200, headers)
    h.wfile.write(body)


def stream(h: Handler, server: Server, first: bytes, total: int, ctype: str,
           gap: float = 0.0) -> None:
    """`first`, then zeros up to `total` in 64 KiB pieces (or 1 byte per `gap` s), no length."""
    h.head(200, {"Content-Type": ctype})
    h.wfile.write(first)
    server.written = len(first)
    piece = b"\0" * (1 if gap else 65536)
    started = time.monotonic()
    while server.written < total and not server.stopping.is_set() and \
            time.monotonic() - started < HANDLER_LIMIT:
        h.wfile.write(piece)
        h.wfile.flush()
        server.written += len(piece)
        if gap:
            server.stopping.wait(gap)
    if server.written >= total:
        server.finished.set()


def stall(h: Handler, server: Server) -> None:
    server.stopping.wait(HANDLER_LIMIT)


def redirect(h: Handler, server: Server, query: str) -> None:
    target = unquote(parse_qs(query)["to"][0]) if query else "/redirect"
    h.head(302, {"Location": target, "Content-Length": "0"})


ROUTES: dict[str, Callable[[Handler, Server, str], None]] = {
    "/ok.mp4": lambda h, s, q: send(h, MP4),
    "/octet": lambda h, s, q: send(h, MP4, "application/octet-stream"),
    "/no-type": lambda h, s, q: send(h, MP4, ""),
    "/error-page.mp4": lambda h, s, q: send(h, b"<!doctype html><html>Access denied</html>",
                                            "text/html; charset=utf-8"),
    "/text-as.mp4": lambda h, s, q: send(h, b"Internal error: the render node is offline.\n" * 3),
    "/page-as-octet.mp4": lambda h, s, q: stream(h, s, b"<!doctype html><html>" + b" " * 100,
                                             32 * 1024**2, "application/octet-stream"),
    "/big-declared": lambda h, s, q: send(h, MP4[:100], length=10**9),
    "/endless": lambda h, s, q: stream(h, s, MP4, 64 * 1024**2, "video/mp4"),
    "/drip": lambda h, s, q: stream(h, s, MP4[:32], 10**6, "video/mp4", gap=0.02),
    "/silent-body": lambda h, s, q: (h.head(200, {"Content-Type": "video/mp4",
                                                  "Content-Length": str(len(MP4))}), stall(h, s)),
    "/short": lambda h, s, q: send(h, MP4[:1000], length=len(MP4)),
    "/short-open": lambda h, s, q: (send(h, MP4[:1000], length=len(MP4)), h.wfile.flush(),
                                    stall(h, s)),
    "/redirect": redirect,
    "/gzip-bomb": lambda h, s, q: (h.head(200, {"Content-Type": "video/mp4",
                                                "Content-Encoding": "gzip",
                                                "Content-Length": str(len(GZIP_BOMB))}),
                                   h.wfile.write(GZIP_BOMB)),
}


def download(url: str, dest: Path, api: str = "http://127.0.0.1:9",
             client_kw: dict[str, Any] | None = None, **kw: Any) -> Any:
    async def go() -> Any:
        async with RunComfyClient(api, TOKEN, **(client_kw or {})) as client:
            return await client.download(url, dest, **kw)
    return asyncio.run(go())


def refused(url: str, dest: Path, **kw: Any) -> DownloadError:
    with pytest.raises(DownloadError) as info:
        download(url, dest, **kw)
    return info.value


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# -- content type and magic numbers -----------------------------------------------------------

@pytest.mark.parametrize("path,ctype", [("/ok.mp4", "video/mp4"),
                                        ("/octet", "application/octet-stream"),
                                        ("/no-type", None)])
def test_real_mp4_is_accepted_by_its_magic(tmp_path: Path, path: str, ctype: str | None) -> None:
    """An MP4 is saved whole whether served as video/mp4, application/octet-stream or untyped."""
    with Server() as srv:
        info = download(srv.url + path, tmp_path / "v.mp4")
    assert (tmp_path / "v.mp4").read_bytes() == MP4 and info.size == len(MP4)
    assert info.content_type == ctype and files(tmp_path) == ["v.mp4"]


@pytest.mark.parametrize("path,needle", [
    ("/error-page.mp4", "content-type 'text/html' is not a media file"),
    ("/text-as.mp4", "not a known media type"),
    ("/page-as-octet.mp4", "not a known media type"),
])
def test_non_media_bodies_are_refused(tmp_path: Path, path: str, needle: str) -> None:
    """An HTML error page served as 200, text claiming video/mp4, or HTML as octet-stream is
    refused at once (no retry), leaving no file."""
    with Server() as srv:
        err = refused(srv.url + path, tmp_path / "v.mp4")
        assert srv.hits(path) == 1
    assert needle in str(err) and files(tmp_path) == []


def test_wrong_bytes_are_refused_before_the_body_is_read(tmp_path: Path) -> None:
    """The magic number is judged on the first bytes: a 32 MiB non-media body is not read."""
    with Server() as srv:
        refused(srv.url + "/page-as-octet.mp4", tmp_path / "v.mp4")
        time.sleep(0.2)  # let the handler notice the closed connection
        assert not srv.finished.is_set() and srv.written < 32 * 1024**2
    assert files(tmp_path) == []


# -- size cap ---------------------------------------------------------------------------------

def test_declared_size_over_the_cap_is_refused_unread(tmp_path: Path) -> None:
    """A Content-Length over the client's cap is refused before any body byte is written."""
    with Server() as srv:
        err = refused(srv.url + "/big-declared", tmp_path / "v.mp4",
                      client_kw={"max_download_bytes": 5000})
    assert "over the 5000-byte limit" in str(err) and files(tmp_path) == []


def test_undeclared_stream_stops_at_the_cap(tmp_path: Path) -> None:
    """A body without Content-Length is cut at the cap (client setting), not read to its end."""
    with Server() as srv:
        err = refused(srv.url + "/endless", tmp_path / "v.mp4",
                      client_kw={"max_download_bytes": 256 * 1024})
        time.sleep(0.2)
        assert not srv.finished.is_set()
    assert "more than the 262144-byte limit" in str(err) and files(tmp_path) == []


def test_compressed_body_is_capped_by_its_decoded_size(tmp_path: Path) -> None:
    """A gzip body that inflates past the cap (a decompression bomb, sent although we asked for
    identity) is cut at the cap counted in decoded bytes."""
    with Server() as srv:
        err = refused(srv.url + "/gzip-bomb", tmp_path / "v.mp4",
                      client_kw={"max_download_bytes": 1024**2})
        assert srv.hits("/gzip-bomb") == 1
    assert "more than the 1048576-byte limit" in str(err) and files(tmp_path) == []


def test_file_exactly_at_the_cap_is_accepted(tmp_path: Path) -> None:
    """The cap is inclusive: a file of exactly max_bytes is saved; one byte less refuses it."""
    with Server() as srv:
        info = download(srv.url + "/ok.mp4", tmp_path / "v.mp4", max_bytes=len(MP4))
        refused(srv.url + "/ok.mp4", tmp_path / "w.mp4", max_bytes=len(MP4) - 1)
    assert info.size == len(MP4) and files(tmp_path) == ["v.mp4"]


def test_default_limits_are_finite() -> None:
    """A client built with defaults caps downloads at most 1 GiB and 1 h, and refuses a 0 cap."""
    client = RunComfyClient("http://127.0.0.1:9", TOKEN)
    assert 0 < client.max_download_bytes <= 1024**3 and 0 < client.download_deadline <= 3600
    asyncio.run(client.aclose())
    with pytest.raises(ValueError):
        RunComfyClient("http://127.0.0.1:9", TOKEN, max_download_bytes=0)


# -- redirects --------------------------------------------------------------------------------

@pytest.mark.parametrize("location", [
    "file:///etc/passwd", "ftp://127.0.0.1/x.mp4", "data:video/mp4;base64,AAAAGGZ0eXBtcDQy",
    "gopher://127.0.0.1:70/x", "http://[::1", "https:no-host",
])
def test_redirect_to_a_non_http_target_is_refused(tmp_path: Path, location: str) -> None:
    """A redirect to file://, ftp://, data:, another scheme or an unparsable URL is refused
    as a DownloadError, once, not retried, and nothing is fetched from it."""
    with Server() as srv:
        err = refused(f"{srv.url}/redirect?to={quote(location, safe='')}", tmp_path / "v.mp4")
        assert len(srv.seen) == 1
    assert "redirect target" in str(err) and files(tmp_path) == []


def test_http_redirect_is_followed(tmp_path: Path) -> None:
    """A relative http redirect is followed to the file."""
    with Server() as srv:
        info = download(f"{srv.url}/redirect?to=%2Fok.mp4", tmp_path / "v.mp4")
        assert srv.hits("/ok.mp4") == 1
    assert info.size == len(MP4)


def test_redirect_loop_ends(tmp_path: Path) -> None:
    """A redirect loop ends after a few hops with an error, not retried."""
    started = time.monotonic()
    with Server() as srv:
        err = refused(f"{srv.url}/redirect", tmp_path / "v.mp4")
        assert srv.hits("/redirect") == 6  # the first request and 5 redirects, one attempt
    assert "more than 5 redirects" in str(err) and time.monotonic() - started < 5


# -- silence, dripping, short bodies ----------------------------------------------------------

def test_headers_then_silence_times_out(tmp_path: Path) -> None:
    """A server that sends headers and never a body byte fails the download on the
    read-inactivity timeout (retried once) within seconds, leaving no file; the API calls'
    own timeout has nothing to do with it."""
    started = time.monotonic()
    with Server() as srv:
        err = refused(srv.url + "/silent-body", tmp_path / "v.mp4",
                      client_kw={"timeout": 30, "download_read_timeout": 0.3})
        assert srv.hits("/silent-body") == 2
    assert "ReadTimeout" in str(err) and time.monotonic() - started < 3
    assert files(tmp_path) == []


def test_downloads_wait_120_s_without_a_byte_by_default() -> None:
    """The download client's read timeout is RunComfy's CLI's read-inactivity timeout (120 s,
    pipeline.wire), 10 s to connect; the API client's timeouts stay its own."""
    from pipeline import wire

    async def timeouts() -> tuple[httpx.Timeout, httpx.Timeout]:
        async with RunComfyClient("http://127.0.0.1:9", TOKEN, timeout=30) as client:
            return client._dl.timeout, client._http.timeout
    dl, api = asyncio.run(timeouts())
    assert dl.read == wire.DOWNLOAD_READ_TIMEOUT == 120 and dl.connect == 10
    assert api.read == 30


def test_a_slow_download_that_keeps_sending_is_not_cut_by_the_read_timeout(tmp_path: Path
                                                                          ) -> None:
    """Bytes every 20 ms keep a download alive under a 0.3 s read-inactivity timeout: only
    its deadline (0.8 s here) ends it, once."""
    started = time.monotonic()
    with Server() as srv:
        err = refused(srv.url + "/drip", tmp_path / "v.mp4",
                      client_kw={"download_read_timeout": 0.3}, deadline=0.8)
        assert srv.hits("/drip") == 1
    assert "0.8 s download deadline" in str(err) and time.monotonic() - started < 3


def test_server_that_never_answers_times_out(tmp_path: Path) -> None:
    """A port that accepts connections and never answers ends in a timeout, not a hang."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)  # never accepted: the kernel completes the handshake, nobody answers
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/x.mp4"
        started = time.monotonic()
        err = refused(url, tmp_path / "v.mp4",
                      client_kw={"timeout": 0.3, "download_read_timeout": 0.3})
    assert "Timeout" in str(err) and time.monotonic() - started < 3


@pytest.mark.parametrize("path", ["/drip", "/silent-body", "/short-open"])
def test_total_deadline_bounds_one_download(tmp_path: Path, path: str) -> None:
    """A server that drips a byte at a time forever, or stalls, cannot hold a download past its
    deadline although no single read times out; no partial file is left."""
    started = time.monotonic()
    with Server() as srv:
        err = refused(srv.url + path, tmp_path / "v.mp4", client_kw={"timeout": 30},
                      deadline=0.5)
        elapsed = time.monotonic() - started
        assert srv.hits(path) == 1  # a blown deadline is not retried by the client
    assert "0.5 s download deadline" in str(err) and elapsed < 2.5
    assert files(tmp_path) == []


def test_deadline_is_a_client_setting(tmp_path: Path) -> None:
    """`download_deadline` on the client bounds downloads that pass no deadline of their own."""
    started = time.monotonic()
    with Server() as srv:
        err = refused(srv.url + "/drip", tmp_path / "v.mp4",
                      client_kw={"download_deadline": 0.4})
    assert "0.4 s download deadline" in str(err) and time.monotonic() - started < 2.5


def test_body_shorter_than_content_length_is_refused(tmp_path: Path) -> None:
    """A body cut off before its Content-Length is retried, then refused, and neither the final
    name nor a temporary file is left behind."""
    with Server() as srv:
        err = refused(srv.url + "/short", tmp_path / "v.mp4")
        assert srv.hits("/short") == 2
    assert "RemoteProtocolError" in str(err) and files(tmp_path) == []


def test_failed_download_keeps_the_previous_file(tmp_path: Path) -> None:
    """A refused download never replaces a file already under the final name."""
    (tmp_path / "v.mp4").write_bytes(MP4)
    with Server() as srv:
        refused(srv.url + "/short", tmp_path / "v.mp4")
        refused(srv.url + "/error-page.mp4", tmp_path / "v.mp4")
    assert (tmp_path / "v.mp4").read_bytes() == MP4 and files(tmp_path) == ["v.mp4"]


# -- the token --------------------------------------------------------------------------------

def token_forms() -> list[str]:
    raw = TOKEN.encode()
    return [TOKEN, quote(TOKEN, safe=""), base64.b64encode(raw).decode(),
            base64.b64encode(b"user:" + raw).decode(), "canary"]


def assert_no_token(srv: Server) -> None:
    assert srv.seen, "the server saw no request"
    for path, headers, line in srv.seen:
        assert "authorization" not in {k.lower() for k in headers}, (path, headers)
        text = line + "\n" + "\n".join(f"{k}: {v}" for k, v in headers.items())
        for form in token_forms():
            assert form not in text, (form, path)


def test_token_is_not_sent_to_a_download_on_the_api_host(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A download from the API's own host and port carries no Authorization header and no form
    of the token, even with a .netrc entry for that host holding the token."""
    netrc = tmp_path / ".netrc"
    netrc.write_text(f"machine 127.0.0.1 login user password {TOKEN}\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(netrc))
    with Server() as api:
        download(api.url + "/ok.mp4", tmp_path / "v.mp4", api=api.url)
        assert api.hits("/ok.mp4") == 1
        assert_no_token(api)


def test_token_is_not_sent_along_redirects(tmp_path: Path) -> None:
    """Redirects from the API host to another host and back to the API host never carry the
    token."""
    with Server() as api, Server() as cdn:
        back = quote(api.url + "/ok.mp4", safe="")
        to_cdn = quote(f"{cdn.url}/redirect?to={back}", safe="")
        info = download(f"{api.url}/redirect?to={to_cdn}", tmp_path / "v.mp4", api=api.url)
        assert info.size == len(MP4) and api.hits("/ok.mp4") == 1 and cdn.hits("/redirect") == 1
        assert_no_token(api)
        assert_no_token(cdn)


def test_the_header_check_can_fail() -> None:
    """The header check itself spots a request carrying the token in base64 (so it can fail)."""
    with Server() as srv:
        httpx.get(srv.url + "/ok.mp4", auth=("user", TOKEN))
        with pytest.raises(AssertionError):
            assert_no_token(srv)
