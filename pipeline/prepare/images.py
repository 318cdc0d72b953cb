"""What an image input is: format (by content), size in bytes and pixels, and a digest.

Each distinct image is looked at once per run, whatever the number of cells that use it: local
files are read once, `data:` URIs decoded once, remote URLs fetched once (size-capped and
time-limited, several at a time). Headers are read with Pillow, which judges the format by the
bytes, not the name; pixels are never decoded, so a header that lies about its size costs nothing.

Limits on a fetch: MAX_FETCH_BYTES read at most (a Content-Length above it is refused before
reading), FETCH_TIMEOUT per connect or read, FETCH_DEADLINE for the whole fetch including
redirects (a server dripping bytes forever is cut off), MAX_REDIRECTS redirects, each to http(s).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import re
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from struct import error as struct_error
from typing import TYPE_CHECKING

from .files import is_inside, outside_words

if TYPE_CHECKING:  # both are imported where used: a plan without images needs neither
    import httpx

ACCEPTED_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png"}
MAX_FETCH_BYTES = 32 * 1024 * 1024  # far above any model's limit; enough to measure and refuse
FETCH_TIMEOUT = 10.0  # seconds per connect or read
FETCH_DEADLINE = 30.0  # seconds for a whole fetch, redirects included
MAX_REDIRECTS = 5
FETCH_WORKERS = 8
MAX_PIXELS = 1_000_000_000  # headers that claim more are lies or bombs
_MAGIC = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG"}
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_BOMB = re.compile(r"\((\d+) pixels\) exceeds limit of (\d+)")
_DATA_URI = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?((?:;[\w-]+=[^;,]*)*)(;base64)?,",
                       re.IGNORECASE)


@dataclass(frozen=True)
class ImageInfo:
    """An image as the API will see it."""

    format: str  # "JPEG", "PNG", ... as Pillow names it
    width: int
    height: int
    size_bytes: int
    sha256: str

    @property
    def mime(self) -> str | None:
        return ACCEPTED_FORMATS.get(self.format)


class ImageProblem(Exception):
    """The image cannot be used; the message says why in the user's terms."""


class FetchProblem(ImageProblem):
    """A remote image could not be had (no answer, an error status, too slow): nothing is
    known of the image itself."""


def kind_of(value: str) -> str:
    """'url', 'data' or 'file' for an image input string."""
    lower = value[:8].lower()
    if lower.startswith(("http://", "https://")):
        return "url"
    if lower.startswith("data:"):
        return "data"
    return "file"


def inspect_bytes(raw: bytes) -> ImageInfo:
    """Read an image's header from its bytes; not an image, or a truncated one, is a problem."""
    from PIL import Image, UnidentifiedImageError

    if not raw:
        raise ImageProblem("the file is empty (0 bytes)")
    digest = hashlib.sha256(raw).hexdigest()
    magic = next((name for sig, name in _MAGIC.items() if raw.startswith(sig)), None)
    try:
        with warnings.catch_warnings():
            # Only the header is read, never the pixels: a large claimed size costs nothing, and
            # it is reported below (and by the model's resolution rules), not as a bomb warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw)) as im:
                fmt, (width, height) = im.format or "?", im.size
                if width * height > MAX_PIXELS:
                    raise ImageProblem(f"the header claims {width}x{height} pixels, too many to "
                                       "be a real image")
                im.verify()  # catches truncated PNGs and broken chunks without decoding it all
    except ImageProblem:
        raise
    except Image.DecompressionBombError as exc:
        found = _BOMB.search(str(exc))
        claim = f"{int(found.group(1)):,} pixels" if found else "too many pixels"
        raise ImageProblem(f"the header claims {claim}, too many to be a real image "
                           "(a decompression bomb?)") from None
    except UnidentifiedImageError:
        if magic:
            raise ImageProblem(f"broken or truncated {magic} file (its header cannot be read)"
                               ) from None
        raise ImageProblem("not a readable image (JPEG or PNG expected)") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct_error) as exc:
        raise ImageProblem(f"broken or truncated {magic or 'image'} ({exc})") from None
    if fmt == "JPEG" and raw.rfind(b"\xff\xd9") < raw.find(b"\xff\xda"):
        raise ImageProblem("truncated JPEG (the data ends before its end-of-image marker)")
    return ImageInfo(fmt, width, height, len(raw), digest)


def decode_data_uri(value: str) -> bytes:
    match = _DATA_URI.match(value)
    if not match:
        raise ImageProblem("malformed data: URI (expected data:image/...;base64,...)")
    payload = value[match.end():]
    if not match.group(3):
        raise ImageProblem("data: URI must be base64-encoded")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ImageProblem("data: URI has invalid base64") from None


class ImageInspector:
    """Looks at each distinct image once and remembers the answer (or the problem).

    `timeout` bounds each connect and read of a fetch, `deadline` the whole fetch (default:
    FETCH_DEADLINE, or `timeout` when that is shorter); local paths resolve against `base_dir`
    (the manifest's folder) and may not leave `root` (the project root; `base_dir` when None)
    unless `allow_outside` (the user's `--allow-outside-paths`); `files=False` refuses local
    paths (what a server sees: it cannot read the client's files).
    """

    def __init__(self, base_dir: Path, *, fetch_remote: bool = True,
                 max_fetch_bytes: int = MAX_FETCH_BYTES, timeout: float = FETCH_TIMEOUT,
                 deadline: float | None = None, allow_outside: bool = False,
                 files: bool = True, root: Path | None = None):
        self.base_dir = base_dir
        self.root = root if root is not None else base_dir
        self.files = files  # False: a value that is neither a URL nor a data: URI is refused
        self.fetch_remote = fetch_remote
        self.max_fetch_bytes = max_fetch_bytes
        self.timeout = timeout
        self.deadline = deadline if deadline is not None else min(FETCH_DEADLINE, timeout)
        self.allow_outside = allow_outside
        self._cache: dict[str, ImageInfo | ImageProblem | None] = {}

    def path_of(self, value: str) -> Path:
        return (self.base_dir / value).resolve()

    def get(self, value: str) -> ImageInfo | None:
        """The image's info; None when it was not looked at (remote, offline); else raises."""
        if value in self._cache:
            found = self._cache[value]
        else:
            found = self._cache[value] = self._look(value)
        if isinstance(found, ImageProblem):
            raise found
        return found

    def __len__(self) -> int:
        """How many distinct images it has looked at (and remembers)."""
        return len(self._cache)

    def local_files(self) -> list[Path]:
        """Every local image file looked at so far (what a plan read from disk)."""
        return sorted({self.path_of(v) for v in self._cache if kind_of(v) == "file"})

    def prefetch(self, values: set[str]) -> None:
        """Fetch all remote images not seen yet, several at a time."""
        todo = sorted(v for v in values if v not in self._cache and kind_of(v) == "url")
        if not todo or not self.fetch_remote:
            return
        self._cache.update(_bounded(self.fetch, todo, self.deadline + 1.0, FETCH_WORKERS,
                                    lambda: FetchProblem(self._late())))

    def _late(self) -> str:
        return f"no complete answer within {self.deadline:g} s; stopped fetching"

    def fetch(self, url: str) -> ImageInfo | ImageProblem:
        """Fetch and inspect one URL within the limits; never raises."""
        import httpx

        timeout = httpx.Timeout(min(self.timeout, self.deadline))
        # httpx parses a redirect's Location before we see the response: refuse foreign
        # schemes there, so that `javascript:...` is named as such rather than as a bad URL
        with httpx.Client(timeout=timeout, follow_redirects=False,
                          event_hooks={"response": [_refuse_foreign_redirect]}) as client:
            return self._fetch(client, url, time.monotonic() + self.deadline)

    def _look(self, value: str) -> ImageInfo | ImageProblem | None:
        try:
            kind = kind_of(value)
            if kind == "data":
                return inspect_bytes(decode_data_uri(value))
            if kind == "url":
                if not self.fetch_remote:
                    return None
                return _bounded(self.fetch, [value], self.deadline + 1.0, 1,
                                lambda: FetchProblem(self._late()))[value]
            if not self.files:
                raise ImageProblem("is not an http(s) URL or a data: URI")
            return self._read_file(value)
        except ImageProblem as exc:
            return exc

    def _read_file(self, value: str) -> ImageInfo:
        if "://" in value:
            raise ImageProblem("not an http(s) URL, a data: URI or a local file path")
        if "\0" in value:
            raise ImageProblem("contains a NUL character; it cannot be a file name")
        if not value.strip():
            raise ImageProblem("is empty; give a file path, an https URL or a data: URI")
        path = Path(value)
        try:
            resolved = self.path_of(value)
            base = self.root.resolve()
        except (OSError, RuntimeError) as exc:
            raise ImageProblem(f"cannot resolve the path: {getattr(exc, 'strerror', None) or exc}"
                               ) from None
        if resolved == base or resolved == self.base_dir.resolve():
            raise ImageProblem("is a folder, not an image file")
        if not is_inside(resolved, base) and not self.allow_outside:
            where = outside_words(self.base_dir, self.root)
            if path.is_absolute():
                raise ImageProblem(f"absolute paths are refused outside {where}; use a path "
                                   "relative to the manifest (or pass --allow-outside-paths)")
            raise ImageProblem(f"the path leads outside {where}; move the image into it (or "
                               "pass --allow-outside-paths)")
        try:
            size = resolved.stat().st_size
            if size > self.max_fetch_bytes:
                raise ImageProblem(f"file is {size / 2**20:.1f} MB, far too large for an input")
            raw = resolved.read_bytes()
        except FileNotFoundError:
            raise ImageProblem(f"file not found (looked for {resolved})") from None
        except IsADirectoryError:
            raise ImageProblem("is a folder, not an image file") from None
        except OSError as exc:
            raise ImageProblem(f"cannot read: {exc.strerror or exc}") from None
        return inspect_bytes(raw)

    def _fetch(self, client: httpx.Client, url: str, deadline: float) -> ImageInfo | ImageProblem:
        import httpx

        try:
            for _ in range(MAX_REDIRECTS + 1):
                with client.stream("GET", url) as response:
                    if response.is_redirect:
                        target = response.headers.get("location", "").strip()
                        _refuse_foreign_redirect(response)
                        try:
                            url = str(response.url.join(target))
                        except (httpx.InvalidURL, ValueError):
                            return FetchProblem(f"redirected to an invalid address {target[:80]!r}")
                        continue
                    if response.status_code != 200:
                        return FetchProblem(f"fetching it answered HTTP {response.status_code}")
                    return inspect_bytes(self._read_body(response, deadline))
            return FetchProblem(f"too many redirects (more than {MAX_REDIRECTS}); stopped "
                                "following them")
        except ImageProblem as exc:
            return exc
        except httpx.TimeoutException:
            return FetchProblem(f"no answer within {min(self.timeout, self.deadline):g} s")
        except httpx.HTTPError as exc:
            return FetchProblem(f"cannot fetch: {type(exc).__name__}: {exc}")
        except (ValueError, OSError) as exc:  # an unparsable URL, a socket error httpx let through
            return FetchProblem(f"cannot fetch: {exc}")

    def _read_body(self, response: httpx.Response, deadline: float) -> bytes:
        cap = self.max_fetch_bytes
        too_big = f"larger than {cap / 2**20:g} MB; stopped fetching"
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise ImageProblem(too_big)
        body = bytearray()
        for chunk in response.iter_bytes():  # as it arrives (decoded): the cap is on what we keep
            body += chunk
            if len(body) > cap:
                raise ImageProblem(too_big)
            if time.monotonic() > deadline:
                raise FetchProblem(self._late())
        return bytes(body)


def _refuse_foreign_redirect(response: httpx.Response) -> None:
    if not response.is_redirect:
        return
    scheme = _SCHEME.match(response.headers.get("location", "").strip())
    if scheme and scheme.group(1).lower() not in ("http", "https"):
        raise ImageProblem(f"redirected to a non-http(s) address {scheme.group(1)[:20]!r}: "
                           "refused")


def _bounded(fn: Callable[[str], ImageInfo | ImageProblem], items: list[str], limit: float,
             workers: int, late: Callable[[], ImageProblem]
             ) -> dict[str, ImageInfo | ImageProblem]:
    """fn(item) for each item, `workers` at a time in daemon threads, each given `limit`
    seconds: a call still running then is abandoned (its thread ends at its own timeout)."""
    results: dict[str, ImageInfo | ImageProblem] = {}
    pending = list(reversed(items))
    running: dict[str, tuple[threading.Thread, float]] = {}

    def work(item: str) -> None:
        try:
            results[item] = fn(item)
        except Exception as exc:  # noqa: BLE001 - fn never raises; belt and braces
            results[item] = FetchProblem(f"cannot fetch: {type(exc).__name__}: {exc}")

    while pending or running:
        while pending and len(running) < workers:
            item = pending.pop()
            thread = threading.Thread(target=work, args=(item,), daemon=True,
                                      name="pipeline-image-fetch")
            thread.start()
            running[item] = (thread, time.monotonic() + limit)
        for item, (thread, until) in list(running.items()):
            thread.join(timeout=0.02)
            if not thread.is_alive():
                del running[item]
            elif time.monotonic() > until:
                del running[item]
                results.setdefault(item, late())
    return {item: results[item] for item in items}
