"""The inlined forms in generated code behave exactly like the runtime calls they replace.

Transforms inline the common case (value maps over text as dict lookups, `++` over text fields,
`count(x) == 0` over lists, dates through a per-format reader); every other value takes the runtime
path. Each generated field is checked against the runtime function applied directly, on random
values of every type a source can hold (including a missing field).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from functools import cache

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from compiler.testing import compile_text, load_module
from runtime import (
    MISSING,
    ConversionError,
    QuarantineRecord,
    UnmappedValue,
    count,
    date,
    datetime,
    op_concat,
    op_eq,
)

FMAP = """\
migration "inline forms"
source clinic
target zoho

valuemap dflt { "M" -> "Male"  "F", "f" -> "Female"  1 -> "One"  _ -> "Unknown" }
valuemap pass { "mr" -> "Mr."  _ -> passthrough }
valuemap err  { "P" -> "Paid"  _ -> error }
valuemap quar { "DNA" -> "No Show"  _ -> quarantine }
valuemap nulk { null -> "Not given"  "S" -> "Single"  _ -> "Other" }

map patients -> Contacts {
  key id
  Dflt     = v | dflt
  Pass     = v | pass
  Err      = v | err
  Quar     = v | quar
  Nulk     = v | nulk
  Concat   = v ++ "-" ++ w
  Concat2  = "(" ++ (v ?? "none") ++ ")"
  No_Items = count(v) == 0
  Some     = count(v) != 0
  Dob      = v | date("%d/%m/%Y")
  Iso      = v | date("%Y-%m-%d")
  Compact  = v | date("%Y%m%d")
  At       = v | datetime("%d/%m/%Y %H:%M", tz="Europe/London")
}
"""


def _ref(fn, *args, **kwargs):
    try:
        return ("ok", fn(*args, **kwargs))
    except (ConversionError, UnmappedValue, QuarantineRecord) as exc:
        return ("error", type(exc).__name__, getattr(exc, "reason", None),
                getattr(exc, "quarantine", None), getattr(exc, "valuemap", None))


def _present(v) -> bool:
    return not (v is MISSING or v is None or (isinstance(v, str) and not v.strip()))


@cache
def _fields():
    """Per field: (its value for a record, the module), compiled from a mapping with that field
    alone, so one field's error never hides another's result."""
    head, body = FMAP.split("map patients -> Contacts {")
    fields = {}
    for line in body.strip().rstrip("}").splitlines()[1:]:
        name = line.split("=")[0].strip()
        result = compile_text(f"{head}map patients -> Contacts {{\n  key id\n{line}\n}}\n",
                              f"inline_{name}.fmap")
        assert result.ok, [d.message for d in result.diagnostics]
        one = load_module(result.python, f"inline_{name}.fmap.py", f"gen_inline_{name}")
        step = one.PLAN.step("Contacts")
        fields[name] = (lambda rec, step=step, one=one, name=name:
                        step.transform(rec, (), one.PARAMS).get(name, MISSING)), one
    return fields


values = st.one_of(
    st.sampled_from([MISSING, None, "", " ", "M", "f", "mr", "P", "DNA", "S", 1, True, 0,
                     "01/02/2020", " 01/02/2020", "30/02/2020", "1/2/2020", "2020-02-01",
                     "20200201", "31/03/2024 01:30", [], ["a"], ("a",), Decimal("1.0"),
                     dt.date(2020, 2, 1), dt.datetime(2020, 2, 1, 9, 30)]),
    st.text(max_size=12),
    st.integers(-3, 3),
    st.lists(st.integers(), max_size=2),
)


def _rec(v, w=MISSING) -> dict:
    rec = {"id": "1"}
    if v is not MISSING:
        rec["v"] = v
    if w is not MISSING:
        rec["w"] = w
    return rec


@settings(max_examples=300, deadline=None)
@given(values)
@example(["M"])
@example({"M": 1})
def test_value_maps_inline_equal_the_value_map_functions(v):
    for field in ("Dflt", "Pass", "Err", "Quar", "Nulk"):
        fn, one = _fields()[field]
        assert _ref(fn, _rec(v)) == _ref(one.vm_1, v, one.PARAMS), field


@settings(max_examples=300, deadline=None)
@given(values, values)
def test_concat_inline_equals_op_concat(v, w):
    f = {name: fn for name, (fn, _m) in _fields().items()}
    rec = _rec(v, w)
    assert _ref(f["Concat"], rec) == _ref(op_concat, v, "-", w)
    assert _ref(f["Concat2"], rec) == _ref(op_concat, "(", v if _present(v) else "none", ")")


@settings(max_examples=200, deadline=None)
@given(values)
def test_count_comparison_inline_equals_op_eq(v):
    f = {name: fn for name, (fn, _m) in _fields().items()}
    rec = _rec(v)
    want = _ref(lambda: op_eq(count(v), 0))
    assert _ref(f["No_Items"], rec) == want
    if want[0] == "ok":
        assert _ref(f["Some"], rec) == ("ok", not want[1])


@settings(max_examples=300, deadline=None)
@given(values)
@example(" 01/02/2020 ")
@example("")
def test_date_readers_in_generated_code_equal_date_and_datetime(v):
    f = {name: fn for name, (fn, _m) in _fields().items()}
    rec = _rec(v)
    assert _ref(f["Dob"], rec) == _ref(date, v, "%d/%m/%Y")
    assert _ref(f["Iso"], rec) == _ref(date, v, "%Y-%m-%d")
    assert _ref(f["Compact"], rec) == _ref(date, v, "%Y%m%d")
    assert _ref(f["At"], rec) == _ref(datetime, v, "%d/%m/%Y %H:%M", tz="Europe/London")


def test_padded_and_impossible_dates_behave_as_date_says():
    f = {name: fn for name, (fn, _m) in _fields().items()}
    assert f["Dob"]({"v": " 01/02/2020 "}) == dt.date(2020, 2, 1)  # date() trims; so does this
    with pytest.raises(ConversionError) as exc:
        f["Dob"]({"v": "30/02/2020"})
    assert "calendar" in exc.value.reason
    with pytest.raises(ConversionError) as exc:
        f["Dob"]({"v": ""})
    assert exc.value.reason == "empty text is not a date"


def test_inline_forms_are_in_the_generated_text():
    """The fast forms are really emitted (the tests above would pass with plain calls too)."""
    text = compile_text(FMAP, "inline.fmap").python
    assert "VM_1.get(" in text and "in VM_2" in text
    assert "date_reader('%d/%m/%Y')" in text and "datetime_reader(" in text
    assert ".__class__ is list" in text
    assert "op_eq(" not in text


def test_missing_and_null_pass_through_value_maps_unless_listed():
    """The value-map function tests missing/null before its lookup (the transforms call it for
    values that are not text, null the commonest); a map that lists them as keys maps them."""
    result = compile_text("""\
migration "m"
source clinic
target zoho
valuemap keyed { missing -> "Absent"  null -> "Null"  "S" -> "Single"  _ -> "Other" }
valuemap plain { "S" -> "Single"  _ -> "Other" }
map patients -> Contacts {
  key id
  Keyed = v | keyed
  Plain = v | plain
}
""", "vm_pass.fmap")
    assert result.ok, [d.message for d in result.diagnostics]
    one = load_module(result.python, "vm_pass.fmap.py", "gen_vm_pass")
    step = one.PLAN.step("Contacts")
    got = [step.transform(_rec(v), (), one.PARAMS) for v in (MISSING, None, "S", "x", 3)]
    assert got == [{"Keyed": "Absent"}, {"Keyed": "Null", "Plain": None},
                   {"Keyed": "Single", "Plain": "Single"}, {"Keyed": "Other", "Plain": "Other"},
                   {"Keyed": "Other", "Plain": "Other"}]
