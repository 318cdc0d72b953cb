"""pipeline: declarative, resumable batch runs against queue-style generative-media APIs.

The library under the `pipeline` command is pipeline.api, one function per command:

    from pipeline import api
    result = api.run("jobs/demo.yaml", backend="sim")   # plan, run, write the reports
    print(api.status("jobs/demo.yaml")["counts"])       # what `status --json` prints

The stages' own entry points are re-exported here too (`build_plan`, `forecast`, ...).

Names are imported lazily, so `import pipeline` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_manifest": "prepare.manifest", "Manifest": "prepare.manifest",
    "combinations": "prepare.combinations", "Cell": "prepare.expand",
    "build_plan": "prepare.plan", "check": "prepare.plan", "validate_files": "prepare.plan",
    "Plan": "prepare.plan",
    "RequestValidator": "prepare.validate",
    "forecast": "job.forecast", "plan_json": "job.plan_json",
    "JobFolder": "job.folder", "read_state": "job.journal", "Ledger": "job.money",
    "resolve_price": "job.price", "open_job": "job.opening", "Job": "job.opening",
    "job_status": "api", "run_job": "api", "RunOptions": "api", "RunSummary": "api",
    "cancel_job": "api",
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
