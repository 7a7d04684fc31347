"""`fmap check`: the pass pipeline over a loaded program.

Passes are plain functions (sqlglot's optimizer RULES style), each in its own module, each taking
the program (and the schemas, when they are known) and returning diagnostics. Every pass runs and
all diagnostics are reported together; schema passes run only when the file parsed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from compiler.program import Program, load_program, program_from_text
from compiler.resolve import resolve
from dsl.codes import diag
from dsl.diagnostics import Diagnostic, Severity, has_errors, sort_diagnostics

__all__ = ["CheckResult", "check_path", "check_text", "PASSES"]

PASSES = (resolve,)


@dataclass
class CheckResult:
    program: Program
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(1 for d in self.diagnostics if d.severity is Severity.error)

    @property
    def warnings(self) -> int:
        return sum(1 for d in self.diagnostics if d.severity is Severity.warning)

    @property
    def ok(self) -> bool:
        return not has_errors(self.diagnostics)


def _run(prog: Program, schema_dir: Path | None = None) -> CheckResult:
    diags = list(prog.diagnostics)
    if prog.syntax_ok:
        try:
            for p in PASSES:
                diags.extend(p(prog))
        except RecursionError:
            diags.append(diag("FM005", "an expression is nested too deeply to check", None,
                              hint="split it into several fields"))
    return CheckResult(prog, sort_diagnostics(_dedupe(diags)))


def _dedupe(diags: list[Diagnostic]) -> list[Diagnostic]:
    seen = set()
    out = []
    for d in diags:
        key = (d.code, d.message, d.span)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def check_path(path: str | Path, display: str | None = None,
               schema_dir: Path | None = None) -> CheckResult:
    return _run(load_program(path, display), schema_dir)


def check_text(text: str, name: str = "<input>", base_dir: Path | None = None) -> CheckResult:
    return _run(program_from_text(text, name, base_dir))
