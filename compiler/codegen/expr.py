"""Expressions -> Python expression text.

Safety rule: the only text that reaches the output is (a) ``repr()`` of a value (strings, numbers,
field names, map names) or (b) a name this module chose (``rec``, ``P``, ``_v3``, ``fn_trim``,
``vm_2``, ``_K4``). No identifier from a .fmap file ever becomes a Python name, so no string, name
or comment in a mapping can inject code.

Speed rule (PERFORMANCE.md): the common transforms are inlined with explicit None guards
(`trim`, `lower`, `upper` on a str fast path), constant sets for `in`, and date parsers specialised
for their format are hoisted to module constants; everything else calls the runtime library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from dsl import ir
from dsl.builtins import BUILTINS

__all__ = ["ExprCompiler", "ModuleConsts", "Scope", "is_boolean", "may_be_missing", "unparen"]

_INLINE_STR = {"trim": "strip", "lower": "lower", "upper": "upper"}
_CMP = {"<": "op_lt", "<=": "op_le", ">": "op_gt", ">=": "op_ge"}
_ARITH = {"+": "op_add", "-": "op_sub", "*": "op_mul", "/": "op_div", "%": "op_mod"}


@dataclass
class ModuleConsts:
    """Module-level constants and runtime imports collected while compiling expressions."""

    consts: list[tuple[str, str, str]] = field(default_factory=list)  # (name, python expr, comment)
    imports: set[str] = field(default_factory=set)  # runtime names (aliased fn_* for functions)
    _by_expr: dict[str, str] = field(default_factory=dict)

    def const(self, expr: str, comment: str = "") -> str:
        if expr in self._by_expr:
            return self._by_expr[expr]
        name = f"_K{len(self.consts) + 1}"
        self.consts.append((name, expr, comment))
        self._by_expr[expr] = name
        return name

    def rt(self, name: str) -> str:
        """A runtime name used as is (MISSING, Ref, op_add...)."""
        self.imports.add(name)
        return name

    def fn(self, name: str) -> str:
        """A catalog function, imported under an alias so it never shadows a Python builtin."""
        self.imports.add(f"{name} as fn_{name}")
        return f"fn_{name}"


@dataclass
class Scope:
    """What names mean inside one generated function."""

    record: str = "rec"  # the current record's variable
    parents: str | None = "parents"  # tuple of ancestor records, innermost last
    group: str | None = None  # merges: the list of child records
    valuemaps: dict[str, str] = field(default_factory=dict)  # .fmap name -> generated function
    temps: int = 0

    def temp(self) -> str:
        self.temps += 1
        return f"_v{self.temps}"


def unparen(text: str) -> str:
    """Drop one pair of parentheses enclosing the whole text (a call argument needs none)."""
    if not (text.startswith("(") and text.endswith(")")):
        return text
    depth = 0
    in_str: str | None = None
    i = 0
    while i < len(text):
        ch = text[i]
        if in_str:
            if ch == "\\":
                i += 2
                continue
            if ch == in_str:
                in_str = None
        elif ch in "'\"":
            in_str = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0 and i != len(text) - 1:
                return text
        i += 1
    return text[1:-1]


def py_literal(value) -> str:
    """repr() for the value types the IR holds; Decimal/date go through hoisted constructors."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return repr(value)
    raise TypeError(type(value))


class ExprCompiler:
    def __init__(self, consts: ModuleConsts) -> None:
        self.k = consts
        # value-map function -> (its dict constant, the str-path fallback: a literal's Python
        # text, "" for passthrough, None for error/quarantine); only maps made of literals
        self.vm_inline: dict[str, tuple[str, str | None]] = {}

    # ----------------------------------------------------------------- entry point
    def compile(self, e, s: Scope) -> str:
        method = getattr(self, "_" + e.kind)
        return method(e, s)

    def condition(self, e, s: Scope) -> str:
        """``e`` as a Python bool (missing, null, "", false and 0 are false): comparisons and
        boolean operators already are one, anything else goes through ``truthy``."""
        return unparen(self._operand(e, s))

    # ----------------------------------------------------------------- literals
    def _string(self, e, s):
        return repr(e.value)

    def _int(self, e, s):
        return repr(e.value)

    def _decimal(self, e, s):
        self.k.rt("Decimal")
        return self.k.const(f"Decimal({str(e.value)!r})")

    def _bool(self, e, s):
        return "True" if e.value else "False"

    def _null(self, e, s):
        return "None"

    def _missing(self, e, s):
        return self.k.rt("MISSING")

    def _date(self, e, s):
        d = date.fromisoformat(e.value)
        return self.k.const(f"{self.k.fn('date')}({d.isoformat()!r})")

    def _datetime(self, e, s):
        v = datetime.fromisoformat(e.value.replace("Z", "+00:00")).isoformat()
        return self.k.const(f"{self.k.fn('datetime')}({v!r})")

    def _list(self, e, s):
        return "[" + ", ".join(self.compile(i, s) for i in e.items) + "]"

    # ----------------------------------------------------------------- names
    def _param(self, e, s):
        return f"P[{e.name!r}]"

    def _path(self, e: ir.PathExpr, s: Scope) -> str:
        parts = list(e.parts)
        head = parts[0]
        base = s.record
        if isinstance(head, ir.Name) and not head.quoted and head.value == "parent" and s.parents:
            depth = 0
            while parts and isinstance(parts[0], ir.Name) and parts[0].value == "parent" \
                    and not parts[0].quoted:
                depth += 1
                parts.pop(0)
            base = f"{s.parents}[-{depth}]"
        elif isinstance(head, ir.Name) and not head.quoted and head.value == "group" \
                and s.group is not None:
            rest = tuple(p.value if isinstance(p, ir.Name) else p for p in parts[1:])
            if not rest:
                return s.group
            return f"{self.k.rt('project')}({s.group}, {rest!r})"
        keys = tuple(p.value if isinstance(p, ir.Name) else p for p in parts)
        if not keys:
            return base
        if len(keys) == 1 and isinstance(keys[0], str):
            return f"{base}.get({keys[0]!r}, {self.k.rt('MISSING')})"
        return f"{self.k.rt('get_path')}({base}, {keys!r})"

    # ----------------------------------------------------------------- calls and pipes
    def _args(self, args, kwargs, s: Scope) -> list[str]:
        out = [unparen(self.compile(a, s)) for a in args]
        out += [f"{kw.name.value}={unparen(self.compile(kw.value, s))}" for kw in kwargs]
        return out

    def _call(self, e: ir.Call, s: Scope) -> str:
        if e.func.value not in BUILTINS and e.func.value not in s.valuemaps:
            raise ValueError(f"unknown function {e.func.value!r}")
        return self._apply(e.func.value, list(e.args), list(e.kwargs), s)

    def _pipe(self, e: ir.Pipe, s: Scope) -> str:
        if e.func.value not in BUILTINS and e.func.value not in s.valuemaps:
            raise ValueError(f"unknown function {e.func.value!r}")
        return self._apply(e.func.value, [e.value, *e.args], list(e.kwargs), s)

    def _apply(self, name: str, args: list, kwargs: list, s: Scope) -> str:
        if name in s.valuemaps:
            return self._valuemap(s.valuemaps[name], args[0], s)
        if name in _INLINE_STR and len(args) == 1 and not kwargs:
            v = s.temp()
            inner = self.compile(args[0], s)
            return (f"({v}.{_INLINE_STR[name]}() if ({v} := {inner}).__class__ is str "
                    f"else {self.k.fn(name)}({v}))")
        if name in ("date", "datetime") and len(args) == 2 and args[1].kind == "string":
            return self._fast_date(name, args, kwargs, s)
        if name == "count" and len(args) == 1 and not kwargs:
            v = s.temp()
            inner = self.compile(args[0], s)
            return f"(len({v}) if ({v} := {inner}).__class__ is list else {self.k.fn(name)}({v}))"
        allowed = BUILTINS[name].kwargs
        for kw in kwargs:  # keyword names become Python text: only the catalog's own names
            if kw.name.value not in allowed:
                raise ValueError(f"`{name}` has no keyword argument {kw.name.value!r}")
        return f"{self.k.fn(name)}({', '.join(self._args(args, kwargs, s))})"

    def _valuemap(self, fname: str, arg, s: Scope) -> str:
        """A value map over text (the usual case) is one dict lookup inline; other values, and
        misses under `error`/`quarantine`, call the generated function, which has every rule."""
        inner = self.compile(arg, s)
        if fname not in self.vm_inline:
            return f"{fname}({unparen(inner)}, P)"
        table, fallback = self.vm_inline[fname]
        v = s.temp()
        if fallback is None:
            return (f"({table}[{v}] if ({v} := {inner}).__class__ is str and {v} in {table} "
                    f"else {fname}({v}, P))")
        return (f"({table}.get({v}, {fallback or v}) if ({v} := {inner}).__class__ is str "
                f"else {fname}({v}, P))")

    def _fast_date(self, name, args, kwargs, s: Scope) -> str:
        """``date(x, "fmt")``: a reader built once per module for the format (its fixed-width
        fast path skips strptime; every other value goes through ``date`` itself)."""
        fmt = args[1].value
        tz = None
        other = []
        for kw in kwargs:
            if kw.name.value == "tz" and kw.value.kind == "string":
                tz = kw.value.value
            else:
                other.append(kw)
        if other:
            return f"{self.k.fn(name)}({', '.join(self._args(args, kwargs, s))})"
        if name == "date":
            reader = self.k.const(f"{self.k.rt('date_reader')}({fmt!r})", f"date {fmt}")
        else:
            tz = tz or "UTC"
            reader = self.k.const(f"{self.k.rt('datetime_reader')}({fmt!r}, {tz!r})",
                                  f"datetime {fmt} in {tz}")
        return f"{reader}({unparen(self.compile(args[0], s))})"

    # ----------------------------------------------------------------- operators
    def _binop(self, e: ir.BinOp, s: Scope) -> str:
        op = e.op
        if op == "??":
            v = s.temp()
            left = self.compile(e.left, s)
            right = self.compile(e.right, s)
            # str fast path inline; `present` decides for everything else
            return (f"({v} if ({v} := {left}).__class__ is str and {v}.strip() "
                    f"or {self.k.rt('present')}({v}) else {right})")
        if op in ("and", "or"):
            return f"({self._operand(e.left, s)} {op} {self._operand(e.right, s)})"
        if op in ("in", "not in"):
            needle = self.compile(e.left, s)
            hay = self._const_set(e.right)
            if hay is not None:
                return f"({needle} {op} {hay})"
            expr = f"{self.k.rt('op_in')}({needle}, {self.compile(e.right, s)})"
            return f"(not {expr})" if op == "not in" else expr
        if op in ("==", "!="):
            if _is_text_literal(e.right) or _is_text_literal(e.left) or _int_pair(e.left, e.right, s.valuemaps):
                return f"({self.compile(e.left, s)} {op} {self.compile(e.right, s)})"
            f = "op_eq" if op == "==" else "op_ne"
            return f"{self.k.rt(f)}({self.compile(e.left, s)}, {self.compile(e.right, s)})"
        if op in _CMP:
            return f"{self.k.rt(_CMP[op])}({self.compile(e.left, s)}, {self.compile(e.right, s)})"
        if op == "++":
            parts = []
            stack = [e]
            while stack:  # flatten the (left-associative) chain, keeping operand order
                node = stack.pop()
                if node.kind == "binop" and node.op == "++":
                    stack.extend((node.right, node.left))
                else:
                    parts.append(self._text_part(node, s))
            return "(" + " + ".join(parts) + ")"
        return f"{self.k.rt(_ARITH[op])}({self.compile(e.left, s)}, {self.compile(e.right, s)})"

    def _text_part(self, e, s: Scope) -> str:
        """One operand of `++` as text: literals as is; a field read inline when it is text;
        anything else (null, missing, numbers, dates, computed values) through ``op_concat``,
        which has the conversion rules (kept as one call so the generated line stays readable)."""
        if e.kind == "string":
            return repr(e.value)
        if e.kind != "path":
            return f"{self.k.rt('op_concat')}({unparen(self.compile(e, s))})"
        v = s.temp()
        return (f"({v} if ({v} := {unparen(self.compile(e, s))}).__class__ is str "
                f"else {self.k.rt('op_concat')}({v}))")

    def _const_set(self, e) -> str | None:
        if e.kind != "list" or not e.items:
            return None
        values = []
        for i in e.items:
            if i.kind in ("string", "int", "bool"):
                values.append(i.value)
            elif i.kind == "null":
                values.append(None)
            else:
                return None
        body = ", ".join(py_literal(v) for v in sorted(set(values), key=lambda x: (str(type(x)), str(x))))
        return self.k.const(f"frozenset({{{body}}})")

    def _operand(self, e, s: Scope) -> str:
        """A boolean operand of `and`/`or`/`not`, parenthesised unless it is a call."""
        if is_boolean(e):
            return self.compile(e, s)
        return f"{self.k.rt('truthy')}({unparen(self.compile(e, s))})"

    def _unary(self, e: ir.UnaryOp, s: Scope) -> str:
        if e.op == "not":
            return f"(not {self._operand(e.operand, s)})"
        return f"{self.k.rt('op_neg')}({self.compile(e.operand, s)})"

    def _if(self, e: ir.CondExpr, s: Scope) -> str:
        return (f"({self.compile(e.then, s)} if {self.condition(e.cond, s)} "
                f"else {self.compile(e.otherwise, s)})")

    # ----------------------------------------------------------------- placeholders
    def _ref(self, e: ir.RefExpr, s: Scope) -> str:
        maps = tuple(t.value for t in e.targets)
        return f"{self.k.rt('Ref')}({maps!r}, {self.k.rt('ref_key')}({unparen(self.compile(e.key, s))}))"

    def _owner(self, e: ir.OwnerExpr, s: Scope) -> str:
        return f"{self.k.rt('Owner')}({unparen(self.compile(e.email, s))})"


def _is_text_literal(e) -> bool:
    return e.kind == "string"


_INT_FUNCS = frozenset({"count", "length"})  # always return an int (or raise)


def _int_pair(a, b, valuemaps: dict[str, str]) -> bool:
    """An int literal against `count(...)`/`length(...)`: plain ``==`` is exactly ``op_eq``."""
    def is_int_call(e) -> bool:
        return (e.kind in ("call", "pipe") and e.func.value in _INT_FUNCS
                and e.func.value not in valuemaps)
    return (a.kind == "int" and is_int_call(b)) or (b.kind == "int" and is_int_call(a))


_BOOL_OPS = frozenset({"==", "!=", "<", "<=", ">", ">=", "and", "or", "in", "not in"})


def is_boolean(e) -> bool:
    """The compiled expression always yields a Python bool (so needs no ``truthy``)."""
    if e.kind == "bool":
        return True
    if e.kind == "binop":
        return e.op in _BOOL_OPS
    return e.kind == "unary" and e.op == "not"


# functions that never return MISSING (they are null-aware and always produce a value)
_NEVER_MISSING_FUNCS = frozenset({"count", "concat", "join", "length", "is_missing", "is_email",
                                  "today"})


def may_be_missing(e, valuemaps: dict[str, str] | None = None) -> bool:
    """Whether the value can be MISSING (an assignment of it then writes nothing). Conservative:
    True unless the expression's kind guarantees a value."""
    k = e.kind
    if k in ("string", "int", "decimal", "bool", "null", "date", "datetime", "list", "param",
             "ref", "owner"):
        return False
    if k == "binop":
        if e.op == "??":
            return may_be_missing(e.right, valuemaps)
        return e.op not in _BOOL_OPS and e.op != "++"
    if k == "unary":
        return e.op != "not"
    if k == "if":
        return may_be_missing(e.then, valuemaps) or may_be_missing(e.otherwise, valuemaps)
    if k in ("call", "pipe"):
        return e.func.value not in _NEVER_MISSING_FUNCS or e.func.value in (valuemaps or {})
    return True

