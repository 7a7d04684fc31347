"""Schema diagnostics in every `fmap check` format: text and SARIF snapshots of a small file with
several mistakes (syrupy), JSON and GitHub annotations checked structurally, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from compiler.check import check_path
from dsl.codes import CODES
from dsl.diagnostics import render_text
from dsl.render import to_github, to_json, to_sarif
from fmap.cli import app
from tests.compiler.checks_cases import CLINIC_YAML

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "checks"
MULTI = FIXTURES / "multi_error.fmap"
EXPECTED = ["FM309", "FM308", "FM304", "FM310", "FM307", "FM306", "FM317"]
runner = CliRunner()


@pytest.fixture(scope="module")
def result():
    return check_path(MULTI, "multi_error.fmap", schema_dir=None)


def test_fixture_schema_is_the_case_schema():
    assert (FIXTURES / "schemas" / "clinic.yaml").read_text(encoding="utf-8") == CLINIC_YAML


def test_every_mistake_found_in_order(result):
    assert [d.code for d in result.diagnostics] == EXPECTED
    assert all(d.span is not None and d.hint for d in result.diagnostics)


def test_text_snapshot(result, snapshot):
    assert render_text(result.diagnostics, result.program.sources) == snapshot


def test_sarif_snapshot(result, snapshot):
    doc = json.loads(to_sarif(result.diagnostics, "0.0.0-test"))
    run = doc["runs"][0]
    assert {r["id"] for r in run["tool"]["driver"]["rules"]} == set(EXPECTED)
    for rule in run["tool"]["driver"]["rules"]:
        assert rule["shortDescription"]["text"] == CODES[rule["id"]].title
    assert to_sarif(result.diagnostics, "0.0.0-test") == snapshot


def test_json_and_github(result):
    data = json.loads(to_json(result.diagnostics))
    assert [d["code"] for d in data] == EXPECTED
    assert data[0]["span"]["line"] == 7 and data[0]["hint"].startswith('did you mean "Mr."?')
    lines = to_github(result.diagnostics).splitlines()
    assert len(lines) == len(EXPECTED)
    assert lines[1].startswith("::error file=multi_error.fmap,line=12,col=17,")
    assert lines[3].startswith("::warning file=multi_error.fmap,line=15,col=28,")


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "github"])
def test_cli_formats_exit_1(fmt):
    r = runner.invoke(app, ["check", str(MULTI), "--format", fmt, "--no-color"])
    assert r.exit_code == 1, r.output
    for code in EXPECTED:
        assert code in r.stdout


def test_cli_clean_fixture_exit_0():
    r = runner.invoke(app, ["check", str(FIXTURES / "aerona_zoho_contacts.fmap")])
    assert r.exit_code == 0, r.stdout
    assert r.stdout.strip().endswith("0 error(s), 0 warning(s)")
