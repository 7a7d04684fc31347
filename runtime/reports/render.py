"""Render report dicts to JSON and to one self-contained HTML file (jinja2, autoescape on, inline
CSS and SVG, no scripts, no external assets: it opens offline from an email attachment), and the
complete per-record lists the report only samples to CSV files beside it."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jinja2

from runtime.reports.builders import RecordList, csv_name

__all__ = ["to_json", "to_html", "write_list", "write_report"]

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


_ENV.filters["fmt"] = _fmt


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"


def to_html(report: dict[str, Any]) -> str:
    return _ENV.get_template("report.html.j2").render(report=report)


def write_report(report: dict[str, Any], out_dir: str | Path, name: str | None = None,
                 lists: Iterable[RecordList] = ()) -> tuple[Path, Path]:
    """Write ``<name>.json`` and ``<name>.html`` under ``out_dir``, and each of ``lists`` (the
    builder's ``*_report_lists``) as ``<kind>-<section>.csv`` beside them, the name the report's
    notes give; returns the JSON and HTML paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = name or report["kind"]
    j, h = out / f"{stem}.json", out / f"{stem}.html"
    j.write_text(to_json(report), "utf-8")
    h.write_text(to_html(report), "utf-8")
    for lst in lists:
        write_list(lst, out / csv_name(report["kind"], lst.section))
    return j, h


# a spreadsheet opening the CSV would run text starting with these as a formula (CSV injection):
# source values reach these lists (unmasked with --show-sensitive), so such text is quoted
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def write_list(lst: RecordList, path: Path) -> int:
    """Stream every row of ``lst`` to a CSV at ``path`` (a header, then one row a record); no
    rows: no file (one left by an earlier report of the same run is removed, so the directory
    never shows a stale list). Returns the number of rows."""
    n = 0
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(lst.columns)
        for row in lst.rows():
            w.writerow([_cell(v) for v in row])
            n += 1
    if n:
        tmp.replace(path)
    else:
        tmp.unlink()
        path.unlink(missing_ok=True)
    return n
