"""Local images to `data:` URIs, and media types judged by content (magic bytes), not by name.

RunComfy's docs only promise public HTTPS URLs for file inputs; RunComfy's own ComfyUI nodes send
`data:image/png;base64,...` to the same API, so we do too (a setting: `data_uris=False` refuses
local files instead).
"""

from __future__ import annotations

import base64
import copy
import functools
import re
from pathlib import Path
from typing import Any

from .. import wire
from ..errors import LocalImageError

_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
PASS_THROUGH = ("http://", "https://", "data:")

# (offset, magic, media type): what a downloaded output or an input image may be.
_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (4, b"ftyp", "video/mp4"),  # ISO base media (mp4, mov, m4v)
    (0, b"\x1a\x45\xdf\xa3", "video/webm"),  # EBML: webm / matroska
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
)
INPUT_IMAGE_TYPES = ("image/jpeg", "image/png")


def sniff(head: bytes) -> str | None:
    """The media type the first bytes of a file show, or None when unknown."""
    for offset, magic, media_type in _MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return media_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def to_data_uri(path: str | Path) -> str:
    """`data:image/jpeg|png;base64,...` for a local JPEG or PNG, typed by content not by name.
    A sweep sends one image with many seeds: the URI of a file whose size and modification
    time have not changed is reused (the last few files), not read and encoded again."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError as exc:
        raise LocalImageError(f"{path}: cannot read image ({exc.strerror or exc})") from exc
    if st.st_size > wire.DATA_URI_MAX_BYTES:
        raise LocalImageError(
            f"{path}: {st.st_size} bytes is too large to send inline (limit "
            f"{wire.DATA_URI_MAX_BYTES} bytes); host it at a public HTTPS URL instead")
    return _encoded(str(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=4)
def _encoded(path: str, mtime_ns: int, size: int) -> str:
    """The data URI of a file as it is at (mtime_ns, size): the cache's key."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise LocalImageError(f"{path}: cannot read image ({exc.strerror or exc})") from exc
    media_type = sniff(data[:16])
    if media_type not in INPUT_IMAGE_TYPES:
        raise LocalImageError(f"{path}: not a JPEG or PNG image (judged by its content)")
    return f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}"


def is_local_path(value: str) -> bool:
    """True for a value that names a local file rather than a URL or data: URI."""
    return not value.startswith(PASS_THROUGH) and not (
        _SCHEME_RE.match(value) and not re.match(r"^[A-Za-z]:[\\/]", value))


def _convert(value: Any, base_dir: Path | None, field: str, data_uris: bool) -> Any:
    if isinstance(value, list):
        return [_convert(v, base_dir, field, data_uris) for v in value]
    if not isinstance(value, str) or value.startswith(PASS_THROUGH):
        return value
    if not is_local_path(value):
        scheme = value.split(":", 1)[0]
        raise LocalImageError(f"input {field!r}: URL scheme {scheme!r} is not supported; "
                             "use a public HTTPS URL or a local file")
    path = Path(value)
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    if not data_uris:
        raise LocalImageError(
            f"input {field!r}: {value!r} is a local file, and sending local files as data: URIs "
            "is turned off; RunComfy's docs only promise support for public HTTPS URLs, so host "
            "the image at one, or turn data URIs back on")
    return to_data_uri(path)


def inline_local_images(body: dict[str, Any], base_dir: str | Path | None,
                        image_fields: list[str] | tuple[str, ...], *,
                        data_uris: bool = True) -> dict[str, Any]:
    """A new body in which local image paths (relative to base_dir) are data: URIs.

    http(s) and data: values pass unchanged; the input body is not modified.
    """
    out = dict(body)
    base = Path(base_dir) if base_dir is not None else None
    for name in image_fields:
        if name in out:
            out[name] = _convert(copy.deepcopy(out[name]), base, name, data_uris)
    return out
