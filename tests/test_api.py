"""The importable library API: every name in `pipeline.__all__` resolves."""

from __future__ import annotations

import pipeline


def test_every_public_name_resolves() -> None:
    """`pipeline.__all__` lists names that all import, so the API a user reads is real."""
    for name in pipeline.__all__:
        assert getattr(pipeline, name) is not None, name


def test_library_plans_without_the_cli(tmp_path) -> None:
    """A Python user can load, expand and validate a manifest with plain function calls."""
    from pathlib import Path

    plan = pipeline.build_plan(Path(__file__).resolve().parent.parent / "jobs" / "demo.yaml")
    assert len(plan.cells) == 4
    assert pipeline.load_manifest(plan.manifest.path).name == "demo"
