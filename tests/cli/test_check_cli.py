"""`fmap check`: text, json, sarif and github outputs, exit codes, --strict, directories."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from fmap.cli import app

runner = CliRunner()

CLEAN = 'migration "m"\nsource s\ntarget zoho\n\nmap clinics -> Accounts {\n  key id\n  Account_Name = name\n}\n'
WARNING_ONLY = 'migration "m"\nsource s\ntarget zoho\n\nmap clinics -> Accounts {\n  Account_Name = name\n}\n'
ERROR = ('migration "m"\nsource s\ntarget zoho\n\nmap clinics -> Accounts {\n  key id\n'
         "  Account_Name = trimm(name)\n}\n")
SYNTAX = "mapp clinics -> Accounts {\n}\n"


def check(*args: str):
    result = runner.invoke(app, ["check", *args])
    assert "Traceback" not in result.output
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
    return result


@pytest.fixture
def files(tmp_path):
    out = {}
    for name, text in (("clean", CLEAN), ("warning", WARNING_ONLY), ("error", ERROR),
                       ("syntax", SYNTAX)):
        p = tmp_path / f"{name}.fmap"
        p.write_text(text)
        out[name] = p
    return out


def test_text_output(files):
    r = check(str(files["error"]), "--no-color")
    assert r.exit_code == 1
    assert f"{files['error']}:7:18: error[FM203]: unknown function `trimm`" in r.output
    assert "    7 |   Account_Name = trimm(name)" in r.output
    assert "      |                  ^^^^^" in r.output
    assert "= hint: did you mean `trim`?" in r.output
    assert "1 file(s) checked: 1 error(s)" in r.output


def test_text_output_has_no_ansi_unless_asked(files):
    assert "\x1b[" not in check(str(files["error"])).output  # not a terminal
    # on a colour terminal, --no-color still turns colour off and --color turns it on
    on_tty = runner.invoke(app, ["check", str(files["error"]), "--no-color"], color=True)
    assert "\x1b[" not in on_tty.output
    on_tty = runner.invoke(app, ["check", str(files["error"]), "--color"], color=True)
    assert "\x1b[1;31m" in on_tty.output


def test_clean_exit_0(files):
    r = check(str(files["clean"]))
    assert r.exit_code == 0, r.output
    assert "0 error(s)" in r.output


def test_warnings_exit_0_and_strict_exit_1(files):
    r = check(str(files["warning"]))
    assert r.exit_code == 0, r.output
    assert "warning[FM211]" in r.output
    r = check(str(files["warning"]), "--strict")
    assert r.exit_code == 1


def test_syntax_error_exit_1(files):
    r = check(str(files["syntax"]))
    assert r.exit_code == 1
    assert "error[FM106]: unknown keyword `mapp`" in r.output


def test_json_output(files):
    r = check(str(files["error"]), "--format", "json")
    assert r.exit_code == 1
    data = json.loads(r.output)
    (d,) = [x for x in data if x["code"] == "FM203"]
    assert d["severity"] == "error"
    assert d["span"]["line"] == 7 and d["span"]["column"] == 18
    assert d["span"]["file"] == str(files["error"])
    assert d["hint"] == "did you mean `trim`?"


def test_json_output_clean_is_a_list(files):
    r = check(str(files["clean"]), "--format", "json")
    assert r.exit_code == 0
    assert all(d["severity"] != "error" for d in json.loads(r.output))


def test_sarif_output(files):
    r = check(str(files["error"]), str(files["syntax"]), "--format", "sarif")
    assert r.exit_code == 1
    doc = json.loads(r.output)
    assert doc["version"] == "2.1.0"
    assert "sarif-2.1.0" in doc["$schema"]
    (run,) = doc["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "fmap"
    rule_ids = [rule["id"] for rule in driver["rules"]]
    assert {"FM203", "FM106"} <= set(rule_ids)
    assert len(rule_ids) == len(set(rule_ids))
    for rule in driver["rules"]:
        assert rule["shortDescription"]["text"] and rule["fullDescription"]["text"]
    for res in run["results"]:
        assert driver["rules"][res["ruleIndex"]]["id"] == res["ruleId"]
        assert res["level"] in ("error", "warning", "note")
    fm203 = next(res for res in run["results"] if res["ruleId"] == "FM203")
    loc = fm203["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"].endswith("error.fmap")
    assert loc["region"] == {"startLine": 7, "startColumn": 18, "endLine": 7, "endColumn": 23}
    assert "did you mean `trim`?" in fm203["message"]["text"]


def test_github_output(files):
    r = check(str(files["error"]), "--format", "github")
    assert r.exit_code == 1
    line = next(x for x in r.output.splitlines() if "FM203" in x)
    m = re.fullmatch(r"::error file=(?P<file>[^,]+),line=(?P<line>\d+),col=(?P<col>\d+),"
                     r"endLine=\d+,endColumn=\d+,title=FM203::(?P<msg>.*)", line)
    assert m, line
    assert m["file"].endswith("error.fmap")
    assert (m["line"], m["col"]) == ("7", "18")
    assert "unknown function `trimm`" in m["msg"]


def test_github_warning_level(files):
    r = check(str(files["warning"]), "--format", "github")
    assert any(x.startswith("::warning ") and "FM211" in x for x in r.output.splitlines())


def test_github_escapes_newlines_and_commas(tmp_path):
    p = tmp_path / "a,b.fmap"
    p.write_text('map a -> B {\n  X = "never closed\n}\n')
    r = check(str(p), "--format", "github")
    line = r.output.strip().splitlines()[0]
    assert "a%2Cb.fmap" in line and "\n" not in line


def test_directory_expands_to_fmap_files(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "one.fmap").write_text(CLEAN)
    (tmp_path / "sub" / "two.fmap").write_text(ERROR)
    (tmp_path / "notes.txt").write_text("not a mapping {")
    r = check(str(tmp_path))
    assert r.exit_code == 1
    assert "2 file(s) checked" in r.output
    assert "two.fmap:7:18" in r.output and "notes.txt" not in r.output


def test_several_files_all_reported(files):
    r = check(str(files["error"]), str(files["syntax"]), str(files["clean"]))
    assert r.exit_code == 1
    assert "3 file(s) checked: 2 error(s)" in r.output
