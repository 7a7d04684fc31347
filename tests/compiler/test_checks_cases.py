"""Every schema check, table-driven (tests/compiler/checks_cases.py): the wrong input yields the
code at the given line:col with a hint; the right input does not yield it."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.check import CheckResult, check_path
from dsl.codes import CODES
from tests.compiler.checks_cases import CASES, Case


def run_case(tmp_path: Path, case: Case, which: str) -> CheckResult:
    root = tmp_path / which
    for rel, text in case.files(which).items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    fmap = root / "example.fmap"
    fmap.write_text(getattr(case, which), encoding="utf-8")
    return check_path(fmap, "example.fmap", schema_dir=None)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_wrong(tmp_path, case: Case):
    r = run_case(tmp_path, case, "wrong")
    found = [d for d in r.diagnostics if d.code == case.code]
    assert found, [str(d) for d in r.diagnostics]
    d = found[0]
    assert f"{d.span.line}:{d.span.column}" == case.at, str(d)
    assert d.span.file == "example.fmap"
    assert d.hint and case.hint in d.hint, d.hint
    assert d.severity is CODES[case.code].severity


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_right(tmp_path, case: Case):
    r = run_case(tmp_path, case, "right")
    assert [str(d) for d in r.diagnostics if d.code.startswith(("FM3", "FM4"))] == []
    assert r.ok, [str(d) for d in r.diagnostics]


def test_every_schema_code_has_a_case():
    schema_codes = {c for c in CODES if c.startswith("FM3")} | {"FM401"}
    assert schema_codes <= {c.code for c in CASES}
