"""The clip triage (pipeline.media.qa) on synthetic clips: each defect found, a slow camera move
not taken for a frozen clip, a broken file flagged, near-duplicates found from the hashes."""

from __future__ import annotations

import pytest
from clips import FRAMES, black, encode, flicker, pan, still, textured

from pipeline.media import qa


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    made = {"black": black(), "frozen": still(), "flicker": flicker(), "pan": pan(40),
            "slow_pan": pan(12), "other_pan": pan(40, seed=2)}
    out = {name: encode(frames, folder / f"{name}.mp4") for name, frames in made.items()}
    (folder / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 300)
    out["corrupt"] = folder / "corrupt.mp4"
    out["truncated"] = folder / "truncated.mp4"
    out["truncated"].write_bytes(out["pan"].read_bytes()[:600])
    return out


@pytest.mark.parametrize(("clip", "flags"), [
    ("black", ["black"]),
    ("frozen", ["frozen"]),
    ("flicker", ["flicker"]),
    ("pan", []),
    ("slow_pan", []),  # 12 px of 640 over 5 s: slow, and still not frozen
    ("corrupt", ["undecodable"]),
])
def test_flags(clips, clip, flags):
    """Each synthetic defect gets its flag and nothing else; good clips get none."""
    assert qa.check_clip(clips[clip])["flags"] == flags


def test_measures(clips):
    """Motion orders clips by how much they move; a good clip is measured whole and hashed."""
    pan, slow, frozen = (qa.check_clip(clips[c]) for c in ("pan", "slow_pan", "frozen"))
    assert frozen["motion"] < qa.THRESHOLDS.frozen_motion < slow["motion"] < pan["motion"]
    assert slow["span"] > qa.THRESHOLDS.frozen_span
    assert pan["frames"] == -(-FRAMES // qa.THRESHOLDS.stride)  # every stride-th frame
    assert pan["blank"] == 0 and pan["flicker"] == 0
    assert len(pan["hash"]) == qa.THRESHOLDS.hash_frames
    assert all(len(h) == 16 and int(h, 16) >= 0 for h in pan["hash"])
    assert qa.check_clip(clips["black"])["blank"] == 1.0


def test_undecodable_never_passes(clips, tmp_path):
    """A broken, cut-short, empty or missing file is flagged undecodable, with why."""
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    for path in (clips["corrupt"], empty, tmp_path / "missing.mp4"):
        result = qa.check_clip(path)
        assert result["flags"] == ["undecodable"] and result["error"], path
        assert result["motion"] is None
    cut = qa.check_clip(clips["truncated"])
    assert cut["flags"] and cut["flags"][0] in ("undecodable", "frozen"), cut


def test_deterministic(clips):
    """The same file gives the same result, to the digit."""
    assert qa.check_clip(clips["flicker"]) == qa.check_clip(clips["flicker"])


def test_near_duplicates(clips):
    """A clip and its re-encode are near-duplicates; different clips are not."""
    a, b = qa.check_clip(clips["pan"]), qa.check_clip(clips["other_pan"])
    slow = qa.check_clip(clips["slow_pan"])
    found = qa.near_duplicates({"a": a["hash"], "a2": list(a["hash"]), "b": b["hash"],
                                "s": slow["hash"], "none": []})
    assert found == {"a": ["a2"], "a2": ["a"]}
    assert qa.distance(a["hash"], b["hash"]) > qa.THRESHOLDS.duplicate_bits


def test_dhash_of_a_picture():
    """dHash: 64 bits; a picture and a slightly brightened copy hash alike, its mirror not."""
    from PIL import Image, ImageOps

    picture = textured().resize((160, 90))
    brighter = Image.eval(picture, lambda v: min(255, v + 10))
    assert qa.distance([qa.dhash(picture)], [qa.dhash(brighter)]) <= 4
    assert qa.distance([qa.dhash(picture)], [qa.dhash(ImageOps.mirror(picture))]) > 16


def test_merged():
    """A cell of several videos: every video's flags, the least motion."""
    one = {"flags": ["frozen"], "motion": 0.1, "hash": ["0" * 16]}
    two = {"flags": ["black"], "motion": 0.0, "hash": []}
    assert qa.merged([None]) is None
    assert qa.merged([one]) == one
    assert qa.merged([one, two])["flags"] == ["black", "frozen"]
    assert qa.merged([one, two])["motion"] == 0.0


def test_triage_counts_cells_and_finds_duplicates():
    """The job's triage: cells flagged by flag (a cell once however many flags), near-
    duplicates found across cells from their hashes (black clips' hashes are not compared),
    and the line `status` and report.md print."""
    same = ["0123456789abcdef"] * 3
    triage = qa.Triage()
    triage.add("a", {"flags": [], "hash": same})
    triage.add("b", {"flags": ["frozen"], "hash": same})
    triage.add("c", {"flags": ["black"], "hash": same})
    triage.add("d", {"flags": ["black", "frozen"], "hash": []})
    triage.add("e", {"flags": [], "hash": ["fedcba9876543210"] * 3})
    triage.add("g", {"flags": ["undecodable"], "hash": []})
    triage.add("f", None)  # not measured
    assert triage.figures() == {"measured": 6, "flagged": 5, "by_flag": {
        "black": 2, "frozen": 2, "duplicate": 2, "undecodable": 1}}  # most first
    assert triage.of("a", {"flags": [], "hash": same})["duplicates"] == ["b"]
    assert triage.of("b", {"flags": ["frozen"]})["flags"] == ["frozen", "duplicate"]
    assert triage.of("e", {"flags": []}) == {"flags": []}
    assert qa.flagged_line(triage.figures()) == \
        "flagged 5: black 2, frozen 2, duplicate 2, undecodable 1"
    assert qa.flagged_line(qa.Triage().figures()) == ""


@pytest.mark.parametrize("clip", ["pan", "flicker", "black"])
def test_measured_in_the_strips_decode(clips, clip, tmp_path):
    """The decode that makes a clip's strip and poster measures it too, to the same result as
    a decode of its own."""
    from pipeline.media.strips import make_previews

    meter = qa.Meter()
    assert make_previews(clips[clip], tmp_path / "s.jpg", tmp_path / "p.jpg", meter=meter)
    assert meter.complete and meter.result() == qa.check_clip(clips[clip])


def test_a_broken_clip_is_not_measured_by_the_strip(clips, tmp_path):
    """A decode that fails leaves the meter incomplete (the worker then asks check_clip)."""
    from pipeline.media.strips import make_previews

    meter = qa.Meter()
    assert not make_previews(clips["corrupt"], tmp_path / "s.jpg", meter=meter)
    assert not meter.complete


def test_many_copies_of_one_clip():
    """10,000 copies of one clip (a model ignoring its seed) are found at once, each naming
    MAX_TWINS of the others."""
    import time

    started = time.process_time()
    found = qa.near_duplicates({f"c{i}": ["0123456789abcdef"] * 3 for i in range(10_000)})
    assert time.process_time() - started < 2
    assert len(found) == 10_000 and found["c0"] == [f"c{i}" for i in range(1, 11)]
    assert found["c5"][:5] == ["c0", "c1", "c2", "c3", "c4"]


def _oracle(frames: list[bytes], size: tuple[int, int], rate: float) -> dict:
    """The measures frame by frame, straight from their definitions (qa's docstring), with
    exact means from each picture's histogram: what the stacked measure must equal."""
    from PIL import Image, ImageChops

    t = qa.THRESHOLDS
    pictures = [Image.frombytes("L", size, f) for f in frames]

    def stats(p):
        h, n = p.histogram(), p.width * p.height
        mean = sum(i * c for i, c in enumerate(h)) / n
        return mean, max(0.0, sum(i * i * c for i, c in enumerate(h)) / n - mean * mean) ** .5

    means = [stats(p)[0] for p in pictures]
    sampled = pictures[::qa.BLANK_STRIDE]
    blank = sum(stats(p)[1] < t.blank_std for p in sampled) / len(sampled)
    gap = max(1, round(t.motion_gap_s * rate))
    pairs = [(i, i + gap) for i in range(0, len(frames) - gap, max(1, gap // 2))]
    motion = sum(stats(ImageChops.difference(pictures[a], pictures[b]))[0]
                 for a, b in pairs) / len(pairs)
    step = max(1, len(frames) // 16)
    span = max(stats(ImageChops.difference(pictures[0], p))[0] for p in pictures[step::step])
    jumps = sum(abs(b - a) > t.flicker_jump for a, b in zip(means, means[1:], strict=False))
    return {"motion": round(motion, 3), "blank": round(blank, 3), "span": round(span, 3),
            "flicker": round(jumps / (len(frames) - 1), 3)}


@pytest.mark.parametrize("clip", ["pan", "flicker", "black", "slow_pan"])
def test_stacked_measures_equal_a_frame_by_frame_oracle(clips, clip):
    """The triage measures a clip's frames stacked in one picture; each measure equals the
    one taken frame by frame (pairs, spread and samples picked as the docstring says)."""
    import av

    meter = qa.Meter()
    with av.open(str(clips[clip])) as container:
        meter.opened(container, container.streams.video[0])
        for frame in container.decode(video=0):
            meter.feed(frame)
    got = meter.result()
    want = _oracle(meter.frames, meter._size, meter.rate / qa.THRESHOLDS.stride)
    assert {k: got[k] for k in want} == want
