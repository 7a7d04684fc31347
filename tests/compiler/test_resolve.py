"""Name resolution (FM2xx), table-driven from tests/compiler/diagnostic_cases.py: each code's wrong
snippet reports it at the right place with a useful hint, its right snippet does not."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from compiler.program import program_from_text
from compiler.resolve import resolve
from dsl.codes import CODES

HERE = Path(__file__).resolve().parent
FIXTURE_DIR = HERE.parent / "fixtures" / "fmap"

_spec = importlib.util.spec_from_file_location("diagnostic_cases", HERE / "diagnostic_cases.py")
cases_mod = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("diagnostic_cases", cases_mod)  # dataclasses look the module up
_spec.loader.exec_module(cases_mod)
CASES = cases_mod.CASES


def diagnostics(src: str):
    """Parse diagnostics plus name resolution (no schema passes): what FM2xx is about."""
    prog = program_from_text(src, "case.fmap", base_dir=FIXTURE_DIR)
    out = list(prog.diagnostics)
    if prog.syntax_ok:
        out.extend(resolve(prog))
    return out


def test_every_fm2xx_code_has_a_case():
    assert sorted(c for c in CODES if c.startswith("FM2")) == sorted(c.code for c in CASES)


def test_titles_match_the_code_table():
    for c in CASES:
        assert c.title == CODES[c.code].title, c.code


@pytest.mark.parametrize("case", CASES, ids=[f"{c.code}-{c.title}" for c in CASES])
def test_wrong_reports_the_code(case):
    found = [d for d in diagnostics(case.wrong) if d.code == case.code]
    assert found, [str(d) for d in diagnostics(case.wrong)]
    d = found[0]
    assert (d.span.line, d.span.column) == (case.line, case.column), str(d)
    assert d.hint and case.hint in d.hint, d.hint
    assert d.severity == CODES[case.code].severity
    assert "FM" not in d.message  # codes are shown by the renderer, not repeated in messages


@pytest.mark.parametrize("case", CASES, ids=[f"{c.code}-{c.title}" for c in CASES])
def test_right_does_not(case):
    diags = diagnostics(case.right)
    assert not [d for d in diags if d.code == case.code], [str(d) for d in diags]
    assert not [d for d in diags if d.severity.value == "error"], [str(d) for d in diags]


def test_all_problems_reported_at_once():
    src = (cases_mod.HEADER
           + "map patients -> Contacts {\n  key id\n  A = trimm(x)\n  B = $nope\n"
             "  C = group.x\n  C = parent.y\n  D = ref(Nowhere, id)\n}\n")
    codes = sorted(d.code for d in diagnostics(src))
    assert codes == ["FM203", "FM205", "FM206", "FM207", "FM210", "FM225"]


def test_import_cycle(tmp_path):
    (tmp_path / "a.fmap").write_text('import "b.fmap"\n')
    (tmp_path / "b.fmap").write_text('import "a.fmap"\n')
    from compiler.program import load_program
    prog = load_program(tmp_path / "a.fmap", "a.fmap")
    assert [d.code for d in prog.diagnostics] == ["FM216"]
    assert "cycle" in prog.diagnostics[0].message


def test_imported_value_maps_resolve():
    src = (cases_mod.HEADER + 'import "common.fmap"\n'
           "map patients -> Contacts {\n  key id\n  Salutation = title | title_case_codes\n}\n")
    assert [d.code for d in diagnostics(src)] == []
