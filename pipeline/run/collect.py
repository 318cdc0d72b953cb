"""Collecting what a cell made: download every output of its successful attempt, then probe it.

Generation and download are separate steps: the result and its URLs are journalled before any
download, and a failed download is retried on its own (here, and on the next run) while the
URL lives; it never causes a new, paid generation. A local write error is our disk, not the
network: the run stops instead of retrying.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlparse

from ..errors import DownloadError, StateError
from ..job import journal as ev
from ..job.records import DONE
from ..media import probe as media
from ..prepare.expand import Cell
from .context import RunContext, crash_point

OUTPUT_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".gif", ".png", ".jpg", ".jpeg", ".webp")


def suffix(url: str) -> str:
    path = urlparse(url).path.lower()
    return next((s for s in OUTPUT_SUFFIXES if path.endswith(s)), ".mp4")


def clean_partial_downloads(run: RunContext) -> None:
    """Partial downloads left by a process killed mid-download (once per run, not per cell)."""
    if run.folder.videos.is_dir():
        for stale in run.folder.videos.glob(".*.part"):
            stale.unlink(missing_ok=True)


async def collect(run: RunContext, cell: Cell) -> None:
    """Download every output of the successful attempt, each retried on its own."""
    rec = run.state.cells[cell.id]
    won = rec.succeeded()
    if won is None:
        return
    folder = run.folder.videos
    folder.mkdir(parents=True, exist_ok=True)
    for i, url in enumerate(won.outputs):
        if url in rec.files:
            continue
        name = cell.id + (f"-{i}" if i else "") + suffix(url)
        for round_ in range(1, run.retries.download_rounds + 1):
            if run.control.stopping.everything.is_set():
                return
            try:
                async with run.downloads:
                    info = await run.client.download(url, folder / name)
            except OSError as exc:
                raise StateError(f"cannot write {folder / name}: {exc.strerror or exc}; "
                                 "free some space and run again to resume (the video is "
                                 "not lost: its URL is in the journal)") from None
            except DownloadError as exc:
                run.write(ev.download_failed(cell.id, url, str(exc)))
                if await run.control.stopping.sleep(run.client.backoff(round_, exc.retry_after)):
                    return
                continue
            crash_point("after_download")
            probe, check = await asyncio.to_thread(_inspect, folder / name, cell, run)
            run.watch.media(cell.id, f"videos/{name}", probe, check)
            run.write(ev.downloaded(cell.id, url, f"videos/{name}", info.size, info.sha256,
                                    probe, check))
            await run.journal.durable()
            if run.previews and (probe is None or probe.get("frames") is not None):
                # a video's strip and triage (one that cannot be decoded: flagged so)
                run.previews.add(cell.id, cell.index, i, folder / name)
            break
    if rec.state(run.max_attempts) == DONE:
        rec.compact(run.estimate(cell.id))


def _inspect(path: Path, cell: Cell, run: RunContext) -> tuple[dict | None, dict]:
    """What the file is, compared with what was asked: a video's frames, fps and size; an
    image's format and size (an image model's output is shown as an image). Blocking: runs in
    a worker thread."""
    try:
        if path.suffix.lower() in media.IMAGE_SUFFIXES:
            return media.probe_image(path), {"ok": True, "problems": [],
                                             "resolution": "not checked"}
        info = media.probe(path)
    except ValueError as exc:
        return None, {"ok": False, "problems": [str(exc)], "resolution": "not checked"}
    return info, media.check(info, cell.request, fps=run.model_of(cell).fps)
