"""`fmap fmt`: rewrites files in place, `--check` reports without writing."""

from __future__ import annotations

from typer.testing import CliRunner

from fmap.cli import app

runner = CliRunner()

UGLY = ('migration   "m"\nsource s\ntarget zoho\n# note\nmap a->B{key id\n X=a|trim\n'
        "  Longer_Name = b # trailing\n}\n")


def fmt(*args: str):
    result = runner.invoke(app, ["fmt", *args])
    assert "Traceback" not in result.output
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def test_check_fails_on_unformatted_then_passes_after_fmt(tmp_path):
    p = tmp_path / "m.fmap"
    p.write_text(UGLY)
    r = fmt("--check", str(p))
    assert r.exit_code == 1
    assert f"would reformat {p}" in r.output
    assert p.read_text() == UGLY  # --check writes nothing

    r = fmt(str(p))
    assert r.exit_code == 0
    assert f"reformatted {p}" in r.output
    assert p.read_text() == (
        'migration "m"\nsource s\ntarget zoho\n\n# note\nmap a -> B {\n  key id\n'
        "  X           = a | trim\n  Longer_Name = b  # trailing\n}\n"
    )
    r = fmt("--check", str(p))
    assert r.exit_code == 0 and r.output == ""


def test_fmt_is_a_no_op_on_formatted_files(tmp_path):
    p = tmp_path / "m.fmap"
    p.write_text(UGLY)
    fmt(str(p))
    once = p.read_text()
    r = fmt(str(p))
    assert r.exit_code == 0 and r.output == ""
    assert p.read_text() == once


def test_fmt_refuses_files_with_syntax_errors(tmp_path):
    p = tmp_path / "bad.fmap"
    p.write_text("map a -> B {\n  X == 1\n}\n")
    r = fmt(str(p))
    assert r.exit_code == 1
    assert "FM104" in r.output
    assert p.read_text() == "map a -> B {\n  X == 1\n}\n"


def test_fmt_directory(tmp_path):
    (tmp_path / "a.fmap").write_text(UGLY)
    (tmp_path / "b.fmap").write_text(UGLY)
    assert fmt("--check", str(tmp_path)).exit_code == 1
    assert fmt(str(tmp_path)).exit_code == 0
    assert fmt("--check", str(tmp_path)).exit_code == 0


def test_fmt_missing_file(tmp_path):
    r = fmt(str(tmp_path / "nope.fmap"))
    assert r.exit_code == 1
    assert "FM001" in r.output
