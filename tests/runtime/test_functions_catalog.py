"""The function library agrees with the language's catalog (dsl.builtins), and the shared contracts:
null propagation, MISSING, ConversionError and data-loss reports."""

from __future__ import annotations

import copy
import datetime as dt
import inspect
import pickle
from decimal import Decimal

import pytest

import runtime.functions as F
from dsl.builtins import BUILTINS
from runtime.functions import MISSING, ConversionError, collect_reports, is_blank, report

CATALOG = sorted(BUILTINS)

# Extra arguments (after the piped value) that make a valid call, for every catalog function.
SAMPLE_ARGS: dict[str, tuple] = {
    "trim": (),
    "lower": (),
    "upper": (),
    "title": (),
    "collapse_spaces": (),
    "truncate": (5,),
    "replace": ("a", "b"),
    "regex_replace": ("a", "b"),
    "regex_extract": ("a",),
    "split": (",",),
    "join": (",",),
    "concat": ("x",),
    "substring": (0, 2),
    "length": (),
    "pad_left": (5, "0"),
    "digits": (),
    "html_to_text": (),
    "text": (),
    "date": ("%d/%m/%Y",),
    "datetime": ("%d/%m/%Y %H:%M",),
    "format_date": ("%Y",),
    "format_datetime": ("%Y",),
    "to_timezone": ("Europe/London",),
    "today": (),
    "age": (),
    "phone": ("GB",),
    "email": (),
    "is_email": (),
    "number": (),
    "integer": (),
    "decimal": (2,),
    "money": (2,),
    "round": (1,),
    "boolean": (),
    "coalesce": ("x",),
    "default": ("x",),
    "nullif": ("N/A",),
    "is_missing": (),
    "count": (),
    "sum": (),
    "min": (),
    "max": (),
    "first": (),
    "last": (),
    "distinct": (),
    "sort": (),
    "each": ("upper",),
    "split_note": (100,),
}

# What the null-aware functions return for MISSING / None (everything else returns its input).
NULL_RESULTS: dict[str, tuple] = {
    "coalesce": ("x", "x"),
    "default": ("x", "x"),
    "nullif": (MISSING, None),
    "is_missing": (True, True),
    "count": (0, 0),
    "concat": ("x", "x"),
    "length": (0, 0),
    "is_email": (False, False),
    "sum": (Decimal(0), Decimal(0)),
    "min": (None, None),
    "max": (None, None),
    "first": (None, None),
    "last": (None, None),
    "distinct": ([], []),
    "sort": ([], []),
    "each": ([], []),
}


def test_every_catalog_function_is_registered_and_exported():
    missing_registry = [n for n in CATALOG if n not in F.FUNCTIONS]
    missing_all = [n for n in CATALOG if n not in F.__all__]
    assert missing_registry == [] and missing_all == []
    assert set(F.FUNCTIONS) == set(BUILTINS), "FUNCTIONS holds exactly the catalog"
    for name in F.__all__:
        assert hasattr(F, name), name


@pytest.mark.parametrize("name", CATALOG)
def test_registry_entry_is_the_exported_function(name):
    assert F.FUNCTIONS[name] is getattr(F, name)
    assert F.FUNCTIONS[name].__doc__ and len(F.FUNCTIONS[name].__doc__) > 30


@pytest.mark.parametrize("name", CATALOG)
def test_signature_matches_catalog(name):
    b = BUILTINS[name]
    sig = inspect.signature(F.FUNCTIONS[name])
    sig.bind(*range(b.min_args))
    if b.min_args > 0:
        with pytest.raises(TypeError):
            sig.bind(*range(b.min_args - 1))
    if b.max_args is None:
        sig.bind(*range(b.min_args + 5))
    else:
        sig.bind(*range(b.max_args))
        with pytest.raises(TypeError):
            sig.bind(*range(b.max_args + 1))
    for kw in b.kwargs:
        sig.bind(*range(b.min_args), **{kw: None})


def test_every_catalog_function_is_documented(repo_root):
    import re

    doc = (repo_root / "docs" / "functions.md").read_text(encoding="utf-8")
    sections = set(re.findall(r"^### (\w+)$", doc, re.M))
    assert sorted(set(BUILTINS) - sections) == []


def test_sample_args_cover_the_catalog():
    assert set(SAMPLE_ARGS) == set(BUILTINS)


@pytest.mark.parametrize("name", [n for n in CATALOG if n != "today"])
@pytest.mark.parametrize("null_index", [0, 1], ids=["MISSING", "None"])
def test_null_propagation(name, null_index):
    null = (MISSING, None)[null_index]
    fn = F.FUNCTIONS[name]
    result = fn(null, *SAMPLE_ARGS[name])
    if name in NULL_RESULTS:
        assert result == NULL_RESULTS[name][null_index]
        assert type(result) is type(NULL_RESULTS[name][null_index])
    elif name == "join":
        assert result is null
    else:
        assert result is null, f"{name} must return {null!r} unchanged"


def test_today_is_the_run_date():
    F.set_run_date(dt.date(2024, 2, 29))
    try:
        assert F.today() == dt.date(2024, 2, 29)
    finally:
        F.set_run_date(None)
    assert F.today() == dt.date.today()


# ---------------------------------------------------------------- MISSING


def test_missing_is_a_falsy_singleton_that_survives_copy_and_pickle():
    assert not MISSING
    assert repr(MISSING) == "MISSING"
    assert copy.copy(MISSING) is MISSING
    assert copy.deepcopy({"a": [MISSING]})["a"][0] is MISSING
    assert pickle.loads(pickle.dumps(MISSING)) is MISSING
    assert type(MISSING)() is MISSING
    assert MISSING is not None and MISSING != "" and MISSING != None  # noqa: E711


@pytest.mark.parametrize(
    "value, blank",
    [
        (MISSING, True),
        (None, True),
        ("", True),
        ("  \t\n", True),
        ("\u00a0", True),
        ("x", False),
        (0, False),
        (False, False),
        (Decimal(0), False),
        ([], False),
    ],
)
def test_is_blank(value, blank):
    assert is_blank(value) is blank


# ---------------------------------------------------------------- ConversionError


def test_conversion_error_never_contains_the_value():
    secret = "Jonathan Smith 1980-01-01"
    with pytest.raises(ConversionError) as info:
        F.date(secret)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.function == "date" and err.value == secret
    assert secret not in str(err) and secret not in err.reason and secret not in repr(err.args)
    assert "Jonathan" not in err.describe()
    assert err.masked_value() == "J***(25)"
    assert secret in err.describe(show_value=True)
    assert err.field is None and err.rule is None and err.fmap_location is None


def test_conversion_error_describe_with_context_and_pickle():
    err = ConversionError("phone", "07700", "too short")
    err.field, err.rule, err.fmap_location = "Mobile", "contact.mobile", "zoho.fmap:12"
    text = err.describe()
    assert text.startswith("zoho.fmap:12: field Mobile: rule contact.mobile: phone(): too short")
    assert "07700" not in text
    clone = pickle.loads(pickle.dumps(err))
    assert (clone.function, clone.value, clone.reason, clone.field, clone.fmap_location) == (
        "phone",
        "07700",
        "too short",
        "Mobile",
        "zoho.fmap:12",
    )


@pytest.mark.parametrize(
    "value, masked",
    [
        ("Jonathan", "J***(8)"),
        ("abc", "***(3)"),
        ("", "''"),
        (1234, "<int>"),
        (None, "None"),
        (MISSING, "MISSING"),
    ],
)
def test_masking(value, masked):
    assert F.mask_value(value) == masked


# ---------------------------------------------------------------- reports


def test_reports_are_collected_per_block_and_ignored_outside():
    report("truncated", "outside: dropped")
    with collect_reports() as outer:
        report("a", "1")
        with collect_reports() as inner:
            F.truncate("abcdef", 3)
        report("b", "2")
    assert [r.kind for r in outer] == ["a", "b"]
    assert inner == [("truncated", "truncated from 6 to 3 characters")]


def test_reports_are_isolated_between_threads():
    import threading

    seen = {}

    def work(name, n):
        with collect_reports() as reps:
            for _ in range(n):
                F.truncate("abcdef", 2)
            seen[name] = len(reps)

    threads = [threading.Thread(target=work, args=(f"t{i}", i)) for i in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"t1": 1, "t2": 2, "t3": 3, "t4": 4}


def test_each_applies_a_catalog_function_by_name():
    assert F.each(["a", None, "b"], "upper") == ["A", None, "B"]
    assert F.each(["7", "12"], "pad_left", 3, "0") == ["007", "012"]
    assert F.each(["020 7946 0958"], "phone", "GB") == ["+442079460958"]
    with pytest.raises(ConversionError) as info:
        F.each(["a"], "no_such_function")
    assert "no_such_function" in info.value.reason
