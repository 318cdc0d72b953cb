"""`pipeline sim --defect-rate P`: a drawn fraction of the clips is black, frozen or flickering,
the same under the same seed, listed by request in the stats; good clips differ by request."""

from __future__ import annotations

import argparse
import hashlib
import time

import httpx
import pytest

from pipeline import wire
from pipeline.media import qa
from pipeline.sim import cli as sim_cli
from pipeline.sim.defects import KINDS, Defects

MODEL = "bytedance/dreamina-3-0/image-to-video"
AUTH = {"Authorization": "Bearer test-token"}


def test_draws_are_a_fraction_and_reproducible():
    """About P of the bodies get a defect, each of the three kinds; the same body and seed
    always the same one, another seed other ones; no rate: no variant, no defect."""
    bodies = [{"prompt": "p", "seed": s} for s in range(600)]
    a, b, c = Defects(1, 0.3), Defects(1, 0.3), Defects(2, 0.3)
    got = [a.draw(f"r{i}", body) for i, body in enumerate(bodies)]
    assert got == [b.draw(f"r{i}", body) for i, body in enumerate(bodies)]
    assert got != [c.draw(f"r{i}", body) for i, body in enumerate(bodies)]
    kinds = [k for _, k in got if k]
    assert 0.24 < len(kinds) / len(bodies) < 0.36 and set(kinds) == set(KINDS)
    assert len({v for v, _ in got}) == len(bodies)  # each body its own clip
    assert a.snapshot() == {f"r{i}": k for i, (_, k) in enumerate(got) if k}
    assert Defects(1, 0.0).draw("r", bodies[0]) == (None, None)


def test_cli_option():
    """--defect-rate is a probability like the other fault rates."""
    parser = argparse.ArgumentParser()
    sim_cli.register(parser.add_subparsers())
    assert sim_cli.config_from_args(
        parser.parse_args(["sim", "--defect-rate", "0.3"])).defect_rate == 0.3
    with pytest.raises(SystemExit):
        parser.parse_args(["sim", "--defect-rate", "1.5"])


def served_clips(sim, n: int, duration: int) -> dict[str, bytes]:
    """Submit `n` requests (one image, prompts apart) and download each one's clip."""
    with httpx.Client(base_url=sim.base_url, headers=AUTH, timeout=10) as client:
        ids = [client.post(wire.SUBMIT_PATH.format(model_id=MODEL),
                           json={"prompt": f"take {i}", "image_urls": ["https://x.invalid/a.png"],
                                 "duration": duration}).json()[wire.REQUEST_ID]
               for i in range(n)]
        time.sleep(0.5)
        clips = {}
        for rid in ids:
            for _ in range(50):
                answer = client.get(f"/files/{rid}.mp4")
                if answer.status_code == 200:
                    break
                time.sleep(0.1)
            clips[rid] = answer.content
    return clips


def test_defective_clips_served_and_listed(sim_factory):
    """Every request's clip is its own; the defective ones are what the stats say, and the
    triage finds each."""
    sim = sim_factory(defect_rate=0.5, seed=3, gen_time=0.05)
    clips = served_clips(sim, 8, duration=2)
    ids = list(clips)
    drawn = sim.stats()["defects"]
    assert drawn and set(drawn) <= set(ids)
    assert len({hashlib.sha256(c).hexdigest() for c in clips.values()}) == len(ids)
    assert sim.stats()["videos_encoded"] == len(ids)


@pytest.fixture
def clip_file(tmp_path):
    def write(data: bytes, name: str):
        path = tmp_path / name
        path.write_bytes(data)
        return path
    return write


def test_triage_of_served_clips(sim_factory, clip_file):
    """The triage flags each served defect with its kind, and no good clip."""
    sim = sim_factory(defect_rate=0.5, seed=5, gen_time=0.05)
    clips = served_clips(sim, 10, duration=3)
    results = {rid: qa.check_clip(clip_file(data, f"{rid}.mp4"))["flags"]
               for rid, data in clips.items()}
    drawn = sim.stats()["defects"]
    assert drawn
    for rid, flags in results.items():
        assert flags == ([drawn[rid]] if rid in drawn else []), (rid, flags, drawn.get(rid))
