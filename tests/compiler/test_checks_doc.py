"""docs/diagnostics.md is generated from the code registry and the case tables and cannot drift."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from dsl.codes import CODES

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def gen():
    spec = importlib.util.spec_from_file_location("gen_diagnostics_doc",
                                                  ROOT / "scripts" / "gen_diagnostics_doc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def doc() -> str:
    return (ROOT / "docs" / "diagnostics.md").read_text(encoding="utf-8")


def test_committed_doc_is_the_generators_output(gen, doc):
    assert doc == gen.render(), "run: python scripts/gen_diagnostics_doc.py"


def test_every_registered_code_is_documented(doc):
    for code, c in CODES.items():
        assert f'<a id="{code.lower()}"></a>' in doc, code
        assert f"### {code}: {c.title}\n" in doc, code


def test_every_case_is_an_example(gen, doc):
    cases = gen.load_cases()
    assert {c.code for _t, c in cases} >= {k for k in CODES if k.startswith("FM3")}
    for _table, case in cases:
        assert case.wrong.rstrip("\n") in doc and case.right.rstrip("\n") in doc, case.title


def test_check_mode(gen, doc):
    assert gen.main(["--check"]) == 0
