"""Checked IR + load plan -> a Python module (text).

The module skeleton comes from Jinja templates (``templates/head.py.j2``, ``tail.py.j2``, with
``StrictUndefined`` and a ``pyrepr`` filter); function bodies come from the ``CodeWriter`` and the
expression compiler. Output is deterministic: same .fmap, same compiler version, same bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

import jinja2

from compiler.codegen.emitter import CodeWriter
from compiler.codegen.expr import ExprCompiler, ModuleConsts, Scope, may_be_missing, unparen
from compiler.codegen.pyformat import format_python
from compiler.plan import step_names
from dsl import ir
from dsl.walk import map_exprs, walk

__all__ = ["generate_module", "GeneratedModule", "COMPILER_VERSION", "valuemap_functions"]

COMPILER_VERSION = "0.1.0"
_LITERALS = ("string", "int", "bool", "null", "decimal", "date", "datetime", "missing")


def _pyrepr(value) -> str:
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_pyrepr(v) for v in value)
        if isinstance(value, tuple):
            return f"({inner},)" if len(value) == 1 else f"({inner})"
        return f"[{inner}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_pyrepr(k)}: {_pyrepr(v)}" for k, v in value.items()) + "}"
    if value is None or isinstance(value, (bool, int, str)):
        return repr(value)
    raise TypeError(f"cannot emit {type(value).__name__}")


def _pycomment(value: str) -> str:
    """Text placed in a comment or a docstring: one line, repr-escaped where it is not plain
    (newlines, U+2028...), with every double quote escaped so no text can close a docstring."""
    return repr(str(value))[1:-1].replace('"', '\\"')


def _pydocrepr(value) -> str:
    """``repr(value)`` for use inside a docstring (double quotes escaped)."""
    return _pyrepr(value).replace('"', '\\"')


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("compiler.codegen", "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=False,
    )
    env.filters["pyrepr"] = _pyrepr
    env.filters["pycomment"] = _pycomment
    env.filters["pydocrepr"] = _pydocrepr
    return env


@dataclass
class GeneratedModule:
    source: str
    lines: dict[int, tuple[int, str]]  # generated line -> (.fmap line, rule)


def generate_module(
    module: ir.Module,
    *,
    order: list[str],
    deferred: dict[str, list[str]],
    schema_changes: list[dict],
    source_text: str,
    source_path: str,
    valuemaps: dict[str, ir.ValueMapDecl],
    params: dict[str, ir.ParamDecl],
    source_config: dict[str, dict] | None = None,
) -> GeneratedModule:
    """``order``: map/merge names in load order (from compiler.plan); ``deferred``: per map, the
    fields filled in the deferred update pass."""
    consts = ModuleConsts()
    ec = ExprCompiler(consts)
    w = CodeWriter()
    consts.rt("Plan")
    consts.rt("Step")

    # ---- value maps
    vm_names = valuemap_functions(module, valuemaps)
    for name, fname in vm_names.items():
        _emit_valuemap(w, ec, consts, valuemaps[name], fname, vm_names)

    # ---- steps
    by_name = dict(step_names(module))
    routed_groups = _routing_groups(module)
    steps: list[list[tuple[str, str]]] = []
    for idx, name in enumerate(order, 1):
        m = by_name[name]
        steps.append(_emit_step(w, ec, consts, m, idx, vm_names, routed_groups,
                                deferred.get(name, []), name))

    # ---- params and owners
    pscope = Scope(record="{}", parents=None, valuemaps=vm_names)
    param_items = [(n, ec.compile(p.default, pscope)) for n, p in sorted(params.items())]
    owners_text = "None"
    owners = module.first(ir.OwnersDecl)
    if owners is not None:
        if owners.reject:
            owners_text = repr({"by": owners.by.value, "reject": True})
        else:
            w.blank(2)
            w.writeline("def owner_fallback(P):", owners.span.line, "owners")
            w.indent()
            w.writeline('"""The owner for emails that match no destination user."""')
            w.writeline(f"return {ec.compile(owners.fallback, pscope)}", owners.span.line,
                        "owners")
            w.outdent()
            owners_text = f"{{'by': {owners.by.value!r}, 'reject': False, 'fallback': owner_fallback}}"

    migration = module.first(ir.MigrationDecl)
    source = module.first(ir.SourceDecl)
    target = module.first(ir.TargetDecl)
    target_options = {}
    if target is not None:
        for opt in target.options:
            if opt.value.kind in ("string", "int", "bool", "null"):
                target_options[opt.name.value] = opt.value.value if opt.value.kind != "null" else None
    sha = hashlib.sha256(source_text.encode("utf-8")).hexdigest()
    common = {
        "version": COMPILER_VERSION,
        "source_path": source_path,
        "sha256": sha,
        "migration": migration.title if migration else None,
        "source_system": source.name.value if source else None,
        "target_system": target.name.value if target else None,
    }
    head = _env().get_template("head.py.j2").render(
        imports=sorted(consts.imports, key=lambda s: s.split(" as ")[-1].lower()),
        consts=consts.consts, **common,
    )
    head_lines = head.rstrip("\n").count("\n") + 1 + 2  # two blank lines before the body
    body = w.source()
    table = {head_lines + idx + 1: (fline, rule) for idx, fline, rule in w.debug_info}
    not_migrated = [(n.subject, n.reason) for n in module.decls(ir.NotMigrated)]
    tail = _env().get_template("tail.py.j2").render(
        params=param_items, target_options=target_options, owners=owners_text, steps=steps,
        schema_changes=schema_changes, not_migrated=not_migrated,
        source_config=source_config or {}, **common,
    )
    text = head.rstrip("\n") + "\n\n\n" + body.strip("\n") + "\n" + tail
    text, table = format_python(text, table)
    line_table = [(py, fl, rule) for py, (fl, rule) in sorted(table.items())]
    text = text.rstrip("\n") + "\n" + _env().get_template("lines.py.j2").render(lines=line_table)
    return GeneratedModule(text, dict(table))


def valuemap_functions(module: ir.Module, valuemaps: dict[str, ir.ValueMapDecl]) -> dict[str, str]:
    """.fmap value map name -> the generated function's name (``vm_1``...), for the value maps
    the maps use, numbered in name order. ``compiler.testing`` instruments them by these names."""
    used = _used_valuemaps(module)
    return {name: f"vm_{i}" for i, name in enumerate(sorted(n for n in valuemaps if n in used), 1)}


def _used_valuemaps(module: ir.Module) -> set[str]:
    used: set[str] = set()
    for m in [*module.maps, *module.merges]:
        for _s, e in map_exprs(m):
            for node in walk(e):
                if node.kind in ("pipe", "call"):
                    used.add(node.func.value)
    return used


def _routing_groups(module: ir.Module) -> dict[str, str]:
    """map name -> routing group id (the source path) for maps with where/otherwise."""
    return {m.name: m.source.dotted() for m in module.maps if m.route is not None}


def _emit_valuemap(w: CodeWriter, ec: ExprCompiler, consts: ModuleConsts, vm: ir.ValueMapDecl,
                   fname: str, vm_names: dict[str, str]) -> None:
    scope = Scope(record="{}", parents=None, valuemaps=vm_names)
    line = vm.span.line
    literal_only = all(e.value.kind in _LITERALS for e in vm.entries)
    has_null_key = any(k.kind == "null" for e in vm.entries for k in e.keys)
    has_missing_key = any(k.kind == "missing" for e in vm.entries for k in e.keys)
    dict_name = fname.upper()
    if literal_only:
        w.writeline(f"# value map {vm.name.value!r}", line)
        w.writeline(f"{dict_name} = {{")
        w.indent()
        for e in vm.entries:
            value = ec.compile(e.value, scope)
            for k in e.keys:
                w.writeline(f"{ec.compile(k, scope)}: {value},", e.span.line,
                            f"valuemap {vm.name.value}")
        w.outdent()
        w.writeline("}")
        w.blank(2)
    u = vm.unmapped
    if literal_only:  # text values are looked up inline by the transforms (ExprCompiler)
        if u is None or u.policy in ("error", "quarantine"):
            ec.vm_inline[fname] = (dict_name, None)
        elif u.policy == "passthrough":
            ec.vm_inline[fname] = (dict_name, "")
        elif u.default is not None and u.default.kind in _LITERALS:
            ec.vm_inline[fname] = (dict_name, ec.compile(u.default, scope))
    w.writeline(f"def {fname}(value, P):", line, f"valuemap {vm.name.value}")
    w.indent()
    w.writeline(f'"""value map {_pycomment(vm.name.value)} (line {line})"""')
    # missing passes through (an assignment of missing writes nothing) and so does null, unless
    # the map lists them as keys. They are tested before the lookup: the transforms call this
    # function for the values that are not text, null the commonest, and a failed lookup raises.
    passes = [f"value is {consts.rt('MISSING')}"] if not has_missing_key else []
    passes += [] if has_null_key else ["value is None"]
    if passes:
        w.writeline(f"if {' or '.join(passes)}:")
        w.indent()
        w.writeline("return value")
        w.outdent()
    if literal_only:
        w.writeline("try:")
        w.indent()
        w.writeline(f"return {dict_name}[value]")
        w.outdent()
        w.writeline("except (KeyError, TypeError):")
        w.indent()
        w.writeline("pass")
        w.outdent()
    if not literal_only:
        for e in vm.entries:
            cond = " or ".join(f"value == {ec.compile(k, scope)}" for k in e.keys)
            w.writeline(f"if {cond}:", e.span.line, f"valuemap {vm.name.value}")
            w.indent()
            w.writeline(f"return {ec.compile(e.value, scope)}", e.span.line,
                        f"valuemap {vm.name.value}")
            w.outdent()
    rule = f"valuemap {vm.name.value}"
    uline = u.span.line if u else line
    if u is None or u.policy == "error":
        w.writeline(f"raise {consts.rt('UnmappedValue')}({vm.name.value!r}, value, False)",
                    uline, rule)
    elif u.policy == "quarantine":
        w.writeline(f"raise {consts.rt('UnmappedValue')}({vm.name.value!r}, value, True)",
                    uline, rule)
    elif u.policy == "passthrough":
        w.writeline("return value", uline, rule)
    else:
        w.writeline(f"return {ec.compile(u.default, scope)}", uline, rule)
    w.outdent()
    w.blank(2)


def _emit_step(w, ec: ExprCompiler, consts: ModuleConsts, m, idx: int, vm_names, groups,
               deferred_fields: list[str], step_name: str) -> list[tuple[str, str]]:
    is_merge = isinstance(m, ir.MergeMap)
    label = f"{'merge' if is_merge else 'map'} {m.source.display()} -> {m.target.value}"
    rule_prefix = m.name
    scope = Scope(valuemaps=vm_names, parents="parents")
    fields: list[str] = []
    field_lines: dict[str, int] = {}

    # transform
    if is_merge:
        w.writeline(f"def t_{idx}(group, P):", m.span.line, rule_prefix)
        tscope = Scope(record="{}", parents=None, group="group", valuemaps=vm_names)
    else:
        w.writeline(f"def t_{idx}(rec, parents, P):", m.span.line, rule_prefix)
        tscope = scope
    w.indent()
    w.writeline(f'"""{_pycomment(label)} (line {m.span.line})"""')
    # one dict display, fields in .fmap order (evaluation order is the statements' order); a field
    # whose value may be MISSING is then removed if it is (an assignment of missing writes nothing)
    entries: list[tuple[str, str, int, str, bool]] = []  # (key, value, line, rule, may be missing)
    for s in m.body:
        if isinstance(s, ir.Assign):
            rule = f"{m.target.value}.{s.target.value}"
            entries.append((s.target.value, ec.compile(s.value, tscope), s.span.line, rule,
                            may_be_missing(s.value, vm_names)))
            fields.append(s.target.value)
            field_lines[s.target.value] = s.span.line
        elif isinstance(s, ir.AttachStmt):
            name = unparen(ec.compile(s.file_name, tscope)) if s.file_name is not None else "None"
            path = unparen(ec.compile(s.path, tscope))
            entries.append(("$attach", f"{consts.rt('Attachment')}({path}, {name})", s.span.line,
                            f"{m.target.value} attachment", False))
    if len({e[0] for e in entries}) != len(entries):  # a field assigned twice: the last one wins
        w.writeline("out = {}")
        for key, value, line, rule, _missing in entries:
            w.writeline(f"out[{key!r}] = {value}", line, rule)
        w.writeline(f"return {consts.rt('drop_missing')}(out)")
    else:
        w.writeline("out = {" if entries else "out = {}")
        if entries:
            w.indent()
            for key, value, line, rule, _missing in entries:
                w.writeline(f"{key!r}: {value},", line, rule)
            w.outdent()
            w.writeline("}")
        for key, _value, line, rule, missing in entries:
            if missing:
                w.writeline(f"if out[{key!r}] is {consts.rt('MISSING')}:", line, rule)
                w.indent()
                w.writeline(f"del out[{key!r}]", line, rule)
                w.outdent()
        w.writeline("return out")
    w.outdent()
    w.blank(2)

    # key
    key_fn = "None"
    key_expr = m.by if is_merge else (m.key.value if m.key is not None else None)
    key_line = m.span.line if is_merge else (m.key.span.line if m.key is not None else None)
    if key_expr is not None:
        w.writeline(f"def k_{idx}(rec, parents, P):", key_line, f"{rule_prefix} key")
        w.indent()
        # str fast path inline (a stripped non-empty key); key_str converts or quarantines the rest
        w.writeline(f"return (_k.strip() or {consts.rt('key_str')}(_k)) if (_k := "
                    f"{unparen(ec.compile(key_expr, scope))}).__class__ is str else "
                    f"{consts.rt('key_str')}(_k)", key_line, f"{rule_prefix} key")
        w.outdent()
        w.blank(2)
        key_fn = f"k_{idx}"

    # route
    route_fn = "None"
    if isinstance(m, ir.ObjectMap) and m.route is not None and m.route.cond is not None:
        line = m.route.span.line
        w.writeline(f"def w_{idx}(rec, parents, P):", line, f"{rule_prefix} where")
        w.indent()
        w.writeline(f"return {ec.condition(m.route.cond, scope)}", line,
                    f"{rule_prefix} where")
        w.outdent()
        w.blank(2)
        route_fn = f"w_{idx}"

    # skip rules
    skips = []
    for j, s in enumerate(m.stmts(ir.SkipStmt), 1):
        w.writeline(f"def s_{idx}_{j}(rec, parents, P):", s.span.line, f"{rule_prefix} skip")
        w.indent()
        w.writeline(f"return {ec.condition(s.cond, scope)}", s.span.line,
                    f"{rule_prefix} skip")
        w.outdent()
        w.blank(2)
        reason = s.reason or f"skip rule at line {s.span.line}"
        skips.append(f"{consts.rt('SkipRule')}(s_{idx}_{j}, {reason!r}, {s.span.line})")

    split = m.stmts(ir.SplitStmt)
    attach = m.stmts(ir.AttachStmt)
    modes = m.stmts(ir.ModeStmt)
    sensitive = sorted({f.value for s in m.stmts(ir.SensitiveStmt) for f in s.fields})
    deps = sorted({t.value for _s, e in _exprs(m) for n in walk(e) if n.kind == "ref"
                   for t in n.targets} | ({m.target.value} if is_merge else set()))
    items: list[tuple[str, str]] = [
        ("name", repr(step_name)),
        ("kind", repr("merge" if is_merge else "map")),
        ("source", repr(m.source.root)),
        ("path", _pyrepr(tuple(p.value for p in m.source.parts[1:]))),
        ("target", repr(m.target.value)),
        ("transform", f"t_{idx}"),
        ("key", key_fn),
        ("line", str(m.span.line)),
        ("route", route_fn),
        ("route_group", repr(groups.get(m.name)) if not is_merge else "None"),
        ("otherwise", "True" if isinstance(m, ir.ObjectMap) and m.route is not None
         and m.route.mode == "otherwise" else "False"),
        ("skips", "(" + "".join(f"{s}, " for s in skips).rstrip(" ") + ")" if skips else "()"),
        ("mode", repr(modes[0].mode.value if modes else ("update" if is_merge else "upsert"))),
        ("depends_on", _pyrepr(tuple(deps))),
        ("deferred_fields", _pyrepr(tuple(deferred_fields))),
        ("split", f"{consts.rt('SplitSpec')}({split[0].target.value!r}, {split[0].max!r}, "
                  f"{(split[0].prefix if split[0].prefix is not None else '({n}/{total}) ')!r})"
         if split else "None"),
        ("attach", f"{consts.rt('AttachSpec')}({attach[0].limit_bytes!r}, "
                   f"{(attach[0].oversize.value if attach[0].oversize else 'quarantine')!r}, "
                   f"{attach[0].span.line})" if attach else "None"),
        ("sensitive", f"frozenset({_pyrepr(sensitive)})" if sensitive else "frozenset()"),
        ("fields", _pyrepr(tuple(fields))),
        ("field_lines", _pyrepr(field_lines)),
    ]
    return items


def _exprs(m):
    return list(map_exprs(m))
