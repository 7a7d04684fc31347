"""FM305/FM306: target objects and fields the destination schema does not have.

The destination schema is the dialect's standard objects, the org snapshot and this file's
``create module``/``extend`` declarations (:mod:`compiler.schemas`), so a custom field is known
once it is declared.
"""

from __future__ import annotations

from compiler.checks._scope import map_targets
from compiler.program import Program
from compiler.resolve import suggest
from compiler.schemas import Schemas
from dsl import ir
from dsl.codes import diag
from dsl.diagnostics import Diagnostic

__all__ = ["check_target_names"]


def check_target_names(prog: Program, s: Schemas) -> list[Diagnostic]:
    if s.target is None:
        return []
    out: list[Diagnostic] = []
    m = prog.module
    names = s.target.object_names()
    label = s.dialect.label if s.dialect else s.target.system
    for sd in m.decls(ir.SchemaDecl):
        if sd.action == "extend" and s.target_object(sd.name.value) is None:
            out.append(_no_object(sd.name, names, label, "extend"))
    targets = map_targets(m)
    for om in [*m.maps, *m.merges]:
        obj_name = targets.get(om.target.value) if isinstance(om, ir.MergeMap) else om.target.value
        if obj_name is None:
            continue  # FM225: merge into no map
        obj = s.target_object(obj_name)
        if obj is None:
            if isinstance(om, ir.ObjectMap):
                out.append(_no_object(om.target, names, label, "map"))
            continue
        for a in om.assignments:
            if obj.field(a.target.value) is None:
                fields = [f.api_name for f in obj.fields]
                near = suggest(a.target.value, fields)
                out.append(diag(
                    "FM306", f"`{obj_name}` has no field `{a.target.value}`", a.target.span,
                    hint=f"did you mean `{near}`?" if near
                    else f"declare it: `extend {obj_name} {{ {a.target.value} text(255) }}`",
                ))
    return out


def _no_object(name: ir.Name, names: list[str], label: str, what: str):
    near = suggest(name.value, names)
    return diag(
        "FM305", f"{label} has no object `{name.value}`", name.span,
        hint=f"did you mean `{near}`?" if near
        else (f"declare it with `create module {name.value} {{ ... }}`" if what == "map"
              else "`extend` adds fields to an existing object; use `create module` for a new one"),
    )
