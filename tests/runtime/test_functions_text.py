"""Text functions: names, truncation reports, regexes, split/join/concat, conversions."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.functions import (
    MISSING,
    ConversionError,
    collapse_spaces,
    collect_reports,
    concat,
    digits,
    join,
    length,
    lower,
    pad_left,
    regex_extract,
    regex_replace,
    replace,
    split,
    substring,
    text,
    title,
    trim,
    truncate,
    upper,
)


def test_trim_lower_upper():
    assert trim("  Ann \u00a0\n") == "Ann"
    assert lower("ÉCOLE") == "école"
    assert upper("straße") == "STRASSE"
    assert trim("") == ""
    assert upper(12) == "12"


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("o'brien", "O'Brien"),
        ("O'BRIEN", "O'Brien"),
        ("mcdonald", "McDonald"),
        ("MCDONALD", "McDonald"),
        ("anne-marie", "Anne-Marie"),
        ("mary-kate o'neill", "Mary-Kate O'Neill"),
        ("o\u2019neill", "O\u2019Neill"),
        ("d'angelo", "D'Angelo"),
        ("van der berg", "Van der Berg"),
        ("ludwig van beethoven", "Ludwig van Beethoven"),
        ("henry viii", "Henry VIII"),
        ("jones's", "Jones's"),
        ("don't", "Don't"),
        ("JOHN SMITH", "John Smith"),
        ("élise dupré", "Élise Dupré"),
        ("  two   spaces ", "  Two   Spaces "),
        ("mc", "Mc"),
        ("flat 3b, 22nd street", "Flat 3b, 22nd Street"),
        ("mcdonald's", "McDonald's"),
        ("", ""),
    ],
)
def test_title_names(raw, expected):
    assert title(raw) == expected


def test_collapse_spaces_keeps_single_edges():
    assert collapse_spaces("a \t\n b\u00a0\u00a0c") == "a b c"
    assert collapse_spaces("  a  ") == " a "


def test_truncate_reports_the_cut():
    with collect_reports() as reps:
        assert truncate("abcdefghij", 10) == "abcdefghij"
        assert reps == []
        assert truncate("abcdefghij", 4) == "abcd"
        assert truncate("abcdefghij", 6, ellipsis="...") == "abc..."
        assert truncate("abcdefghij", 2, ellipsis="...") == ".."
    assert [r.kind for r in reps] == ["truncated"] * 3
    assert reps[0].detail == "truncated from 10 to 4 characters"


@given(st.text(max_size=50), st.integers(min_value=0, max_value=60), st.sampled_from(["", "…", "..."]))
def test_truncate_never_exceeds_n(s, n, ell):
    out = truncate(s, n, ellipsis=ell)
    assert len(out) <= n
    if len(s) <= n:
        assert out == s
    elif len(ell) < n:
        assert out == s[: n - len(ell)] + ell


def test_truncate_rejects_bad_limit():
    with pytest.raises(ConversionError):
        truncate("abc", -1)


def test_replace():
    assert replace("a-b-c", "-", "/") == "a/b/c"
    assert replace("abc", "x", "y") == "abc"
    with pytest.raises(ConversionError):
        replace("abc", "", "y")


def test_regex_replace_and_extract():
    assert regex_replace("07700 900-123", r"[\s-]", "") == "07700900123"
    assert regex_replace("Smith, John", r"(\w+), (\w+)", r"\2 \1") == "John Smith"
    assert regex_extract("Ref: AB-1234 (old)", r"[A-Z]{2}-\d+") == "AB-1234"
    assert regex_extract("Ref: AB-1234", r"([A-Z]{2})-(\d+)", 2) == "1234"
    assert regex_extract("code=77", r"code=(?P<c>\d+)", "c") == "77"
    assert regex_extract("nothing", r"\d+") is None
    with pytest.raises(ConversionError) as info:
        regex_extract("abc", r"(a)", 3)
    assert "group" in info.value.reason
    with pytest.raises(ConversionError) as info:
        regex_replace("abc", r"(", "")
    assert "invalid regular expression" in info.value.reason


def test_split_join_concat():
    assert split("a,b,,c", ",") == ["a", "b", "", "c"]
    assert split("", ",") == []
    assert join(["a", None, "", MISSING, "b", 3, Decimal("1.50")], "; ") == "a; b; 3; 1.50"
    assert join([], ",") == ""
    assert concat("Ann", " ", None, "Lee", MISSING) == "Ann Lee"
    assert concat(None, MISSING) == ""
    assert concat("n=", 5, " on ", dt.date(2024, 1, 2)) == "n=5 on 2024-01-02"
    with pytest.raises(ConversionError):
        join("abc", ",")
    with pytest.raises(ConversionError):
        split("abc", "")


def test_substring_length_pad_left():
    assert substring("abcdef", 1, 3) == "bc"
    assert substring("abcdef", 2) == "cdef"
    assert substring("abcdef", -2) == "ef"
    assert substring("abc", 5, 10) == ""
    assert length("héllo") == 5 and length([1, 2]) == 2 and length(12345) == 5
    assert pad_left("7", 3, "0") == "007"
    assert pad_left(42, 5, "0") == "00042"
    assert pad_left("12345", 3, "0") == "12345"
    with pytest.raises(ConversionError):
        pad_left("7", 3, "00")


def test_digits():
    assert digits("943 476 5919") == "9434765919"
    assert digits("NHS: 943-476-5919 ") == "9434765919"
    assert digits("no digits") == ""
    assert digits("１２３٤") == "1234"  # full-width and Arabic-Indic digits become ASCII


@pytest.mark.parametrize(
    "value, expected",
    [
        ("x", "x"),
        (True, "true"),
        (False, "false"),
        (42, "42"),
        (Decimal("1E+3"), "1000"),
        (Decimal("0.10"), "0.10"),
        (0.1, "0.1"),
        (1e-7, "0.0000001"),
        (dt.date(2024, 2, 29), "2024-02-29"),
        (dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "2024-01-02T03:04:05+00:00"),
    ],
)
def test_text_conversions(value, expected):
    assert text(value) == expected


@pytest.mark.parametrize("bad", [[1, 2], {"a": 1}, b"bytes", float("nan"), Decimal("Infinity")])
def test_text_rejects_non_scalars(bad):
    with pytest.raises(ConversionError):
        text(bad)
    with pytest.raises(ConversionError):
        trim(bad)
