"""Parse tree -> IR: the one explicit Lark Transformer.

It runs inside the LALR parser (``Lark(..., transformer=...)``), so no intermediate tree is built.
Spans come from tokens (keyword terminals are named so their tokens reach us), not from
``propagate_positions``, which halves parsing speed. Nodes are built with ``model_construct``:
the transformer is the only producer and its output shape is tested, so re-validating every node
would only cost time (PERFORMANCE.md: per-node validation dominates otherwise).
"""

from __future__ import annotations

import re
import threading
from decimal import Decimal
from typing import Any

from lark import Token, Transformer, v_args

from dsl import ir
from dsl.codes import diag
from dsl.diagnostics import Diagnostic
from dsl.span import Span, make_span

__all__ = ["IRBuilder", "unescape_string", "SIZE_UNITS", "MAX_EXPR_DEPTH", "ExprTooDeep"]

# Deeper expressions are refused at parse time (FM005), so no later stage (checks, formatter,
# model_dump, code generation) can hit Python's recursion limit or pydantic's serialisation depth
# limit. A real mapping's deepest expression is ~10 levels; 5,000 `++` in a row is an attack.
MAX_EXPR_DEPTH = 100


class ExprTooDeep(Exception):
    """An expression nests deeper than MAX_EXPR_DEPTH (becomes an FM005 diagnostic)."""

    def __init__(self, span: Span) -> None:
        super().__init__(f"expression nested more than {MAX_EXPR_DEPTH} deep at {span}")
        self.span = span

SIZE_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "0": "\0"}
_ESCAPE_RE = re.compile(r"\\(u\{[0-9A-Fa-f]{1,6}\}|.)", re.S)


def unescape_string(raw: str) -> str:
    """Decode the body of a STRING token (quotes included). Supported escapes: \\n \\t \\r \\" \\\\ \\0
    and \\u{hex}; any other backslash pair is kept as written."""
    body = raw[1:-1]
    if "\\" not in body:
        return body

    def sub(m: re.Match) -> str:
        esc = m.group(1)
        if esc.startswith("u{"):
            cp = int(esc[2:-1], 16)
            return chr(cp) if cp <= 0x10FFFF and not 0xD800 <= cp <= 0xDFFF else m.group(0)
        return _ESCAPES.get(esc, m.group(0))

    return _ESCAPE_RE.sub(sub, body)


class _State(threading.local):
    file: str = "<input>"
    line_offset: int = 0
    diags: list[Diagnostic]
    depth: dict[int, int]  # id(expression node) -> nesting depth, for nodes deeper than 1

    def __init__(self) -> None:
        self.diags = []
        self.depth = {}


_DEFAULTS: dict[type, dict[str, Any]] = {}


def _defaults(cls) -> dict[str, Any]:
    d = _DEFAULTS.get(cls)
    if d is None:
        d = {}
        for fname, f in cls.model_fields.items():
            if f.default_factory is None and not f.is_required():
                d[fname] = f.default
        _DEFAULTS[cls] = d
    return d


_new = object.__new__
_set = object.__setattr__


def _mk(cls, **kw):
    """Build a pydantic model without validation or per-field default lookups: the IR builder is
    the only producer and passes every list field explicitly. About 6x cheaper than
    ``model_construct``, which dominated the parse profile."""
    obj = _new(cls)
    d = _DEFAULTS.get(cls)
    if d is None:
        d = _defaults(cls)
    _set(obj, "__dict__", {**d, **kw} if d else kw)
    _set(obj, "__pydantic_fields_set__", set(kw))
    _set(obj, "__pydantic_extra__", None)
    _set(obj, "__pydantic_private__", None)
    return obj


@v_args(inline=True)
class IRBuilder(Transformer):
    """Builds IR nodes. Per-parse state (file name, line offset of the chunk being parsed, and
    diagnostics found while building) lives in a thread-local so one parser instance serves all."""

    def __init__(self) -> None:
        super().__init__(visit_tokens=False)
        self.state = _State()

    # -------------------------------------------------------------- spans
    def _tok_span(self, t: Token) -> Span:
        off = self.state.line_offset
        return make_span(self.state.file, t.line + off, t.column, t.end_line + off, t.end_column)

    def _span_of(self, x: Any) -> Span | None:
        if isinstance(x, Token):
            return self._tok_span(x)
        if isinstance(x, ir.Node):
            return x.span
        if isinstance(x, tuple) and x and isinstance(x[-1], Span):
            return x[-1]
        if isinstance(x, list):
            spans = [s for s in (self._span_of(i) for i in x) if s is not None]
            return spans[0].cover(spans[-1]) if spans else None
        return None

    def _span(self, *items: Any) -> Span:
        first = last = None
        for it in items:
            s = self._span_of(it)
            if s is None:
                continue
            if first is None:
                first = s
            last = s
        assert first is not None, "a construct with no tokens"
        return first.cover(last)

    def _diag(self, *args, **kw) -> None:
        self.state.diags.append(diag(*args, **kw))

    def _nest(self, node, *kids):
        """Record the nesting depth of a composite expression node; refuse runaway depth."""
        depth = self.state.depth
        d = 1 + max([depth.get(id(k), 1) for k in kids], default=1)
        if d > MAX_EXPR_DEPTH:
            raise ExprTooDeep(node.span)
        depth[id(node)] = d
        return node

    # -------------------------------------------------------------- module
    def start(self, *items):
        return list(items)

    # -------------------------------------------------------------- names and literals
    def name(self, tok: Token) -> ir.Name:
        if tok.type == "QNAME":
            return _mk(ir.Name, span=self._tok_span(tok), value=tok.value[1:-1], quoted=True)
        return _mk(ir.Name, span=self._tok_span(tok), value=tok.value, quoted=False)

    def string(self, tok):
        return _mk(ir.StringLit, span=self._tok_span(tok), value=unescape_string(tok.value))

    def int_(self, tok):
        return _mk(ir.IntLit, span=self._tok_span(tok), value=int(tok.value))

    def decimal(self, tok):
        return _mk(ir.DecimalLit, span=self._tok_span(tok), value=Decimal(tok.value))

    def true(self, tok):
        return _mk(ir.BoolLit, span=self._tok_span(tok), value=True)

    def false(self, tok):
        return _mk(ir.BoolLit, span=self._tok_span(tok), value=False)

    def null(self, tok):
        return _mk(ir.NullLit, span=self._tok_span(tok))

    def missing(self, tok):
        return _mk(ir.MissingLit, span=self._tok_span(tok))

    def date(self, tok):
        return _mk(ir.DateLit, span=self._tok_span(tok), value=tok.value[1:])

    def datetime(self, tok):
        return _mk(ir.DateTimeLit, span=self._tok_span(tok), value=tok.value[1:])

    # -------------------------------------------------------------- expressions
    def path(self, *parts):
        out: list[ir.Name | int] = []
        for p in parts:
            out.append(int(p.value) if isinstance(p, Token) else p)
        return _mk(ir.PathExpr, span=self._span(*parts), parts=out)

    def param_ref(self, tok):
        return _mk(ir.ParamRef, span=self._tok_span(tok), name=tok.value[1:])

    def list_lit(self, lbrack, *rest):
        # keep_all_tokens rule: `[`, items separated by `,` tokens, `]`
        items_ = [self._expr(i) for i in rest if i is not None and not isinstance(i, Token)]
        return self._nest(_mk(ir.ListExpr,
                              span=self._tok_span(lbrack).cover(self._tok_span(rest[-1])),
                              items=items_), *items_)

    def args(self, *args):
        return list(args)

    def pos_arg(self, expr):
        return self._expr(expr)

    def kw_arg(self, name, expr):
        expr = self._expr(expr)
        return self._nest(_mk(ir.KwArg, span=self._span(name, expr), name=name, value=expr), expr)

    kwarg = kw_arg

    @staticmethod
    def _split_args(args) -> tuple[list, list]:
        pos, kws = [], []
        for a in args or []:
            (kws if isinstance(a, ir.KwArg) else pos).append(a)
        return pos, kws

    def call(self, name, args=None):
        pos, kws = self._split_args(args)
        return self._nest(_mk(
            ir.Call, span=self._span(name, args or []), func=name, args=pos, kwargs=kws
        ), *pos, *kws)

    def pipe_call(self, name):
        return (name, [], [], False, name.span)

    def pipe_call_parens(self, name, args=None):
        pos, kws = self._split_args(args)
        return (name, pos, kws, True, self._span(name, args or []))

    def pipe(self, value, call):
        name, pos, kws, parens, span = call
        value = self._expr(value)
        return self._nest(_mk(
            ir.Pipe, span=value.span.cover(span), value=value, func=name, args=pos,
            kwargs=kws, has_parens=parens,
        ), value, *pos, *kws)

    def ref_call(self, kw, *rest):
        *names, key = rest
        key = self._expr(key)
        return self._nest(_mk(ir.RefExpr, span=self._span(kw, key), targets=list(names), key=key),
                          key)

    def owner_call(self, kw, expr):
        expr = self._expr(expr)
        return self._nest(_mk(ir.OwnerExpr, span=self._span(kw, expr), email=expr), expr)

    @staticmethod
    def _expr(x):
        """Every expression arrives as an IR node (lists included, see `list_lit`)."""
        return x

    def _bin(self, op, a, b):
        a, b = self._expr(a), self._expr(b)
        return self._nest(_mk(ir.BinOp, span=a.span.cover(b.span), op=op, left=a, right=b), a, b)

    # Binding powers for precedence climbing over the flat `binary` sequence. Higher binds
    # tighter; `not` is a prefix operator between `and` and the comparisons, as in Python.
    _BP = {
        "QQ": 1, "OR": 2, "AND": 3, "COMP_OP": 5, "IN": 5, "NOT_IN": 5, "CONCAT": 6,
        "PLUS": 7, "MINUS": 7, "MUL_OP": 8,
    }
    _NOT_BP = 4
    _OPS = {"QQ": "??", "OR": "or", "AND": "and", "IN": "in", "NOT_IN": "not in", "CONCAT": "++"}

    def binary(self, *items):
        toks = list(items)
        pos = 0

        def operand():
            nonlocal pos
            item = toks[pos]
            if isinstance(item, Token) and item.type == "NOT":
                pos += 1
                inner = climb(self._NOT_BP)
                return self._nest(_mk(ir.UnaryOp, span=self._tok_span(item).cover(inner.span),
                                      op="not", operand=inner), inner)
            pos += 1
            return self._expr(item)

        def climb(min_bp: int):
            nonlocal pos
            left = operand()
            while pos < len(toks):
                op = toks[pos]
                bp = self._BP[op.type]
                if bp <= min_bp:
                    break
                pos += 1
                right = climb(bp)
                name = self._OPS.get(op.type) or " ".join(op.value.split())
                left = self._nest(_mk(ir.BinOp, span=left.span.cover(right.span), op=name,
                                      left=left, right=right), left, right)
            return left

        return climb(0)

    def neg(self, minus, x):
        x = self._expr(x)
        span = self._tok_span(minus).cover(x.span)
        if isinstance(x, ir.IntLit):
            return _mk(ir.IntLit, span=span, value=-x.value)
        if isinstance(x, ir.DecimalLit):
            return _mk(ir.DecimalLit, span=span, value=-x.value)
        return self._nest(_mk(ir.UnaryOp, span=span, op="-", operand=x), x)

    def cond(self, kw, c, t, e):
        c, t, e = self._expr(c), self._expr(t), self._expr(e)
        return self._nest(_mk(ir.CondExpr, span=self._span(kw, e), cond=c, then=t, otherwise=e),
                          c, t, e)

    # -------------------------------------------------------------- header
    def migration_decl(self, kw, s):
        return _mk(ir.MigrationDecl, span=self._span(kw, s), title=unescape_string(s.value))

    def source_decl(self, kw, name, path=None):
        return _mk(
            ir.SourceDecl, span=self._span(kw, name, path), name=name,
            schema_path=unescape_string(path.value) if path is not None else None,
        )

    def target_decl(self, kw, name, *rest):
        opts = [r for r in rest if isinstance(r, ir.KwArg)]
        paths = [r for r in rest if isinstance(r, Token)]
        return _mk(
            ir.TargetDecl, span=self._span(kw, name, *rest), name=name, options=opts,
            schema_path=unescape_string(paths[0].value) if paths else None,
        )

    def import_decl(self, kw, s):
        return _mk(ir.ImportDecl, span=self._span(kw, s), path=unescape_string(s.value))

    def param_decl(self, kw, name, expr):
        expr = self._expr(expr)
        return _mk(ir.ParamDecl, span=self._span(kw, expr), name=name, default=expr)

    def owner_reject(self, tok):
        return ("reject", None, self._tok_span(tok))

    def owner_default(self, expr):
        expr = self._expr(expr)
        return ("default", expr, expr.span)

    def owners_decl(self, kw, by, fallback):
        mode, expr, span = fallback
        return _mk(
            ir.OwnersDecl, span=self._tok_span(kw).cover(span), by=by,
            reject=mode == "reject", fallback=expr,
        )

    # -------------------------------------------------------------- value maps
    def vm_key(self, lit):
        return lit

    def vm_case(self, *items):
        *keys, value = items
        value = self._expr(value)
        return _mk(ir.ValueMapEntry, span=self._span(keys[0], value), keys=keys, value=value)

    def policy_error(self, tok):
        return ("error", None, self._tok_span(tok))

    def policy_passthrough(self, tok):
        return ("passthrough", None, self._tok_span(tok))

    def policy_quarantine(self, tok):
        return ("quarantine", None, self._tok_span(tok))

    def policy_default(self, expr):
        expr = self._expr(expr)
        return ("default", expr, expr.span)

    def vm_unmapped(self, us, policy):
        mode, expr, span = policy
        return _mk(
            ir.UnmappedPolicy, span=self._tok_span(us).cover(span), policy=mode, default=expr
        )

    def valuemap_decl(self, kw, name, *items):
        entries = [i for i in items if isinstance(i, ir.ValueMapEntry)]
        policies = [i for i in items if isinstance(i, ir.UnmappedPolicy)]
        for extra in policies[1:]:
            self._diag(
                "FM208", "value map has more than one `_ ->` (unmapped) entry", extra.span,
                hint="keep one `_ -> ...` line", related=[(policies[0].span, "first one here")],
            )
        return _mk(
            ir.ValueMapDecl, span=self._span(kw, name, *items), name=name, entries=entries,
            unmapped=policies[0] if policies else None,
        )

    # -------------------------------------------------------------- custom schema
    def type_arg_int(self, tok):
        return int(tok.value)

    def type_arg_name(self, name):
        return name.value

    def type_arg_str(self, tok):
        return unescape_string(tok.value)

    def type_spec(self, name, *args):
        vals = [a for a in args if a is not None]
        return _mk(ir.TypeSpec, span=name.span, name=name, args=vals)

    def mod_required(self, tok):
        return ("required", True, self._tok_span(tok))

    def mod_unique(self, tok):
        return ("unique", True, self._tok_span(tok))

    def mod_external_id(self, tok):
        return ("external_id", True, self._tok_span(tok))

    def mod_sensitive(self, tok):
        return ("sensitive", True, self._tok_span(tok))

    def mod_label(self, tok):
        return ("label", unescape_string(tok.value), self._tok_span(tok))

    def mod_values(self, kw, lst):
        lst = self._expr(lst)
        return ("values", lst.items, self._tok_span(kw).cover(lst.span))

    def field_decl(self, name, type_spec, *mods):
        kw: dict[str, Any] = {}
        for key, value, _span in mods:
            kw[key] = value
        return _mk(
            ir.FieldDecl, span=self._span(name, type_spec, *mods), name=name, type=type_spec,
            label=kw.get("label"), required=kw.get("required", False),
            unique=kw.get("unique", False), external_id=kw.get("external_id", False),
            sensitive=kw.get("sensitive", False), values=kw.get("values", []),
        )

    def create_decl(self, kw, kind_tok, name, label, *fields):
        return _mk(
            ir.SchemaDecl, span=self._span(kw, name, *fields), action=kind_tok.value, name=name,
            label=unescape_string(label.value) if label is not None else None,
            fields=list(fields),
        )

    def extend_decl(self, kw, name, *fields):
        return _mk(
            ir.SchemaDecl, span=self._span(kw, name, *fields), action="extend", name=name,
            label=None, fields=list(fields),
        )

    # -------------------------------------------------------------- maps
    def source_path(self, *names):
        return _mk(ir.SourcePath, span=self._span(*names), parts=list(names))

    def route_where(self, kw, expr):
        expr = self._expr(expr)
        return _mk(ir.Route, span=self._span(kw, expr), mode="where", cond=expr)

    def route_otherwise(self, kw):
        return _mk(ir.Route, span=self._tok_span(kw), mode="otherwise", cond=None)

    def map_decl(self, kw, source, target, alias, route, *stmts):
        return _mk(
            ir.ObjectMap, span=self._span(kw, target, alias, route), source=source,
            target=target, alias=alias, route=route, body=list(stmts), notes=[],
        )

    def merge_decl(self, kw, source, target, by, *stmts):
        by = self._expr(by)
        return _mk(
            ir.MergeMap, span=self._span(kw, target, by), source=source, target=target, by=by,
            body=list(stmts), notes=[],
        )

    def key_stmt(self, kw, expr):
        expr = self._expr(expr)
        return _mk(ir.KeyStmt, span=self._span(kw, expr), value=expr)

    def target_name(self, x):
        if isinstance(x, Token):  # "quoted target name"
            return _mk(ir.Name, span=self._tok_span(x), value=unescape_string(x.value), quoted=True)
        return x

    def assign_stmt(self, target, expr):
        expr = self._expr(expr)
        return _mk(ir.Assign, span=target.span.cover(expr.span), target=target, value=expr)

    def split_stmt(self, kw, target, _max, n, _prefix=None, prefix=None):
        return _mk(
            ir.SplitStmt, span=self._span(kw, target, n, prefix), target=target,
            max=int(n.value), prefix=unescape_string(prefix.value) if prefix is not None else None,
        )

    def attach_name(self, expr):
        expr = self._expr(expr)
        return ("file_name", expr, expr.span)

    def attach_limit(self, kw, size):
        text = size.value.replace(" ", "")
        m = re.fullmatch(r"(\d+(?:\.\d+)?)(KB|MB|GB|B)", text)
        assert m is not None
        n = Decimal(m.group(1)) * SIZE_UNITS[m.group(2)]
        return ("limit", (int(n), text), self._span(kw, size))

    def attach_oversize(self, kw, name):
        return ("oversize", name, self._span(kw, name))

    def attach_stmt(self, kw, path, *opts):
        path = self._expr(path)
        kw_: dict[str, Any] = {}
        for key, value, _span in opts:
            kw_[key] = value
        limit = kw_.get("limit")
        return _mk(
            ir.AttachStmt, span=self._span(kw, path, *opts), path=path,
            file_name=kw_.get("file_name"), limit_bytes=limit[0] if limit else None,
            limit_text=limit[1] if limit else None, oversize=kw_.get("oversize"),
        )

    def skip_stmt(self, kw, _when, expr, reason=None):
        expr = self._expr(expr)
        return _mk(
            ir.SkipStmt, span=self._span(kw, expr, reason), cond=expr,
            reason=unescape_string(reason.value) if reason is not None else None,
        )

    def sensitive_stmt(self, kw, *names):
        return _mk(ir.SensitiveStmt, span=self._span(kw, *names), fields=list(names))

    def mode_stmt(self, kw, name):
        return _mk(ir.ModeStmt, span=self._span(kw, name), mode=name)

    # -------------------------------------------------------------- not migrated
    def dotted_name(self, *names):
        return (".".join(n.value for n in names), self._span(*names))

    def not_migrated_subject(self, x):
        if isinstance(x, Token):
            return (unescape_string(x.value), self._tok_span(x))
        return x

    def not_migrated_decl(self, kw, subject, reason):
        text, _span = subject
        return _mk(
            ir.NotMigrated, span=self._span(kw, reason), subject=text,
            reason=unescape_string(reason.value),
        )

    # -------------------------------------------------------------- tests
    def _plain(self, x):
        """Test data to plain Python values (what a source connector would yield)."""
        if isinstance(x, tuple) and x and x[0] == "record":
            return x[1]
        if isinstance(x, tuple) and x and x[0] == "records":
            return x[1]
        if isinstance(x, ir.MissingLit):
            return ir.MissingLit  # marker: the key is omitted from the record
        if isinstance(x, ir.NullLit):
            return None
        if isinstance(x, (ir.StringLit, ir.IntLit, ir.DecimalLit, ir.BoolLit, ir.DateLit,
                          ir.DateTimeLit)):
            return x.value
        raise AssertionError(f"unexpected test data {x!r}")

    def neg_int(self, minus, tok):
        return _mk(ir.IntLit, span=self._span(minus, tok), value=-int(tok.value))

    def neg_decimal(self, minus, tok):
        return _mk(ir.DecimalLit, span=self._span(minus, tok), value=-Decimal(tok.value))

    def record_item(self, key, value):
        if isinstance(key, Token):
            k, span = unescape_string(key.value), self._tok_span(key)
        else:
            k, span = key.value, key.span
        return (k, self._plain(value), span)

    def record_lit(self, *items):
        rec: dict[str, Any] = {}
        seen: dict[str, Span] = {}
        for item in items:
            if item is None:
                continue
            k, v, span = item
            if k in seen:
                self._diag(
                    "FM219", f"field `{k}` appears twice in this test record", span,
                    hint="remove one of them", related=[(seen[k], "first one here")],
                )
                continue
            seen[k] = span
            if v is not ir.MissingLit:
                rec[k] = v
        return ("record", rec)

    def record_list(self, *items):
        return ("records", [self._plain(i) for i in items if i is not None])

    def given_stmt(self, kw, source, data):
        kind, value = data
        records = [value] if kind == "record" else value
        return _mk(ir.Given, span=self._span(kw, source), source=source, records=records)

    def expect_field(self, target, expr):
        return self.assign_stmt(target, expr)

    def expect_record(self, kw, name, *fields):
        return _mk(
            ir.Expect, span=self._span(kw, name), mode="record", target=name,
            fields=list(fields), message=None,
        )

    def expect_none(self, kw, name, none_tok):
        return _mk(
            ir.Expect, span=self._span(kw, none_tok), mode="none", target=name, fields=[],
            message=None,
        )

    def expect_quarantine(self, kw, q, message=None):
        return _mk(
            ir.Expect, span=self._span(kw, q, message), mode="quarantine", target=None,
            fields=[], message=unescape_string(message.value) if message is not None else None,
        )

    def test_decl(self, kw, name, *items):
        givens = [i for i in items if isinstance(i, ir.Given)]
        expects = [i for i in items if isinstance(i, ir.Expect)]
        return _mk(
            ir.TestDecl, span=self._span(kw, name), name=unescape_string(name.value),
            givens=givens, expects=expects,
        )
