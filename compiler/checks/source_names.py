"""FM303/FM304: source objects and fields the source schema does not have.

A map's source path is checked object by object (``patients.appointments[]``: ``patients``, then
its ``appointments`` array); every path in its expressions resolves against the record's object,
``parent.x`` against the parent object, ``group.x`` (merges) against the child object.
"""

from __future__ import annotations

from compiler.checks._scope import resolve_path, scope_of
from compiler.program import Program
from compiler.resolve import suggest
from compiler.schemas import Schemas
from dsl.codes import diag
from dsl.diagnostics import Diagnostic
from dsl.walk import map_exprs, walk

__all__ = ["check_source_names"]


def check_source_names(prog: Program, s: Schemas) -> list[Diagnostic]:
    if s.source is None:
        return []
    out: list[Diagnostic] = []
    m = prog.module
    for om in [*m.maps, *m.merges]:
        scope = scope_of(s, om)
        if not scope.ok:
            _unknown_object(s, om, scope, out)
            continue
        for _stmt, expr in map_exprs(om):
            for node in walk(expr):
                if node.kind != "path":
                    continue
                r = resolve_path(s, scope, node)
                if r.error is None:
                    continue
                part, obj = r.error
                near = suggest(part.value, obj.field_names())
                out.append(diag(
                    "FM304", f"`{obj.api_name}` has no field `{part.value}`", part.span,
                    hint=f"did you mean `{near}`?" if near
                    else f"fields of `{obj.api_name}`: " + _few(obj.field_names()),
                ))
    return out


def _unknown_object(s: Schemas, om, scope, out: list[Diagnostic]) -> None:
    parts = om.source.parts
    if not scope.chain:
        near = suggest(parts[0].value, [o for o in s.source.object_names() if "." not in o])
        out.append(diag(
            "FM303", f"source `{s.source.system}` has no object `{parts[0].value}`", parts[0].span,
            hint=f"did you mean `{near}`?" if near else "objects: " + _few(
                [o for o in s.source.object_names() if "." not in o]),
        ))
        return
    obj = scope.chain[-1]
    bad = parts[len(scope.chain)]
    arrays = [f.api_name for f in obj.fields if f.type.value == "array" and f.item_object]
    near = suggest(bad.value, arrays)
    f = obj.field(bad.value)
    what = (f"`{obj.api_name}.{bad.value}` is not an array of records" if f is not None
            else f"`{obj.api_name}` has no array `{bad.value}`")
    out.append(diag("FM303", what, bad.span,
                    hint=f"did you mean `{near}`?" if near and near != bad.value
                    else ("nested arrays: " + _few(arrays) if arrays
                          else f"`{obj.api_name}` has no nested arrays; map it directly")))


def _few(names: list[str], n: int = 8) -> str:
    shown = ", ".join(names[:n])
    return shown + (f" (and {len(names) - n} more)" if len(names) > n else "")


