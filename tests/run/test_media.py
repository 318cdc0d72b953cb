"""The media check says the same thing whichever simulator made a clip: the simulator's
placeholders (tagged in their metadata) are not judged on resolution, any other clip is."""

from __future__ import annotations

import io
from pathlib import Path

import av
import pytest
from PIL import Image
from runjobs import sweep

from pipeline.api import RunOptions, run_plan
from pipeline.job.journal import read_state
from pipeline.media import probe as media
from pipeline.prepare.plan import build_plan
from pipeline.sim import SimConfig
from pipeline.sim.video import encode_mp4

ASKED = {"number_of_frames": 24, "resolution": "720P"}


def untagged_mp4(path: Path, width: int, height: int, frames: int = 24) -> Path:
    """An H.264 MP4 like a real service's: no simulator tag."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for _ in range(frames):
            for packet in stream.encode(av.VideoFrame.from_image(
                    Image.new("RGB", (width, height), (90, 60, 30)))):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    path.write_bytes(buf.getvalue())
    return path


def test_placeholder_is_not_a_resolution_failure(tmp_path: Path) -> None:
    """A simulator placeholder (256 px, asked 720P) probes as a placeholder and passes."""
    path = tmp_path / "sim.mp4"
    path.write_bytes(encode_mp4(Image.new("RGB", (1280, 720), (10, 20, 30)), 24, 256))
    info = media.probe(path)
    assert info["placeholder"] is True and (info["width"], info["height"]) == (256, 144)
    assert media.check(info, ASKED, fps=24) == {"ok": True, "problems": [],
                                                "resolution": media.PLACEHOLDER}


@pytest.mark.parametrize("size, ok, resolution", [
    ((256, 144), False, "short side 144, asked 720"),
    ((1280, 720), True, "as requested"),
])
def test_real_clip_is_judged_on_resolution(tmp_path: Path, size: tuple, ok: bool,
                                           resolution: str) -> None:
    """A clip without the simulator's tag is compared with the requested resolution."""
    info = media.probe(untagged_mp4(tmp_path / "real.mp4", *size))
    assert "placeholder" not in info
    verdict = media.check(info, ASKED, fps=24)
    assert verdict["ok"] is ok and verdict["resolution"] == resolution
    assert (resolution in verdict["problems"]) is (not ok)


def test_both_simulators_give_the_same_check(tmp_path: Path, api_env) -> None:
    """The in-process simulator (backend sim) and a separate one (`pipeline sim`, reached as
    the RunComfy backend) record the same media check for the same cell."""
    sim = api_env(capacity=2, gen_time=(0.05, 0.1))
    checks = {}
    for backend in ("sim", "runcomfy"):
        folder = tmp_path / backend
        folder.mkdir()
        manifest = sweep(folder, seeds=1, backend=backend)
        options = RunOptions(out=folder / "out", progress=False,
                             sim=SimConfig(capacity=2, gen_time=(0.05, 0.1)))
        assert run_plan(build_plan(manifest), options).exit_code == 0
        [rec] = read_state(folder / "out").cells.values()
        [file] = rec.files.values()
        checks[backend] = file.check
    assert sim.stats()["submissions_accepted"] == 1
    assert checks["sim"] == checks["runcomfy"] == {"ok": True, "problems": [],
                                                   "resolution": media.PLACEHOLDER}
