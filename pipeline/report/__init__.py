"""Stage 5: the run report, built from a job folder's state files alone (no network).

    paths = write_reports(folder, rows="seed", cols="resolution")
    # -> [folder/report.md, folder/report.html, folder/report.json]
    data = build_report(folder)  # the dict that report.json holds (schemas/report.schema.json)
"""

from .model import FORMAT, build_report, percentile
from .write import NAMES, write_reports

__all__ = ["NAMES", "FORMAT", "build_report", "percentile", "write_reports"]
