"""FM313: an assignment to a read-only target field.

Audit fields (Salesforce `CreatedDate`, Zoho `Created_Time`...) get the dialect's own hint (the
Salesforce "Set Audit Fields upon Record Creation" permission...) and are allowed when the target
says `audit_fields=true`.
"""

from __future__ import annotations

from compiler.checks._scope import contexts
from compiler.program import Program
from compiler.schemas import Schemas
from dsl.codes import diag
from dsl.diagnostics import Diagnostic

__all__ = ["check_readonly"]


def check_readonly(prog: Program, s: Schemas) -> list[Diagnostic]:
    if s.target is None:
        return []
    out: list[Diagnostic] = []
    for om, _ctx, obj in contexts(prog, s):
        if obj is None:
            continue
        for a in om.assignments:
            f = obj.field(a.target.value)
            if f is None:
                continue
            hint = s.dialect.audit_hint(obj.api_name, f.api_name) if s.dialect else None
            if hint is not None or f.audit:
                if s.audit_fields_allowed:
                    continue
                out.append(diag(
                    "FM313", f"`{obj.api_name}.{f.api_name}` is an audit field, read-only by "
                             "default", a.target.span,
                    hint=(hint or "the CRM stamps it itself")
                    + "; if the org allows setting it, say `audit_fields=true` on the `target` "
                      "line"))
            elif f.read_only:
                out.append(diag(
                    "FM313", f"`{obj.api_name}.{f.api_name}` is read-only", a.target.span,
                    hint="the CRM fills it itself; remove the assignment, or keep the value in a "
                         "custom field (`extend ... { ... }`)"))
    return out
