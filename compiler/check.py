"""`fmap check`: the pass pipeline over a loaded program.

Passes are plain functions (sqlglot's optimizer RULES style), each in its own module, each taking
the program (and the schemas, when they are known) and returning diagnostics. Every pass runs and
all diagnostics are reported together; schema passes run only when the file parsed.

``PASSES`` need only the file (names, FM2xx). ``SCHEMA_PASSES`` (:mod:`compiler.checks`, FM3xx and
FM401) take the schemas :func:`compiler.schemas.resolve_schemas` found: the dialect's standard
schema, org snapshots (the ``target`` path, ``schema_dir``), the file's own custom schema, and the
source schema. ``check_path`` runs them when given ``schema_dir`` (as ``fmap check`` does) or
``schemas=True``; ``check_text`` when given ``schemas=True`` or a ``schema_dir``; name-level callers
keep their behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler.checks import SCHEMA_PASSES
from compiler.program import Program, load_program, program_from_text
from compiler.resolve import resolve
from compiler.schemas import Schemas, resolve_schemas
from dsl.codes import diag
from dsl.diagnostics import Diagnostic, Severity, has_errors, sort_diagnostics

__all__ = ["CheckResult", "check_path", "check_text", "PASSES", "SCHEMA_PASSES"]

PASSES = (resolve,)


@dataclass
class CheckResult:
    program: Program
    diagnostics: list[Diagnostic] = field(default_factory=list)
    schemas: Schemas | None = None  # what the schema checks ran against (None: not run)

    @property
    def errors(self) -> int:
        return sum(1 for d in self.diagnostics if d.severity is Severity.error)

    @property
    def warnings(self) -> int:
        return sum(1 for d in self.diagnostics if d.severity is Severity.warning)

    @property
    def ok(self) -> bool:
        return not has_errors(self.diagnostics)


def _run(prog: Program, schema_dir: Path | None = None, *, schemas: bool = False,
         base_dir: Path | None = None) -> CheckResult:
    diags = list(prog.diagnostics)
    resolved: Schemas | None = None
    if prog.syntax_ok:
        try:
            for p in PASSES:
                diags.extend(p(prog))
            if schemas:
                resolved, found = resolve_schemas(prog, schema_dir, base_dir)
                diags.extend(found)
                for sp in SCHEMA_PASSES:
                    diags.extend(sp(prog, resolved))
        except RecursionError:
            diags.append(diag("FM005", "an expression is nested too deeply to check", None,
                              hint="split it into several fields"))
    return CheckResult(prog, sort_diagnostics(_dedupe(diags)), resolved)


def _dedupe(diags: list[Diagnostic]) -> list[Diagnostic]:
    seen = set()
    out = []
    for d in diags:
        key = (d.code, d.message, d.span)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


_UNSET: Any = object()


def check_path(path: str | Path, display: str | None = None,
               schema_dir: Path | None = _UNSET, *, schemas: bool | None = None) -> CheckResult:
    """Check a file: names, then (``schemas``) the source and target schemas. Schema paths in the
    file are relative to it; ``schema_dir`` holds org snapshots (``fmap check --schema DIR``).

    ``schemas=None`` (the default) runs the schema checks when ``schema_dir`` is passed at all,
    even as None: that is how ``fmap check`` calls this. Callers that pass only the path (``fmap
    plan`` today) get the name-level checks they were written against; pass ``schemas=True`` to
    get everything.
    """
    given = schema_dir is not _UNSET
    run_schemas = given if schemas is None else schemas
    return _run(load_program(path, display), schema_dir if given else None, schemas=run_schemas)


def check_text(text: str, name: str = "<input>", base_dir: Path | None = None, *,
               schemas: bool = False, schema_dir: Path | None = None) -> CheckResult:
    """Check text; schema paths are relative to ``base_dir``. Schema checks run with
    ``schemas=True`` or a ``schema_dir``."""
    return _run(program_from_text(text, name, base_dir), schema_dir,
                schemas=schemas or schema_dir is not None, base_dir=base_dir)
