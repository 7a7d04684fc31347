"""What the schema checks share: which source object a map reads, what a path names, and the
inferred type, literal outputs and maximum length of an expression.

Types are strings: a :class:`FieldType` value (``"text"``, ``"date"``...), or ``"list"``, ``"ref"``
(a ``ref()``), ``"owner"``, ``"null"`` and ``"any"`` (unknown: no check applies).
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.schemas import Schemas
from dsl import ir
from dsl.builtins import BUILTINS
from runtime.schema.model import FieldSchema, FieldType, ObjectSchema

__all__ = ["MapScope", "scope_of", "resolve_path", "infer", "category", "literal_outputs",
           "max_length", "map_targets", "is_create_path", "strip_to_path", "TEXT_LIKE", "ExprContext",
           "contexts"]

TEXT_LIKE = frozenset({"text", "textarea", "email", "phone", "url", "picklist", "id", "lookup"})
_NUMBER = frozenset({"integer", "decimal", "currency", "percent"})
# Functions that keep the value's text, at most as long as it was.
_SAME_LENGTH = frozenset({"trim", "lower", "upper", "title", "collapse_spaces", "html_to_text",
                          "digits", "nullif"})


@dataclass
class MapScope:
    """The source objects a map's paths resolve against: ``chain[-1]`` is the record (the array
    element for ``map x.items[]``), ``chain[-2]`` its ``parent``. ``ok`` is False when some object
    of the source path is unknown (FM303); paths are then not checked."""

    chain: list[ObjectSchema]
    in_merge: bool
    ok: bool


def scope_of(s: Schemas, om: ir.ObjectMap | ir.MergeMap) -> MapScope | None:
    """None when there is no source schema."""
    if s.source is None:
        return None
    in_merge = isinstance(om, ir.MergeMap)
    obj = s.source.object(om.source.root)
    if obj is None:
        return MapScope([], in_merge, False)
    chain = [obj]
    for part in om.source.parts[1:]:
        f = obj.field(part.value)
        child = s.source.object(f.item_object) if f is not None and f.item_object else None
        if child is None:
            return MapScope(chain, in_merge, False)
        chain.append(child)
        obj = child
    return MapScope(chain, in_merge, True)


@dataclass
class PathResult:
    field: FieldSchema | None = None  # the field named, when resolved
    is_list: bool = False  # through `group` or an array without an index
    error: tuple[ir.Name, ObjectSchema] | None = None  # the part not found, and where it was looked


def resolve_path(s: Schemas, scope: MapScope, p: ir.PathExpr) -> PathResult:
    parts = list(p.parts)
    obj: ObjectSchema | None = scope.chain[-1]
    is_list = False
    i = 0
    while i < len(parts) and isinstance(parts[i], ir.Name) and not parts[i].quoted \
            and parts[i].value == "parent":
        i += 1
    if i:
        if i >= len(scope.chain):
            return PathResult()  # FM205 already
        obj = scope.chain[-1 - i]
    elif scope.in_merge and isinstance(parts[0], ir.Name) and not parts[0].quoted \
            and parts[0].value == "group":
        i, is_list = 1, True
    if i >= len(parts):
        return PathResult(is_list=is_list)
    fld: FieldSchema | None = None
    while i < len(parts):
        part = parts[i]
        if isinstance(part, int):
            is_list = False if fld is not None and fld.type is FieldType.array else is_list
            i += 1
            continue
        if obj is None:
            return PathResult()  # inside an object/scalar the schema does not describe
        fld = obj.field(part.value)
        if fld is None:
            return PathResult(error=(part, obj))
        if fld.type is FieldType.array:
            obj = s.source.object(fld.item_object) if fld.item_object and s.source else None
            nxt = parts[i + 1] if i + 1 < len(parts) else None
            if nxt is not None and not isinstance(nxt, int):
                is_list = True
        else:
            obj = None
        i += 1
    return PathResult(field=fld, is_list=is_list)


# ------------------------------------------------------------------------------------- types


def category(t: str) -> str:
    """Coarse families the compatibility rules are written in."""
    if t in TEXT_LIKE or t in ("multipicklist",):
        return "text" if t != "multipicklist" else "list"
    if t in _NUMBER:
        return "number"
    if t == "boolean":
        return "bool"
    if t in ("date", "datetime", "list", "ref", "owner", "null", "file"):
        return t
    if t == "array":
        return "list"
    return "any"


def infer(e, ctx) -> str:
    """The type of expression ``e``; ``ctx`` is a :class:`ExprContext`."""
    k = e.kind
    if k == "string":
        return "text"
    if k == "int":
        return "integer"
    if k == "decimal":
        return "decimal"
    if k == "bool":
        return "boolean"
    if k in ("null", "missing"):
        return "null"
    if k in ("date", "datetime"):
        return k
    if k == "list":
        return "list"
    if k == "path":
        if ctx.scope is None or not ctx.scope.ok:
            return "list" if ctx.in_merge and e.head == "group" and len(e.parts) > 1 else "any"
        r = resolve_path(ctx.schemas, ctx.scope, e)
        if r.is_list:
            return "list"
        if r.field is None:
            return "any"
        t = r.field.type.value
        return "list" if t == "array" else ("any" if t in ("unknown", "object") else t)
    if k == "param":
        p = ctx.params.get(e.name)
        return infer(p.default, ctx) if p is not None else "any"
    if k == "ref":
        return "ref"
    if k == "owner":
        return "owner"
    if k == "if":
        return _common(infer(e.then, ctx), infer(e.otherwise, ctx))
    if k == "unary":
        return "boolean" if e.op == "not" else infer(e.operand, ctx)
    if k == "binop":
        if e.op == "++":
            return "text"
        if e.op in ("==", "!=", "<", "<=", ">", ">=", "and", "or", "in", "not in"):
            return "boolean"
        if e.op == "??":
            return _common(infer(e.left, ctx), infer(e.right, ctx))
        lt, rt = infer(e.left, ctx), infer(e.right, ctx)
        if category(lt) == "number" and category(rt) == "number":
            return "integer" if lt == rt == "integer" and e.op != "/" else "decimal"
        return "any"
    if k in ("call", "pipe"):
        name = e.func.value
        vm = ctx.valuemaps.get(name)
        if vm is not None:
            outs = [infer(x.value, ctx) for x in vm.entries]
            if vm.unmapped is not None and vm.unmapped.default is not None:
                outs.append(infer(vm.unmapped.default, ctx))
            elif vm.unmapped is not None and vm.unmapped.policy == "passthrough":
                outs.append(infer(e.value, ctx) if k == "pipe" else "any")
            t = "null"
            for o in outs:
                t = _common(t, o)
            return t
        b = BUILTINS.get(name)
        if b is None:
            return "any"
        if b.returns == "same":
            args = ([e.value] if k == "pipe" else []) + list(e.args)
            t = "null"
            for a in args[: 1 if name in ("nullif", "min", "max") else None]:
                t = _common(t, infer(a, ctx))
            return "any" if t == "list" and name in ("min", "max") else t
        return b.returns
    return "any"


def _common(a: str, b: str) -> str:
    if a == "null":
        return b
    if b == "null" or a == b:
        return a
    if category(a) == category(b) and category(a) != "any":
        return "text" if category(a) == "text" else a
    return "any"


# ----------------------------------------------------------------------------- literal values


def literal_outputs(e, ctx) -> list[tuple[ir.Node, object]]:
    """The literal values ``e`` can produce, with the node that says so (a value-map entry's value
    for ``x | vm``). Non-literal outcomes are left out: callers check what is known."""
    k = e.kind
    if k in ("string", "int", "decimal", "bool"):
        return [(e, e.value)]
    if k == "if":
        return literal_outputs(e.then, ctx) + literal_outputs(e.otherwise, ctx)
    if k == "binop" and e.op == "??":
        return literal_outputs(e.left, ctx) + literal_outputs(e.right, ctx)
    if k == "param":
        p = ctx.params.get(e.name)
        return literal_outputs(p.default, ctx) if p is not None else []
    if k in ("pipe", "call"):
        vm = ctx.valuemaps.get(e.func.value)
        if vm is not None:
            out = []
            for entry in vm.entries:
                out.extend(literal_outputs(entry.value, ctx))
            if vm.unmapped is not None and vm.unmapped.default is not None:
                out.extend(literal_outputs(vm.unmapped.default, ctx))
            return out
        if e.func.value in ("coalesce", "default") and k == "call":
            return [x for a in e.args for x in literal_outputs(a, ctx)]
    return []


def max_length(e, ctx) -> tuple[int, ir.Node] | None:
    """An upper bound on the text length ``e`` can have, and the node it comes from; None when
    unknown. A literal is its own length; a source field its declared ``max_length``."""
    k = e.kind
    if k == "string":
        return len(e.value), e
    if k == "path":
        if ctx.scope is None or not ctx.scope.ok:
            return None
        r = resolve_path(ctx.schemas, ctx.scope, e)
        if r.field is not None and not r.is_list and r.field.max_length is not None:
            return r.field.max_length, e
        return None
    if k == "binop" and e.op == "++":
        a, b = max_length(e.left, ctx), max_length(e.right, ctx)
        if a is None or b is None:
            return None
        return a[0] + b[0], e
    if k == "if" or (k == "binop" and e.op == "??"):
        parts = [e.then, e.otherwise] if k == "if" else [e.left, e.right]
        found = [max_length(x, ctx) for x in parts if x.kind not in ("null", "missing")]
        if not found or any(x is None for x in found):
            return None
        return max(found, key=lambda x: x[0])
    if k == "pipe":
        name = e.func.value
        if name == "truncate" and e.args and e.args[0].kind == "int":
            return e.args[0].value, e
        if name in _SAME_LENGTH:
            return max_length(e.value, ctx)
        if name in ctx.valuemaps:
            lits = literal_outputs(e, ctx)
            vm = ctx.valuemaps[name]
            if not lits or any(x.value.kind != "string" for x in vm.entries):
                return None
            if vm.unmapped is not None and vm.unmapped.policy == "passthrough":
                return None
            node, v = max(lits, key=lambda x: len(str(x[1])))
            return len(str(v)), node
    return None


def strip_to_path(e) -> ir.PathExpr | None:
    """``status | trim`` -> the path ``status`` (pipes that keep the codes as they are)."""
    while e.kind == "pipe" and e.func.value in ("trim", "collapse_spaces"):
        e = e.value
    return e if e.kind == "path" else None


# -------------------------------------------------------------------------------------- maps


def map_targets(m: ir.Module) -> dict[str, str]:
    """Map name (target or `as` name) -> the target object it loads."""
    return {om.name: om.target.value for om in m.maps}


def is_create_path(om) -> bool:
    """Object maps whose records may be created (merges and `mode update` only update)."""
    if isinstance(om, ir.MergeMap):
        return False
    return not any(s.mode.value == "update" for s in om.stmts(ir.ModeStmt))


@dataclass
class ExprContext:
    schemas: Schemas
    scope: MapScope | None
    valuemaps: dict[str, ir.ValueMapDecl]
    params: dict[str, ir.ParamDecl]
    in_merge: bool = False


def contexts(prog, s: Schemas):
    """(map, ExprContext, target ObjectSchema or None) for every map and merge of the file."""
    m = prog.module
    vms, params = prog.valuemaps(), prog.params()
    targets = map_targets(m)
    for om in [*m.maps, *m.merges]:
        obj_name = targets.get(om.target.value) if isinstance(om, ir.MergeMap) else om.target.value
        obj = s.target_object(obj_name) if obj_name else None
        yield om, ExprContext(s, scope_of(s, om), vms, params, isinstance(om, ir.MergeMap)), obj
