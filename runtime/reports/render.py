"""Render report dicts to JSON and to one self-contained HTML file (jinja2, autoescape on, inline
CSS and SVG, no scripts, no external assets: it opens offline from an email attachment)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2

__all__ = ["to_json", "to_html", "write_report"]

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


def write_report(report: dict[str, Any], out_dir: str | Path, name: str | None = None
                 ) -> tuple[Path, Path]:
    """Write ``<name>.json`` and ``<name>.html`` under ``out_dir``; returns both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = name or report["kind"]
    j, h = out / f"{stem}.json", out / f"{stem}.html"
    j.write_text(to_json(report), "utf-8")
    h.write_text(to_html(report), "utf-8")
    return j, h
