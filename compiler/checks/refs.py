"""FM314: `ref()` to a map whose target object the lookup field cannot point to.

`Account_Name = ref(Contacts, clinic_id)` in Zoho: `Account_Name` looks up Accounts, so the
reference is to the wrong map. Checked for refs assigned directly (or through `??`/`if`).
"""

from __future__ import annotations

from compiler.checks._scope import contexts, map_targets
from compiler.program import Program
from compiler.schemas import Schemas
from dsl.codes import diag
from dsl.diagnostics import Diagnostic

__all__ = ["check_refs"]


def _refs(e) -> list:
    if e.kind == "ref":
        return [e]
    if e.kind == "if":
        return _refs(e.then) + _refs(e.otherwise)
    if e.kind == "binop" and e.op == "??":
        return _refs(e.left) + _refs(e.right)
    return []


def check_refs(prog: Program, s: Schemas) -> list[Diagnostic]:
    if s.target is None:
        return []
    out: list[Diagnostic] = []
    targets = map_targets(prog.module)
    for om, _ctx, obj in contexts(prog, s):
        if obj is None:
            continue
        for a in om.assignments:
            f = obj.field(a.target.value)
            if f is None or f.type.value != "lookup" or not f.lookup_targets:
                continue
            for ref in _refs(a.value):
                for t in ref.targets:
                    loads = targets.get(t.value)
                    if loads is None or loads in f.lookup_targets:
                        continue  # FM225 covers unknown maps
                    fits = sorted(n for n, o in targets.items() if o in f.lookup_targets)
                    out.append(diag(
                        "FM314", f"`{obj.api_name}.{f.api_name}` looks up "
                                 f"{_list(f.lookup_targets)}, but map `{t.value}` loads "
                                 f"`{loads}`", t.span,
                        hint=(f"did you mean `ref({fits[0]}, ...)`?" if fits
                              else f"load {_list(f.lookup_targets)} with a map first")))
    return out


def _list(names: list[str]) -> str:
    shown = " | ".join(names[:5])
    return shown + (" ..." if len(names) > 5 else "")
