"""Null-aware functions and list aggregates."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from runtime.functions import (
    MISSING,
    ConversionError,
    coalesce,
    count,
    default,
    distinct,
    each,
    first,
    is_missing,
    last,
    max,
    min,
    nullif,
    sort,
    sum,
)


def test_coalesce():
    assert coalesce(MISSING, None, "", "  ", "x", "y") == "x"
    assert coalesce(0, "x") == 0  # zero is a value
    assert coalesce(False, True) is False
    assert coalesce(MISSING, MISSING) is MISSING
    assert coalesce(MISSING, None, "") is None
    assert coalesce("only") == "only"


def test_default():
    assert default(None, "n/a") == "n/a"
    assert default(MISSING, 0) == 0
    assert default("   ", "x") == "x"
    assert default("v", "x") == "v"
    assert default(Decimal(0), Decimal(1)) == Decimal(0)


def test_nullif():
    assert nullif("N/A", "N/A") is None
    assert nullif(" N/A ", "N/A") is None
    assert nullif("n/a", "N/A") == "n/a"  # case-sensitive, documented
    assert nullif("0000-00-00", "0000-00-00") is None
    assert nullif(Decimal("0"), 0) is None
    assert nullif(1, True) == 1  # a boolean never equals a number
    assert nullif("x", "N/A") == "x"
    assert nullif(MISSING, "N/A") is MISSING
    assert nullif(None, "N/A") is None


def test_is_missing():
    assert is_missing(MISSING) and is_missing(None) and is_missing("") and is_missing(" \n")
    assert not is_missing(0) and not is_missing("x") and not is_missing(False)


def test_count_first_last():
    assert count([1, None, 3]) == 3
    assert count([]) == 0
    assert first([None, 1]) is None and last([1, 2]) == 2
    assert first([]) is None and last(()) is None
    with pytest.raises(ConversionError):
        count("abc")  # text is not a list


def test_sum():
    assert sum(["1.5", 2, None, Decimal("0.25"), MISSING, 0.1]) == Decimal("3.85")
    assert isinstance(sum([1, 2]), Decimal)
    assert sum([]) == Decimal(0)
    for bad in (["1", "x"], ["1", ""], [True], [[1]]):
        with pytest.raises(ConversionError):
            sum(bad)


def test_min_max():
    assert min([3, None, Decimal("1.5"), 2]) == Decimal("1.5")
    assert max([3, None, Decimal("1.5"), 2]) == 3
    assert min(["b", "a", None]) == "a"
    assert max([dt.date(2020, 1, 1), dt.date(2021, 1, 1)]) == dt.date(2021, 1, 1)
    assert min([None, MISSING]) is None and max([]) is None
    with pytest.raises(ConversionError):
        min(["a", 1])


def test_distinct():
    assert distinct(["a", "b", "a", None, "c", None, "b"]) == ["a", "b", None, "c"]
    assert distinct([1, Decimal("1"), 2]) == [1, 2]
    assert distinct([{"a": 1}, {"a": 1}, {"b": 2}]) == [{"a": 1}, {"b": 2}]  # unhashable


def test_sort():
    assert sort([3, None, 1, MISSING, 2]) == [1, 2, 3, None, MISSING]
    assert sort(["b", "A", "a"]) == ["A", "a", "b"]
    assert sort([]) == []
    with pytest.raises(ConversionError):
        sort([1, "a"])


def test_each():
    assert each([" a ", None, "b "], "trim") == ["a", None, "b"]
    assert each(["1", "2"], "integer") == [1, 2]
    assert each(["01/02/2020"], "date", "%d/%m/%Y") == [dt.date(2020, 2, 1)]
    with pytest.raises(ConversionError):
        each(["1", "x"], "integer")
    with pytest.raises(ConversionError):
        each(["a"], 42)
