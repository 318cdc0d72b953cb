"""A run's previews worker (pipeline.media.strips.Previews): the same strips, posters and triage
whether a clip is decoded in the run's own thread or in the child process
(pipeline.media.worker), and the thread taking over when that process cannot be had."""

from __future__ import annotations

import shutil
import sys

import pytest
from clips import encode, flicker, page_faults_of, pan

from pipeline.media import qa, strips, worker


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    return [encode(pan(40), folder / "a.mp4"), encode(flicker(), folder / "b.mp4")]


def _made(job, videos, in_thread: int) -> tuple[dict, list]:
    """Run the clips through one Previews: (cell id -> triage, the files it wrote)."""
    (job / "videos").mkdir(parents=True)
    got: dict = {}
    previews = strips.Previews(job, on_qa=lambda cell, path, result: got.update({cell: result}))
    previews.in_thread = in_thread
    for i, video in enumerate(videos):
        shutil.copy(video, job / "videos" / video.name)
        previews.add(f"c{i}", i, 0, job / "videos" / video.name)
    previews.close()
    return got, sorted(p.relative_to(job).as_posix() for p in job.rglob("*.jpg"))


def test_the_process_makes_what_the_thread_makes(videos, tmp_path):
    """Decoded in the child process, each clip gets the strip, poster and triage the thread
    gives it, and no temporary file is left."""
    in_thread, files = _made(tmp_path / "thread", videos, in_thread=100)
    in_process, same_files = _made(tmp_path / "process", videos, in_thread=0)
    assert in_process == in_thread == {f"c{i}": qa.check_clip(v) for i, v in enumerate(videos)}
    assert same_files == files == ["posters/c0.jpg", "posters/c1.jpg",
                                   "strips/c0.jpg", "strips/c1.jpg"]
    assert not list((tmp_path / "process").rglob(".*.tmp"))


def test_the_thread_takes_over_when_no_process_starts(videos, tmp_path, monkeypatch):
    """A process that cannot be started costs nothing but time: the thread decodes instead."""
    def refused(self):
        raise OSError("no processes here")

    monkeypatch.setattr(worker.WorkerProcess, "_start", refused)
    got, files = _made(tmp_path, videos, in_thread=0)
    assert set(got) == {"c0", "c1"} and len(files) == 4


def test_a_dead_worker_is_replaced_by_the_thread(tmp_path):
    """A child that dies mid-call (a crash in the decoder) makes the call Unavailable, and no
    new child is tried."""
    process = worker.WorkerProcess()
    assert process.call(pow, 2, 10) == 1024
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):  # an error is not a death
        process.call(divmod, 1, 0)
    process._proc.kill()
    with pytest.raises(worker.Unavailable):
        process.call(pow, 2, 3)
    assert process.broken
    with pytest.raises(worker.Unavailable):
        process.call(pow, 2, 3)
    process.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc is tuned")
def test_the_worker_keeps_the_memory_a_decode_frees(videos):
    """The child keeps what a clip's decoder frees for the next clip: decoding clips one after
    another faults (almost) no page in, where glibc's own thresholds gave the heap's top back
    after each clip and the next faulted it in again (~550 faults a small clip)."""
    clips = videos * 5
    process = worker.WorkerProcess()
    try:
        faults = process.call(page_faults_of, clips)
    finally:
        process.close()
    assert faults < 20 * len(clips)  # ~280 a clip of these without the tuning


def test_several_decoders_make_what_one_makes(videos, tmp_path):
    """With a decoder process per core (a studio's machine), every clip is made once, the same
    as by one, and each worker's process ends with the run."""
    many = videos * 6
    job = tmp_path / "many"
    (job / "videos").mkdir(parents=True)
    got: dict = {}
    previews = strips.Previews(job, on_qa=lambda cell, path, result: got.update({cell: result}),
                               decoders=3)
    previews.in_thread = 2
    for i, video in enumerate(many):
        copy = job / "videos" / f"{i}.mp4"
        shutil.copy(video, copy)
        previews.add(f"c{i}", i, 0, copy)
    assert len(previews._workers) == 3
    previews.close()
    assert got == {f"c{i}": qa.check_clip(v) for i, v in enumerate(many)}
    assert len(list((job / "strips").glob("*.jpg"))) == len(many)
    assert not previews._workers


@pytest.mark.parametrize(("cores", "decoders"), [(1, 1), (2, 1), (3, 2), (16, 4)])
def test_decoders_leave_the_run_a_core(monkeypatch, cores, decoders):
    """A core each but one (of those the process may use), at least one, at most
    MAX_DECODERS (4)."""
    monkeypatch.setattr(strips.os, "sched_getaffinity", lambda pid: set(range(cores)),
                        raising=False)
    assert strips.decoder_count() == decoders
