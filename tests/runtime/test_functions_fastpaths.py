"""Fast paths of the runtime functions agree with their general paths.

``title`` has a plain-ASCII-words path and a bounded memo; ``date_reader``/``datetime_reader``
(what generated code calls per record) read the usual fixed-width spelling by slicing. Each must
give exactly what the general algorithm gives (values and errors), on random input.
"""

from __future__ import annotations

import datetime as dt
import importlib

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import runtime.functions.dates as dates_mod
from runtime.functions import (
    MISSING,
    ConversionError,
    date,
    date_reader,
    datetime,
    datetime_reader,
    title,
)

# the package's `text` attribute is the function of that name, so the module is imported by path
text_mod = importlib.import_module("runtime.functions.text")

# ---------------------------------------------------------------- title

_NAME_PIECES = ["mc", "Mc", "MC", "van", "der", "de", "viii", "ii", "o'", "d\u2019", "-", "'", " ",
                "  ", "\t", "3", "rd", "é", "Ö", "smith", "JONES", "anne", "ß", "\u00a0", "ǅ"]
names = st.lists(st.one_of(st.sampled_from(_NAME_PIECES), st.text(alphabet="abcXYZ -'", max_size=4)),
                 max_size=8).map("".join)


@settings(max_examples=500, deadline=None)
@given(st.one_of(names, st.text(max_size=20)))
@example("van der berg")
@example("henry viii")
@example("mcdonald mc")
@example(" smith")
@example("smith ")
@example("a  b")
def test_title_fast_path_and_memo_equal_the_general_algorithm(s):
    assert text_mod._title_str(s) == text_mod._title_slow(s)
    assert title(s) == text_mod._title_slow(s)
    assert title(s) == text_mod._title_slow(s)  # again: now from the memo


def test_title_plain_names_skip_the_general_algorithm(monkeypatch):
    def general(s):
        raise AssertionError(f"general path taken for {s!r}")

    monkeypatch.setattr(text_mod, "_title_slow", general)
    assert text_mod._title_str("JOHN van der berg viii mcdonald") == "John van der Berg VIII McDonald"
    with pytest.raises(AssertionError):
        text_mod._title_str("o'brien")


def test_title_memo_is_bounded():
    memo = text_mod._title_memo
    memo.cache_clear()
    for i in range(text_mod._TITLE_MEMO + 500):
        title(f"name{i}")
    info = memo.cache_info()
    assert info.currsize == text_mod._TITLE_MEMO
    assert info.maxsize == text_mod._TITLE_MEMO


def test_title_non_text_and_nulls_unchanged_by_the_memo():
    assert title(MISSING) is MISSING
    assert title(None) is None
    assert title(12) == "12"
    with pytest.raises(ConversionError):
        title(["a"])


# ---------------------------------------------------------------- date_reader / datetime_reader

FORMATS = [None, *dates_mod._FIXED_WIDTH]


def _outcome(fn, *args, **kwargs):
    try:
        return ("ok", fn(*args, **kwargs))
    except ConversionError as exc:
        return ("error", exc.function, exc.reason, exc.value)


any_dates = st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31))
date_text = st.one_of(
    st.text(alphabet="0123456789/-. T:", max_size=12),
    st.text(max_size=12),
    # well-formed spellings with an impossible day or month
    st.tuples(st.integers(0, 39), st.integers(0, 19), st.integers(0, 9999)).map(
        lambda t: f"{t[0]:02d}/{t[1]:02d}/{t[2]:04d}"),
    st.tuples(st.integers(0, 9999), st.integers(0, 19), st.integers(0, 39)).map(
        lambda t: f"{t[0]:04d}-{t[1]:02d}-{t[2]:02d}"),
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(date_text, any_dates.map(lambda d: d.strftime("%d/%m/%Y")),
                 any_dates.map(lambda d: d.isoformat())), st.sampled_from(FORMATS))
@example("30/02/2020", "%d/%m/%Y")
@example("2020-02-30", None)
@example(" 01/02/2020", "%d/%m/%Y")
@example("01/02/2020 ", "%d/%m/%Y")
@example("", "%d/%m/%Y")
@example("+1/02/2020", "%d/%m/%Y")
@example("1_0/02/2020", "%d/%m/%Y")
@example("０１/02/2020", "%d/%m/%Y")
@example("0\ud800/02/2020", "%d/%m/%Y")
@example("01/-1/2020", "%d/%m/%Y")
@example("2020-W1-01", None)
@example("2020-W1-01", "%Y-%m-%d")
@example("0000-01-01", None)
def test_date_reader_equals_date(s, fmt):
    read = date_reader(fmt)
    assert _outcome(read, s) == _outcome(date, s, fmt)


@settings(max_examples=200, deadline=None)
@given(any_dates, st.sampled_from(FORMATS))
def test_date_reader_reads_every_valid_date_in_its_format(d, fmt):
    s = d.strftime(fmt or "%Y-%m-%d")
    if d.year < 1000:  # strftime does not pad years below 1000 on every platform
        return
    assert date_reader(fmt)(s) == d == date(s, fmt)


@pytest.mark.parametrize("value", [None, MISSING, 19800131, dt.date(1980, 1, 31),
                                   dt.datetime(1980, 1, 31, 23, 0), ["01/01/2000"]])
def test_date_reader_non_text_like_date(value):
    assert _outcome(date_reader("%d/%m/%Y"), value) == _outcome(date, value, "%d/%m/%Y")


def test_date_reader_slices_the_usual_spelling_and_asks_date_otherwise(monkeypatch):
    calls = []

    def general(value, fmt=None):
        calls.append(value)
        return "general"

    monkeypatch.setattr(dates_mod, "date", general)
    read = dates_mod.date_reader("%d/%m/%Y")
    assert read("31/01/1980") == dt.date(1980, 1, 31)
    assert calls == []
    assert read("30/02/2020") == "general"  # impossible: date() raises and says why
    assert read("1/2/2020") == "general"
    assert calls == ["30/02/2020", "1/2/2020"]


DATETIME_FORMATS = ["%d/%m/%Y %H:%M", "%Y-%m-%dT%H:%M:%S", "%d %b %Y %H:%M"]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(alphabet="0123456789/-. T:", max_size=22), st.text(max_size=22),
                 st.datetimes(min_value=dt.datetime(1000, 1, 1)).flatmap(
                     lambda d: st.sampled_from([d.strftime(f) for f in DATETIME_FORMATS]))),
       st.sampled_from(DATETIME_FORMATS), st.sampled_from(["UTC", "Europe/London"]))
@example(" 31/03/2024 01:30", "%d/%m/%Y %H:%M", "Europe/London")
@example("31/03/2024 01:30", "%d/%m/%Y %H:%M", "Europe/London")
@example("", "%d/%m/%Y %H:%M", "UTC")
def test_datetime_reader_equals_datetime(s, fmt, tz):
    assert _outcome(datetime_reader(fmt, tz), s) == _outcome(datetime, s, fmt, tz=tz)


@pytest.mark.parametrize("value", [None, MISSING, 5, dt.date(2024, 3, 31),
                                   dt.datetime(2024, 3, 31, 1, 30)])
def test_datetime_reader_non_text_like_datetime(value):
    fmt, tz = "%d/%m/%Y %H:%M", "Europe/London"
    assert _outcome(datetime_reader(fmt, tz), value) == _outcome(datetime, value, fmt, tz=tz)
