"""Machine-readable renderings of diagnostics: JSON, SARIF 2.1.0 and GitHub Actions annotations.

SARIF is what GitHub code scanning ingests: one run, one rule per code (with its title and help from
``dsl.codes``), results with physical locations relative to the repository root.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from dsl.codes import CODES
from dsl.diagnostics import Diagnostic, Severity

__all__ = ["to_json", "to_sarif", "to_github"]

_SARIF_LEVEL = {Severity.error: "error", Severity.warning: "warning", Severity.note: "note"}


def to_json(diags: Iterable[Diagnostic]) -> str:
    return json.dumps([d.model_dump(mode="json") for d in diags], indent=2, ensure_ascii=False)


def _region(d: Diagnostic) -> dict:
    s = d.span
    return {"startLine": s.line, "startColumn": s.column, "endLine": s.end_line,
            "endColumn": s.end_column}


def to_sarif(diags: Iterable[Diagnostic], tool_version: str) -> str:
    diags = list(diags)
    used = sorted({d.code for d in diags})
    rules = []
    index = {}
    for i, code in enumerate(used):
        c = CODES.get(code)
        index[code] = i
        rules.append({
            "id": code,
            "name": (c.title if c else code).replace(" ", "-").replace("`", ""),
            "shortDescription": {"text": c.title if c else code},
            "fullDescription": {"text": c.help if c else code},
            "helpUri": f"docs/diagnostics.md#{code.lower()}",
            "defaultConfiguration": {"level": _SARIF_LEVEL[c.severity] if c else "error"},
        })
    results = []
    for d in diags:
        message = d.message + (f" (hint: {d.hint})" if d.hint else "")
        r = {
            "ruleId": d.code,
            "ruleIndex": index[d.code],
            "level": _SARIF_LEVEL[d.severity],
            "message": {"text": message},
        }
        if d.span is not None:
            r["locations"] = [{
                "physicalLocation": {
                    "artifactLocation": {"uri": d.span.file.replace("\\", "/"),
                                         "uriBaseId": "%SRCROOT%"},
                    "region": _region(d),
                }
            }]
            if d.related:
                r["relatedLocations"] = [{
                    "id": i,
                    "message": {"text": rel.message},
                    "physicalLocation": {
                        "artifactLocation": {"uri": rel.span.file, "uriBaseId": "%SRCROOT%"},
                        "region": {"startLine": rel.span.line, "startColumn": rel.span.column},
                    },
                } for i, rel in enumerate(d.related)]
        results.append(r)
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "fmap", "version": tool_version,
                                "informationUri": "https://example.invalid/fmap",
                                "rules": rules}},
            "results": results,
        }],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False)


def _gh_escape(s: str, prop: bool = False) -> str:
    s = s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        s = s.replace(":", "%3A").replace(",", "%2C")
    return s


def to_github(diags: Iterable[Diagnostic]) -> str:
    """GitHub Actions workflow commands: `::error file=...,line=...,col=...::message`."""
    lines = []
    for d in diags:
        level = {"error": "error", "warning": "warning", "note": "notice"}[d.severity.value]
        props = [f"title={_gh_escape(d.code, True)}"]
        if d.span is not None:
            props = [f"file={_gh_escape(d.span.file, True)}", f"line={d.span.line}",
                     f"col={d.span.column}", f"endLine={d.span.end_line}",
                     f"endColumn={d.span.end_column}"] + props
        msg = d.message + (f" (hint: {d.hint})" if d.hint else "")
        lines.append(f"::{level} {','.join(props)}::{_gh_escape(msg)}")
    return "\n".join(lines)
