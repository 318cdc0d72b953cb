"""The bare httpx loop the runner is measured against (bench/scale.py, bench/throughput.py),
and what both benches start it and the runner with (`start_sim`, `NO_PREVIEWS`).

The same four calls per cell as the runner (submit, status until it ends, result, download),
with no state, no journal, no checks, no previews. Two ways to hold the connections:
- `in_flight=None`: what a quick script does: one semaphore of `concurrency` cells and a pool of
  as many connections (httpcore then scans that many connections on every request);
- `in_flight=K`: at most K HTTP calls at once on K connections, the admission the runner's own
  client uses (pipeline.run.session.IN_FLIGHT): the stricter baseline.
A call that meets a dropped keep-alive connection is tried again (at most 3 times): a loop that
died on the first one would measure nothing.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

MODEL = "bytedance/dreamina-3-0/image-to-video"
ENDED = ("completed", "succeeded", "failed", "cancelled")
# `pipeline` with previews off: no frame strip or poster made, by the run or its report
NO_PREVIEWS = ("import sys, pipeline.media.strips as s; s.MAX_PREVIEWS = 0; "
               "from pipeline.cli import main; sys.exit(main())")


def start_sim(capacity: int, gen: str = "0") -> tuple[subprocess.Popen, str]:
    """`pipeline sim` in its own process on any free port, and its URL."""
    sim = subprocess.Popen([sys.executable, "-m", "pipeline", "sim", "--capacity", str(capacity),
                            "--gen-time", gen, "--port", "0"], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
    assert sim.stdout is not None
    url = sim.stdout.readline().strip()
    if not url.startswith("http"):
        sim.kill()
        raise SystemExit(f"the simulator did not start: {url!r}")
    return sim, url


async def bare_loop(url: str, cells: int, concurrency: int, image: bytes, out: Path, *,
                    in_flight: int | None = None, poll: float = 0.05,
                    first_poll: float = 0.0) -> None:
    """Drive `cells` cells through the simulator at `url`, `concurrency` live at once: the
    first status call `first_poll` seconds after the submit, then every `poll` seconds."""
    data_uri = "data:image/png;base64," + base64.b64encode(image).decode()
    cells_sem = asyncio.Semaphore(concurrency)
    calls_sem = asyncio.Semaphore(in_flight) if in_flight else contextlib.nullcontext()
    headers = {"Authorization": "Bearer bench"}
    limits = httpx.Limits(max_connections=in_flight or concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits,
                                 timeout=60) as api, \
            httpx.AsyncClient(limits=limits, timeout=60) as dl:
        async def call(client: httpx.AsyncClient, method: str, where: str,
                       **kwargs: Any) -> httpx.Response:
            for attempt in range(3):
                try:
                    async with calls_sem:
                        return await client.request(method, where, **kwargs)
                except httpx.TransportError:
                    if attempt == 2:
                        raise
            raise AssertionError("unreachable")

        async def one(i: int) -> None:
            async with cells_sem:
                body = {"image_urls": [data_uri], "prompt": f"bare {i}", "seed": i,
                        "number_of_frames": 121, "resolution": "720P"}
                rid = (await call(api, "POST", f"/v1/models/{MODEL}", json=body)
                       ).json()["request_id"]
                if first_poll:
                    await asyncio.sleep(first_poll)
                while (await call(api, "GET", f"/v1/requests/{rid}/status")
                       ).json()["status"] not in ENDED:
                    await asyncio.sleep(poll)
                result = (await call(api, "GET", f"/v1/requests/{rid}/result")).json()
                video = result["output"].get("video") or result["output"]["videos"][0]
                (out / f"{i}.mp4").write_bytes((await call(dl, "GET", video)).content)

        await asyncio.gather(*(one(i) for i in range(cells)))
