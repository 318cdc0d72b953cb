"""pipeline: declarative, resumable batch runs against queue-style generative-media APIs.

The library under the `pipeline` command, one function per stage:

    from pipeline import load_manifest, build_plan, run_job, RunOptions, job_status
    plan = build_plan("jobs/demo.yaml")          # load + expand + validate (ManifestError)
    summary = run_job(plan, RunOptions(backend="sim"))
    print(job_status("jobs/demo.yaml")["counts"])

Names are imported lazily, so `import pipeline` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_manifest": "prepare.manifest", "Manifest": "prepare.manifest",
    "combinations": "prepare.expand", "Cell": "prepare.expand",
    "build_plan": "prepare.plan", "check": "prepare.plan", "validate_files": "prepare.plan",
    "Plan": "prepare.plan",
    "RequestValidator": "prepare.validate",
    "forecast": "job.forecast", "plan_json": "job.forecast",
    "JobFolder": "job.folder", "read_state": "job.journal", "Ledger": "job.money",
    "job_status": "job.status", "resolve_price": "job.price",
    "run_job": "run.session", "RunOptions": "run.session", "RunSummary": "run.session",
    "cancel_job": "run.cancel",
    "write_reports": "report", "build_report": "report",
    "RunComfyClient": "client",
    "Simulator": "sim", "SimConfig": "sim",
    "PipelineError": "errors", "ManifestError": "errors", "StateError": "errors",
    "ClientError": "errors", "BudgetError": "errors", "UsageError": "errors",
}
__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    return __all__
