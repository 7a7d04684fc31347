"""Bad input never crashes the front end: every case ends as a diagnostic (FM0xx/FM1xx) with a
position, through the library and through `fmap check` (exit 0/1/2, never a traceback)."""

from __future__ import annotations

import os
import random
import sys

import pytest
from typer.testing import CliRunner

from compiler.check import check_text
from dsl.diagnostics import render_text
from dsl.formatter import format_source
from dsl.parser import MAX_BYTES, parse_file, parse_text
from fmap.cli import app

M = "map a -> B {{\n  key id\n  X = {}\n}}\n"


def _no_crash(src: str):
    """Parse, check, format and dump: none of them may raise."""
    r = parse_text(src, "t.fmap")
    c = check_text(src, "t.fmap")
    if r.module is not None:
        r.module.model_dump(mode="json")
        if not any(d.severity.value == "error" for d in r.diagnostics):
            again = parse_text(format_source(r.module, src), "t.fmap")
            assert not [d for d in again.diagnostics if d.severity.value == "error"]
    render_text(c.diagnostics, c.program.sources)
    return r, c


def test_empty_file_is_a_warning():
    r, c = _no_crash("")
    assert [(d.code, d.severity.value) for d in r.diagnostics] == [("FM004", "warning")]
    assert r.module is not None and r.module.body == []
    assert c.ok
    s = r.diagnostics[0].span  # an empty line 1: the span may not run past its end
    assert (s.line, s.column, s.end_line, s.end_column) == (1, 1, 1, 1)


@pytest.mark.parametrize("src", ["   \n\t\n", "# a comment\n\n# another\n", "\n" * 1000],
                         ids=["whitespace", "comments", "newlines"])
def test_whitespace_and_comments_only(src):
    r, _ = _no_crash(src)
    assert [d.code for d in r.diagnostics] == ["FM004"]
    assert len(r.module.comments) == src.count("#")


def test_bom_is_ignored():
    r, _ = _no_crash('\ufeffmigration "x"\nsource s\ntarget zoho\n')
    assert r.diagnostics == []
    assert r.module.body[0].span.column == 1


@pytest.mark.parametrize("seed", range(8))
def test_binary_garbage(seed):
    rnd = random.Random(seed)
    data = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 400)))
    src = data.decode("latin-1")
    r, c = _no_crash(src)
    assert r.diagnostics and not c.ok
    for d in r.diagnostics:
        assert d.span is not None and d.span.line >= 1


def test_nul_byte_is_an_unexpected_character():
    r, _ = _no_crash('migration "x"\n\x00\n')
    assert [(d.code, d.span.line, d.span.column) for d in r.diagnostics] == [("FM107", 2, 1)]
    assert "U+0000" in r.diagnostics[0].message


def test_file_too_large(tmp_path):
    p = tmp_path / "big.fmap"
    line = "# " + "x" * 98 + "\n"
    p.write_text(line * (MAX_BYTES // len(line) + 2))
    r = parse_file(p)
    assert [d.code for d in r.diagnostics] == ["FM005"]
    assert "MB" in r.diagnostics[0].message
    r = parse_text(p.read_text())
    assert [d.code for d in r.diagnostics] == ["FM005"]


DEEP = {
    "parentheses_200": M.format("(" * 200 + "a" + ")" * 200),
    "lists_100": M.format("[" * 100 + "]" * 100),
    "pipe_chain_5000": M.format("a" + " | trim" * 5000),
    "concat_chain_5000": M.format("a" + " ++ a" * 5000),
    "mixed_operators_3000": M.format("a" + "".join(
        f" {op} a" for op in ["+", "*", "??", "or", "and", "==", "++", "-"] * 400)),
    "not_chain_3000": M.format("not " * 3000 + "a"),
    "minus_chain_3000": M.format("-" * 3000 + "a"),
    "if_chain_1000": M.format("if a then b else " * 1000 + "c"),
    "call_nesting_60": M.format("f(" * 60 + "a" + ")" * 60),
    "ref_alternatives_2000": M.format("ref(" + " | ".join(["B"] * 2000) + ", id)"),
    "test_data_nesting": 'test "t" {\n  given a ' + "{x: " * 100 + "1" + "}" * 100 + "\n}\n",
}


@pytest.mark.parametrize("src", list(DEEP.values()), ids=list(DEEP))
def test_deep_nesting_never_raises(src):
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)  # the default: what a user's process has
    try:
        r, _ = _no_crash(src)
    finally:
        sys.setrecursionlimit(old)
    codes = {d.code for d in r.diagnostics}
    assert codes <= {"FM005", "FM213", "FM202", "FM203", "FM225", "FM220"}, codes


@pytest.mark.parametrize("src,column", [
    (M.format("(" * 70 + "a" + ")" * 70), 70),  # the 65th bracket, counting the map's `{`
    (M.format("a" + " ++ a" * 150), 7),
], ids=["brackets", "operator_chain"])
def test_too_deep_is_fm005_with_a_position(src, column):
    r = parse_text(src, "t.fmap")
    assert [(d.code, d.span.line) for d in r.diagnostics] == [("FM005", 3)]
    assert r.diagnostics[0].span.column == column


def test_moderate_depth_is_fine():
    r = parse_text(M.format("a" + " ++ a" * 60))
    assert r.diagnostics == []


def test_invalid_utf8_reports_byte_offset(tmp_path):
    p = tmp_path / "latin1.fmap"
    p.write_bytes(b'migration "x"\nsource caf\xe9\n')
    r = parse_file(p, "latin1.fmap")
    (d,) = r.diagnostics
    assert d.code == "FM002"
    assert "byte offset 24" in d.message and "0xe9" in d.message
    assert (d.span.line, d.span.column) == (2, 11)
    assert r.module is None


def test_directory_is_fm003(tmp_path):
    (d,) = parse_file(tmp_path).diagnostics
    assert d.code == "FM003"


def test_missing_file_is_fm001(tmp_path):
    (d,) = parse_file(tmp_path / "nope.fmap").diagnostics
    assert d.code == "FM001" and "does not exist" in d.message


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads anything")
def test_unreadable_file_is_fm001(tmp_path):
    p = tmp_path / "secret.fmap"
    p.write_text('migration "x"\n')
    p.chmod(0)
    (d,) = parse_file(p).diagnostics
    assert d.code == "FM001"


# ---------------------------------------------------------------------------- through the CLI


runner = CliRunner()


def _check(*args: str):
    result = runner.invoke(app, ["check", *args])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


@pytest.mark.parametrize("content,exit_code", [
    (b"", 0),
    (b"# only a comment\n", 0),
    (b"\xef\xbb\xbfmigration \"x\"\n", 0),
    (b"\x00\x01\x02garbage\xff\xfe", 1),
    (b"migration \"caf\xe9\"\n", 1),
    (("map a -> B {\n  X = " + "(" * 300 + ")" * 300 + "\n}\n").encode(), 1),
    (("map a -> B {\n  X = a" + " | trim" * 3000 + "\n}\n").encode(), 1),
], ids=["empty", "comment", "bom", "binary", "latin1", "deep_parens", "long_pipe"])
def test_cli_bad_files(tmp_path, content, exit_code):
    p = tmp_path / "in.fmap"
    p.write_bytes(content)
    for fmt in ("text", "json", "sarif", "github"):
        result = _check(str(p), "--format", fmt)
        assert result.exit_code == exit_code, (fmt, result.output)


def test_cli_missing_file_and_directory(tmp_path):
    result = _check(str(tmp_path / "missing.fmap"))
    assert result.exit_code == 1 and "FM001" in result.output
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    result = _check(str(empty))
    assert result.exit_code == 1 and "FM003" in result.output


def test_cli_usage_errors_exit_2(tmp_path):
    assert _check().exit_code == 2
    p = tmp_path / "a.fmap"
    p.write_text("")
    assert _check(str(p), "--format", "xml").exit_code == 2
