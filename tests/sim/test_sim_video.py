"""The simulator's placeholder MP4s: playable H.264, requested frames at 24 fps, input aspect."""

from __future__ import annotations

import base64
import io
import time
import uuid

import av
import httpx
import pytest
from PIL import Image

from pipeline import wire
from pipeline.sim import Simulator
from pipeline.sim.video import encode_mp4, placeholder_picture

MODEL = "bytedance/dreamina-3-0/image-to-video"
SUBMIT = wire.SUBMIT_PATH.format(model_id=MODEL)
AUTH = {"Authorization": "Bearer test-token"}


def data_uri(width: int, height: int) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 200)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def probe(data: bytes) -> tuple[int, float, int, int, str, str, int]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        decoded = sum(1 for _ in container.decode(stream))
        return (stream.frames, float(stream.average_rate), stream.width, stream.height,
                stream.codec_context.name, stream.format.name, decoded)


def fetch_video(sim: Simulator, image: str, frames: int) -> bytes:
    with httpx.Client(base_url=sim.base_url, headers=AUTH, timeout=10) as client:
        rid = client.post(SUBMIT, json={"prompt": f"p-{uuid.uuid4()}", "image_urls": [image],
                                        "number_of_frames": frames}).json()[wire.REQUEST_ID]
        deadline = time.monotonic() + 10
        while (done := client.get(wire.RESULT_PATH.format(request_id=rid)).json())[
                "status"] in wire.LIVE_STATUSES:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        url = done[wire.OUTPUT][wire.OUTPUT_VIDEO]
        answer = httpx.get(url)  # no Authorization: outputs are public
        assert answer.status_code == 200 and answer.headers["content-type"] == "video/mp4"
        return answer.content


@pytest.mark.parametrize("frames,size,expected", [
    (121, (640, 480), (256, 192)), (241, (480, 800), (154, 256)), (121, (1280, 720), (256, 144)),
])
def test_downloaded_mp4_has_requested_frames_fps_and_aspect(
        frames: int, size: tuple[int, int], expected: tuple[int, int], sim_factory) -> None:
    """The output opens with PyAV: H.264 yuv420p, exactly the requested frames, 24 fps, input
    aspect."""
    sim = sim_factory(gen_time=(0.0, 0.0))
    data = fetch_video(sim, data_uri(*size), frames)
    assert probe(data) == (frames, 24.0, *expected, "h264", "yuv420p", frames)


def test_identical_requests_cost_one_encode(sim_factory) -> None:
    """Many requests for the same image and frame count share one cached encode."""
    sim = sim_factory(gen_time=(0.0, 0.0), fetch_timeout=0.0)
    image = data_uri(400, 400)
    videos = {fetch_video(sim, image, 121) for _ in range(3)}
    assert len(videos) == 1 and sim.stats()["videos_encoded"] == 1
    longer = fetch_video(sim, image, 241)
    stats = sim.stats()
    assert stats["videos_encoded"] == 2 and stats["downloads_completed"] == 4
    assert stats["bytes_served"] == 3 * len(videos.pop()) + len(longer)


def test_unreachable_url_falls_back_to_a_16_9_test_card(sim_factory) -> None:
    """An http(s) image that cannot be fetched still yields a playable 16:9 video."""
    sim = sim_factory(gen_time=(0.0, 0.0), fetch_timeout=0.2)
    data = fetch_video(sim, "https://example.invalid/in.jpg", 121)
    assert probe(data)[:4] == (121, 24.0, 256, 144)


def test_a_placeholder_says_so_and_the_media_check_spares_its_size(tmp_path) -> None:
    """The simulator's videos carry the placeholder comment: the media check judges their
    frames and fps, not their 256 px size; a video without it is judged on its size."""
    from pipeline.media import probe as media

    path = tmp_path / "v.mp4"
    path.write_bytes(encode_mp4(placeholder_picture("cd" * 32), 121, 256))
    info = media.probe(path)
    assert info["placeholder"] is True
    request = {"number_of_frames": 121, "resolution": "720P"}
    check = media.check(info, request, fps=24)
    assert check["ok"] and check["resolution"] == "not checked (a simulator's placeholder)"
    real = {k: v for k, v in info.items() if k != "placeholder"}
    judged = media.check(real, request, fps=24)
    assert not judged["ok"] and judged["problems"] == ["short side 144, asked 720"]
    assert media.check(info, {**request, "number_of_frames": 241}, fps=24)["problems"] == [
        "121 frames, asked 241"]
