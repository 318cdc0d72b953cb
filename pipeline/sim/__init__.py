"""The offline simulator of RunComfy's queue API: same routes, bodies and status words.

    from pipeline.sim import SimConfig, Simulator
    with Simulator(SimConfig(capacity=4, gen_time=(0.2, 0.5), seed=1)) as sim:
        sim.base_url   # "http://127.0.0.1:PORT"
        sim.stats()    # the counters of GET /__sim__/stats

Its videos are placeholders (a slow zoom over the input image), not model output. The names
are imported lazily (PEP 562), so `pipeline.sim.config` and `pipeline.sim.cli` load no server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["SimConfig", "Simulator", "build_app"]

if TYPE_CHECKING:
    from .app import build_app
    from .config import SimConfig
    from .server import Simulator


def __getattr__(name: str) -> Any:
    """The public names, imported when first asked for: `pipeline sim --help` and the config
    need no server (Starlette, uvicorn) and no video library (PyAV, Pillow)."""
    if name == "SimConfig":
        from .config import SimConfig

        return SimConfig
    if name == "Simulator":
        from .server import Simulator

        return Simulator
    if name == "build_app":
        from .app import build_app

        return build_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
