"""The grammar itself: conflict-free under Lark's strict mode, and keywords that stay usable as
field names wherever the parser does not expect the keyword (the lexer is contextual)."""

from __future__ import annotations

import pytest
from lark import Lark

from dsl import ir
from dsl.lexer import KEYWORDS
from dsl.parser import get_parser, parse_text


def test_grammar_builds_in_strict_mode():
    # strict=True turns shift/reduce conflicts and terminal collisions into errors, so a grammar
    # change that introduces a conflict fails here instead of silently picking a parse.
    parser = Lark.open_from_package("grammar", "fmap.lark", ("",), parser="lalr", strict=True)
    assert parser.parse('migration "x"\nsource a\ntarget zoho\n') is not None


def test_lexer_keyword_table_matches_grammar_terminals():
    parser, _ = get_parser()
    literal = {t.name: t.pattern.value for t in parser.terminals
               if t.pattern.type == "str" and t.pattern.value.isidentifier()}
    assert {v: k for k, v in literal.items()} == KEYWORDS


def test_parser_built_once():
    assert get_parser() is get_parser()


# A source field spelled like a keyword is a plain path where an expression is expected.
FIELD_KEYWORDS = [
    "source", "target", "key", "error", "values", "map", "merge", "limit", "max", "mode", "split",
    "test", "given", "expect", "none", "where", "otherwise", "skip", "when", "attach", "param",
    "prefix", "oversize", "reject", "passthrough", "quarantine", "module", "object", "create",
    "extend", "required", "unique", "external_id", "sensitive", "migration", "import", "owners",
    "valuemap", "by", "as", "else", "then", "because", "in", "and", "or",
]
CONTEXTS = {
    "assign": "  X = {kw}\n",
    "pipe": "  X = {kw} | trim\n",
    "dotted": "  X = {kw}.inner\n",
    "arg": "  X = coalesce({kw}, \"\")\n",
    "operand": "  X = a ++ {kw}\n",
    "key": "  key {kw}\n",
}


@pytest.mark.parametrize("context", CONTEXTS, ids=list(CONTEXTS))
@pytest.mark.parametrize("kw", FIELD_KEYWORDS, ids=FIELD_KEYWORDS)
def test_keyword_named_field_parses_as_path(kw, context):
    src = "map a -> B {\n" + CONTEXTS[context].format(kw=kw) + "}\n"
    r = parse_text(src)
    assert r.diagnostics == [], [str(d) for d in r.diagnostics]
    (om,) = r.module.maps
    stmt = om.body[0]
    expr = stmt.value
    paths = [e for e in _walk(expr) if isinstance(e, ir.PathExpr)]
    assert any(p.head == kw for p in paths), expr


def _walk(e):
    from dsl.walk import walk
    return list(walk(e))


@pytest.mark.parametrize("kw", ["source", "key", "error", "values"])
def test_keyword_named_field_in_where_and_skip(kw):
    src = (f"map a -> B where {kw} == 1 {{\n  key id\n  skip when {kw} != null\n}}\n"
           f"map a -> C otherwise {{\n  key id\n}}\n")
    r = parse_text(src)
    assert r.diagnostics == []
    route = r.module.maps[0].route.cond
    assert route.left.head == kw


@pytest.mark.parametrize("kw", ["not", "if", "ref", "owner", "true", "false", "null", "missing"])
def test_expression_keywords_need_backticks(kw):
    bare = parse_text(f"map a -> B {{\n  X = {kw}\n}}\n")
    if kw in ("true", "false", "null", "missing"):  # a literal, not a field
        assert bare.module.maps[0].body[0].value.kind in ("bool", "null", "missing")
    else:
        assert bare.diagnostics
    r = parse_text(f"map a -> B {{\n  X = `{kw}`\n}}\n")
    assert r.diagnostics == []
    name = r.module.maps[0].body[0].value.parts[0]
    assert (name.value, name.quoted) == (kw, True)


def test_keyword_prefix_is_not_a_keyword():
    # `mapping` is one name, never `map` followed by `ping`
    r = parse_text("mapping -> B {\n}\n")
    assert [d.code for d in r.diagnostics] == ["FM106"]
    assert r.diagnostics[0].message == "unknown keyword `mapping`"
    r = parse_text("map clinics -> Accounts {\n  key id\n}\nmapclinics -> X {\n}\n")
    assert [(d.code, d.span.line) for d in r.diagnostics] == [("FM106", 4)]


def test_not_in_and_not_migrated_are_one_token_only_where_expected():
    r = parse_text("map a -> B {\n  X = a not in [1]\n  Y = not in_list\n}\nnot migrated x \"y\"\n")
    assert r.diagnostics == []
    x, y = r.module.maps[0].body
    assert x.value.op == "not in"
    assert (y.value.kind, y.value.op, y.value.operand.head) == ("unary", "not", "in_list")
    assert r.module.first(ir.NotMigrated).subject == "x"


def test_size_only_after_limit():
    r = parse_text("map a -> B {\n  key id\n  X = 25\n  attach p limit 25 MB\n}\n")
    assert r.diagnostics == []
    x, att = r.module.maps[0].body[1:]
    assert x.value.value == 25
    assert (att.limit_bytes, att.limit_text) == (25 * 1024 * 1024, "25MB")
