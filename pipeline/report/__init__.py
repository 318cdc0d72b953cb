"""The report stage (prepare → job → run → report): the run report, built from a job
folder's state files alone (no network).

    paths = write_reports(folder, rows="seed", cols="resolution")
    # -> [folder/report.md, folder/report.html, folder/report.json]
    data = build_report(folder)  # the dict that report.json holds (schemas/report.schema.json)
    with scan(folder) as s:      # the same, one cell at a time (any job size)
        s.report, list(s.cells())

`pipeline picks` is pipeline.report.picking; the picks format itself is pipeline.prepare.picks.
"""

from .data import FORMAT, percentile
from .scan import build_report, scan
from .write import NAMES, write_reports

__all__ = ["FORMAT", "NAMES", "build_report", "percentile", "scan", "write_reports"]
