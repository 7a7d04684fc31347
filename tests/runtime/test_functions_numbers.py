"""Numbers, money and booleans: Decimal only, strict parsing, accounting negatives."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.functions import (
    ConversionError,
    boolean,
    collect_reports,
    decimal,
    integer,
    money,
    number,
    round,
)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("12", Decimal("12")),
        (" -12.50 ", Decimal("-12.50")),
        ("+3", Decimal("3")),
        (".5", Decimal("0.5")),
        ("5.", Decimal("5")),
        ("1e3", Decimal("1000")),
        (7, Decimal(7)),
        (0.1, Decimal("0.1")),  # via str(), not the binary expansion
        (Decimal("1.50"), Decimal("1.50")),
    ],
)
def test_number(raw, expected):
    out = number(raw)
    assert isinstance(out, Decimal) and out == expected
    assert str(number("1.50")) == "1.50"  # written precision kept


@pytest.mark.parametrize(
    "raw", ["", "  ", "abc", "1,234", "12abc", "NaN", "Infinity", "1_000", "--1", "١٢", True,
            float("nan"), float("inf"), [1], "1e999999", "0x10"]
)
def test_number_rejects(raw):
    with pytest.raises(ConversionError):
        number(raw)


def test_floats_never_leak():
    for fn in (number, decimal, money, round):
        assert not isinstance(fn(1.1), float)


def test_integer():
    assert integer("3") == 3 and integer("3.0") == 3 and integer(" -4 ") == -4
    assert integer("1e3") == 1000 and integer(Decimal("7.000")) == 7 and integer(12) == 12
    assert type(integer("3.0")) is int
    for bad in ("3.5", "0.1", "x", "", True, 2.5):
        with pytest.raises(ConversionError):
            integer(bad)


def test_decimal_and_round_are_half_even():
    assert decimal("2.675", 2) == Decimal("2.68")
    assert decimal("2.665", 2) == Decimal("2.66")
    assert str(decimal("2", 2)) == "2.00"
    assert decimal("1.23456") == Decimal("1.23456")
    assert round("2.5") == Decimal("2") and round("3.5") == Decimal("4")
    assert round("-2.5") == Decimal("-2")
    assert round("1.005", 2) == Decimal("1.00") and round("1.015", 2) == Decimal("1.02")
    assert round("1234", -2) == Decimal("1.2E+3")
    assert round(7) == Decimal(7)
    with pytest.raises(ConversionError):
        decimal("1", 99)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("£1,234.50", "1234.50"),
        ("$1,234,567.89", "1234567.89"),
        ("€12", "12.00"),
        ("12 €", "12.00"),
        ("GBP 12.5", "12.50"),
        ("12.00 USD", "12.00"),
        ("(12.00)", "-12.00"),
        ("(£1,234.56)", "-1234.56"),
        ("12.50-", "-12.50"),
        ("-£12", "-12.00"),
        ("£-12", "-12.00"),
        ("1.234,50", "1234.50"),  # European: the last separator is the decimal one
        ("1 234,50", "1234.50"),
        ("1\u00a0234,50 €", "1234.50"),
        ("1'234.50", "1234.50"),
        ("1,234", "1234.00"),  # commas only, grouped: thousands (GB/US convention)
        ("12,5", "12.50"),  # commas only, 1-2 decimals: a decimal comma
        ("1.234", "1.23"),  # one dot: a decimal point
        ("1.234.567", "1234567.00"),
        (".5", "0.50"),
        ("0", "0.00"),
        (12, "12.00"),
        (Decimal("9.999"), "10.00"),
        (19.99, "19.99"),
    ],
)
def test_money(raw, expected):
    out = money(raw)
    assert isinstance(out, Decimal)
    assert str(out) == expected


@pytest.mark.parametrize(
    "raw", ["", "£", "abc", "1,23,4", "1.234,567.50", "12,3456", "(12", "£12£", "1,2345", "1..2",
            "12 34 56", "one pound", True, "--12", "(-12)", "-12-", "+-12"]
)
def test_money_rejects(raw):
    with pytest.raises(ConversionError):
        money(raw)


def test_money_places_and_rounding_report():
    with collect_reports() as reps:
        assert money("12.345") == Decimal("12.34")  # half-even
        assert money("12.355") == Decimal("12.36")
        assert money("12.30") == Decimal("12.30")
    assert [r.kind for r in reps] == ["rounded", "rounded"]
    assert money("12.345", 3) == Decimal("12.345")
    assert money("12.345", places=0) == Decimal("12")
    assert str(money("12.3456", None)) == "12.3456"


@given(st.decimals(min_value=-10**9, max_value=10**9, places=2, allow_nan=False))
def test_money_round_trips_formatted_amounts(amount):
    us = f"${abs(amount):,.2f}"
    if amount < 0:
        us = f"({us})"
    assert money(us) == amount
    eu = f"{abs(amount):,.2f}".replace(",", "X").replace(".", ",").replace("X", ".") + " €"
    assert money(("-" if amount < 0 else "") + eu) == amount


TRUE_SPELLINGS = ["true", "TRUE", " Yes ", "y", "Y", "1", "t", "on", "ON", "checked", "Checked"]
FALSE_SPELLINGS = ["false", "False", "no", "NO", "n", "0", "f", "off", "unchecked", " Unchecked "]


@pytest.mark.parametrize("raw", TRUE_SPELLINGS + [True, 1, Decimal(1)])
def test_boolean_true(raw):
    assert boolean(raw) is True


@pytest.mark.parametrize("raw", FALSE_SPELLINGS + [False, 0, Decimal(0)])
def test_boolean_false(raw):
    assert boolean(raw) is False


@pytest.mark.parametrize("raw", ["", " ", "maybe", "yes please", "2", 2, -1, "x", "tru", "nope", [True]])
def test_boolean_rejects(raw):
    with pytest.raises(ConversionError):
        boolean(raw)
