"""Frame strips: six frames across each clip in one small JPEG (three across, two down, read
like a line of text), so that motion can be scanned in the report without playing every video.

`strips/<cell id>.jpg` (`<cell id>-<n>.jpg` for a cell's further outputs), made once, when the
video is downloaded (pipeline.run.collect queues it on the run's `Previews` worker), by one
decode with PyAV that also writes the
clip's poster (its first frame, pipeline.media.posters). The report makes the ones missing
(a job downloaded by an older version) the same way. Like posters, only the first
MAX_PREVIEWS cells of a job get them: past that a sweep is browsed by pages and filters, and
a player shows its first frame by itself.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import qa
from .posters import MAX_POSTERS, MAX_SIDE, is_video, poster_name, save_jpeg
from .worker import Unavailable, WorkerProcess

log = logging.getLogger("pipeline.report")

FOLDER = "strips"
FRAMES = 6  # frames per strip, spread evenly over the clip
ACROSS = 3  # frames per line of the strip (a tile is too narrow for six in a line)
FRAME_HEIGHT = 90  # px per frame; the page shows the strip at tile width
MAX_PREVIEWS = MAX_POSTERS  # cells (in plan order) that get a strip and a poster


def strip_name(cell_id: str, index: int) -> str:
    return f"{FOLDER}/{cell_id}{f'-{index}' if index else ''}.jpg"


def wanted(index: int) -> bool:
    """Whether the cell at this place of the plan gets previews (the posters' limit)."""
    return index < MAX_PREVIEWS


def fresh(video: Path, made: Path) -> bool:
    """`made` exists and is not older than the video it was made from."""
    try:
        return made.is_file() and made.stat().st_mtime >= video.stat().st_mtime
    except OSError:
        return False


def make_previews(video: Path, strip: Path, poster: Path | None = None,
                  frames: int = FRAMES, meter: qa.Meter | None = None) -> bool:
    """Write the frame strip of `video` (and its poster, when a path is given) in one pass;
    True when the strip exists. A video that cannot be decoded gets neither (the media check
    says why). Frames are scaled by the decoder. With a `meter` (the triage's,
    pipeline.media.qa) the clip is decoded once, front to back, and every frame fed to it too,
    which then says `complete`: one decode for both. Without one, a clip with several
    keyframes is sought to each frame instead of decoded whole (a 10 s 1080P clip is 241
    frames)."""
    import av

    first = None
    picked: list = []
    try:
        with av.open(str(video)) as container:
            stream = qa.video_stream(container)
            ctx = stream.codec_context
            picture = _Pictures(_scaled(ctx.width, ctx.height))  # the poster
            tile = _Pictures(_tile(ctx.width, ctx.height))  # a frame of the strip
            length = _seconds(container, stream)
            targets = [(k + 0.5) * length / frames for k in range(frames)] if length else []
            if meter is None and _keyframes(container, stream) > 2:
                # a keyframe every few frames, and nobody needs the rest: seek to each one
                for frame in container.decode(stream):
                    first = picture(frame)
                    break
                for at in targets:
                    container.seek(int(at / stream.time_base), stream=stream, backward=True)
                    frame = next((f for f in container.decode(stream)
                                  if f.time is None or f.time >= at), None)
                    if frame is not None:
                        picked.append(tile(frame))
            else:  # decode once, front to back (the triage's, or one keyframe or two)
                wanted = iter(targets)
                due = next(wanted, None)
                measuring = meter is not None
                if meter is not None:
                    meter.opened(container, stream)
                for frame in container.decode(stream):
                    if first is None:
                        first = picture(frame)
                    while due is not None and (frame.time is None or frame.time >= due):
                        picked.append(tile(frame))
                        due = next(wanted, None)
                    if measuring and meter is not None:
                        measuring = meter.feed(frame)
                    if due is None and not measuring:
                        break
                if meter is not None:
                    meter.complete = True
    except Exception as exc:
        log.info("no frame strip for %s: %s", video, exc)
        return False
    if first is not None and poster is not None:
        save_jpeg(first, poster)
    if not picked:
        return False
    return save_jpeg(_sheet(picked), strip)


class _Pictures:
    """Frames to RGB Pillow pictures of one size through one libswscale context: what a frame's
    own `to_image` gives, without the context it builds (and frees) for every frame, a third of
    a small clip's decode. The scaler shrinks a strip's frames straight to their tile (area
    averaging, on this thread): Pillow's resize of a full frame afterwards cost more than the
    rest of the strip."""

    def __init__(self, size: tuple[int, int]):
        from av.video.reformatter import VideoReformatter

        self.size = size
        self._reformatter = VideoReformatter()

    def __call__(self, frame: Any) -> Any:
        from av.video.reformatter import Interpolation
        from PIL import Image

        plane = self._reformatter.reformat(frame, width=self.size[0], height=self.size[1],
                                           format="rgb24", threads=1,
                                           interpolation=Interpolation.AREA).planes[0]
        if plane.line_size < 0:  # a bottom-up frame: PyAV's own copy knows how to flip it
            return frame.to_image(width=self.size[0], height=self.size[1])
        return Image.frombuffer("RGB", (plane.width, plane.height), bytes(plane), "raw", "RGB",
                                plane.line_size, 1)


def _keyframes(container: Any, stream: Any) -> int:
    """How many keyframes the clip has (read from its packets, then back to its start)."""
    keys = sum(1 for packet in container.demux(stream) if packet.is_keyframe)
    container.seek(0, stream=stream)
    return keys


def _scaled(width: int, height: int) -> tuple[int, int]:
    """Frame size for the poster (longest side at most MAX_SIDE), even numbers."""
    scale = min(1.0, MAX_SIDE / max(width, height, 1))
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


def _tile(width: int, height: int) -> tuple[int, int]:
    """Size of one frame in the strip: FRAME_HEIGHT high, the clip's aspect."""
    return max(2, round(width * FRAME_HEIGHT / max(height, 1))), FRAME_HEIGHT


def _seconds(container, stream) -> float:
    """The clip's length: its stream's duration, else the container's, else frames / rate."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / 1_000_000
    if stream.frames and stream.average_rate:
        return float(stream.frames / stream.average_rate)
    return 0.0


def _sheet(picked: list) -> Any:
    """The frames (each FRAME_HEIGHT high, `_tile`) three across and two down."""
    from PIL import Image

    width = picked[0].width
    across = min(ACROSS, len(picked))
    down = -(-len(picked) // across)
    sheet = Image.new("RGB", (width * across, FRAME_HEIGHT * down))
    for i, img in enumerate(picked):
        sheet.paste(img, ((i % across) * width, (i // across) * FRAME_HEIGHT))
    return sheet


def add_previews(folder: Path, cell: dict, index: int) -> None:
    """Note each video file's poster and frame strip in a report cell (the first MAX_POSTERS
    cells of a job), making those missing or older than their video."""
    for i, f in enumerate(cell["files"]):
        f["poster"] = f["strip"] = None
        if not wanted(index) or not is_video(f):
            continue
        video = folder / f["path"]
        poster, strip = poster_name(cell["id"], i), strip_name(cell["id"], i)
        if not (fresh(video, folder / poster) and fresh(video, folder / strip)):
            make_previews(video, folder / strip, folder / poster)
        f["poster"] = poster if (folder / poster).is_file() else None
        f["strip"] = strip if (folder / strip).is_file() else None


IN_THREAD = 8  # a run's first videos are decoded in its own worker thread: a child process
#                costs ~0.2 s to start, more than a few small clips take
MAX_DECODERS = 4  # child processes a run decodes in at most (each holds ~80 MB)


def decoder_count() -> int:
    """How many child processes a run decodes its videos in: a core each but one (the run's
    own event loop keeps one), at least one, at most MAX_DECODERS. A 10 s 1080P clip takes
    about a second of one core; at a thousand live requests of a minute that is 16 clips a
    second, so a studio's many-core machine decodes on its cores, and a 2-core one as before."""
    try:
        cores = len(os.sched_getaffinity(0))  # the cores this process may use (a container's)
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(MAX_DECODERS, cores - 1))


def previews_and_triage(folder: Path, cell_id: str, output: int, video: Path, previews: bool,
                        triage: bool) -> dict[str, Any] | None:
    """One downloaded video's strip and poster (when `previews`) and its triage (when `triage`,
    returned): the work a `Previews` queue item stands for, in whichever process does it."""
    meter = qa.Meter() if triage else None
    if previews:
        make_previews(video, folder / strip_name(cell_id, output),
                      folder / poster_name(cell_id, output), meter=meter)
    if meter is None:
        return None
    return meter.result() if meter.complete else qa.check_clip(video)


class Previews:
    """The previews and the triage (pipeline.media.qa) of the videos a run downloads, made off
    the download path, taken in the order they were downloaded: a decode takes from ~7 ms (the
    simulator's clips) to about a second (a 10 s 1080P clip), and a run's downloads, journal
    and slots must not wait for it. Worker threads take the queue, one at first; past the
    run's first IN_THREAD videos there are `decoders` of them (`decoder_count()`), and each hands
    its decodes to a child process of its own (pipeline.media.worker), so that the decoding
    does not hold the GIL the run's event loop needs and uses the machine's other cores
    (should a process not start or die, its thread decodes the rest itself). Files are written
    the same either way (each JPEG to a temporary name, then renamed). Each clip's triage is
    handed to `on_qa(cell id, path in the job folder, result)` (the run journals it), every
    cell's, also past MAX_PREVIEWS. `close()` lets the workers finish what is queued (the run
    calls it before its end); previews lost to a crash are made by the report, and triage too
    (there not stored)."""

    def __init__(self, folder: Path,
                 on_qa: Callable[[str, str, dict[str, Any]], None] | None = None,
                 decoders: int | None = None):
        self.folder = folder
        self.on_qa = on_qa
        self.in_thread = IN_THREAD  # videos decoded in the thread before a process is used
        self.decoders = decoders or decoder_count()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._workers: list[threading.Thread] = []
        self._queued = 0

    def add(self, cell_id: str, cell_index: int, output: int, video: Path) -> None:
        """Queue the previews and triage of a video just downloaded (cells past MAX_PREVIEWS
        get no previews)."""
        previews = wanted(cell_index)
        if not previews and self.on_qa is None:
            return
        self._queued += 1
        # one worker for a run's first few videos; the others once it has more
        while len(self._workers) < (1 if self._queued <= self.in_thread else self.decoders):
            worker = threading.Thread(target=self._work, args=(len(self._workers),),
                                      name=f"previews-{len(self._workers)}", daemon=True)
            self._workers.append(worker)
            worker.start()
        self._queue.put((cell_id, output, video, previews))

    def _work(self, number: int) -> None:
        """One worker thread: the first takes the run's first IN_THREAD videos itself, then
        each hands its decodes to its own child process."""
        process = WorkerProcess()
        done = 0
        try:
            while (item := self._queue.get()) is not None:
                cell_id, output, video, previews = item
                args = (self.folder, cell_id, output, video, previews, self.on_qa is not None)
                try:
                    result = None
                    if (number or done >= self.in_thread) and not process.broken:
                        try:
                            result = process.call(previews_and_triage, *args)
                        except Unavailable:
                            result = previews_and_triage(*args)
                    else:
                        result = previews_and_triage(*args)
                    done += 1
                    if self.on_qa is not None and result is not None:
                        self.on_qa(cell_id, video.relative_to(self.folder).as_posix(), result)
                except Exception as exc:  # noqa: BLE001 - a preview is never worth a run
                    log.info("no previews or triage for %s: %s", video, exc)
        finally:
            process.close()

    def close(self) -> None:
        """Wait until every queued preview is made, then stop the workers (and processes)."""
        for _ in self._workers:
            self._queue.put(None)
        for worker in self._workers:
            worker.join()
        self._workers = []
