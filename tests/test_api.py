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


def test_status_from_python_is_what_status_json_prints(tmp_path) -> None:
    """`api.run` runs the demo from Python and returns the job's status after the run, which is
    what `api.status` returns and what `pipeline status --json` prints, key for key."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from pipeline import api

    demo = Path(__file__).resolve().parent.parent / "jobs" / "demo.yaml"
    out = tmp_path / "demo"
    result = api.run(demo, backend="sim", out=out, progress=False)
    assert result.exit_code == 0 and result.figures["counts"]["done"] == 4
    assert [p.name for p in result.reports] == ["report.md", "report.html", "report.json"]
    status = api.status(demo, out=out)
    printed = subprocess.run([sys.executable, "-m", "pipeline", "status", str(demo), "--out",
                              str(out), "--json"], capture_output=True, text=True, check=True)
    assert json.loads(printed.stdout) == status
    assert result.figures == status
    (out / "status.json").unlink()  # the same status replayed from the journal
    assert api.status(demo, out=out) == status


def test_every_refused_submit_shows_one_status_calls_figure(tmp_path, api_env) -> None:
    """A job whose every submit was refused shows the same `status_calls_per_cell` (none: no
    request was ever polled) in `status --json`, report.json and the run's summary."""
    import json

    from runjobs import sweep

    from pipeline import api

    api_env(accept_data_uris=False)  # the local image goes as a data: URI: refused
    manifest = sweep(tmp_path, seeds=3, run="  canary: 0")
    out = tmp_path / "out"
    result = api.run(manifest, out=out, progress=False)
    assert result.exit_code == 1 and result.figures["counts"]["done"] == 0
    status = api.status(manifest, out=out)
    report = json.loads((out / "report.json").read_text())
    assert status["status_calls_per_cell"] is None
    assert report["status_calls"]["per_cell_mean"] is None
    assert result.figures["status_calls_per_cell"] is None
