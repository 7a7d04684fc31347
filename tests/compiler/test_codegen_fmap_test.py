"""`fmap test`: the inline-test runner (compiler.testing) and its CLI command."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from compiler.testing import compile_text, load_module, render_value, run_file
from fmap.cli import app
from runtime import MISSING, Owner, Ref, UnmappedValue, locate

ROOT = Path(__file__).resolve().parents[2]
DIR = ROOT / "tests" / "fixtures" / "codegen" / "fmap_test"
PASSING = DIR / "passing.fmap"
FAILING = DIR / "failing.fmap"


@pytest.fixture(scope="module")
def passing():
    return run_file(PASSING, "passing.fmap")


@pytest.fixture(scope="module")
def failing():
    return run_file(FAILING, "failing.fmap")


def _result(report, name):
    (r,) = [r for r in report.results if r.name == name]
    return r


def test_passing_file(passing):
    assert passing.ok and len(passing.results) == 7
    assert all(r.ok for r in passing.results)


def test_coverage_names_unexercised_maps_branches_and_entries(passing):
    c = passing.coverage
    assert c.maps == ["Deals (line 26)"]
    assert c.branches == ["patients: where -> Deals (line 26)"]
    # "f" hit "F", "f"; "DNA", "Confirmed" and `_` (quarantine) of appointment_status were hit
    assert c.valuemap_entries == ['gender: "M" (line 9)', "gender: _ (line 9)"]
    text = passing.render()
    assert "7 test(s): 7 passed, 0 failed" in text
    assert "    Deals (line 26)\n" in text and '    gender: "M" (line 9)\n' in text


def test_path_level_diffs(failing):
    assert not failing.ok
    assert _result(failing, "gender codes").failures == [
        'Contacts.Gender: expected "Male", got "Unknown"']
    assert _result(failing, "all good").ok
    assert _result(failing, "wrong expectations").failures == [
        'Contacts.Email: expected "x", got null',
        'Contacts.Last_Name: expected "Lee", got missing',
        "Contacts: expected record #2, got only 1",
    ]


def test_quarantine_expectations(failing):
    assert _result(failing, "expected a quarantine").failures == [
        'expected a quarantined record with a reason containing "gender"; '
        "got: nothing was quarantined"]
    (msg,) = _result(failing, "unexpected quarantine").failures
    assert msg.startswith("unexpected quarantine: Contacts: conversion error: date()")
    assert msg.endswith("at Contacts.DOB (line 12)") and "1999" not in msg  # value masked


def test_full_coverage_message(failing):
    assert failing.coverage.complete
    assert "coverage: every map, routing branch and value-map entry was exercised" in \
        failing.render()


def _run(tmp_path, body: str):
    path = tmp_path / "t.fmap"
    path.write_text('migration "t"\nsource aeronaclinic\ntarget zoho\n' + body, "utf-8")
    return run_file(path, "t.fmap")


def test_routing_to_several_where_maps_and_otherwise(tmp_path):
    report = _run(tmp_path, """
map patients -> Leads where status == "P" { key id  A = 1 }
map patients -> Deals where vip { key id  B = 2 }
map patients -> Contacts otherwise { key id  C = 3 }
test "both where maps" {
  given patients {id: "1", status: "P", vip: true}
  expect Leads { A = 1 }
  expect Deals { B = 2 }
  expect Contacts none
}
test "otherwise" {
  given patients [{id: "1", status: "Q"}, {id: "2"}]
  expect Contacts { C = 3 }
  expect Contacts { C = 3 }
  expect Leads none
}
""")
    assert report.ok, report.render()
    assert report.coverage.complete


def test_merge_without_parent_record_and_flat_merge(tmp_path):
    report = _run(tmp_path, """
map patients -> Persons { key id  Name = name }
merge payments -> Persons by patient_id { Total = sum(group.amount)  N = count(group) }
test "flat merge groups by key" {
  given payments [{patient_id: 1, amount: 2}, {patient_id: "1", amount: "3.5"},
                  {patient_id: 2, amount: 1}]
  expect Persons { Total = 5.5  N = 2 }
  expect Persons { Total = 1  N = 1 }
}
test "merge updates the parent record" {
  given patients {id: "1", name: "A"}
  given payments {patient_id: 1, amount: 4}
  expect Persons { Name = "A"  Total = 4 }
}
""")
    assert report.ok, report.render()


def test_nested_twice_gets_two_synthetic_parents(tmp_path):
    report = _run(tmp_path, """
map patients -> Contacts { key id  X = 1 }
map patients.plans[] -> Plans { key id  C = ref(Contacts, parent.id) }
map patients.plans[].items[] -> Items {
  key id
  P = ref(Plans, parent.id)
  C = ref(Contacts, parent.parent.id)
}
test "items alone" {
  given patients.plans[].items[] {id: "i"}
  expect Items { P = ref(Plans, null)  C = ref(Contacts, null) }
  expect Plans none
}
test "from the root" {
  given patients {id: "p", plans: [{id: "t", items: [{id: "i1"}, {id: "i2"}]}]}
  expect Items { P = ref(Plans, "t")  C = ref(Contacts, "p") }
  expect Items { P = ref(Plans, "t") }
  expect Plans { C = ref(Contacts, "p") }
}
""")
    assert report.ok, report.render()


def test_errors_in_a_test_do_not_hide_the_others(tmp_path):
    report = _run(tmp_path, """
map patients -> Contacts { key id  X = name }
test "bad expect value" {
  given patients {id: "1", name: "a"}
  expect Contacts { X = name }
}
test "fine" {
  given patients {id: "1", name: "a"}
  expect Contacts { X = "a" }
}
""")
    bad, fine = report.results
    assert fine.ok and not bad.ok
    assert "`expect` values must be literals" in bad.failures[0]


def test_value_map_coverage_with_null_key_and_passthrough(tmp_path):
    report = _run(tmp_path, """
valuemap m { null -> "none"  "a" -> "A"  _ -> passthrough }
map patients -> Contacts { key id  X = v | m }
test "null and unlisted" {
  given patients [{id: "1", v: null}, {id: "2", v: "zz"}, {id: "3"}]
  expect Contacts { X = "none" }
  expect Contacts { X = "zz" }
  expect Contacts { X = missing }
}
""")
    assert report.ok, report.render()
    assert report.coverage.valuemap_entries == ['m: "a" (line 5)']


def test_compile_error_is_reported(tmp_path):
    report = _run(tmp_path, "map patients -> Contacts { key id  X = nope(1) }\n")
    assert not report.ok and report.compile_error and "does not compile" in report.compile_error


# ------------------------------------------------------------------------------ values


@pytest.mark.parametrize(("value", "text"), [
    ("Male", '"Male"'), ('say "hi"\n\\', '"say \\"hi\\"\\n\\\\"'), ("\u2028", '"\\u{2028}"'),
    (None, "null"), (MISSING, "missing"), (True, "true"), (False, "false"), (42, "42"),
    (Decimal("12.50"), "12.50"), (date(2024, 1, 31), "@2024-01-31"),
    (Ref(("Contacts",), "p1"), 'ref(Contacts, "p1")'),
    (Ref(("Contacts", "Leads"), None), "ref(Contacts | Leads, null)"),
    (Owner("a@b.org"), 'owner("a@b.org")'), ([1, "a"], '[1, "a"]'), ({"a": 1}, "{a: 1}"),
], ids=lambda v: repr(v)[:20])
def test_render_value_writes_fmap_syntax(value, text):
    assert render_value(value) == text


def test_load_module_gives_locate_a_real_filename():
    result = compile_text('migration "t"\nsource s\ntarget zoho\n'
                          'valuemap v { "a" -> "A"  _ -> error }\n'
                          "map patients -> Contacts {\n  key id\n  X = y | v\n}\n", "mem.fmap")
    mod = load_module(result.python, "mem.fmap.py")
    assert mod.__file__ == "mem.fmap.py"
    with pytest.raises(UnmappedValue) as exc:
        mod.PLAN.step("Contacts").transform({"y": "b"}, (), mod.PARAMS)
    assert locate(exc.value, mod) == [(7, "Contacts.X"), (4, "valuemap v")]


# ------------------------------------------------------------------------------ CLI


def test_cli_exit_codes_and_output():
    runner = CliRunner()
    ok = runner.invoke(app, ["test", str(PASSING)])
    assert ok.exit_code == 0, ok.output
    assert 'PASS "referral prospects become leads" (line 52)' in ok.output
    assert "coverage: not exercised by any test" in ok.output
    bad = runner.invoke(app, ["test", str(FAILING)])
    assert bad.exit_code == 1
    assert 'Contacts.Gender: expected "Male", got "Unknown"' in bad.output
    assert "5 test(s): 1 passed, 4 failed" in bad.output
    missing = runner.invoke(app, ["test", str(DIR / "nope.fmap")])
    assert missing.exit_code == 2


def test_cli_compile_error_exits_1(tmp_path):
    path = tmp_path / "broken.fmap"
    path.write_text('migration "t"\nmap patients -> {\n', "utf-8")
    result = CliRunner().invoke(app, ["test", str(path)])
    assert result.exit_code == 1
    assert "does not compile" in result.output
