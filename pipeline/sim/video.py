"""Placeholder outputs: a slow zoom over the input image, encoded as a small H.264 MP4, and
PNG pictures for image models.

They are not model output; they exist so a client can download, probe and keep a real,
playable file with the requested frame count (24 fps) and the input's aspect ratio. A preview
size (longest side 256 px by default) keeps one encode well under a second, and a cache keyed
by (image digest, frames, size) makes a thousand identical requests cost one encode.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import io
import logging
from collections import OrderedDict
from typing import Any

import av
from PIL import Image, ImageDraw, ImageOps

from .. import wire

log = logging.getLogger(__name__)

DEFAULT_ASPECT = (16, 9)  # when the input image cannot be had
ZOOM = 0.18  # the last frame shows the middle 1/(1+ZOOM) of the picture


def image_spec(body: dict[str, Any], image_fields: list[str]) -> str | None:
    """The first image reference in a submitted body (URL or data URI), if any."""
    for name in image_fields:
        value = body.get(name)
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, str) and value:
            return value
    return None


def decode_data_uri(uri: str) -> bytes | None:
    """The bytes of a base64 `data:` URI, or None if it is not one."""
    head, sep, payload = uri.partition(",")
    if not sep or not head.startswith("data:") or not head.endswith(";base64"):
        return None
    try:
        return base64.b64decode(payload, validate=False)
    except (binascii.Error, ValueError):
        return None


def fetch_image(spec: str | None, timeout: float) -> Image.Image | None:
    """The picture a spec points to: decoded data URI, short http(s) fetch, else None."""
    if not spec:
        return None
    raw: bytes | None = None
    if spec.startswith("data:"):
        raw = decode_data_uri(spec)
    elif spec.startswith(("http://", "https://")) and timeout > 0:
        import httpx

        try:
            answer = httpx.get(spec, timeout=timeout, follow_redirects=True)
            if answer.status_code == 200 and len(answer.content) < 64 * 2**20:
                raw = answer.content
        except httpx.HTTPError as exc:
            log.debug("sim: cannot fetch %s (%s); using a test card", spec[:80], exc)
    if raw is None:
        return None
    try:
        img: Image.Image = Image.open(io.BytesIO(raw))
        img = ImageOps.exif_transpose(img)
        return img.convert("RGB")
    except Exception as exc:  # any undecodable picture falls back to the test card
        log.debug("sim: cannot decode input image (%s); using a test card", exc)
        return None


def placeholder_picture(digest: str, aspect: tuple[int, int] = DEFAULT_ASPECT) -> Image.Image:
    """A generated gradient picture whose colours come from `digest`."""
    w, h = 64 * aspect[0], 64 * aspect[1]
    seed = bytes.fromhex(digest[:12])
    a, b = seed[:3], seed[3:6]
    top = Image.new("RGB", (w, h), tuple(a))
    bottom = Image.new("RGB", (w, h), tuple(b))
    mask = Image.linear_gradient("L").resize((w, h))
    img = Image.composite(bottom, top, mask)
    draw = ImageDraw.Draw(img)
    for i in range(8):  # a grid, so the motion is visible
        draw.line([(i * w // 8, 0), (i * w // 8, h)], fill=(255, 255, 255), width=3)
        draw.line([(0, i * h // 8), (w, i * h // 8)], fill=(255, 255, 255), width=3)
    draw.ellipse([w // 3, h // 3, 2 * w // 3, 2 * h // 3], outline=(0, 0, 0), width=8)
    return img


def preview_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    """Width and height scaled so the longer is `long_side`, both even (H.264 4:2:0 needs it)."""
    scale = long_side / max(width, height)
    return (max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2))


def encode_mp4(img: Image.Image, frames: int, long_side: int, variant: int | None = None,
               defect: str | None = None) -> bytes:
    """An H.264/yuv420p MP4 of `frames` frames at 24 fps: a slow zoom into `img`; a `variant`
    (pipeline.sim.defects) adds a disc moving on a path of its own; a `defect` makes it black,
    frozen (its first frame throughout) or flickering (every third frame a third as bright)."""
    width, height = preview_size(img.width, img.height, long_side)
    # Work from a copy a bit larger than the output, labelled so nobody mistakes it.
    src = img.resize((int(width * (1 + ZOOM)) + 2, int(height * (1 + ZOOM)) + 2),
                     Image.Resampling.BILINEAR)
    ImageDraw.Draw(src).text((6, 4), "SIMULATED", fill=(255, 255, 255))
    buf = io.BytesIO()
    first: Image.Image | None = None  # a frozen clip's one picture
    with av.open(buf, "w", format="mp4") as container:
        container.metadata["comment"] = wire.PLACEHOLDER_COMMENT
        stream = container.add_stream("libx264", rate=wire.OUTPUT_FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "30"}
        for i in range(frames):
            zoom = 1 + ZOOM * (1 - i / max(1, frames - 1))  # wide at the end: a slow zoom out
            cw, ch = src.width / zoom, src.height / zoom
            left, top = (src.width - cw) / 2, (src.height - ch) / 2
            frame_img = src.resize((width, height), Image.Resampling.BILINEAR,
                                   box=(left, top, left + cw, top + ch))
            if variant is not None:
                _disc(frame_img, variant, i / max(1, frames - 1))
            if defect == "black":
                frame_img = Image.new("RGB", (width, height))
            elif defect == "frozen":
                first = frame_img if first is None else first
                frame_img = first
            elif defect == "flicker" and i % 3 == 0:
                frame_img = Image.eval(frame_img, lambda v: v // 3)
            frame = av.VideoFrame.from_image(frame_img)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


def _disc(img: Image.Image, variant: int, at: float) -> None:
    """Draw the variant's disc where its path is at `at` (0..1): from one point of the picture
    to another, a colour and a size of its own (the variant's bits pick them)."""
    bits = [(variant >> (8 * k)) & 0xFF for k in range(8)]
    w, h = img.size
    x0, y0, x1, y1 = (0.15 + 0.7 * b / 255 for b in bits[:4])
    x, y = w * (x0 + (x1 - x0) * at), h * (y0 + (y1 - y0) * at)
    r = h * (0.12 + 0.1 * bits[4] / 255)
    ImageDraw.Draw(img).ellipse([x - r, y - r, x + r, y + r], fill=tuple(bits[5:8]),
                                outline=(255, 255, 255), width=2)


def render(spec: str | None, frames: int, long_side: int, fetch_timeout: float,
           variant: int | None = None, defect: str | None = None) -> bytes:
    """The video for one input image spec (blocking: run it in a worker thread)."""
    img = fetch_image(spec, fetch_timeout)
    if img is None:
        img = placeholder_picture(hashlib.sha256((spec or "").encode()).hexdigest())
    return encode_mp4(img, frames, long_side, variant, defect)


def aspect_of(text: object) -> tuple[int, int]:
    """`"16:9"` -> (16, 9); anything else the default aspect."""
    if isinstance(text, str) and ":" in text:
        w, _, h = text.partition(":")
        if w.strip().isdigit() and h.strip().isdigit() and int(w) and int(h):
            return int(w), int(h)
    return DEFAULT_ASPECT


def render_png(spec: str | None, index: int, aspect: tuple[int, int], long_side: int,
               fetch_timeout: float) -> bytes:
    """A placeholder image output (PNG): the input picture if any, else a test card of the
    requested aspect ratio, labelled so nobody mistakes it, a little different per index."""
    img = fetch_image(spec, fetch_timeout)
    if img is None:
        img = placeholder_picture(hashlib.sha256((spec or "").encode()).hexdigest(), aspect)
    width, height = preview_size(img.width, img.height, long_side)
    img = img.resize((width, height), Image.Resampling.BILINEAR)
    if index:
        img = ImageOps.mirror(img) if index % 2 else ImageOps.flip(img)
    ImageDraw.Draw(img).text((6, 4), f"SIMULATED {index + 1}", fill=(255, 255, 255))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


class VideoCache:
    """Encodes each distinct (image, frames, size) once, in a worker thread, and keeps it.

    Use from one event loop: concurrent requests for the same key await the same encode.
    """

    def __init__(self, long_side: int, fetch_timeout: float, max_items: int = 128):
        self.long_side = long_side
        self.fetch_timeout = fetch_timeout
        self.max_items = max_items
        self.encodes = 0
        self._done: OrderedDict[tuple, bytes] = OrderedDict()
        self._pending: dict[tuple, asyncio.Future[bytes]] = {}

    async def get(self, spec: str | None, frames: int, variant: int | None = None,
                  defect: str | None = None) -> bytes:
        """The MP4 bytes for this image spec and frame count (and variant and defect, see
        pipeline.sim.defects), encoding them on first use."""
        key = (hashlib.sha256((spec or "").encode()).hexdigest(), frames, self.long_side,
               *((variant, defect) if variant is not None or defect else ()))
        return await self._get(key, render, spec, frames, self.long_side, self.fetch_timeout,
                               variant, defect)

    async def picture(self, spec: str | None, index: int, aspect: tuple[int, int]) -> bytes:
        """The PNG bytes of image output `index` for this image spec (made on first use)."""
        key = (hashlib.sha256((spec or "").encode()).hexdigest(), f"png{index}{aspect}",
               self.long_side)
        return await self._get(key, render_png, spec, index, aspect, self.long_side,
                               self.fetch_timeout)

    async def _get(self, key: tuple, make: Any, *args: Any) -> bytes:
        if key in self._done:
            self._done.move_to_end(key)
            return self._done[key]
        pending = self._pending.get(key)
        if pending is None:
            loop = asyncio.get_running_loop()
            pending = loop.create_future()
            self._pending[key] = pending
            try:
                data = await asyncio.to_thread(make, *args)
            except BaseException as exc:
                pending.set_exception(exc)
                pending.exception()  # mark retrieved: the waiters, if any, re-raise it
                raise
            finally:
                self._pending.pop(key, None)
            self.encodes += 1
            pending.set_result(data)
            self._done[key] = data
            while len(self._done) > self.max_items:
                self._done.popitem(last=False)
            return data
        return await asyncio.shield(pending)
