"""`fmap fmt`: print a module in the canonical layout, keeping every comment.

Canonical layout: one declaration per block with a blank line between blocks, two-space indents,
`=` / `->` / field types aligned within a block, at most one blank line kept between statements,
minimal parentheses, strings re-escaped one way. The printer works from the IR, so formatting is
idempotent by construction (`fmt(fmt(x)) == fmt(x)`, tested with hypothesis); comments are placed
by line: a comment on its own line goes before the next thing printed after it, a comment at the
end of a line stays at the end of that statement's line.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from dsl import ir

__all__ = ["format_source", "format_expr", "quote_string", "format_name"]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
KEYWORDS = frozenset(
    "migration source target import param owners reject valuemap error passthrough quarantine "
    "create module object extend required unique external_id sensitive values map merge where "
    "otherwise key split max prefix attach limit oversize skip when mode not test given expect "
    "none if ref owner true false null missing by else as then or and in because".split()
)
# Keywords that cannot be a plain name in expression position (the contextual lexer accepts the
# others there): these must be written in backticks when used as field names.
_EXPR_KEYWORDS = frozenset({"not", "if", "ref", "owner", "true", "false", "null", "missing"})

_BP = {"??": 1, "or": 2, "and": 3, "==": 5, "!=": 5, "<": 5, "<=": 5, ">": 5, ">=": 5,
       "in": 5, "not in": 5, "++": 6, "+": 7, "-": 7, "*": 8, "/": 8, "%": 8}
_NOT_BP = 4


def quote_string(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 32 or ch in "\u2028\u2029\x7f" or 0xD800 <= ord(ch) <= 0xDFFF:
            out.append(f"\\u{{{ord(ch):x}}}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def format_name(n: ir.Name | str, *, expr: bool = False) -> str:
    value = n.value if isinstance(n, ir.Name) else n
    if _IDENT.match(value) and not (expr and value in _EXPR_KEYWORDS):
        return value
    return f"`{value}`"


def _target_name(n: ir.Name) -> str:
    """Target field names: plain, or a "quoted string" when they are not identifiers."""
    if _IDENT.match(n.value) and n.value not in KEYWORDS:
        return n.value
    return quote_string(n.value)


def _lit(e) -> str:
    k = e.kind
    if k == "string":
        return quote_string(e.value)
    if k in ("int", "decimal"):
        return _num(e.value)
    if k == "bool":
        return "true" if e.value else "false"
    if k == "null":
        return "null"
    if k == "missing":
        return "missing"
    if k in ("date", "datetime"):
        return "@" + e.value
    raise AssertionError(k)


def _num(v: int | Decimal) -> str:
    if isinstance(v, Decimal):
        s = format(v, "f")
        return s if "." in s else s + ".0"
    return str(v)


def _bp(e) -> int:
    k = e.kind
    if k == "binop":
        return _BP[e.op]
    if k == "unary":
        return _NOT_BP if e.op == "not" else 9
    if k == "if":
        return 0
    if k in ("int", "decimal") and e.value < 0:
        return 9
    return 100


def format_expr(e, parent_bp: int = 0, right: bool = False) -> str:
    k = e.kind
    if k == "binop":
        bp = _BP[e.op]
        s = f"{format_expr(e.left, bp)} {e.op} {format_expr(e.right, bp, right=True)}"
        return _paren(s, bp, parent_bp, right)
    if k == "unary":
        if e.op == "not":
            return _paren(f"not {format_expr(e.operand, _NOT_BP)}", _NOT_BP, parent_bp, right)
        inner = format_expr(e.operand, 9)
        return _paren(f"-{inner}", 9, parent_bp, right)
    if k == "if":
        s = f"if {format_expr(e.cond)} then {format_expr(e.then)} else {format_expr(e.otherwise)}"
        return f"({s})" if parent_bp > 0 else s
    if k == "pipe":
        value = format_expr(e.value, 10)
        args = _args(e.args, e.kwargs)
        return f"{value} | {format_name(e.func)}" + (f"({args})" if args else "")
    if k == "call":
        return f"{format_name(e.func)}({_args(e.args, e.kwargs)})"
    if k == "ref":
        targets = " | ".join(format_name(t) for t in e.targets)
        return f"ref({targets}, {format_expr(e.key)})"
    if k == "owner":
        return f"owner({format_expr(e.email)})"
    if k == "list":
        return "[" + ", ".join(format_expr(i) for i in e.items) + "]"
    if k == "path":
        out = []
        for i, p in enumerate(e.parts):
            if isinstance(p, int):
                out.append(f"[{p}]")
            else:
                out.append(("." if i else "") + format_name(p, expr=i == 0))
        return "".join(out)
    if k == "param":
        return "$" + e.name
    s = _lit(e)
    if k in ("int", "decimal") and e.value < 0 and parent_bp >= 9:
        return f"({s})"
    return s


def _paren(s: str, bp: int, parent_bp: int, right: bool) -> str:
    if bp < parent_bp or (right and bp == parent_bp):
        return f"({s})"
    return s


def _args(args, kwargs) -> str:
    parts = [format_expr(a) for a in args]
    parts += [f"{format_name(k.name)}={format_expr(k.value)}" for k in kwargs]
    return ", ".join(parts)


def _data(v: Any) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_data_key(k)}: {_data(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_data(x) for x in v) + "]"
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, Decimal)):
        return _num(v)
    return quote_string(str(v))


def _data_key(k: str) -> str:
    return k if _IDENT.match(k) and k not in KEYWORDS else quote_string(k)


class _Printer:
    def __init__(self, module: ir.Module, source: str) -> None:
        self.lines: list[str] = []
        self.src = source.split("\n")
        self.comments = sorted(module.comments, key=lambda c: (c.span.line, c.span.column))
        self.used: set[int] = set()
        src_lines = source.split("\n")
        # a comment is "trailing" when code precedes it on its line
        self.trailing = {
            i for i, c in enumerate(self.comments)
            if c.span.line - 1 < len(src_lines)
            and src_lines[c.span.line - 1][: c.span.column - 1].strip()
        }

    # ---- comments
    def leading(self, before_line: int, indent: str) -> None:
        for i, c in enumerate(self.comments):
            if i in self.used or i in self.trailing:
                continue
            if c.span.line < before_line:
                self.used.add(i)
                self.lines.append(f"{indent}#{c.text.rstrip()}")

    def trail(self, line: int) -> str:
        for i, c in enumerate(self.comments):
            if i in self.trailing and i not in self.used and c.span.line == line:
                self.used.add(i)
                return "  #" + c.text.rstrip()
        return ""

    def rest_trailing(self, upto_line: int, indent: str) -> None:
        """Trailing comments inside a statement that spans lines: keep them, on their own line."""
        for i, c in enumerate(self.comments):
            if i not in self.used and c.span.line <= upto_line:
                self.used.add(i)
                self.lines.append(f"{indent}#{c.text.rstrip()}")

    def emit(self, text: str, node_span, indent: str = "") -> None:
        self.leading(node_span.line, indent)
        self.lines.append(indent + text + self.trail(node_span.end_line))
        self.rest_trailing(node_span.end_line, indent)

    # ---- blocks
    def block(self, header: str, node, rows: list[tuple[Any, list[str]]], close_line: int) -> None:
        """rows: (node, columns) - columns are aligned across consecutive rows."""
        self.leading(node.span.line, "")
        self.lines.append(header + " {" + self.trail(node.span.line))
        widths: list[int] = []
        for _, cols in rows:
            for i, c in enumerate(cols[:-1]):
                if i >= len(widths):
                    widths.append(0)
                widths[i] = max(widths[i], len(c))
        prev_end = node.span.line
        for child, cols in rows:
            if child.span.line > prev_end + 1 and self._blank_between(prev_end, child.span.line):
                self.lines.append("")
            text = " ".join(
                [c.ljust(widths[i]) for i, c in enumerate(cols[:-1])] + [cols[-1]]
            ).rstrip()
            self.emit(text, child.span, "  ")
            prev_end = child.span.end_line
        self.leading(close_line, "  ")
        self.lines.append("}")

    def _blank_between(self, a: int, b: int) -> bool:
        return self.source_blank(a, b)

    def source_blank(self, a: int, b: int) -> bool:
        return any(not self.src[i - 1].strip() for i in range(a + 1, b) if 0 < i <= len(self.src))


# Line declarations of one group are printed without blank lines between them.
_GROUP = {"migration": "header", "source": "header", "target": "header", "owners": "param_decl"}


def format_source(module: ir.Module, source: str) -> str:
    p = _Printer(module, source)
    prev_kind: str | None = None
    closes = _closing_lines(module, source)
    for d in module.body:
        kind = _GROUP.get(d.kind, d.kind)
        block = kind in ("valuemap", "schema", "map", "merge", "test")
        if p.lines and (block or kind != prev_kind or prev_kind in
                        ("valuemap", "schema", "map", "merge", "test")):
            p.lines.append("")
        _decl(p, d, closes.get(id(d), d.span.end_line))
        prev_kind = kind
    p.leading(10**9, "")
    text = "\n".join(p.lines).rstrip("\n")
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text + "\n"


def _closing_lines(module: ir.Module, source: str) -> dict[int, int]:
    """The line of each block's closing `}` (the IR span ends at the header), found as the line
    before the next declaration's first line or comment."""
    out: dict[int, int] = {}
    lines = source.split("\n")
    body = module.body
    for i, d in enumerate(body):
        nxt = body[i + 1].span.line if i + 1 < len(body) else len(lines) + 1
        close = d.span.line
        for ln in range(nxt - 1, d.span.line - 1, -1):
            if 0 < ln <= len(lines) and lines[ln - 1].strip().startswith("}") or (
                0 < ln <= len(lines) and lines[ln - 1].rstrip().endswith("}")
            ):
                close = ln
                break
        out[id(d)] = close
    return out


def _decl(p: _Printer, d, close_line: int) -> None:
    k = d.kind
    if k == "migration":
        p.emit(f"migration {quote_string(d.title)}", d.span)
    elif k == "source":
        extra = f" {quote_string(d.schema_path)}" if d.schema_path else ""
        p.emit(f"source {format_name(d.name)}{extra}", d.span)
    elif k == "target":
        opts = ", ".join(f"{format_name(o.name)}={format_expr(o.value)}" for o in d.options)
        extra = f" {quote_string(d.schema_path)}" if d.schema_path else ""
        p.emit(f"target {format_name(d.name)}" + (f"({opts})" if opts else "") + extra, d.span)
    elif k == "import":
        p.emit(f"import {quote_string(d.path)}", d.span)
    elif k == "param_decl":
        p.emit(f"param {format_name(d.name)} = {format_expr(d.default)}", d.span)
    elif k == "owners":
        fb = "reject" if d.reject else format_expr(d.fallback)
        p.emit(f"owners by {format_name(d.by)} else {fb}", d.span)
    elif k == "not_migrated":
        subject = d.subject if all(_IDENT.match(x) for x in d.subject.split(".")) else quote_string(d.subject)
        p.emit(f"not migrated {subject} {quote_string(d.reason)}", d.span)
    elif k == "valuemap":
        rows = [(e, [", ".join(_lit(x) for x in e.keys), "->", format_expr(e.value)])
                for e in d.entries]
        if d.unmapped is not None:
            u = d.unmapped
            val = format_expr(u.default) if u.policy == "default" else u.policy
            rows.append((u, ["_", "->", val]))
        p.block(f"valuemap {format_name(d.name)}", d, rows, close_line)
    elif k == "schema":
        if d.action == "extend":
            header = f"extend {format_name(d.name)}"
        else:
            header = f"create {d.action} {format_name(d.name)}"
            if d.label:
                header += f" {quote_string(d.label)}"
        rows = []
        for f in d.fields:
            t = format_name(f.type.name)
            if f.type.args:
                t += "(" + ", ".join(
                    str(a) if isinstance(a, int) else (a if _IDENT.match(a) else quote_string(a))
                    for a in f.type.args) + ")"
            mods = []
            if f.required:
                mods.append("required")
            if f.unique:
                mods.append("unique")
            if f.external_id:
                mods.append("external_id")
            if f.sensitive:
                mods.append("sensitive")
            if f.values:
                mods.append("values [" + ", ".join(format_expr(v) for v in f.values) + "]")
            if f.label:
                mods.append(quote_string(f.label))
            rows.append((f, [format_name(f.name), t, " ".join(mods)]))
        p.block(header, d, rows, close_line)
    elif k in ("map", "merge"):
        if k == "map":
            header = f"map {_source(d.source)} -> {format_name(d.target)}"
            if d.alias is not None:
                header += f" as {format_name(d.alias)}"
            if d.route is not None:
                header += (" otherwise" if d.route.mode == "otherwise"
                           else f" where {format_expr(d.route.cond)}")
        else:
            header = f"merge {_source(d.source)} -> {format_name(d.target)} by {format_expr(d.by)}"
        p.block(header, d, [(s, _stmt(s)) for s in d.body], close_line)
    elif k == "test":
        p.leading(d.span.line, "")
        p.lines.append(f"test {quote_string(d.name)} {{" + p.trail(d.span.line))
        for g in d.givens:
            data = g.records[0] if len(g.records) == 1 else g.records
            p.emit(f"given {_source(g.source)} {_data(data)}", g.span, "  ")
        for e in d.expects:
            if e.mode == "none":
                p.emit(f"expect {format_name(e.target)} none", e.span, "  ")
            elif e.mode == "quarantine":
                msg = f" {quote_string(e.message)}" if e.message else ""
                p.emit(f"expect quarantine{msg}", e.span, "  ")
            else:
                p.leading(e.span.line, "  ")
                p.lines.append(f"  expect {format_name(e.target)} {{" + p.trail(e.span.line))
                width = max((len(_target_name(a.target)) for a in e.fields), default=0)
                for a in e.fields:
                    p.emit(f"{_target_name(a.target).ljust(width)} = {format_expr(a.value)}",
                           a.span, "    ")
                p.lines.append("  }")
        p.leading(close_line, "  ")
        p.lines.append("}")


def _source(sp: ir.SourcePath) -> str:
    return format_name(sp.parts[0]) + "".join(f".{format_name(x)}[]" for x in sp.parts[1:])


def _stmt(s) -> list[str]:
    k = s.kind
    if k == "assign":
        return [_target_name(s.target), "=", format_expr(s.value)]
    if k == "key":
        return [f"key {format_expr(s.value)}"]
    if k == "split":
        prefix = f" prefix {quote_string(s.prefix)}" if s.prefix is not None else ""
        return [f"split {_target_name(s.target)} max {s.max}{prefix}"]
    if k == "attach":
        out = f"attach {format_expr(s.path)}"
        if s.file_name is not None:
            out += f" as {format_expr(s.file_name)}"
        if s.limit_text:
            out += f" limit {s.limit_text}"
        if s.oversize is not None:
            out += f" oversize {format_name(s.oversize)}"
        return [out]
    if k == "skip":
        reason = f" because {quote_string(s.reason)}" if s.reason else ""
        return [f"skip when {format_expr(s.cond)}{reason}"]
    if k == "sensitive":
        return ["sensitive " + ", ".join(_target_name(f) for f in s.fields)]
    if k == "mode":
        return [f"mode {format_name(s.mode)}"]
    raise AssertionError(k)
