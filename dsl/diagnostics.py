"""Diagnostics: the one error model every stage uses, from the parser to the schema checks.

Errors are values with spans until the CLI renders them. Stages collect all of them and fail once,
so a file with five mistakes shows five diagnostics. Codes are stable (see ``dsl.codes``) so CI
annotations, SARIF rules and docs/diagnostics.md can refer to them.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum

from pydantic import BaseModel, ConfigDict, Field

from dsl.span import Span

__all__ = [
    "Severity",
    "Related",
    "Diagnostic",
    "DiagnosticError",
    "has_errors",
    "render_text",
    "sort_diagnostics",
]


class Severity(str, Enum):
    error = "error"
    warning = "warning"
    note = "note"


class Related(BaseModel):
    model_config = ConfigDict(frozen=True)

    span: Span
    message: str


class Diagnostic(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: str
    severity: Severity
    message: str
    span: Span | None = None
    hint: str | None = None
    related: list[Related] = Field(default_factory=list)

    def __str__(self) -> str:
        where = f"{self.span}: " if self.span else ""
        return f"{where}{self.severity.value}[{self.code}]: {self.message}"


class DiagnosticError(Exception):
    """Raised only at boundaries that cannot return diagnostics (e.g. loading an import)."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = diagnostics
        super().__init__("; ".join(str(d) for d in diagnostics[:3]))


def has_errors(diags: Iterable[Diagnostic]) -> bool:
    return any(d.severity is Severity.error for d in diags)


def sort_diagnostics(diags: Iterable[Diagnostic]) -> list[Diagnostic]:
    def key(d: Diagnostic):
        s = d.span
        return (s.file, s.line, s.column, d.code) if s else ("", 0, 0, d.code)

    return sorted(diags, key=key)


def _source_line(sources: dict[str, str], span: Span) -> str | None:
    text = sources.get(span.file)
    if text is None:
        return None
    lines = text.split("\n")
    if 1 <= span.line <= len(lines):
        return lines[span.line - 1].rstrip("\r")
    return None


def render_text(
    diags: Iterable[Diagnostic], sources: dict[str, str], *, color: bool = False
) -> str:
    """Render compiler-style text: location, severity, code, message, the source line, a caret
    under the offending columns, the hint, and related locations."""
    palette = {
        Severity.error: ("\x1b[1;31m", "\x1b[0m"),
        Severity.warning: ("\x1b[1;33m", "\x1b[0m"),
        Severity.note: ("\x1b[1;36m", "\x1b[0m"),
    }
    out: list[str] = []
    for d in diags:
        on, off = palette[d.severity] if color else ("", "")
        where = f"{d.span}: " if d.span else ""
        out.append(f"{where}{on}{d.severity.value}[{d.code}]{off}: {d.message}")
        if d.span is not None:
            line = _source_line(sources, d.span)
            if line is not None:
                gutter = f"{d.span.line:>5} | "
                shown = line.expandtabs(1)
                out.append(f"{gutter}{shown}")
                start = max(d.span.column - 1, 0)
                if d.span.end_line == d.span.line:
                    width = max(d.span.end_column - d.span.column, 1)
                else:
                    width = max(len(shown) - start, 1)
                width = min(width, max(len(shown) - start, 1))
                out.append(" " * (len(gutter) - 2) + "| " + " " * start + on + "^" * width + off)
        if d.hint:
            out.append(f"      = hint: {d.hint}")
        for r in d.related:
            out.append(f"      = note: {r.span}: {r.message}")
    return "\n".join(out)
