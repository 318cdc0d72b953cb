"""Draw the demo images under jobs/images/ (procedural, made by the project; run once)."""

from __future__ import annotations

import math
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

OUT = Path(__file__).resolve().parent.parent / "jobs" / "images"


def harbor(w: int, h: int, seed: int, sky=((250, 180, 120), (90, 120, 190))) -> Image.Image:
    rnd = random.Random(seed)
    im = Image.new("RGB", (w, h))
    d = ImageDraw.Draw(im)
    horizon = int(h * 0.55)
    for y in range(horizon):
        t = y / horizon
        d.line([(0, y), (w, y)],
               fill=tuple(int(a + (b - a) * t) for a, b in zip(sky[1], sky[0], strict=True)))
    for y in range(horizon, h):
        t = (y - horizon) / (h - horizon)
        d.line([(0, y), (w, y)], fill=(int(30 + 20 * t), int(70 + 30 * t), int(110 + 30 * t)))
    d.ellipse([w * 0.7, horizon - h * 0.25, w * 0.7 + h * 0.12, horizon - h * 0.13],
              fill=(255, 230, 170))
    for _ in range(5):
        x = rnd.randint(0, w - 80)
        y = rnd.randint(horizon + 10, h - 30)
        s = rnd.uniform(0.6, 1.4) * w / 640
        d.polygon([(x, y), (x + 70 * s, y), (x + 58 * s, y + 14 * s), (x + 10 * s, y + 14 * s)],
                  fill=(rnd.randint(120, 200), 60, 40))
        d.line([(x + 35 * s, y), (x + 35 * s, y - 50 * s)], fill=(60, 40, 30), width=2)
        d.polygon([(x + 36 * s, y - 48 * s), (x + 36 * s, y - 6 * s), (x + 62 * s, y - 8 * s)],
                  fill=(240, 235, 220))
    for y in range(horizon, h, 3):
        amp = 2 + 3 * math.sin(y / 7)
        d.line([(0, y), (w, y + amp)], fill=(200, 220, 240), width=1) if y % 17 == 0 else None
    return im.filter(ImageFilter.SMOOTH)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    harbor(768, 432, 1).save(OUT / "harbor.jpg", quality=85)
    harbor(480, 640, 2, sky=((255, 200, 150), (40, 60, 120))).save(OUT / "pier.png",
                                                                     optimize=True)
    harbor(640, 640, 3, sky=((200, 210, 220), (120, 130, 150))).save(OUT / "overcast.jpg",
                                                                      quality=85)
    harbor(720, 480, 4, sky=((60, 40, 90), (10, 10, 40))).save(OUT / "night.jpg", quality=85)


if __name__ == "__main__":
    main()
