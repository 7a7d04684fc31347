"""FM316: a target object that requires an owner, loaded by a map that assigns none, in a file with
no `owners` policy. (`owner()` without a policy is FM224, from resolution.)"""

from __future__ import annotations

from compiler.checks._scope import is_create_path
from compiler.program import Program
from compiler.schemas import Schemas
from dsl import ir
from dsl.codes import diag
from dsl.diagnostics import Diagnostic

__all__ = ["check_owners"]


def check_owners(prog: Program, s: Schemas) -> list[Diagnostic]:
    if s.target is None or s.dialect is None:
        return []
    m = prog.module
    if m.first(ir.OwnersDecl) is not None:
        return []
    out: list[Diagnostic] = []
    for om in m.maps:
        obj = s.target_object(om.target.value)
        if obj is None or not is_create_path(om):
            continue
        owner = s.dialect.owner_field_for(obj.api_name)
        f = obj.field(owner) if owner else None
        if f is None or not f.required or f.read_only:
            continue
        if any(a.target.value == owner for a in om.assignments):
            continue
        out.append(diag(
            "FM316", f"`{obj.api_name}` requires an owner (`{owner}`), which map `{om.name}` "
                     "never assigns", om.target.span,
            hint=f"add `owners by email else $fallback_owner` and `{owner} = owner(...)`"))
    return out
