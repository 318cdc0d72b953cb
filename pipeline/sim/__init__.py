"""The offline simulator of RunComfy's queue API: same routes, bodies and status words.

    from pipeline.sim import SimConfig, Simulator
    with Simulator(SimConfig(capacity=4, gen_time=(0.2, 0.5), seed=1)) as sim:
        sim.base_url   # "http://127.0.0.1:PORT"
        sim.stats()    # the counters of GET /__sim__/stats

Its videos are placeholders (a slow zoom over the input image), not model output.
"""

from __future__ import annotations

from .app import build_app
from .config import SimConfig
from .server import Simulator

__all__ = ["SimConfig", "Simulator", "build_app"]
