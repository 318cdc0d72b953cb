"""Hostile images, local and remote: each gives one clear message, in bounded time and memory.

Local files go through `validate_files` (one located line each); remote ones through a real
HTTP server on 127.0.0.1 (an ephemeral port, stopped at the end) that redirects forever, streams
2 GB of zeros, never answers, drips a byte at a time or redirects to file://, checked with
`ImageInspector` given a 1 s timeout so that each case ends within a few seconds.
"""

from __future__ import annotations

import http.server
import struct
import threading
import time
import tracemalloc
import zlib
from pathlib import Path

import pytest
from imagefiles import MODEL, image_bytes, write_manifest

from pipeline.prepare.images import MAX_FETCH_BYTES, ImageInspector, ImageProblem
from pipeline.prepare.plan import validate_files

MIB = 1024 * 1024


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose IHDR claims `width` x `height` pixels (its data is one empty row)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0"))
            + chunk(b"IEND", b""))


def lines_for(folder: Path, name: str, content: bytes, **kwargs) -> list[str]:
    (folder / name).write_bytes(content)
    path = write_manifest(folder, f"name: t\nmodel: {MODEL}\nprompt: a boat\n"
                                  f"inputs: {{image_urls: [{name!r}], seed: 1}}\n")
    return validate_files([path], **kwargs).lines()


JPEG = image_bytes(640, 480, "JPEG")
PNG = image_bytes(640, 480, "PNG")
LOCAL = [  # (file name, bytes, expected text, lines: default 1)
    pytest.param("cut.jpg", JPEG[: len(JPEG) // 2], "truncated JPEG", id="truncated-jpeg"),
    pytest.param("cut.jpg", JPEG[:300], "truncated", id="truncated-jpeg-in-header"),
    pytest.param("cut.png", PNG[: len(PNG) // 2], "broken or truncated PNG", id="truncated-png"),
    pytest.param("cut.png", PNG[:20], "broken or truncated PNG", id="truncated-png-in-header"),
    pytest.param("anim.gif", image_bytes(640, 480, "GIF"), "is a GIF image; the model takes "
                 "JPEG or PNG", id="gif"),
    pytest.param("pic.webp", image_bytes(640, 480, "WEBP"), "is a WEBP image; the model takes "
                 "JPEG or PNG", id="webp"),
    pytest.param("empty.png", b"", "the file is empty (0 bytes)", id="zero-bytes"),
    pytest.param("text.png", b"hello, world\n", "not a readable image", id="not-an-image"),
    pytest.param("liar.png", png_claiming(100_000, 100_000), "the header claims "
                 "10,000,000,000 pixels, too many to be a real image", id="header-lies-huge"),
    pytest.param("liar2.png", png_claiming(12_000, 8_000), "Maximum resolution is 4096", 2,
                 id="header-lies-large"),  # above Pillow's bomb warning: judged by the rules
]


@pytest.mark.parametrize("name,content,expected,count",
                         [pytest.param(*p.values[:3], (p.values[3:] or (1,))[0], id=p.id)
                          for p in LOCAL])
def test_hostile_local_image_gives_one_clear_line(tmp_path: Path, name: str, content: bytes,
                                                  expected: str, count: int) -> None:
    """Each broken or lying image file is one located line, found fast and in little memory."""
    tracemalloc.start()
    start = time.monotonic()
    try:
        lines = lines_for(tmp_path, name, content)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.monotonic() - start < 5
    assert peak < 30 * MIB, peak  # nothing is decoded: a 10-gigapixel claim costs nothing
    assert len(lines) == count, lines  # one per problem: width and height both, for liar2
    for line in lines:
        assert line.startswith(f"{tmp_path / 'job.yaml'}:4:"), lines
        assert expected in line, lines


def test_png_named_jpg_is_judged_by_content(tmp_path: Path) -> None:
    """A PNG under a .jpg name is accepted: the format comes from the bytes, not the name."""
    assert lines_for(tmp_path, "really-png.jpg", PNG)[0].endswith(": ok, 1 cell")


# --- remote images ------------------------------------------------------------------------
class Hostile(http.server.BaseHTTPRequestHandler):
    """Routes that misbehave on purpose; `stop` ends every endless one."""

    stop = threading.Event()
    protocol_version = "HTTP/1.0"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        route = self.path
        try:
            if route == "/ok.png":
                self._send(200, PNG, {"Content-Type": "image/png"})
            elif route.startswith("/loop"):
                n = int(route[5:] or 0)
                self._send(302, b"", {"Location": f"/loop{n + 1}"})
            elif route == "/to-file":
                self._send(302, b"", {"Location": "file:///etc/passwd"})
            elif route == "/to-javascript":
                self._send(301, b"", {"Location": "javascript:alert(1)"})
            elif route == "/declared-2gb":
                self.send_response(200)
                self.send_header("Content-Length", str(2 * 1024 * MIB))
                self.end_headers()
                self._zeros(2 * 1024 * MIB)
            elif route == "/stream-2gb":
                self.send_response(200)  # no length: read until the server closes
                self.end_headers()
                self._zeros(2 * 1024 * MIB)
            elif route == "/silent":
                self.stop.wait(30)
            elif route == "/drip":
                self.send_response(200)
                self.end_headers()
                deadline = time.monotonic() + 30
                while not self.stop.is_set() and time.monotonic() < deadline:
                    self.wfile.write(b"\x89")
                    self.wfile.flush()
                    time.sleep(0.1)
            else:
                self._send(404, b"no", {})
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading: what the tests want

    def _send(self, code: int, body: bytes, headers: dict) -> None:
        self.send_response(code)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _zeros(self, total: int) -> None:
        block = b"\0" * (256 * 1024)
        sent = 0
        while sent < total and not self.stop.is_set():
            self.wfile.write(block)
            sent += len(block)


@pytest.fixture(scope="module")
def server() -> str:
    """The hostile server on an ephemeral port of 127.0.0.1, stopped after the module."""
    Hostile.stop.clear()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    Hostile.stop.set()
    httpd.shutdown()
    httpd.server_close()


REMOTE = [
    pytest.param("/loop", "too many redirects (more than 5)", 5, id="redirects-forever"),
    pytest.param("/to-file", "redirected to a non-http(s) address 'file': refused", 5,
                 id="redirect-to-file-scheme"),
    pytest.param("/to-javascript", "redirected to a non-http(s) address 'javascript'", 5,
                 id="redirect-to-javascript"),
    pytest.param("/declared-2gb", f"larger than {MAX_FETCH_BYTES / MIB:g} MB; stopped fetching",
                 5, id="content-length-2gb"),
    pytest.param("/stream-2gb", f"larger than {MAX_FETCH_BYTES / MIB:g} MB; stopped fetching",
                 10, id="streams-2gb"),
    pytest.param("/silent", "no answer within 1 s", 4, id="never-answers"),
    pytest.param("/drip", "no complete answer within 1 s; stopped fetching", 1.8,
                 id="drips-forever"),
    pytest.param("/missing.png", "fetching it answered HTTP 404", 5, id="not-found"),
]


@pytest.mark.parametrize("route,expected,limit", REMOTE)
def test_hostile_url_stops_in_time_with_one_message(tmp_path: Path, server: str, route: str,
                                                    expected: str, limit: float) -> None:
    """Each hostile URL ends in one clear problem within its time limit, memory bounded."""
    inspector = ImageInspector(tmp_path, timeout=1.0)
    tracemalloc.start()
    start = time.monotonic()
    try:
        with pytest.raises(ImageProblem) as info:
            inspector.get(server + route)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    elapsed = time.monotonic() - start
    assert expected in str(info.value)
    assert elapsed < limit, elapsed
    assert peak < 3 * MAX_FETCH_BYTES, peak  # never the 2 GB


def test_prefetch_bounds_every_url_and_keeps_good_ones(tmp_path: Path, server: str) -> None:
    """Fetching many URLs at once: the hostile ones fail on time, the good one is measured."""
    inspector = ImageInspector(tmp_path, timeout=1.0)
    urls = {server + r for r in ("/ok.png", "/silent", "/drip", "/loop", "/stream-2gb")}
    start = time.monotonic()
    inspector.prefetch(urls)
    assert time.monotonic() - start < 10
    assert inspector.get(server + "/ok.png").width == 640
    for route in ("/silent", "/drip", "/loop", "/stream-2gb"):
        with pytest.raises(ImageProblem):
            inspector.get(server + route)


def test_fetch_timeout_reaches_the_plan(tmp_path: Path, server: str) -> None:
    """`validate_files(fetch_timeout=...)` bounds a remote image that never answers."""
    path = write_manifest(tmp_path, f"name: t\nmodel: {MODEL}\nprompt: a boat\n"
                                    f"inputs: {{image_urls: ['{server}/silent'], seed: 1}}\n")
    start = time.monotonic()
    [line] = validate_files([path], fetch_timeout=1.0).lines()
    assert time.monotonic() - start < 4
    assert line.startswith(f"{path}:4:") and "no answer within 1 s" in line, line
