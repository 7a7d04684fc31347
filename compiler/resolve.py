"""Name resolution inside a mapping: everything `fmap check` can say without any schema.

Duplicate maps and definitions, value maps and params that do not exist, unknown functions and wrong
arity, `parent` outside an array map, `group` outside a merge, duplicate field assignments, value
maps without an unmapped policy, and the other FM2xx codes. One pass, all diagnostics collected.
"""

from __future__ import annotations

from collections import defaultdict

from rapidfuzz import fuzz
from rapidfuzz import process as fuzz_process

from compiler.program import Program
from dsl import ir
from dsl.builtins import BUILTINS
from dsl.codes import diag
from dsl.diagnostics import Diagnostic
from dsl.walk import map_exprs, walk

__all__ = ["resolve", "suggest", "FIELD_TYPES", "MAP_MODES", "OVERSIZE_POLICIES"]

FIELD_TYPES = (
    "text", "textarea", "email", "phone", "url", "integer", "decimal", "currency", "percent",
    "boolean", "date", "datetime", "picklist", "multipicklist", "lookup", "owner", "file",
)
MAP_MODES = ("create", "upsert", "update")
OVERSIZE_POLICIES = ("skip", "fail", "quarantine")
OWNER_KEYS = ("email",)
TARGET_OPTIONS = ("edition", "users", "tier", "audit_fields", "schema")


def suggest(word: str, choices, cutoff: int = 60) -> str | None:
    """The closest choice, for "did you mean" hints."""
    choices = list(choices)
    if not word or not choices:
        return None
    best = fuzz_process.extractOne(word, choices, scorer=fuzz.ratio, score_cutoff=cutoff)
    return best[0] if best else None


def _did_you_mean(word: str, choices) -> str | None:
    s = suggest(word, choices)
    return f"did you mean `{s}`?" if s else None


def resolve(prog: Program) -> list[Diagnostic]:
    m = prog.module
    if m is None:
        return []
    out: list[Diagnostic] = []
    valuemaps = prog.valuemaps()
    params = prog.params()
    used_vm: set[str] = set()
    used_params: set[str] = set()

    _header(m, out)
    _definitions(m, out)

    # ---- maps: names, routing, statements
    names: dict[str, ir.ObjectMap] = {}
    for om in m.maps:
        prev = names.get(om.name)
        if prev is not None:
            out.append(diag(
                "FM201", f"a second map named `{om.name}`", om.span,
                hint=f"give one of them a name: `map {om.source.display()} -> {om.target.value} as other_name`",
                related=[(prev.span, "first one here")],
            ))
        else:
            names[om.name] = om
    _routing(m, out)
    map_names = set(names)

    for om in [*m.maps, *m.merges]:
        _statements(om, out)
        array_depth = len(om.source.parts) - 1
        in_merge = isinstance(om, ir.MergeMap)
        if isinstance(om, ir.MergeMap) and om.target.value not in map_names:
            out.append(diag(
                "FM225", f"merge into `{om.target.value}`, which no map loads", om.target.span,
                hint=_did_you_mean(om.target.value, map_names) or "merge into a map of this file",
            ))
        for _stmt, expr in map_exprs(om):
            for node in walk(expr):
                _check_node(node, out, valuemaps, params, used_vm, used_params, map_names,
                            array_depth, in_merge, m)

    for p in m.decls(ir.ParamDecl):
        for node in walk(p.default):
            if isinstance(node, ir.ParamRef):
                used_params.add(node.name)
    owners = m.first(ir.OwnersDecl)
    if owners is not None and owners.fallback is not None:
        for node in walk(owners.fallback):
            _check_node(node, out, valuemaps, params, used_vm, used_params, map_names, 0, False, m)

    _valuemaps(m, out, valuemaps, used_vm, used_params, params, map_names)
    _schema_decls(m, out)
    _tests(m, out, map_names)

    for name, vm in m.valuemaps.items():
        if name not in used_vm:
            out.append(diag("FM221", f"value map `{name}` is never used", vm.name.span,
                            hint="remove it, or apply it with `field | " + name + "`"))
    for name, p in m.params.items():
        if name not in used_params:
            out.append(diag("FM221", f"parameter `${name}` is never used", p.name.span,
                            hint="remove it, or use it as `$" + name + "`"))
    return out


# ------------------------------------------------------------------------------------- header


def _header(m: ir.Module, out: list[Diagnostic]) -> None:
    for cls, what in ((ir.MigrationDecl, "migration"), (ir.SourceDecl, "source"),
                      (ir.TargetDecl, "target"), (ir.OwnersDecl, "owners")):
        found = m.decls(cls)
        for extra in found[1:]:
            out.append(diag("FM208", f"a second `{what}` line", extra.span,
                            hint=f"a mapping has one `{what}` line",
                            related=[(found[0].span, "first one here")]))
    has_maps = bool(m.maps or m.merges)
    for cls, what in ((ir.SourceDecl, "source"), (ir.TargetDecl, "target")):
        if has_maps and not m.decls(cls):
            first = (m.maps or m.merges)[0]
            out.append(diag("FM213", f"the mapping has no `{what}` line", first.span,
                            hint=f"add e.g. `{what} {'aeronaclinic' if what == 'source' else 'zoho'}` at the top"))
    target = m.first(ir.TargetDecl)
    if target is not None:
        for opt in target.options:
            if opt.name.value not in TARGET_OPTIONS:
                out.append(diag("FM222", f"unknown target option `{opt.name.value}`", opt.name.span,
                                hint=_did_you_mean(opt.name.value, TARGET_OPTIONS)
                                or "options: " + ", ".join(TARGET_OPTIONS)))
    owners = m.first(ir.OwnersDecl)
    if owners is not None and owners.by.value not in OWNER_KEYS:
        out.append(diag("FM222", f"owners can be matched by email only, not `{owners.by.value}`",
                        owners.by.span, hint="write `owners by email else ...`"))


def _definitions(m: ir.Module, out: list[Diagnostic]) -> None:
    for cls, what in ((ir.ValueMapDecl, "value map"), (ir.ParamDecl, "parameter"),
                      (ir.SchemaDecl, "schema block")):
        seen: dict[str, object] = {}
        for d in m.decls(cls):
            key = d.name.value if cls is not ir.SchemaDecl else f"{d.action}:{d.name.value}"
            if key in seen:
                out.append(diag("FM208", f"{what} `{d.name.value}` is defined twice", d.name.span,
                                hint="rename or remove one",
                                related=[(seen[key].name.span, "first definition")]))
            else:
                seen[key] = d


def _routing(m: ir.Module, out: list[Diagnostic]) -> None:
    by_source: dict[str, list[ir.ObjectMap]] = defaultdict(list)
    for om in m.maps:
        if om.route is not None:
            by_source[om.source.dotted()].append(om)
    for source, maps in by_source.items():
        otherwise = [x for x in maps if x.route.mode == "otherwise"]
        for extra in otherwise[1:]:
            out.append(diag("FM218", f"a second `otherwise` map for `{source}`", extra.route.span,
                            hint="one map per source takes the records no `where` matched",
                            related=[(otherwise[0].route.span, "first one here")]))
        if not otherwise:
            last = maps[-1]
            out.append(diag(
                "FM217", f"records of `{source}` that match no `where` are not loaded",
                last.route.span,
                hint="add a map with `otherwise`, or a `skip when` rule that says why they are left out",
            ))


def _statements(om, out: list[Diagnostic]) -> None:
    assigned: dict[str, ir.Assign] = {}
    keys = om.stmts(ir.KeyStmt)
    for extra in keys[1:]:
        out.append(diag("FM208", "a second `key` statement", extra.span,
                        hint="a map has one key; combine parts with `++`",
                        related=[(keys[0].span, "first one here")]))
    if isinstance(om, ir.ObjectMap) and not keys:
        out.append(diag("FM211", f"map `{om.name}` has no `key`", om.span,
                        hint="add `key id` (the source record's stable id) so re-runs update instead of duplicating"))
    for a in om.assignments:
        prev = assigned.get(a.target.value)
        if prev is not None:
            out.append(diag("FM206", f"`{a.target.value}` is assigned twice", a.target.span,
                            hint="remove one assignment, or combine them with `??`",
                            related=[(prev.target.span, "first assignment")]))
        else:
            assigned[a.target.value] = a
    for s in om.stmts(ir.SplitStmt):
        if s.target.value not in assigned:
            out.append(diag("FM215", f"`split` of `{s.target.value}`, which this map does not assign",
                            s.target.span, hint=_did_you_mean(s.target.value, assigned)))
        if s.max < 10:
            out.append(diag("FM222", f"`split ... max {s.max}` is too small to hold a part",
                            s.span, hint="use the target field's length limit"))
    for s in om.stmts(ir.SensitiveStmt):
        for f in s.fields:
            if f.value not in assigned:
                out.append(diag("FM215", f"`sensitive {f.value}`: this map does not assign it",
                                f.span, hint=_did_you_mean(f.value, assigned)))
    modes = om.stmts(ir.ModeStmt)
    for s in modes:
        if s.mode.value not in MAP_MODES:
            out.append(diag("FM222", f"unknown mode `{s.mode.value}`", s.mode.span,
                            hint=_did_you_mean(s.mode.value, MAP_MODES)
                            or "modes: " + ", ".join(MAP_MODES)))
    for extra in modes[1:]:
        out.append(diag("FM208", "a second `mode` statement", extra.span))
    for s in om.stmts(ir.AttachStmt):
        if s.oversize is not None and s.oversize.value not in OVERSIZE_POLICIES:
            out.append(diag("FM222", f"unknown oversize policy `{s.oversize.value}`",
                            s.oversize.span, hint=_did_you_mean(s.oversize.value, OVERSIZE_POLICIES)
                            or "policies: " + ", ".join(OVERSIZE_POLICIES)))


def _check_node(node, out, valuemaps, params, used_vm, used_params, map_names, array_depth,
                in_merge, m) -> None:
    k = node.kind
    if k == "param":
        if node.name in params:
            used_params.add(node.name)
        else:
            out.append(diag("FM207", f"undefined parameter `${node.name}`", node.span,
                            hint=_did_you_mean(node.name, params)
                            or f"declare it: `param {node.name} = ...`"))
    elif k == "path":
        head = node.parts[0]
        if isinstance(head, ir.Name) and not head.quoted:
            if head.value == "parent":
                depth = 0
                for p in node.parts:
                    if isinstance(p, ir.Name) and p.value == "parent" and not p.quoted:
                        depth += 1
                    else:
                        break
                if array_depth == 0:
                    out.append(diag("FM205", "`parent` is only defined in maps over a nested array",
                                    head.span, hint="write the map as `map records.items[] -> ...`"))
                elif depth > array_depth:
                    out.append(diag("FM205", f"`{'parent.' * depth}` goes above the top-level record",
                                    head.span, hint=f"this map is nested {array_depth} level(s) deep"))
            elif head.value == "group" and not in_merge:
                out.append(diag("FM210", "`group` is only defined in a `merge`", head.span,
                                hint="use `merge children -> ParentMap by key { ... }`"))
    elif k == "pipe" or k == "call":
        name = node.func.value
        npos = len(node.args) + (1 if k == "pipe" else 0)
        if name in valuemaps:
            used_vm.add(name)
            if node.args or node.kwargs or (k == "call" and npos != 1):
                out.append(diag("FM204", f"value map `{name}` takes no arguments", node.func.span,
                                hint=f"write `value | {name}`"))
            return
        b = BUILTINS.get(name)
        if b is None:
            if name in map_names:
                out.append(diag("FM203", f"`{name}` is a map, not a function", node.func.span,
                                hint=f"to link records use `ref({name}, key)`"))
                return
            vm_hint = suggest(name, valuemaps)
            fn_hint = suggest(name, BUILTINS)
            if vm_hint and (not fn_hint or k == "pipe"):
                out.append(diag("FM202", f"undefined value map `{name}`", node.func.span,
                                hint=f"did you mean `{vm_hint}`?"))
            elif k == "pipe" and not fn_hint:
                out.append(diag("FM202", f"`{name}` is neither a function nor a value map",
                                node.func.span,
                                hint=f"define it: `valuemap {name} {{ ... }}`"))
            else:
                out.append(diag("FM203", f"unknown function `{name}`", node.func.span,
                                hint=f"did you mean `{fn_hint}`?" if fn_hint
                                else "see docs/functions.md for the function library"))
            return
        if npos < b.min_args or (b.max_args is not None and npos > b.max_args):
            want = (f"{b.min_args}" if b.max_args == b.min_args
                    else f"{b.min_args} or more" if b.max_args is None
                    else f"{b.min_args} to {b.max_args}")
            shown = npos - 1 if k == "pipe" else npos
            piped = " (counting the piped value)" if k == "pipe" else ""
            out.append(diag("FM204", f"`{name}` takes {want} argument(s){piped}, got {npos}",
                            node.span, hint=_arity_hint(name, b, k, shown)))
        for kw in node.kwargs:
            if kw.name.value not in b.kwargs:
                out.append(diag("FM212", f"`{name}` has no argument `{kw.name.value}`",
                                kw.name.span, hint=_did_you_mean(kw.name.value, b.kwargs)
                                or (f"it takes: {', '.join(sorted(b.kwargs))}" if b.kwargs
                                    else "it takes no keyword arguments")))
    elif k == "ref":
        for t in node.targets:
            if t.value not in map_names:
                out.append(diag("FM225", f"`ref` to `{t.value}`, which no map loads", t.span,
                                hint=_did_you_mean(t.value, map_names)
                                or "ref() names a map of this file (its target or its `as` name)"))
    elif k == "owner":
        if m.first(ir.OwnersDecl) is None:
            out.append(diag("FM224", "`owner()` is used but the mapping has no `owners` policy",
                            node.span, hint="add `owners by email else $fallback_owner` (or `else reject`)"))


def _arity_hint(name, b, kind, shown) -> str:
    if b.min_args == 1 and b.max_args == 1:
        return f"write `value | {name}`"
    extra = b.min_args - 1
    if kind == "pipe":
        return f"write `value | {name}(" + ", ".join(["..."] * max(extra, 0)) + ")`"
    return f"`{name}` is documented in docs/functions.md"


def _valuemaps(m, out, valuemaps, used_vm, used_params, params, map_names) -> None:
    for vm in m.decls(ir.ValueMapDecl):
        if vm.unmapped is None:
            out.append(diag("FM209", f"value map `{vm.name.value}` does not say what happens to unlisted values",
                            vm.name.span,
                            hint='add `_ -> error`, `_ -> passthrough`, `_ -> quarantine` or `_ -> "Default"`'))
        seen: dict[object, ir.Node] = {}
        for entry in vm.entries:
            for key in entry.keys:
                if key.kind in ("null", "missing"):
                    token = (key.kind,)
                else:
                    token = (key.kind, getattr(key, "value", None))
                if token in seen:
                    out.append(diag("FM214", "this value is listed twice in the value map", key.span,
                                    hint="remove one of the entries",
                                    related=[(seen[token].span, "first listed here")]))
                else:
                    seen[token] = key
            for node in walk(entry.value):
                _check_node(node, out, valuemaps, params, used_vm, used_params, map_names, 0,
                            False, m)


def _schema_decls(m: ir.Module, out: list[Diagnostic]) -> None:
    for sd in m.decls(ir.SchemaDecl):
        seen: dict[str, ir.FieldDecl] = {}
        for f in sd.fields:
            if f.name.value in seen:
                out.append(diag("FM208", f"field `{f.name.value}` is declared twice", f.name.span,
                                related=[(seen[f.name.value].name.span, "first declaration")]))
            seen[f.name.value] = f
            t = f.type.name.value
            if t not in FIELD_TYPES:
                out.append(diag("FM223", f"unknown field type `{t}`", f.type.span,
                                hint=_did_you_mean(t, FIELD_TYPES)
                                or "types: " + ", ".join(FIELD_TYPES)))
            elif t == "lookup" and not f.type.args:
                out.append(diag("FM223", "`lookup` needs the object it points to", f.type.span,
                                hint="write `lookup(Contacts)`"))
            elif t in ("picklist", "multipicklist") and not f.values:
                out.append(diag("FM223", f"`{t}` field `{f.name.value}` lists no values",
                                f.type.span, hint='add `values ["A", "B"]`'))


def _tests(m: ir.Module, out: list[Diagnostic], map_names: set[str]) -> None:
    sources = {om.source.dotted() for om in [*m.maps, *m.merges]}
    for t in m.decls(ir.TestDecl):
        for g in t.givens:
            if g.source.dotted() not in sources:
                out.append(diag("FM220", f"`given {g.source.display()}`: no map reads this source",
                                g.source.span, hint=_did_you_mean(g.source.dotted(), sources)))
        for e in t.expects:
            if e.target is not None and e.target.value not in map_names:
                out.append(diag("FM220", f"`expect {e.target.value}`: no map has this name",
                                e.target.span, hint=_did_you_mean(e.target.value, map_names)))
