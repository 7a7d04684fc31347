"""Mutation fuzzing: valid mappings, randomly broken (tokens and characters inserted, deleted and
swapped, lines duplicated, braces and quotes dropped). Whatever comes out is a clean parse or
diagnostics with valid spans, and neither the checker nor the formatter raises."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.check import check_text
from dsl.diagnostics import render_text
from dsl.formatter import format_source
from dsl.parser import get_parser, parse_text

FIXTURE_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "fmap"
TEXTS = [p.read_text() for p in sorted(FIXTURE_DIR.glob("*.fmap"))]

TOKENS = ["{", "}", "(", ")", "[", "]", ",", "=", "==", "->", "=>", "|", '"', "`", "#", "\n",
          "not", "in", "not in", "not migrated", "map", "mapp", "key", "values", "source", "_",
          "x", "1", "-1", "2.5", "25MB", "@2024-01-01", "@2024-01-01T10:00Z", "$p", "??", "++",
          "-", "if", "then", "else", "ref(", "owner(", "\t", "\x00", "\u2028", "é", "'", ";",
          "&", "\\", "\r\n", "\ufeff"]


@st.composite
def mutated(draw):
    text = draw(st.sampled_from(TEXTS))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["insert", "delete", "swap", "dup_line", "drop_char",
                                   "drop_line"]))
        n = len(text)
        pos = draw(st.integers(0, n))
        if op == "insert":
            text = text[:pos] + draw(st.sampled_from(TOKENS)) + text[pos:]
        elif op == "delete":
            text = text[:pos] + text[pos + draw(st.integers(1, 12)):]
        elif op == "swap" and n > 2:
            a, b = sorted((pos % n, draw(st.integers(0, n - 1))))
            text = text[:a] + text[b] + text[a + 1:b] + text[a] + text[b + 1:]
        elif op == "drop_char":
            ch = draw(st.sampled_from(['"', "{", "}", "(", ")", "[", "]", "`", "-", ">", ","]))
            hits = [i for i, c in enumerate(text) if c == ch]
            if hits:
                i = hits[draw(st.integers(0, len(hits) - 1))]
                text = text[:i] + text[i + 1:]
        else:
            lines = text.split("\n")
            i = draw(st.integers(0, len(lines) - 1))
            if op == "dup_line":
                lines.insert(i, lines[i])
            else:
                del lines[i]
            text = "\n".join(lines)
    return text


TERMINALS = {t.name for t in get_parser()[0].terminals} | {"$END"}
QUOTED = re.compile(r"`[^`]*`|\"[^\"]*\"")


def _assert_users_words(d) -> None:
    """Syntax messages speak of `"}"`, "a name", "an expression", never of `_RBRACE` or `$END`
    (user text quoted in backticks or double quotes is exempt)."""
    for text in (d.message, d.hint or ""):
        bare = QUOTED.sub("", text)
        words = set(re.findall(r"\$?[A-Za-z_][A-Za-z0-9_]*", bare))
        assert not {w for w in words if w in TERMINALS and not w.islower()}, text


def _assert_span_valid(span, lines: list[str], what: str) -> None:
    assert 1 <= span.line <= len(lines), what
    assert 1 <= span.end_line <= len(lines), what
    assert 1 <= span.column <= len(lines[span.line - 1]) + 1, what
    assert 1 <= span.end_column <= len(lines[span.end_line - 1]) + 1, what
    assert (span.end_line, span.end_column) >= (span.line, span.column), what


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated())
def test_mutated_mapping_never_crashes(text):
    r = parse_text(text, "m.fmap")
    shown = text[1:] if text.startswith("\ufeff") else text
    lines = shown.split("\n")
    if r.module is None:
        assert r.diagnostics, "no module and no diagnostic"
    for d in r.diagnostics:
        if d.code.startswith("FM1"):
            _assert_users_words(d)
        if d.span is not None:
            _assert_span_valid(d.span, lines, str(d))
        for rel in d.related:
            _assert_span_valid(rel.span, lines, f"{d} / related {rel.message}")
    c = check_text(text, "m.fmap")
    render_text(c.diagnostics, c.program.sources)
    for d in c.diagnostics:
        if d.span is not None and d.span.file == "m.fmap":
            _assert_span_valid(d.span, lines, str(d))
    if r.module is not None:
        out = format_source(r.module, shown)  # even a partial module formats without raising
        if not [d for d in r.diagnostics if d.severity.value == "error"]:
            again = parse_text(out, "m.fmap")
            assert not [d for d in again.diagnostics if d.severity.value == "error"], (
                out, again.diagnostics)
