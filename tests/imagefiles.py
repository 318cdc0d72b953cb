"""Test images made on the spot with Pillow: exact sizes, formats and byte counts."""

from __future__ import annotations

import base64
import io
from pathlib import Path

from PIL import Image


def image_bytes(width: int, height: int, fmt: str = "PNG", *, pad_to: int | None = None) -> bytes:
    """An image of the given size and format; `pad_to` appends bytes after the image's end
    marker so that the file has exactly that many bytes (decoders ignore trailing data)."""
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (40, 90, 140)).save(buf, format=fmt)
    raw = buf.getvalue()
    if pad_to is not None:
        assert pad_to >= len(raw), (pad_to, len(raw))
        raw += b"\0" * (pad_to - len(raw))
    return raw


def write_image(path: Path, width: int = 640, height: int = 480, fmt: str = "PNG",
                *, pad_to: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(image_bytes(width, height, fmt, pad_to=pad_to))
    return path


def data_uri(width: int = 640, height: int = 480, fmt: str = "PNG") -> str:
    mime = {"PNG": "image/png", "JPEG": "image/jpeg"}[fmt]
    return f"data:{mime};base64," + base64.b64encode(image_bytes(width, height, fmt)).decode()


MODEL = "bytedance/dreamina-3-0/image-to-video"


def write_manifest(folder: Path, text: str, name: str = "job.yaml") -> Path:
    """A manifest file from a YAML text (dedented), next to whatever images the test made."""
    import textwrap

    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def final_manifest(prompt: str = "{{ caption }}, steady camera", *,
                   backend: str | None = None, picks: str = "picks.jsonl") -> str:
    """The final over a picks file, as the preview → final tests share it: each pick's image
    and caption again, at 1080P and 241 frames (`backend`: sim, say, to run it offline)."""
    return (f"name: final\nmodel: {MODEL}\n" + (f"backend: {backend}\n" if backend else "")
            + f'prompt: "{prompt}"\ninputs:\n  image_urls: ["{{{{ image }}}}"]\nmatrix:\n'
            + f"  rows: {{file: {picks}}}\n  resolution: [1080P]\n  number_of_frames: [241]\n")


def preview_manifest(pier: str = "b.png") -> str:
    """The preview sweep the report and review tests share: 3 rows (two images: `a.png` and
    `pier`) x 2 resolutions x 2 random seeds = 12 cells, on the simulator."""
    return f"""
name: preview
model: {MODEL}
backend: sim
prompt: "{{{{ caption }}}}, slow push-in"
inputs:
  image_urls: ["{{{{ image }}}}"]
  number_of_frames: 121
matrix:
  rows:
    - {{image: a.png, caption: boats at dawn}}
    - {{image: {pier}, caption: a pier in rain}}
    - {{image: a.png, caption: lanterns at night}}
  resolution: [720P, 1080P]
  seed: {{random: 2}}
run:
  concurrency: 6
  polling: {{initial: 0.1, max: 0.5}}
"""
