"""Dates and datetimes: strict formats, no day shifts, DST, the fast path agreeing with strptime."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import runtime.functions.dates as dates_mod
from runtime.functions import (
    ConversionError,
    age,
    collect_reports,
    compile_date,
    compile_datetime,
    date,
    datetime,
    format_date,
    format_datetime,
    set_run_date,
    to_timezone,
    today,
)

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture(autouse=True)
def _fixed_run_date():
    set_run_date(dt.date(2025, 3, 1))
    yield
    set_run_date(None)


# ---------------------------------------------------------------- date()


def test_date_iso_and_passthrough():
    assert date("2024-02-29") == dt.date(2024, 2, 29)
    assert date(" 2024-02-29 ") == dt.date(2024, 2, 29)
    d = dt.date(2020, 1, 1)
    assert date(d) is d
    assert date(dt.datetime(2020, 1, 1, 23, 59, tzinfo=NEW_YORK)) == dt.date(2020, 1, 1)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2020-06-01T23:30:00-05:00", dt.date(2020, 6, 1)),  # 04:30 UTC the next day: no shift
        ("2020-06-01T00:30:00+14:00", dt.date(2020, 6, 1)),  # the previous day in UTC: no shift
        ("2020-06-01T12:00:00Z", dt.date(2020, 6, 1)),
        ("2020-06-01 08:00", dt.date(2020, 6, 1)),
    ],
)
def test_date_of_a_datetime_string_never_shifts(value, expected):
    assert date(value) == expected


def test_date_with_explicit_formats():
    assert date("01/02/2020", "%d/%m/%Y") == dt.date(2020, 2, 1)
    assert date("01/02/2020", "%m/%d/%Y") == dt.date(2020, 1, 2)
    assert date("1/2/2020", "%d/%m/%Y") == dt.date(2020, 2, 1)
    assert date("29.02.2024", "%d.%m.%Y") == dt.date(2024, 2, 29)
    assert date("20240229", "%Y%m%d") == dt.date(2024, 2, 29)
    assert date("29-Feb-2024", "%d-%b-%Y") == dt.date(2024, 2, 29)  # strptime path
    assert date("01/02/2020 13:45", "%d/%m/%Y %H:%M") == dt.date(2020, 2, 1)
    assert date("2020-01-05", formats=["%d/%m/%Y", "%Y-%m-%d"]) == dt.date(2020, 1, 5)
    assert date("05/01/2020", "%Y-%m-%d", formats=["%d/%m/%Y"]) == dt.date(2020, 1, 5)


def test_two_digit_years_only_when_the_format_says_so():
    with pytest.raises(ConversionError):
        date("01/02/20", "%d/%m/%Y")
    assert date("01/02/20", "%d/%m/%y") == dt.date(2020, 2, 1)
    assert date("01/02/69", "%d/%m/%y") == dt.date(1969, 2, 1)


@pytest.mark.parametrize(
    "value, fmt",
    [
        ("31/02/2020", "%d/%m/%Y"),
        ("29/02/2023", "%d/%m/%Y"),  # not a leap year
        ("00/01/2020", "%d/%m/%Y"),
        ("2020-13-01", "%Y-%m-%d"),
        ("20200230", "%Y%m%d"),
        ("01/02/2020 25:00", "%d/%m/%Y %H:%M"),  # the time part is validated too
        ("2020-02-30", None),
        ("20200101", None),  # only the extended ISO form without a format
        ("2020-W01-1", None),
        ("", None),
        ("   ", "%d/%m/%Y"),
        ("yesterday", None),
        ("2020-01-01garbage", None),
    ],
)
def test_invalid_dates_raise(value, fmt):
    with pytest.raises(ConversionError) as info:
        date(value, fmt)
    assert info.value.function == "date"
    if value.strip():
        assert value not in info.value.reason


def test_impossible_dates_say_why():
    with pytest.raises(ConversionError) as info:
        date("31/02/2020", "%d/%m/%Y")
    assert "not a valid calendar date" in info.value.reason
    with pytest.raises(ConversionError) as info:
        date("x", formats=["%d/%m/%Y", "%Y-%m-%d"])
    assert "any of the date formats" in info.value.reason


def test_date_rejects_non_text():
    with pytest.raises(ConversionError):
        date(20200101)


# ---------------------------------------------------------------- fast path vs strptime

FAST_DATE_FORMATS = ["%d/%m/%Y", "%m/%d/%Y", "%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y", "%Y%m%d",
                     "%Y/%m/%d", "%m-%d-%Y"]
FAST_DATETIME_FORMATS = ["%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%Y-%m-%d %H:%M:%S",
                         "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%m/%d/%Y %H:%M", "%d.%m.%Y %H:%M",
                         "%Y%m%d%H%M%S", "%d-%m-%Y %H:%M:%S"]


def test_common_formats_have_a_fast_path():
    for fmt in FAST_DATE_FORMATS:
        assert dates_mod._fast_date_parser(fmt) is not None, fmt
    for fmt in FAST_DATETIME_FORMATS:
        assert dates_mod._fast_fields_parser(fmt) is not None, fmt
    assert dates_mod._fast_fields_parser("%d %b %Y") is None  # month names: strptime only


def _unpad(s: str) -> str:
    """Drop the leading zero of every 2-digit number (strptime accepts "1/2/2020" for %d/%m/%Y)."""
    import re

    return re.sub(r"(?<![0-9])0([0-9])(?![0-9])", r"\1", s)


def _strptime_or_error(s: str, fmt: str):
    try:
        return dt.datetime.strptime(s, fmt)
    except ValueError:
        return "error"


def _ours_or_error(parser, s: str):
    try:
        return parser(s)
    except ConversionError:
        return "error"


valid_datetimes = st.datetimes(min_value=dt.datetime(1000, 1, 1), max_value=dt.datetime(9999, 12, 31))


@settings(max_examples=300, deadline=None)
@given(valid_datetimes, st.sampled_from(FAST_DATE_FORMATS), st.booleans())
def test_fast_date_path_agrees_with_strptime_on_valid_dates(value, fmt, unpad):
    s = value.strftime(fmt)
    if unpad and fmt != "%Y%m%d":
        s = _unpad(s)
    assert compile_date(fmt)(s) == dt.datetime.strptime(s, fmt).date()


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789/-.: T", max_size=20), st.sampled_from(FAST_DATE_FORMATS))
def test_fast_date_path_agrees_with_strptime_on_any_text(s, fmt):
    expected = _strptime_or_error(s, fmt)
    expected = expected if expected == "error" else expected.date()
    assert _ours_or_error(compile_date(fmt), s) == expected


@settings(max_examples=300, deadline=None)
@given(valid_datetimes, st.sampled_from(FAST_DATETIME_FORMATS), st.booleans())
def test_fast_datetime_path_agrees_with_strptime(value, fmt, unpad):
    s = value.strftime(fmt)
    if unpad and "%Y%m%d" not in fmt:
        s = _unpad(s)
    expected = dt.datetime.strptime(s, fmt)
    assert compile_datetime(fmt)(s) == expected.replace(tzinfo=dt.UTC)
    assert compile_date(fmt)(s) == expected.date()


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789/-.: T", max_size=22), st.sampled_from(FAST_DATETIME_FORMATS))
def test_fast_datetime_path_agrees_with_strptime_on_any_text(s, fmt):
    expected = _strptime_or_error(s, fmt)
    expected = expected if expected == "error" else expected.replace(tzinfo=dt.UTC)
    assert _ours_or_error(compile_datetime(fmt), s) == expected


# ---------------------------------------------------------------- datetime() and DST


def test_datetime_iso_and_offsets():
    assert datetime("2024-06-01T12:00:00Z") == dt.datetime(2024, 6, 1, 12, tzinfo=dt.UTC)
    v = datetime("2024-06-01T12:00:00+02:00", tz="Europe/London")
    assert v.utcoffset() == dt.timedelta(hours=2)  # an explicit offset is kept
    v = datetime("2024-06-01 12:00", tz="Europe/London")
    assert v.tzinfo == LONDON and v.utcoffset() == dt.timedelta(hours=1)
    assert datetime("2024-06-01").tzinfo is not None
    assert datetime(dt.date(2024, 1, 1), tz="Europe/London") == dt.datetime(2024, 1, 1, tzinfo=LONDON)
    aware = dt.datetime(2024, 1, 1, tzinfo=NEW_YORK)
    assert datetime(aware) is aware


def test_datetime_with_format_and_tz():
    v = datetime("21/11/2026 10:30", "%d/%m/%Y %H:%M", tz="America/New_York")
    assert v == dt.datetime(2026, 11, 21, 15, 30, tzinfo=dt.UTC)
    v = datetime("2026-11-21 10:30:00 +0530", "%Y-%m-%d %H:%M:%S %z")
    assert v.utcoffset() == dt.timedelta(hours=5, minutes=30)


@pytest.mark.parametrize("fmt", [None, "%Y-%m-%d %H:%M"])
def test_dst_gap_moves_forward_and_is_reported(fmt):
    with collect_reports() as reps:
        v = datetime("2024-03-31 01:30", fmt, tz="Europe/London")  # clocks go 01:00 -> 02:00
    assert (v.hour, v.minute, v.utcoffset()) == (2, 30, dt.timedelta(hours=1))
    assert v.astimezone(dt.UTC) == dt.datetime(2024, 3, 31, 1, 30, tzinfo=dt.UTC)
    assert [r.kind for r in reps] == ["dst_gap"]
    v = datetime("2024-03-10 02:30", fmt, tz="America/New_York")
    assert (v.hour, v.utcoffset()) == (3, dt.timedelta(hours=-4))


@pytest.mark.parametrize("fmt", [None, "%Y-%m-%d %H:%M"])
def test_dst_overlap_takes_the_first_occurrence(fmt):
    with collect_reports() as reps:
        v = datetime("2024-10-27 01:30", fmt, tz="Europe/London")  # 01:00-02:00 happens twice
    assert v.fold == 0 and v.utcoffset() == dt.timedelta(hours=1)
    assert v.astimezone(dt.UTC) == dt.datetime(2024, 10, 27, 0, 30, tzinfo=dt.UTC)
    assert reps == []


def _reference_localize(naive: dt.datetime, zone) -> dt.datetime:
    return naive.replace(tzinfo=zone, fold=0).astimezone(dt.UTC).astimezone(zone)


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(min_value=dt.datetime(2024, 3, 30), max_value=dt.datetime(2024, 4, 1))
    | st.datetimes(min_value=dt.datetime(2024, 10, 26), max_value=dt.datetime(2024, 10, 28))
    | st.datetimes(min_value=dt.datetime(2024, 3, 9), max_value=dt.datetime(2024, 3, 11)),
    st.sampled_from(["Europe/London", "America/New_York", "UTC", "Australia/Lord_Howe"]),
)
def test_fast_datetime_localisation_matches_the_reference(naive, tz):
    naive = naive.replace(microsecond=0)
    s = naive.strftime("%d/%m/%Y %H:%M:%S")
    zone = dates_mod.get_timezone(tz)
    got = compile_datetime("%d/%m/%Y %H:%M:%S", tz)(s)
    expected = _reference_localize(naive, zone)
    assert got == expected
    assert got.utcoffset() == expected.utcoffset()
    assert got.replace(tzinfo=None) == expected.replace(tzinfo=None)
    assert datetime(s, "%d/%m/%Y %H:%M:%S", tz=tz) == got


def test_invalid_timezone():
    with pytest.raises(ConversionError) as info:
        datetime("2024-01-01", tz="Mars/Olympus")
    assert "unknown time zone" in info.value.reason
    with pytest.raises(ConversionError):
        to_timezone(dt.datetime(2024, 1, 1, tzinfo=dt.UTC), "Not/AZone")
    with pytest.raises(ConversionError):
        compile_datetime("%Y", "../etc/passwd")


def test_empty_formats_list_is_an_error():
    with pytest.raises(ConversionError):
        date("2024-01-01", formats=[])


@pytest.mark.parametrize(
    "value", ["", "2024-13-01T00:00", "31/02/2024 10:00", "soon", "20240601", "2024-W22-1T10:00"]
)
def test_invalid_datetimes_raise(value):
    with pytest.raises(ConversionError):
        datetime(value, "%d/%m/%Y %H:%M" if "/" in value else None)


# ---------------------------------------------------------------- formatting, zones, age


def test_format_date():
    assert format_date(dt.date(2024, 2, 29), "%d/%m/%Y") == "29/02/2024"
    assert format_date("2024-02-29", "%m/%d/%Y") == "02/29/2024"
    late = dt.datetime(2024, 1, 1, 23, 30, tzinfo=NEW_YORK)
    assert format_date(late, "%Y-%m-%d") == "2024-01-01"  # no conversion
    with pytest.raises(ConversionError):
        format_date(12, "%Y")


def test_format_datetime_and_to_timezone():
    v = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)
    assert format_datetime(v, "%Y-%m-%d %H:%M") == "2024-06-01 12:00"
    assert format_datetime(v, "%Y-%m-%d %H:%M %Z", tz="Europe/London") == "2024-06-01 13:00 BST"
    assert format_datetime(dt.datetime(2024, 6, 1, 12), "%H:%M", tz="Asia/Tokyo") == "21:00"  # naive = UTC
    assert format_datetime("2024-06-01T12:00:00+02:00", "%H:%M", tz="UTC") == "10:00"
    converted = to_timezone(v, "America/New_York")
    assert converted == v and converted.hour == 8 and converted.tzinfo == NEW_YORK


@pytest.mark.parametrize("tz", ["Pacific/Kiritimati", "Pacific/Pago_Pago", "Asia/Kolkata"])
def test_date_only_values_never_shift_across_timezones(tz):
    d = dt.date(2024, 2, 29)
    assert to_timezone(d, tz) is d
    assert format_datetime(d, "%Y-%m-%d", tz=tz) == "2024-02-29"
    assert date(datetime("2024-02-29", tz=tz)) == d
    assert date("2024-02-29T00:00:00" + ("+14:00" if "Kiri" in tz else "-11:00")) == d


def test_today_and_run_date():
    assert today() == dt.date(2025, 3, 1)
    with pytest.raises(TypeError):
        set_run_date(dt.datetime(2025, 1, 1))


@pytest.mark.parametrize(
    "born, at, years",
    [
        ("2000-03-01", None, 25),  # birthday today (run date 2025-03-01)
        ("2000-03-02", None, 24),
        ("2000-02-29", "2025-02-28", 24),  # leap-day birthday: a year older on 1 March
        ("2000-02-29", "2025-03-01", 25),
        ("2000-02-29", "2024-02-29", 24),
        ("2024-03-01", None, 1),
        ("2025-03-01", None, 0),
    ],
)
def test_age(born, at, years):
    assert age(born, at) == years


def test_age_rejects_future_dates_and_garbage():
    with pytest.raises(ConversionError):
        age("2030-01-01")
    with pytest.raises(ConversionError):
        age("01/01/2000")
    assert age(dt.date(1990, 6, 15), dt.date(2020, 6, 14)) == 29
