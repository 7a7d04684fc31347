"""FM315: custom module and field names that break the dialect's naming rules.

Each `create module/object` name and each declared field (of `create` and `extend`) is checked
with the dialect's `check_custom_name`; the hint gives the name the CRM would accept.
"""

from __future__ import annotations

from compiler.program import Program
from compiler.schemas import Schemas
from dsl import ir
from dsl.codes import diag
from dsl.diagnostics import Diagnostic
from runtime.dialects import UnsupportedByDialect

__all__ = ["check_naming"]


def check_naming(prog: Program, s: Schemas) -> list[Diagnostic]:
    d = s.dialect
    if d is None:
        return []
    out: list[Diagnostic] = []
    for sd in prog.module.decls(ir.SchemaDecl):
        names = [] if sd.action == "extend" else [("module", sd.name)]
        names += [("field", f.name) for f in sd.fields]
        for kind, name in names:
            try:
                problems = d.check_custom_name(kind, name.value)
            except UnsupportedByDialect as exc:
                problems = [str(exc)]
            if not problems:
                continue
            try:
                better = d.custom_api_name(name.value, kind)
            except (UnsupportedByDialect, NotImplementedError, ValueError):
                better = None
            ok = better and better != name.value and not d.check_custom_name(kind, better)
            out.append(diag(
                "FM315", problems[0], name.span,
                hint=(f"write `{better}`" if ok else f"see the {d.label} naming rules")
                + (f" (also: {'; '.join(problems[1:])})" if len(problems) > 1 else "")))
    return out
