"""FM308: a map that creates records never assigns a required field of its target object.

Each routed map (`where`/`otherwise`) is its own branch and is checked on its own. Not required
here: the dialect's owner field (FM316 and the `owners` policy handle it), fields the platform fills
(read-only, ids). Exempt: `mode update` maps and merges, which only update records.
"""

from __future__ import annotations

from compiler.checks._scope import is_create_path
from compiler.program import Program
from compiler.schemas import Schemas
from dsl.codes import diag
from dsl.diagnostics import Diagnostic

__all__ = ["check_required"]


def check_required(prog: Program, s: Schemas) -> list[Diagnostic]:
    if s.target is None:
        return []
    out: list[Diagnostic] = []
    for om in prog.module.maps:
        obj = s.target_object(om.target.value)
        if obj is None or not is_create_path(om):
            continue
        owner = s.dialect.owner_field_for(obj.api_name) if s.dialect else None
        assigned = {a.target.value for a in om.assignments}
        missing = [f.api_name for f in obj.fields
                   if f.required and not f.read_only and f.type.value != "id"
                   and f.api_name != owner and f.api_name not in assigned]
        if missing:
            names = ", ".join(f"`{n}`" for n in missing)
            branch = (f" (routing branch `{om.route.mode}`)" if om.route is not None else "")
            out.append(diag(
                "FM308", f"map `{om.name}`{branch} never assigns required field(s) {names} "
                         f"of `{obj.api_name}`", om.target.span,
                hint=f"assign them, e.g. `{missing[0]} = ...`, or add `mode update` if this map "
                     "only updates existing records"))
    return out
