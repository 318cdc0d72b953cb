"""Synthetic clips for the triage's tests: made on the spot with PyAV and Pillow."""

from __future__ import annotations

import random
from pathlib import Path

import av
from PIL import Image, ImageDraw, ImageFilter

W, H, FRAMES = 320, 180, 121  # a 5 s clip at 24 fps


def textured(width: int = 800, height: int = 450, seed: int = 1) -> Image.Image:
    """A picture with shapes all over it (something a camera move visibly changes)."""
    rnd = random.Random(seed)
    img = Image.new("RGB", (width, height), (90, 110, 130))
    draw = ImageDraw.Draw(img)
    for _ in range(60):
        x, y, r = rnd.randrange(width), rnd.randrange(height), rnd.randrange(10, 60)
        draw.ellipse([x - r, y - r, x + r, y + r],
                     fill=(rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)))
    return img.filter(ImageFilter.GaussianBlur(2))


def encode(frames: list[Image.Image], path: Path, fps: int = 24) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames[0].size
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "30"}
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_image(f)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def pan(pixels: int, seed: int = 1) -> list[Image.Image]:
    """A slow camera pan: `pixels` of a 640 px wide view over the whole clip."""
    src = textured(seed=seed)
    return [src.crop((x, 0, x + 2 * W, 2 * H)).resize((W, H))
            for x in (round(i * pixels / (FRAMES - 1)) for i in range(FRAMES))]


def still(seed: int = 1) -> list[Image.Image]:
    return [textured(seed=seed).resize((W, H))] * FRAMES


def black() -> list[Image.Image]:
    return [Image.new("RGB", (W, H))] * FRAMES


def flicker(every: int = 3) -> list[Image.Image]:
    """A pan whose every `every`-th frame is a third as bright."""
    return [Image.eval(f, lambda v: v // 3) if i % every == 0 else f
            for i, f in enumerate(pan(40))]


def page_faults_of(paths: list[Path]) -> int:
    """Minor page faults while the triage decodes `paths` (in the process that calls it: the
    media worker's child, in tests/media/test_previews.py), after a first decode."""
    import resource

    from pipeline.media import qa

    qa.check_clip(paths[0])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for path in paths:
        qa.check_clip(path)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
