"""Reports for the two commands that look before they leap: `fmap profile` and `fmap run --sample`.

Same structure as the run, reconciliation and rollback reports (a header, a summary, typed
sections), so they render through the same self-contained HTML template. Owner emails are staff
addresses and source keys are listed for merge decisions; quarantined values are never shown,
and diffs mask sensitive fields unless asked (``show_sensitive``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from runtime.operations.compare import FieldDiff
from runtime.reports.builders import (
    ROW_CAP,
    RecordDiff,
    RecordList,
    Sensitivity,
    _capped_table,
    _header,
    build_diff_section,
)

__all__ = ["build_profile_report", "build_sample_report", "profile_report_lists"]


def _table(sid: str, title: str, columns: list[str], rows: list[list[Any]], empty: str
           ) -> dict[str, Any]:
    return {"id": sid, "title": title, "type": "table", "columns": columns, "rows": rows,
            "empty": empty}


def profile_report_lists(report: Any) -> list[RecordList]:
    """The profile's tables in full (one row per distinct reason, code, field, candidate, owner,
    file or reference: a free-text column through a value map has a row per value), for the CSVs
    beside the report, which shows the first ``ROW_CAP`` per map."""
    def rows(items: list[Any], cells: Any) -> Any:
        return lambda: (cells(x) for x in items)

    return [
        RecordList("quarantine", ("map", "status", "field", "reason", "records"),
                   rows(report.quarantine_reasons,
                        lambda q: [q["map"], q["status"], q["field"], q["reason"], q["count"]])),
        RecordList("unmapped", ("value map", "field", "code", "records"),
                   rows(report.unmapped_values,
                        lambda u: [u["valuemap"], u["field"], u["value"], u["count"]])),
        RecordList("required", ("map", "field", "records"),
                   rows(report.missing_required, lambda m: [m["map"], m["field"], m["count"]])),
        RecordList("duplicates", ("map", "match", "source keys"),
                   rows(report.duplicates,
                        lambda d: [d["map"], d["match"], ", ".join(d["keys"])])),
        RecordList("owners", ("email", "records"),
                   rows(list((report.owners.get("unmatched") or {}).items()), list),
                   group=None),
        RecordList("attachments", ("map", "source key", "file", "MB", "limit MB"),
                   rows(report.oversize_attachments,
                        lambda a: [a["map"], a["key"], a["file"], a["size_mb"], a["limit_mb"]])),
        RecordList("orphans", ("map", "field", "references", "records", "example keys"),
                   rows(report.orphans,
                        lambda o: [o["map"], o["field"], o["references"], o["count"],
                                   ", ".join(o["example_keys"])])),
    ]


_PROFILE_TABLES = {
    "quarantine": ("Would be quarantined or fail", "Nothing would be quarantined."),
    "unmapped": ("Codes no value map covers", "Every code is covered."),
    "required": ("Required target fields left empty", "Every required field gets a value."),
    "duplicates": ("Duplicate candidates (decide which to merge)", "No duplicate candidates."),
    "owners": ("Owner emails with no CRM user", "Every owner email matches a user."),
    "attachments": ("Files over the size limit", "No file is over the limit."),
    "orphans": ("References to records that will not be loaded", "Every reference resolves."),
}


def build_profile_report(report: Any, *, clock: Callable[[], datetime] | None = None,
                         report_id: str | None = None, cap: int = ROW_CAP) -> dict[str, Any]:
    rep = _header("profile", "Data-quality profile", report.migration, clock, report_id)
    problems = report.problems
    rep["summary"] = {
        "headline": (f"{problems} thing(s) to look at before migrating" if problems
                     else "No data-quality problems found"),
        "lines": [f"{obj}: {n:,} record(s)" for obj, n in sorted(report.source_counts.items())
                  if n >= 0],
        "status": "ok" if not problems else "incomplete",
    }
    maps = [[m, c.get("extracted", 0), c.get("ready", 0), c.get("skipped", 0),
             c.get("quarantined", 0), c.get("failed", 0)] for m, c in report.map_counts.items()]
    rep["sections"] = [
        _table("maps", "Per map", ["map", "records", "ready", "skipped", "quarantined", "failed"],
               maps, "No maps."),
        *(_capped_table("profile", lst, *_PROFILE_TABLES[lst.section], cap)
          for lst in profile_report_lists(report)),
    ]
    return rep


def build_sample_report(selection: Any, counts: dict[str, dict[str, int]], diffs: list[Any],
                        *, plan: Any = None, schema: Any = None, show_sensitive: bool = False,
                        clock: Callable[[], datetime] | None = None,
                        report_id: str | None = None) -> dict[str, Any]:
    sens = Sensitivity.from_plan(plan, schema, show=show_sensitive)
    rep = _header("sample", "Sample migration: field-level diff",
                  getattr(plan, "migration", None), clock, report_id)
    records = [RecordDiff(d.object, f"{d.map} {d.source_key} ({d.destination_id})",
                          [FieldDiff(f["status"], f["kind"], f["field"], f["expected"],
                                     f["actual"]) for f in d.fields]) for d in diffs]
    differing = sum(1 for d in diffs if d.differences)
    rep["summary"] = {
        "headline": (f"{len(diffs)} record(s) read back: {differing} differ from what the "
                     "mapping produced" if differing else
                     f"{len(diffs)} record(s) read back: all hold what the mapping produced"),
        "lines": [f"{len(selection.chosen)} {selection.primary} record(s) chosen, covering "
                  f"{selection.features_covered} of {selection.features_total} routing branches "
                  "and picklist values"],
        "status": "ok" if not differing else "incomplete",
    }
    rows = [[m, c.get("extracted", 0), c.get("created", 0), c.get("updated", 0),
             c.get("skipped", 0), c.get("quarantined", 0), c.get("failed", 0)]
            for m, c in counts.items()]
    rep["sections"] = [
        _table("maps", "Per map", ["map", "records", "created", "updated", "skipped",
                                   "quarantined", "failed"], rows, "Nothing loaded."),
        build_diff_section(records, sensitivity=sens, only_differences=True,
                           title="Fields that differ"),
    ]
    return rep
