"""`fmap fmt`: idempotent, IR-preserving, comment-preserving; strings and expressions round-trip."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

from dsl.formatter import format_expr, format_source, quote_string
from dsl.lexer import KEYWORDS
from dsl.parser import parse_text

FIXTURE_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "fmap"
FIXTURES = sorted(FIXTURE_DIR.glob("*.fmap"))


class FmapSnapshot(SingleFileSnapshotExtension):
    file_extension = "fmap"
    _file_extension = "fmap"  # syrupy < 5
    _write_mode = WriteMode.TEXT


def fmt(src: str) -> str:
    r = parse_text(src, "f.fmap")
    assert not [d for d in r.diagnostics if d.severity.value == "error"], r.diagnostics
    return format_source(r.module, src)


def ir_of(src: str):
    """The IR without positions and without `quoted` (which only records whether a name was
    written in backticks/quotes: the formatter drops redundant ones, the name is the same)."""
    r = parse_text(src, "f.fmap")
    assert not [d for d in r.diagnostics if d.severity.value == "error"], r.diagnostics
    return _unquoted(strip_spans(r.module.model_dump(mode="json")))


def _unquoted(obj):
    if isinstance(obj, dict):
        return {k: _unquoted(v) for k, v in obj.items() if k != "quoted"}
    if isinstance(obj, list):
        return [_unquoted(v) for v in obj]
    return obj


def strip_spans(obj):
    if isinstance(obj, dict):
        return {k: strip_spans(v) for k, v in obj.items() if k not in ("span", "file")}
    if isinstance(obj, list):
        return [strip_spans(v) for v in obj]
    return obj


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_fixture_idempotent(path):
    once = fmt(path.read_text())
    assert fmt(once) == once


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_fixture_ir_unchanged(path):
    src = path.read_text()
    assert ir_of(fmt(src)) == ir_of(src)


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_fixture_comments_kept(path):
    src = path.read_text()
    before = parse_text(src).module.comments
    after = parse_text(fmt(src)).module.comments
    assert [c.text.rstrip() for c in after] == [c.text.rstrip() for c in before]


def test_formatted_example(snapshot):
    src = (FIXTURE_DIR / "example.fmap").read_text()
    assert fmt(src) == snapshot(extension_class=FmapSnapshot)


def test_redundant_backticks_dropped_needed_ones_kept():
    src = 'map a -> B {\n  key id\n  X = `key` ++ `First Name` ++ `not` ++ `null`\n  "Y" = 1\n  "Z z" = 2\n}\n'
    out = fmt(src)
    assert out == ('map a -> B {\n  key id\n  X     = key ++ `First Name` ++ `not` ++ `null`\n'
                   '  Y     = 1\n  "Z z" = 2\n}\n')
    assert ir_of(out) == ir_of(src)


def test_comments_in_every_position():
    src = (
        "# file header\n"
        'migration "m"  # trailing on a line declaration\n'
        "\n"
        "# above a value map\n"
        "valuemap v {  # after the brace\n"
        '  "a" -> "b"  # trailing on an entry\n'
        "  # own line inside\n"
        "  _ -> error\n"
        "  # before the closing brace\n"
        "}\n"
        "map a -> B {\n"
        "  key id\n"
        "  X = a ++  # inside a statement that spans lines\n"
        "      b\n"
        "}\n"
        "# at the end\n"
    )
    out = fmt(src)
    assert out.count("#") == src.count("#")
    assert fmt(out) == out
    for text in ("file header", "trailing on a line declaration", "above a value map",
                 "after the brace", "trailing on an entry", "own line inside",
                 "before the closing brace", "inside a statement", "at the end"):
        assert text in out


# ---------------------------------------------------------------------------- hypothesis


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_any_string_round_trips(s):
    lit = quote_string(s)
    src = f"map a -> B {{\n  key id\n  X = {lit}\n}}\n"
    r = parse_text(src)
    assert r.diagnostics == [], (lit, r.diagnostics)
    assert r.module.maps[0].body[1].value.value == s
    assert fmt(src) == fmt(fmt(src))


@pytest.mark.parametrize("s", ['say "hi"', "back\\slash", "two\nlines", "tab\there", "cr\r",
                               "\u2028 line separator \u2029", "nul \x00", "emoji \U0001F600",
                               "", "\\u{41}", "#not a comment", "`tick`"],
                         ids=["quotes", "backslash", "newline", "tab", "cr", "line_separators",
                              "nul", "emoji", "empty", "escape_lookalike", "hash", "backtick"])
def test_tricky_strings_round_trip(s):
    src = f"map a -> B {{\n  key id\n  X = {quote_string(s)}\n}}\n"
    out = fmt(src)
    assert "\n" not in quote_string(s) and "\u2028" not in quote_string(s)
    assert parse_text(out).module.maps[0].body[1].value.value == s
    assert fmt(out) == out


_IDENTS = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True).filter(
    lambda s: s not in KEYWORDS)
_QUOTED = st.sampled_from(["`First Name`", "`key`", "`not`", "`null`", "`if`", "`a-b`",
                           "`source`"])
_LEAF = st.one_of(
    _IDENTS, _QUOTED,
    st.integers(-10**6, 10**6).map(str),
    st.decimals(-1000, 1000, places=2, allow_nan=False, allow_infinity=False).map(str),
    st.text(max_size=8).map(quote_string),
    st.sampled_from(["true", "false", "null", "missing", "@2024-02-29",
                     "@2024-01-01T10:00:00Z", "$fallback", "[]", "today()"]),
    st.tuples(_IDENTS, _IDENTS).map(lambda t: f"{t[0]}.{t[1]}"),
    _IDENTS.map(lambda n: f"{n}[0]"),
)
_BINOPS = ["+", "-", "*", "/", "%", "++", "==", "!=", "<", "<=", ">", ">=", "and", "or", "??",
           "in", "not in"]


def _compose(children):
    p = children.map(lambda e: f"({e})")  # operands fully parenthesised: the tree is explicit
    return st.one_of(
        st.tuples(p, st.sampled_from(_BINOPS), p).map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
        p.map(lambda e: f"not {e}"),
        p.map(lambda e: f"-{e}"),
        st.tuples(p, _IDENTS).map(lambda t: f"{t[0]} | {t[1]}"),
        st.tuples(p, _IDENTS, children).map(lambda t: f"{t[0]} | {t[1]}({t[2]}, k={t[2]})"),
        st.tuples(_IDENTS, st.lists(children, max_size=3)).map(
            lambda t: f"{t[0]}({', '.join(t[1])})"),
        st.lists(children, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.tuples(children, children, children).map(lambda t: f"if {t[0]} then {t[1]} else {t[2]}"),
        children.map(lambda e: f"ref(Contacts | Leads, {e})"),
        children.map(lambda e: f"owner({e})"),
    )


EXPRESSIONS = st.recursive(_LEAF, _compose, max_leaves=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EXPRESSIONS)
def test_any_expression_round_trips(text):
    src = f"map a -> B {{\n  key id\n  X = {text}\n}}\n"
    r = parse_text(src)
    assume(not r.diagnostics)  # e.g. FM005 for a pathological depth
    expr = r.module.maps[0].body[1].value
    printed = format_expr(expr)
    again = parse_text(f"map a -> B {{\n  key id\n  X = {printed}\n}}\n")
    assert again.diagnostics == [], (text, printed, again.diagnostics)
    assert _unquoted(strip_spans(again.module.maps[0].body[1].value.model_dump(mode="json"))) == \
        _unquoted(strip_spans(expr.model_dump(mode="json"))), (text, printed)
    once = fmt(src)
    assert fmt(once) == once
