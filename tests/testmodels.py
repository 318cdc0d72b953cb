"""The example models shipped in the repository's models/ folder (not RunComfy models: the
simulator serves them; the README's three-model example names them), and a project using them.

- `VIDEO`: a video model whose image field is `image_url` (one string, with `validations`),
  whose length is `duration` (5 or 10 s) and which has a `"type": "float"` input; $0.08 per
  second; its output schema names `video`.
- `IMAGE`: an image model (text-to-image) whose output schema names `images`, with a
  `format: image_uris` array input and a `"type": "float"` input; $0.02 per output.
"""

from __future__ import annotations

import shutil
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "models"  # the repository's project models
DREAMINA = "bytedance/dreamina-3-0/image-to-video"
VIDEO = "acme/motion-2/image-to-video"
IMAGE = "acme/still-1/text-to-image"

# Three models side by side: shared inputs for Dreamina, model_inputs for the others, with
# what each does not take dropped; {drop} is the image model's drop list.
SIDE_BY_SIDE = """\
name: side-by-side
model: [{dreamina}, {video}, {image}]
prompt: "the fishing boats at dawn, take {{{{ seed }}}}"
inputs:
  image_urls: [boats.png]
  resolution: 720P
model_inputs:
  {video}:
    image_url: boats.png
    duration: "{{{{ 5 if seed == 1 else 10 }}}}"
    drop: [image_urls]
  {image}:
    aspect_ratio: "16:9"
    num_images: 2
    drop: {drop}
matrix:
  seed: [1, 2]
run:
  concurrency: 6
  polling: {{initial: 0.1, max: 0.5}}
"""


def project(folder: Path, *, with_models: bool = False) -> Path:
    """A project root (a `.git` folder marks it), with the test models in its models/ folder
    when asked (else `pipeline models add` puts them there)."""
    (folder / ".git").mkdir(parents=True, exist_ok=True)
    if with_models:
        shutil.copytree(FIXTURES, folder / "models", dirs_exist_ok=True)
    return folder


def side_by_side(folder: Path, drop: str = "[image_urls, resolution]",
                 name: str = "side.yaml") -> Path:
    """The three-model manifest in `folder`, beside a 640x480 `boats.png`."""
    from imagefiles import write_image

    write_image(folder / "boats.png", 640, 480)
    path = folder / name
    path.write_text(SIDE_BY_SIDE.format(dreamina=DREAMINA, video=VIDEO, image=IMAGE, drop=drop),
                    encoding="utf-8")
    return path
