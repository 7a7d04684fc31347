"""FM318/FM319: `where` branches that can overlap or leave records unrouted.

Decided syntactically for the common forms: `field in ["A", "B"]`, `field == "A"` (either side),
combined with `and` (each side constrains; the same field intersects) and `or` (the same field
only: union). Two branches over one source overlap when, on every field both constrain, their
literal sets intersect (FM318). Without `otherwise`, when every branch constrains one field with a
known source enum, the codes no branch lists are never loaded (FM319).
"""

from __future__ import annotations

from collections import defaultdict

from compiler.checks._scope import resolve_path, scope_of
from compiler.program import Program
from compiler.schemas import Schemas
from dsl import ir
from dsl.codes import diag
from dsl.diagnostics import Diagnostic

__all__ = ["check_routing", "constraints"]

_LITS = ("string", "int", "bool", "decimal")


def _field(e) -> str | None:
    if e.kind == "path" and all(isinstance(p, ir.Name) for p in e.parts):
        return e.dotted()
    return None


def constraints(e) -> dict[str, frozenset]:
    """field -> the literal values the condition allows it (fields not constrained: absent)."""
    k = e.kind
    if k == "binop" and e.op == "and":
        a, b = constraints(e.left), constraints(e.right)
        out = dict(a)
        for f, vals in b.items():
            out[f] = out[f] & vals if f in out else vals
        return out
    if k == "binop" and e.op == "or":
        a, b = constraints(e.left), constraints(e.right)
        if len(a) == 1 and a.keys() == b.keys():
            f = next(iter(a))
            return {f: a[f] | b[f]}
        return {}
    if k == "binop" and e.op == "in" and e.right.kind == "list":
        f = _field(e.left)
        if f and all(i.kind in _LITS for i in e.right.items):
            return {f: frozenset(i.value for i in e.right.items)}
    if k == "binop" and e.op == "==":
        for side, other in ((e.left, e.right), (e.right, e.left)):
            f = _field(side)
            if f and other.kind in _LITS:
                return {f: frozenset({other.value})}
    return {}


def check_routing(prog: Program, s: Schemas) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    groups: dict[str, list[ir.ObjectMap]] = defaultdict(list)
    for om in prog.module.maps:
        if om.route is not None:
            groups[om.source.dotted()].append(om)
    for source, maps in groups.items():
        branches = [(om, constraints(om.route.cond)) for om in maps
                    if om.route.mode == "where" and om.route.cond is not None]
        for i, (a, ca) in enumerate(branches):
            for b, cb in branches[i + 1:]:
                shared = ca.keys() & cb.keys()
                if not shared or any(not (ca[f] & cb[f]) for f in shared):
                    continue
                f = sorted(shared)[0]
                both = sorted(map(str, ca[f] & cb[f]))
                out.append(diag(
                    "FM318", f"maps `{a.name}` and `{b.name}` both take `{source}` records with "
                             f"`{f}` " + ", ".join(f'"{v}"' for v in both), b.route.span,
                    hint="make the conditions exclusive, or use `otherwise` for the rest",
                    related=[(a.route.span, f"`{a.name}` routes them here")]))
        if any(om.route.mode == "otherwise" for om in maps) or not branches:
            continue
        _unrouted(s, source, maps, branches, out)
    return out


def _unrouted(s: Schemas, source, maps, branches, out) -> None:
    fields = set.intersection(*(set(c) for _om, c in branches))
    if s.source is None or len(fields) != 1:
        return
    (f,) = fields
    scope = scope_of(s, maps[0])
    if not scope.ok:
        return
    path = next(p for om, _ in branches for p in _paths(om.route.cond) if p.dotted() == f)
    r = resolve_path(s, scope, path)
    if r.field is None or not r.field.picklist_values:
        return
    covered = set().union(*(c[f] for _om, c in branches))
    missing = [c for c in r.field.picklist_values if c not in covered]
    if missing:
        last = branches[-1][0]
        out.append(diag(
            "FM319", f"`{source}` records with `{f}` " + ", ".join(f'"{c}"' for c in missing)
                     + " match no `where` and are not loaded", last.route.span,
            hint="add a map with `otherwise`, or list these codes in a `where`"))


def _paths(e):
    from dsl.walk import walk
    return [n for n in walk(e) if n.kind == "path"]
