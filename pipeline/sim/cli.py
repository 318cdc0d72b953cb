"""`pipeline sim`: registered by pipeline.cli."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("sim", help="run the offline simulator of the RunComfy queue API")
    p.set_defaults(func=lambda args: 2)
