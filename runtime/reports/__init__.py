"""Reports a clinic admin can read: JSON for machines, one self-contained HTML file for people.
See :mod:`runtime.reports.builders` for the report shape and masking rules."""

from runtime.reports.builders import (
    RecordDiff,
    Sensitivity,
    build_diff_section,
    build_load_order,
    build_reconciliation_report,
    build_rollback_report,
    build_run_report,
)
from runtime.reports.render import to_html, to_json, write_report

__all__ = [
    "RecordDiff", "Sensitivity", "build_diff_section", "build_load_order",
    "build_reconciliation_report", "build_rollback_report", "build_run_report", "to_html",
    "to_json", "write_report",
]
