"""One attempt at downloading an output file, atomically, on a client that never sends the token.

The file is streamed to a hidden temporary name in the destination folder, fsync'd, renamed over
the final name with os.replace and the folder fsync'd: the final name only ever holds a whole,
checked file. `within_deadline` bounds one attempt's time, start to end; retrying is the
caller's business (see RunComfyClient.download).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx

from ..durable import fsync_dir
from ..errors import DownloadError
from ._inline import sniff
from ._retry import retry_after_of, retryable_status
from ._types import DownloadInfo

MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Declared types we accept before looking at the bytes (a text/html error page is refused).
_OK_TYPE_PREFIXES = ("video/", "image/", "audio/")
_OK_TYPES = frozenset({"application/octet-stream", "binary/octet-stream", "application/mp4"})
_HEAD = 16  # bytes of a file that `sniff` looks at
T = TypeVar("T")


def safe_url(url: str | httpx.URL) -> str:
    """A URL fit for a message: no query string (pre-signed URLs carry secrets there)."""
    text = str(url)
    return text.split("?", 1)[0] + ("?…" if "?" in text else "")


def check_scheme(url: str | httpx.URL, what: str = "URL", *, base: httpx.URL | None = None
                 ) -> httpx.URL:
    """The URL (joined to `base`) parsed, if it is http(s); DownloadError (permanent) otherwise."""
    try:
        parsed = base.join(str(url)) if base is not None else httpx.URL(str(url))
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise DownloadError(f"invalid {what}", url=safe_url(url)) from exc
    if parsed.scheme not in ("http", "https"):
        raise DownloadError(f"refusing {what} with scheme {parsed.scheme or 'none'!r} "
                            "(only http and https)", url=safe_url(url))
    if not parsed.host:
        raise DownloadError(f"refusing {what} without a host", url=safe_url(url))
    return parsed


async def refuse_bad_redirect(response: httpx.Response) -> None:
    """A response hook: DownloadError for a redirect to a non-http(s) or unparsable URL.

    httpx parses every Location header (to offer `next_request`) even when it does not follow
    redirects, and fails on some non-http targets (`data:...`) with its own exceptions; this
    hook runs before that, so such a redirect is our permanent DownloadError instead.
    """
    if response.status_code in REDIRECT_STATUSES and "location" in response.headers:
        check_scheme(response.headers["location"], "redirect target", base=response.url)


async def within_deadline(seconds: float, url: str, download: Coroutine[Any, Any, T]) -> T:
    """Await one download attempt; a DownloadError (not retried) if it outlasts `seconds`."""
    try:
        return await asyncio.wait_for(download, seconds)
    except asyncio.TimeoutError:
        raise DownloadError(f"not finished within the {seconds:g} s download deadline",
                            url=safe_url(url)) from None


async def download_once(http: httpx.AsyncClient, url: str, dest: Path, max_bytes: int
                        ) -> DownloadInfo:
    """Fetch `url` (following at most MAX_REDIRECTS http(s) redirects) into `dest`."""
    current = check_scheme(url)
    for _hop in range(MAX_REDIRECTS + 1):
        async with http.stream("GET", current) as response:
            if response.status_code in REDIRECT_STATUSES and "location" in response.headers:
                current = check_scheme(response.headers["location"], "redirect target",
                                       base=response.url)
                continue
            if response.status_code != 200:
                raise DownloadError(
                    f"HTTP {response.status_code}", url=safe_url(current),
                    status_code=response.status_code,
                    transient=retryable_status(response.status_code),
                    retry_after=retry_after_of(response))
            return await _save(response, url, dest, max_bytes)
    raise DownloadError(f"more than {MAX_REDIRECTS} redirects", url=safe_url(url))


async def _save(response: httpx.Response, url: str, dest: Path, max_bytes: int) -> DownloadInfo:
    where = safe_url(response.url)
    ctype = response.headers.get("content-type")
    media = ctype.split(";", 1)[0].strip().lower() if ctype else None
    if media and not (media.startswith(_OK_TYPE_PREFIXES) or media in _OK_TYPES):
        raise DownloadError(f"content-type {media!r} is not a media file", url=where)
    declared = response.headers.get("content-length")
    length = int(declared) if declared and declared.strip().isdigit() else None
    if length is not None and length > max_bytes:
        raise DownloadError(f"{length} bytes is over the {max_bytes}-byte limit", url=where)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.{secrets.token_hex(4)}.part"
    sha, size, head, sniffed = hashlib.sha256(), 0, b"", False
    try:
        with open(tmp, "xb") as out:
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise DownloadError(f"more than the {max_bytes}-byte limit", url=where)
                if not sniffed:  # judge the bytes as soon as there are enough of them
                    head = (head + chunk)[:_HEAD]
                    if len(head) == _HEAD:
                        _check_magic(head, media, where)
                        sniffed = True
                sha.update(chunk)
                out.write(chunk)
            # Content-Length counts bytes on the wire: compare with what was received if the
            # server compressed anyway (we asked for identity), else with what we wrote.
            encoded = response.headers.get("content-encoding", "identity").lower() != "identity"
            received = response.num_bytes_downloaded if encoded else size
            if length is not None and received != length:
                raise DownloadError(f"body ended after {received} of {length} bytes", url=where,
                                    transient=True)
            if size == 0:
                raise DownloadError("empty body", url=where, transient=True)
            if not sniffed:
                _check_magic(head, media, where)
            out.flush()
            # one trip to a worker thread: the bytes on disk, then the name, then the folder
            await asyncio.to_thread(_commit, out.fileno(), tmp, dest)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DownloadError(f"cannot write {dest}: {exc.strerror or exc}", url=where) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return DownloadInfo(dest, size, sha.hexdigest(), media, url)


def _commit(fd: int, tmp: Path, dest: Path) -> None:
    """Make a finished download durable under its own name (blocking: a worker thread)."""
    os.fsync(fd)
    os.replace(tmp, dest)
    fsync_dir(dest.parent)


def _check_magic(head: bytes, media: str | None, where: str) -> None:
    """DownloadError unless the first bytes are a known media type agreeing with the header."""
    found = sniff(head)
    if found is None:
        raise DownloadError("the bytes are not a known media type (no MP4 'ftyp' box)",
                            url=where)
    major = media.split("/", 1)[0] if media else ""
    if major in ("video", "image") and found.split("/", 1)[0] != major:
        raise DownloadError(f"content-type says {media} but the bytes are {found}", url=where)
