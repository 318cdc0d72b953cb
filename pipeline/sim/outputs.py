"""The simulator's output files: what a result will carry, their URLs, and serving them.

A video model's result names one MP4 (`/files/<request id>.mp4`), an image model's one PNG or
more (`/files/<request id>.png`, `<request id>_1.png`, ...), under the output key its output
schema names. Files are served without auth, like RunComfy's storage host, and made on first
use (pipeline.sim.video). Download faults (a file that 404s for a while, or is cut short) are
decided here per request.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from .. import wire
from ..models import cost
from ..models.catalogue import Model
from . import faults as faultlib
from .config import SimConfig
from .queue import SimRequest
from .stats import Counters
from .video import aspect_of

FILES_PATH = "/files/{name}"  # outputs, served without auth (like RunComfy's storage host)
DEFAULT_FRAMES = 121
MAX_IMAGES = 4  # image outputs of one request (`num_images`)
MAX_FRAMES = 60 * wire.OUTPUT_FPS + 1


def image_variant(spec: str | None) -> int:
    """The disc path of an image's shared placeholder clip (pipeline.sim.video._disc)."""
    import hashlib

    return int.from_bytes(hashlib.sha256(str(spec).encode()).digest()[:8], "big")


def planned_outputs(model: Model, body: dict[str, Any], config: SimConfig) -> dict[str, Any]:
    """What a request's result will carry: the output key, the kind and how many files."""
    keys = model.output_keys()
    if model.kind == "image":
        key = next((k for k in keys if k in wire.IMAGE_OUTPUT_KEYS), wire.OUTPUT_IMAGES)
        wanted = body.get("num_images", body.get("num_outputs", 1))
        count = wanted if isinstance(wanted, int) and not isinstance(wanted, bool) else 1
        count = 1 if key == wire.OUTPUT_IMAGE else max(1, min(MAX_IMAGES, count))
        return {"kind": "image", "key": key, "count": count,
                "aspect": aspect_of(body.get("aspect_ratio"))}
    key = config.output_key
    if key not in keys:
        key = next((k for k in keys if k in wire.VIDEO_OUTPUT_KEYS), key)
    return {"kind": "video", "key": key, "count": 1}


def frames_of(body: dict[str, Any]) -> int:
    """Frames of the placeholder video: `number_of_frames`, else `duration` seconds at 24 fps
    (5 s: 121 frames, as the "5 s" clip of Dreamina), capped at a minute."""
    frames = body.get("number_of_frames")
    if isinstance(frames, int) and not isinstance(frames, bool) and frames > 0:
        return min(frames, MAX_FRAMES)
    seconds = cost.video_seconds(body)
    return min(round(seconds * wire.OUTPUT_FPS) + 1, MAX_FRAMES) if seconds else DEFAULT_FRAMES


def output_of(req: SimRequest, base: str, default_key: str) -> dict[str, Any]:
    """The `output` object of a succeeded request's result."""
    if req.extra.get("kind", "video") == "video":
        names = [f"{req.id}.mp4"]
    else:
        names = [f"{req.id}_{i}.png" if i else f"{req.id}.png" for i in range(req.extra["count"])]
    urls = [base + FILES_PATH.format(name=n) for n in names]
    key = req.extra.get("key", default_key)
    plural = key in (wire.OUTPUT_VIDEOS, wire.OUTPUT_IMAGES)
    return {key: urls if plural else urls[0]}


class TruncatedResponse(Response):
    """Announces the whole file, sends the first half, then closes the connection."""

    def __init__(self, data: bytes, counters: Counters, media: str = "video/mp4"):
        super().__init__(media_type=media)
        self.data, self.counters, self.media = data, counters, media

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sent = await faultlib.send_truncated(receive, send, 200, [
            (b"content-type", self.media.encode())], self.data, len(self.data) // 2)
        self.counters.add("bytes_served", sent)


def _file(name: str) -> tuple[str, str, int] | None:
    """(request id, kind, index) of an output file name: `<id>.mp4`, `<id>.png`, `<id>_N.png`."""
    stem, dot, ext = name.rpartition(".")
    if not dot or ext not in ("mp4", "png"):
        return None
    rid, _, index = stem.partition("_")
    if index and not index.isdigit():
        return None
    return rid, "video" if ext == "mp4" else "image", int(index or 0)


async def download(request: Request) -> Response:
    sim = request.app.state.sim
    sim.counters.call("download")
    name = request.path_params["name"]
    parsed = _file(name)
    view = sim.engine.view(parsed[0]) if parsed else None
    if view is None or view.state != wire.SUCCEEDED or parsed is None or \
            parsed[1] != view.request.extra.get("kind", "video") or \
            parsed[2] >= view.request.extra.get("count", 1):
        return JSONResponse({"error": f"no such file {name!r}"}, status_code=404)
    req = view.request
    fault = None if view.now < req.outage_until else sim.faults.for_download(not req.outage_used)
    if view.now < req.outage_until or fault == "outage":
        if fault == "outage":
            req.outage_used, req.outage_until = True, view.now + sim.config.download_outage
        sim.counters.fault("download_404")
        return JSONResponse({"error": f"file {name!r} not available yet"}, status_code=404)
    if parsed[1] == "image":
        data = await sim.videos.picture(req.extra.get("image"), parsed[2], req.extra["aspect"])
        media = "image/png"
    else:
        variant = req.extra.get("variant")
        if variant is None:  # one clip per image (cached): a disc moving on the image's own path,
            variant = image_variant(req.extra.get("image"))  # so it is never blank or frozen
        data = await sim.videos.get(req.extra.get("image"), frames_of(req.body), variant,
                                    req.extra.get("defect"))
        media = "video/mp4"
    if fault == "truncate":
        sim.counters.fault("download_truncated")
        return TruncatedResponse(data, sim.counters, media)
    if request.method != "HEAD":
        sim.counters.add("bytes_served", len(data))
        sim.counters.add("downloads_completed")
    return Response(data, media_type=media)


