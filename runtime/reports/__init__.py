"""Reports a clinic admin can read: JSON for machines, one self-contained HTML file for people.
See :mod:`runtime.reports.builders` for the report shape and masking rules."""

from runtime.reports.builders import (
    ROW_CAP,
    RecordDiff,
    RecordList,
    Sensitivity,
    build_diff_section,
    build_load_order,
    build_reconciliation_report,
    build_rollback_report,
    build_run_report,
    csv_name,
    reconciliation_report_lists,
    rollback_report_lists,
    run_report_lists,
)
from runtime.reports.render import to_html, to_json, write_list, write_report

__all__ = [
    "ROW_CAP", "RecordDiff", "RecordList", "Sensitivity", "build_diff_section",
    "build_load_order", "build_reconciliation_report", "build_rollback_report",
    "build_run_report", "csv_name", "reconciliation_report_lists", "rollback_report_lists",
    "run_report_lists", "to_html", "to_json", "write_list", "write_report",
]
