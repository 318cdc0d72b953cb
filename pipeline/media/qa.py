"""Triage of a downloaded clip: black or blank frames, frozen video, flicker, a motion score and
a perceptual hash for near-duplicates, measured deterministically before anyone looks.

`check_clip(path)` decodes the clip once with PyAV (one decoder thread, no deblocking filter;
each frame shrunk by libswscale to a small grey picture, THRESHOLDS.side px on its long side)
and measures what follows on those pictures, in 0..255 grey levels:

- blank share: frames whose grey levels hardly vary (standard deviation below `blank_std`):
  black, white or one flat colour. `black` is flagged when `black_share` of the frames or more
  are blank (a fade from black at the start is not).
- motion: the mean absolute change of a pixel between frames `motion_gap_s` apart, averaged
  over the clip (so it does not depend on the frame rate). `frozen` is flagged when it is below
  `frozen_motion` *and* no frame differs from the first by more than `frozen_span`: a slow camera
  move changes little between neighbours but much over the clip, and is not frozen.
- flicker: consecutive frames measured (every `stride`-th frame of the clip is, and `frames`
  says how many) whose mean brightness jumps by more than `flicker_jump`; flagged
  when at least `flicker_min` jumps make `flicker_share` of the clip's frame pairs or more
  (one hard cut is not flicker).
- hash: a 64-bit difference hash (dHash: each of 8 rows of a 9 x 8 grey thumbnail, one bit per
  pair of neighbours, "is the left one brighter") of `hash_frames` frames spread over the clip,
  as hex. Two clips are near-duplicates (`near_duplicates`) when their hashes differ in at most
  `duplicate_bits` bits in all. Compared across a job's cells when its status or report is made,
  from the stored hashes. Our own dHash on Pillow rather than `imagehash`: the part we need is
  ten lines, and imagehash brings numpy, scipy and PyWavelets (tens of MB) for it.
- a clip that cannot be decoded (or has no frame) is flagged `undecodable`, never passed.

A black clip is only `black` (its motion and hash say nothing); flags come in FLAGS order.
The result is a small JSON-able dict, stored in the job's journal with its cell (pipeline.job)
so that a resume or a report never measures a clip again: see `check_clip`.
"""

from __future__ import annotations

import itertools
import operator
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

VERSION = 1  # of the measures and thresholds below; stored with each result ("v")
MAX_TWINS = 10  # near-duplicates named per clip (a job of one clip many times: not all)

BLACK, FROZEN, FLICKER, DUPLICATE, UNDECODABLE = (
    "black", "frozen", "flicker", "duplicate", "undecodable")
FLAGS = (UNDECODABLE, BLACK, FROZEN, FLICKER, DUPLICATE)  # the order flags are shown in


@dataclass(frozen=True)
class Thresholds:
    """Every value the triage judges with, in one place (grey levels are 0..255)."""

    side: int = 64  # px of the longer side of the grey pictures measured
    blank_std: float = 3.0  # a frame whose grey levels' standard deviation is below: blank
    black_share: float = 0.5  # `black` when this share of the frames or more is blank
    motion_gap_s: float = 0.5  # motion compares frames this far apart (seconds)
    frozen_motion: float = 0.5  # `frozen` when motion is below this (grey levels per pixel) ...
    frozen_span: float = 2.0  # ... and no frame differs from the first by more than this
    flicker_jump: float = 12.0  # a jump: the mean grey of two consecutive frames differs by more
    flicker_share: float = 0.1  # `flicker` when this share of consecutive pairs are jumps ...
    flicker_min: int = 3  # ... and there are at least this many
    hash_frames: int = 3  # frames hashed, at 1/4, 2/4, 3/4 of the clip
    duplicate_bits: int = 6  # near-duplicates: their hashes differ in at most this many bits in
    #                          all (of 192; clips on a flat picture differ in 11 and more)
    max_frames: int = 600  # frames measured at most (a longer clip: the first ones)
    stride: int = 2  # every stride-th frame is measured (at 24 fps: 12 a second, enough to see
    #                  a frame that jumps; half the cost of all)


THRESHOLDS = Thresholds()


def thresholds_json(t: Thresholds = THRESHOLDS) -> dict[str, Any]:
    return {"version": VERSION, **asdict(t)}


def check_clip(path: Path, t: Thresholds = THRESHOLDS) -> dict[str, Any]:
    """The triage of one video file: `{"v", "flags", "motion", "blank", "span", "flicker",
    "frames", "hash"}` (and `"error"` when it is undecodable): the measures above, `span` the
    most any frame differs from the first, `frames` how many were measured. Never raises for a
    bad file. (pipeline.media.strips measures in the decode that makes a clip's frame strip,
    with a `Meter`, and calls this only when that decode did not see the whole clip.)"""
    meter = Meter(t)
    try:
        import av

        with av.open(str(path)) as container:
            stream = video_stream(container)
            meter.opened(container, stream)
            for frame in container.decode(stream):
                if not meter.feed(frame):
                    break
    except Exception as exc:  # noqa: BLE001 - PyAV raises many kinds for a broken file
        return undecodable(f"{type(exc).__name__}: {exc}")
    return meter.result()


def video_stream(container: Any) -> Any:
    """A clip's first video stream, set to decode as its previews and triage need it (the one
    setting of both): no deblocking filter (not seen at these sizes: half the decoding), and
    one thread (this runs in a worker thread or process already, and FFmpeg's default of a
    slice thread per core doubles a small clip's CPU)."""
    stream = container.streams.video[0]
    stream.codec_context.options = {"skip_loop_filter": "all"}
    stream.codec_context.thread_count = 1
    return stream


def undecodable(why: str) -> dict[str, Any]:
    return {"v": VERSION, "flags": [UNDECODABLE], "motion": None, "blank": None, "span": None,
            "flicker": None, "frames": 0, "hash": [], "error": why[:300]}


class Meter:
    """The frames of one clip, fed as they are decoded (`feed`), then measured (`result`).
    One libswscale context shrinks every frame straight to grey (area averaging): a frame's
    own `reformat` builds a context per frame (5x the cost), and copying the full luma plane
    to Pillow costs as much as decoding it at 1080P. The scaler runs on this thread
    (`threads=1`): PyAV's default starts a slice thread per core for every call, ten times
    the CPU of a small frame's scaling itself. Each grey picture is kept as its bytes, and
    measured with the others in one picture (`measure`)."""

    def __init__(self, t: Thresholds = THRESHOLDS, rate: float = 24.0):
        from av.video.reformatter import VideoReformatter

        self.t, self.rate = t, rate
        self.frames: list[bytes] = []  # each measured frame's grey levels, row after row
        self.complete = False  # set by a decode that fed it the whole clip (or max_frames)
        self._reformatter = VideoReformatter()
        self._size: tuple[int, int] | None = None
        self._seen = 0  # frames fed, measured or not
        # a simulator's placeholder (its MP4 comment says so): the simulator gives every request
        # of one image the same clip on purpose, so its clips are no near-duplicates to flag
        self.placeholder = False

    def opened(self, container: Any, stream: Any) -> None:
        """Note what the clip says of itself: its frame rate, and whether it is a simulator's
        placeholder."""
        from .. import wire

        self.rate = float(stream.average_rate or stream.guessed_rate or 24)
        self.placeholder = container.metadata.get("comment") == wire.PLACEHOLDER_COMMENT

    def feed(self, frame: Any) -> bool:
        """Take one decoded frame (a PyAV VideoFrame); False once no more are wanted."""
        from av.video.reformatter import Interpolation

        if len(self.frames) >= self.t.max_frames:
            return False
        self._seen += 1
        if (self._seen - 1) % self.t.stride:
            return True
        if self._size is None:
            scale = self.t.side / max(frame.width, frame.height, 1)
            self._size = (max(9, round(frame.width * scale)),
                          max(8, round(frame.height * scale)))
        width, height = self._size
        plane = self._reformatter.reformat(frame, width=width, height=height, format="gray",
                                           interpolation=Interpolation.AREA,
                                           threads=1).planes[0]
        pixels = bytes(plane)
        if plane.line_size != width:  # rows padded for alignment: keep the pixels only
            pixels = b"".join(pixels[row * plane.line_size:row * plane.line_size + width]
                              for row in range(height))
        self.frames.append(pixels)
        return len(self.frames) < self.t.max_frames

    def result(self) -> dict[str, Any]:
        if not self.frames or self._size is None:
            return undecodable("no video frame")
        found = measure(self.frames, self._size, (self.rate or 24.0) / self.t.stride, self.t)
        if self.placeholder:
            found["hash"] = []  # not compared for near-duplicates (see `placeholder`)
        return found


BLANK_STRIDE = 3  # blank frames are counted on every third frame
_LEVELS = range(256)


def _mean(picture: Any) -> float:
    """Mean of a grey picture's levels, exact, from its histogram (C loops)."""
    counts = picture.histogram()
    return sum(map(operator.mul, counts, _LEVELS)) / (picture.width * picture.height)


def measure(frames: Sequence[bytes], size: tuple[int, int], rate: float,
            t: Thresholds = THRESHOLDS) -> dict[str, Any]:
    """The triage of a clip given as its frames (grey pictures of `size`, each as its bytes,
    one a pixel, row after row), `rate` of them a second. The frames are measured stacked in
    one tall picture, a frame's mean (and mean square) read off a reduction of it by the
    frame's size: a handful of C calls for the clip, not several a frame."""
    from PIL import Image, ImageChops, ImageMath

    width, height = size
    n = len(frames)

    def stack(picked: Sequence[bytes]) -> Any:
        return Image.frombytes("L", (width, height * len(picked)), b"".join(picked))

    def each(picture: Any) -> array:
        """The mean of each frame of a stacked picture ("F": to 1e-5 of the exact mean)."""
        return array("f", picture.reduce((width, height)).tobytes())

    levels = stack(frames).convert("F")
    means = each(levels)
    squares = each(ImageMath.lambda_eval(lambda a: a["x"] * a["x"], x=levels))
    # blank frames counted on every BLANK_STRIDE-th (a share needs no more)
    sampled = range(0, n, BLANK_STRIDE)
    blank = sum(1 for i in sampled
                if max(0.0, squares[i] - means[i] * means[i]) ** 0.5 < t.blank_std) / len(sampled)
    gap = max(1, round(t.motion_gap_s * rate))
    pairs = [(i, i + gap) for i in range(0, n - gap, max(1, gap // 2))]
    if not pairs and n > 1:
        pairs = [(0, n - 1)]
    # every pair has as many pixels: the clip's motion is the mean of all their differences
    motion = _mean(ImageChops.difference(stack([frames[a] for a, _ in pairs]),
                                         stack([frames[b] for _, b in pairs]))) if pairs else 0.0
    step = max(1, n // 16)  # the spread over the clip: 16 frames against the first
    spread = frames[step::step]
    span = max(each(ImageChops.difference(stack([frames[0]] * len(spread)),
                                          stack(spread)).convert("F")), default=0.0)
    jumps = sum(1 for a, b in itertools.pairwise(means) if abs(b - a) > t.flicker_jump)
    flicker = jumps / (n - 1) if n > 1 else 0.0
    flags = []
    if blank >= t.black_share:
        flags.append(BLACK)
    else:
        if motion < t.frozen_motion and span <= t.frozen_span:
            flags.append(FROZEN)
        if jumps >= t.flicker_min and flicker >= t.flicker_share:
            flags.append(FLICKER)
    picks = [frames[min(n - 1, n * (k + 1) // (t.hash_frames + 1))] for k in range(t.hash_frames)]
    return {"v": VERSION, "flags": flags, "motion": round(motion, 3), "blank": round(blank, 3),
            "span": round(span, 3), "flicker": round(flicker, 3), "frames": n,
            "hash": [] if BLACK in flags else [dhash(Image.frombytes("L", size, p))
                                               for p in picks]}


def dhash(picture: Any) -> str:
    """A 64-bit difference hash of a picture, as 16 hex digits."""
    from PIL import Image

    small = picture.convert("L").resize((9, 8), Image.Resampling.BOX)
    px = small.tobytes()  # row by row, 9 a row
    bits = 0
    for row in range(8):
        for col in range(8):
            bits = bits << 1 | (px[row * 9 + col] > px[row * 9 + col + 1])
    return f"{bits:016x}"


def distance(a: Iterable[str], b: Iterable[str]) -> int | None:
    """Bits differing between two clips' hashes in all (None when they cannot be compared)."""
    a, b = list(a), list(b)
    if not a or len(a) != len(b):
        return None
    return sum((int(x, 16) ^ int(y, 16)).bit_count() for x, y in zip(a, b, strict=True))


def near_duplicates(hashes: Mapping[str, list[str]], t: Thresholds = THRESHOLDS,
                    limit: int = MAX_TWINS) -> dict[str, list[str]]:
    """Of clips given as key -> their hashes, each near-duplicate's key -> the keys of (at most
    `limit` of) the clips it nearly duplicates, in the order given. Clips with equal hashes are
    one group; the distinct hashes are bucketed by 16-bit slices: two within `duplicate_bits`
    (< the slices' count) share a whole slice, so only hashes sharing one are compared (not
    every pair of a 100,000-cell job, nor 100,000 copies of one clip against each other)."""
    groups: dict[str, list[str]] = {}  # the joined hashes -> the clips that have them
    for key, h in hashes.items():
        if h:
            groups.setdefault("".join(h), []).append(key)
    buckets: dict[tuple[int, str], list[str]] = {}
    for joined in groups:
        for i in range(0, len(joined), 4):
            buckets.setdefault((i, joined[i:i + 4]), []).append(joined)
    near: dict[str, set[str]] = {}
    seen: set[tuple[str, str]] = set()
    for same_slice in buckets.values():
        for i, a in enumerate(same_slice):
            for b in same_slice[i + 1:]:
                if (a, b) in seen:
                    continue
                seen.add((a, b))
                if len(a) == len(b) and sum((int(x, 16) ^ int(y, 16)).bit_count() for x, y in
                                            zip(_words(a), _words(b), strict=True)) \
                        <= t.duplicate_bits:
                    near.setdefault(a, set()).add(b)
                    near.setdefault(b, set()).add(a)
    out: dict[str, list[str]] = {}
    for joined, keys in groups.items():
        others = [groups[n] for n in sorted(near.get(joined, ()))]
        for key in keys:
            twins = list(itertools.islice((k for k in itertools.chain(keys, *others)
                                           if k != key), limit))
            if twins:
                out[key] = twins
    return out


def _words(joined: str) -> list[str]:
    return [joined[i:i + 16] for i in range(0, len(joined), 16)]


def merged(results: Iterable[dict[str, Any] | None]) -> dict[str, Any] | None:
    """One cell's triage from its videos' (a cell with several outputs): the flags of all, the
    least motion, the first's other measures; None when none was measured."""
    got = [r for r in results if r]
    if not got:
        return None
    if len(got) == 1:
        return dict(got[0])
    flags = {f for r in got for f in r.get("flags", [])}
    motions = [r["motion"] for r in got if r.get("motion") is not None]
    return {**got[0], "flags": [f for f in FLAGS if f in flags],
            "motion": min(motions) if motions else None}


Brief = tuple[tuple[str, ...], str]  # a cell's flags, and its hashes joined in one string
_FLAG_SETS: dict[tuple[str, ...], tuple[str, ...]] = {}  # one tuple per combination of flags


def brief(qa: Mapping[str, Any] | None, before: Brief | None = None) -> Brief | None:
    """What `status` counts of a cell's triage, small enough to keep for 100,000 cells in a
    run: its flags (with `before`'s: another video of the cell) and the first video's hashes,
    joined."""
    if not qa:
        return before
    every = {*(qa.get("flags") or ()), *(before[0] if before else ())}
    flags = tuple(f for f in FLAGS if f in every)
    flags = _FLAG_SETS.setdefault(flags, flags)
    return flags, (before[1] if before and before[1] else "".join(qa.get("hash") or ()))


class Triage:
    """The triage of a job's cells, added one at a time (`add`), then counted (`figures`) with
    near-duplicates found across all of them (`of` gives a cell's qa with them). Holds each
    cell's flags and hashes only: what `status` and the report count."""

    def __init__(self, t: Thresholds = THRESHOLDS) -> None:
        self.t = t
        self.flags: dict[str, tuple[str, ...]] = {}
        self.hashes: dict[str, list[str]] = {}
        self._dups: dict[str, list[str]] | None = None

    def add(self, key: str, qa: Mapping[str, Any] | None) -> None:
        self.add_brief(key, brief(qa))

    def add_brief(self, key: str, cell: Brief | None) -> None:
        if cell is None:
            return
        self.flags[key] = cell[0]
        if cell[1] and BLACK not in cell[0]:
            self.hashes[key] = [cell[1]]
        self._dups = None

    @property
    def duplicates(self) -> dict[str, list[str]]:
        if self._dups is None:
            self._dups = near_duplicates(self.hashes, self.t)
        return self._dups

    def of(self, key: str, qa: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """A cell's qa with its near-duplicates (`duplicate` flag, `duplicates`: their keys)."""
        if qa is None:
            return None
        out = dict(qa)
        twins = self.duplicates.get(key)
        if twins:
            out["flags"] = [f for f in FLAGS if f in {*qa.get("flags", ()), DUPLICATE}]
            out["duplicates"] = twins
        return out

    def figures(self) -> dict[str, Any]:
        """{"measured": clips triaged, "flagged": cells with a flag, "by_flag": flag -> cells
        (most first, then in FLAGS order; only flags some cell has)}."""
        counts = dict.fromkeys(FLAGS, 0)
        flagged = 0
        for key, flags in self.flags.items():
            every = {*flags, *((DUPLICATE,) if key in self.duplicates else ())}
            flagged += bool(every)
            for f in every:
                counts[f] = counts.get(f, 0) + 1
        return {"measured": len(self.flags), "flagged": flagged,
                "by_flag": {f: n for f, n in sorted(counts.items(), key=lambda x: -x[1]) if n}}


def flagged_line(figures: Mapping[str, Any]) -> str:
    """`flagged 3: frozen 2, black 1` (what `status` and report.md say); "" with none."""
    if not figures.get("flagged"):
        return ""
    return f"flagged {figures['flagged']}: " + ", ".join(
        f"{flag} {n}" for flag, n in figures["by_flag"].items())
