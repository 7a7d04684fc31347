"""FM310/FM311: a value map applied to a source field with a known enum (picklist values).

FM310 (warning): codes of the enum that no entry lists (they fall to the `_ ->` policy), listed.
FM311 (warning): keys that are not codes of the enum (a typo or a stale code). The value map must be
applied to the field itself (or after `trim`), so its keys are the field's codes.
"""

from __future__ import annotations

from compiler.checks._scope import resolve_path, scope_of, strip_to_path
from compiler.program import Program
from compiler.resolve import suggest
from compiler.schemas import Schemas
from dsl import ir
from dsl.codes import diag
from dsl.diagnostics import Diagnostic
from dsl.walk import map_exprs, walk

__all__ = ["check_valuemaps"]


def check_valuemaps(prog: Program, s: Schemas) -> list[Diagnostic]:
    if s.source is None:
        return []
    out: list[Diagnostic] = []
    vms = prog.valuemaps()
    for om in [*prog.module.maps, *prog.module.merges]:
        scope = scope_of(s, om)
        if not scope.ok:
            continue
        for _stmt, expr in map_exprs(om):
            for node in walk(expr):
                if node.kind != "pipe" or node.func.value not in vms:
                    continue
                path = strip_to_path(node.value)
                if path is None:
                    continue
                r = resolve_path(s, scope, path)
                if r.field is None or r.is_list or not r.field.picklist_values:
                    continue
                _check(vms[node.func.value], node, path, r.field, out)
    return out


def _check(vm: ir.ValueMapDecl, use: ir.Pipe, path: ir.PathExpr, field, out) -> None:
    enum = list(field.picklist_values)
    keys: list[ir.Node] = [k for e in vm.entries for k in e.keys if k.kind == "string"]
    listed = {k.value for k in keys}
    missing = [c for c in enum if c not in listed]
    name = vm.name.value
    if missing:
        policy = _policy(vm.unmapped)
        out.append(diag(
            "FM310", f"value map `{name}` does not list {len(missing)} code(s) of "
                     f"`{path.dotted()}`: " + ", ".join(f'"{c}"' for c in missing),
            use.func.span,
            hint=f"add entries for them (they now fall to `_ -> {policy}`)"))
    for k in keys:
        if k.value not in enum:
            near = suggest(k.value, enum)
            out.append(diag(
                "FM311", f"\"{k.value}\" is not a code of `{path.dotted()}`", k.span,
                hint=(f"did you mean \"{near}\"? " if near else "")
                + "codes: " + ", ".join(f'"{c}"' for c in enum[:12]),
                related=[(use.func.span, f"`{name}` applied to `{path.dotted()}` here")]))


def _policy(u: ir.UnmappedPolicy | None) -> str:
    if u is None:
        return "error"
    if u.policy != "default" or u.default is None:
        return u.policy
    d = u.default
    if d.kind == "string":
        return f'"{d.value}"'
    if d.kind in ("null", "missing"):
        return d.kind
    return str(getattr(d, "value", "...")).lower() if d.kind == "bool" else \
        str(getattr(d, "value", "..."))
