"""What an image input is: format (by content), size in bytes and pixels, and a digest.

Each distinct image is looked at once per run, whatever the number of cells that use it: local
files are read once, `data:` URIs decoded once, remote URLs fetched once (size-capped and
time-limited, several at a time). Headers are read with Pillow, which judges the format by the
bytes, not the name.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
from PIL import Image, UnidentifiedImageError

ACCEPTED_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png"}
MAX_FETCH_BYTES = 64 * 1024 * 1024  # far above any model's limit; enough to measure and refuse
FETCH_TIMEOUT = 20.0
MAX_PIXELS = 1_000_000_000  # headers that claim more are lies or bombs; Pillow is told so too
_DATA_URI = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?((?:;[\w-]+=[^;,]*)*)(;base64)?,", re.I)


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
    digest = hashlib.sha256(raw).hexdigest()
    if not raw:
        raise ImageProblem("the file is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw)) as im:
                fmt, (width, height) = im.format or "?", im.size
                if width * height > MAX_PIXELS:
                    raise ImageProblem(f"the header claims {width}x{height} pixels, too many to "
                                       "be a real image")
                im.verify()  # catches truncated PNGs and broken chunks without decoding it all
    except ImageProblem:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageProblem("not a readable image (JPEG or PNG expected)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageProblem(f"broken or truncated image ({exc})") from None
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
    """Looks at each distinct image once and remembers the answer (or the problem)."""

    def __init__(self, base_dir: Path, *, fetch_remote: bool = True,
                 max_fetch_bytes: int = MAX_FETCH_BYTES, timeout: float = FETCH_TIMEOUT):
        self.base_dir = base_dir
        self.fetch_remote = fetch_remote
        self.max_fetch_bytes = max_fetch_bytes
        self.timeout = timeout
        self._cache: dict[str, ImageInfo | ImageProblem | None] = {}

    def path_of(self, value: str) -> Path:
        return (self.base_dir / value).resolve()

    def get(self, value: str) -> ImageInfo | None:
        """The image's info; None when it was not looked at (remote, offline); else raises."""
        found = self._cache.get(value, _MISSING)
        if found is _MISSING:
            found = self._cache[value] = self._look(value)
        if isinstance(found, ImageProblem):
            raise found
        return found

    def prefetch(self, values: set[str]) -> None:
        """Fetch all remote images not seen yet, several at a time."""
        todo = [v for v in values if v not in self._cache and kind_of(v) == "url"]
        if not todo or not self.fetch_remote:
            return
        with httpx.Client(timeout=self.timeout, follow_redirects=True,
                          max_redirects=5) as client, ThreadPoolExecutor(8) as pool:
            for value, result in zip(todo, pool.map(lambda v: self._fetch(client, v), todo)):
                self._cache[value] = result

    def _look(self, value: str) -> ImageInfo | ImageProblem | None:
        try:
            kind = kind_of(value)
            if kind == "data":
                return inspect_bytes(decode_data_uri(value))
            if kind == "url":
                if not self.fetch_remote:
                    return None
                with httpx.Client(timeout=self.timeout, follow_redirects=True,
                                  max_redirects=5) as client:
                    return self._fetch(client, value)
            return self._read_file(value)
        except ImageProblem as exc:
            return exc

    def _read_file(self, value: str) -> ImageInfo:
        if "://" in value:
            raise ImageProblem("not an http(s) URL, a data: URI or a local file path")
        path = Path(value)
        if path.is_absolute():
            raise ImageProblem("absolute paths are refused; use a path relative to the manifest")
        resolved = self.path_of(value)
        base = self.base_dir.resolve()
        if base not in resolved.parents:
            raise ImageProblem("the path leads outside the manifest's folder; move the image "
                               "next to the manifest")
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

    def _fetch(self, client: httpx.Client, url: str) -> ImageInfo | ImageProblem:
        try:
            with client.stream("GET", url) as response:
                if response.status_code != 200:
                    return ImageProblem(f"fetching it answered HTTP {response.status_code}")
                if response.url.scheme not in ("http", "https"):
                    return ImageProblem("redirected to a non-http(s) address")
                chunks, total = [], 0
                for chunk in response.iter_bytes():
                    total += len(chunk)
                    if total > self.max_fetch_bytes:
                        return ImageProblem(f"larger than {self.max_fetch_bytes // 2**20} MB; "
                                            "stopped fetching")
                    chunks.append(chunk)
            return inspect_bytes(b"".join(chunks))
        except ImageProblem as exc:
            return exc
        except httpx.TooManyRedirects:
            return ImageProblem("too many redirects")
        except httpx.TimeoutException:
            return ImageProblem(f"no answer within {self.timeout:g} s")
        except httpx.HTTPError as exc:
            return ImageProblem(f"cannot fetch: {type(exc).__name__}: {exc}")


_MISSING = object()
