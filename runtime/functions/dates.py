"""Dates, datetimes and time zones.

Rules that keep migrated dates right:

* ``date()`` returns ``datetime.date`` and never applies a time-zone conversion: a date of birth
  ``1980-03-01`` stays ``1980-03-01`` whatever the zone of the run or of the target (a datetime
  string given to ``date()`` keeps its written calendar date).
* Only what the format says is accepted: two-digit years only with ``%y`` (strptime's pivot:
  69-99 -> 1900s, 00-68 -> 2000s), day/month order only as written, and impossible dates
  (``31/02/2020``) raise ``ConversionError``; nothing is guessed.
* ``datetime()`` returns an *aware* ``datetime.datetime``. Naive input is read in ``tz``. Local times
  that do not exist (spring-forward gap) or exist twice (fall-back overlap) are resolved with
  PEP 495 ``fold=0``: an ambiguous time takes its *first* occurrence (the summer-time offset), and a
  non-existent time is read with the offset in force before the gap, which lands it one gap-length
  later (``01:30`` on the UK spring-forward day becomes ``02:30 BST`` = ``01:30 UTC``); the shift is
  reported (kind ``"dst_gap"``).
* Performance: ``strptime`` costs several microseconds per value, so ``compile_date(fmt)`` /
  ``compile_datetime(fmt, tz)`` return parsers specialised for the common formats (slicing/split,
  about 5x faster), which fall back to ``strptime`` whenever the fast path rejects a value; results
  are identical (tested against strptime). ``date()``/``datetime()`` keep an LRU cache of compiled
  parsers. Values are trimmed of surrounding whitespace before parsing.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ConversionError, report
from .values import MISSING

__all__ = [
    "date", "datetime", "format_date", "format_datetime", "to_timezone", "today", "age",
    "compile_date", "compile_datetime", "date_reader", "datetime_reader", "set_run_date", "get_timezone",
]

_Date = _dt.date
_DateTime = _dt.datetime
_UTC = _dt.UTC

# ---------------------------------------------------------------- run date

_run_date: _Date | None = None


def set_run_date(value: _Date | None) -> None:
    """Fix the date ``today()`` returns for this run (``None``: the next ``today()`` call fixes it
    to the machine's current date). The executor sets it once per run so every record of a run,
    and every test, sees the same "today" even across midnight."""
    global _run_date
    if value is not None and (not isinstance(value, _Date) or isinstance(value, _DateTime)):
        raise TypeError("set_run_date needs a datetime.date")
    _run_date = value


def today() -> _Date:
    """The run's date: the one given to ``set_run_date``, else the machine's date at the first call
    (then fixed, so a run crossing midnight stays consistent)."""
    global _run_date
    if _run_date is None:
        _run_date = _Date.today()
    return _run_date


# ---------------------------------------------------------------- time zones


@lru_cache(maxsize=128)
def _zone(name: str) -> _dt.tzinfo:
    if name.upper() in ("UTC", "Z"):
        return _UTC
    return ZoneInfo(name)


def get_timezone(name: Any, function: str = "datetime", value: Any = None) -> _dt.tzinfo:
    """The ``tzinfo`` for an IANA zone name (``"Europe/London"``); ``"UTC"`` is ``timezone.utc``.

    An unknown name raises ``ConversionError`` (the zone name is configuration, so it appears in
    the reason; the value does not).
    """
    if isinstance(name, _dt.tzinfo):
        return name
    if not isinstance(name, str) or not name:
        raise ConversionError(function, value, "the time zone must be a non-empty IANA name")
    try:
        return _zone(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ConversionError(function, value, f"unknown time zone {name!r}") from None


def _localize(naive: _DateTime, tz: _dt.tzinfo) -> _DateTime:
    """Attach ``tz`` to a naive datetime with fold=0; normalise a non-existent (gap) wall time."""
    aware = naive.replace(tzinfo=tz, fold=0)
    if tz is _UTC or aware.utcoffset() == aware.replace(fold=1).utcoffset():
        return aware  # the usual case: neither in a gap nor in an overlap
    # Overlap (fold=0 keeps the first occurrence) or gap: a gap wall time does not survive a round
    # trip through UTC, and is normalised to the wall time of the same instant.
    normal = aware.astimezone(_UTC).astimezone(tz)
    if normal.replace(tzinfo=None) != naive:
        report("dst_gap", "a local time inside a daylight-saving gap was moved forward")
        return normal
    return aware


# ---------------------------------------------------------------- fast parsers

_DATE_LAYOUTS: dict[str, tuple[str, tuple[int, int, int]]] = {
    # fmt: (separator, positions of (year, month, day) among the parts)
    "%d/%m/%Y": ("/", (2, 1, 0)),
    "%m/%d/%Y": ("/", (2, 0, 1)),
    "%Y-%m-%d": ("-", (0, 1, 2)),
    "%d-%m-%Y": ("-", (2, 1, 0)),
    "%d.%m.%Y": (".", (2, 1, 0)),
    "%Y/%m/%d": ("/", (0, 1, 2)),
    "%m-%d-%Y": ("-", (2, 0, 1)),
}


def _digits(s: str, lo: int, hi: int) -> bool:
    return lo <= len(s) <= hi and s.isascii() and s.isdigit()


def _fast_date_parser(fmt: str) -> Callable[[str], _Date | None] | None:
    """A parser returning a date or ``None`` (= "not sure, ask strptime") for known formats."""
    if fmt == "%Y%m%d":

        def parse_compact(s: str) -> _Date | None:
            if len(s) != 8 or not (s.isascii() and s.isdigit()):
                return None
            try:
                return _Date(int(s[:4]), int(s[4:6]), int(s[6:]))
            except ValueError:
                return None

        return parse_compact
    layout = _DATE_LAYOUTS.get(fmt)
    if layout is None:
        return None
    sep, (iy, im, iday) = layout

    def parse(s: str) -> _Date | None:
        parts = s.split(sep)
        if len(parts) != 3:
            return None
        y, m, d = parts[iy], parts[im], parts[iday]
        # strptime: %Y is exactly 4 digits, %m and %d one or two.
        if not (_digits(y, 4, 4) and _digits(m, 1, 2) and _digits(d, 1, 2)):
            return None
        try:
            return _Date(int(y), int(m), int(d))
        except ValueError:
            return None

    return parse


_FIELDS = {"Y": 0, "m": 1, "d": 2, "H": 3, "M": 4, "S": 5}


def _fast_fields_parser(fmt: str) -> Callable[[str], list[int] | None] | None:
    """A regex parser returning ``[Y, m, d, H, M, S]`` or ``None`` ("not sure, ask strptime").

    Built for any format made only of ``%Y %m %d %H %M %S`` (each at most once, with %Y %m %d all
    present) and literal characters. It accepts a subset of what strptime accepts and gives the
    same result: ``%Y`` is exactly 4 ASCII digits, the others 1-2 digits when followed by a
    literal or the end, exactly 2 when followed by another directive (strptime's alternations
    take 2 digits first for every valid 2-digit value); range checks are the datetime
    constructor's (done by the caller, which falls back to strptime on ``ValueError``).
    """
    pattern: list[str] = []
    order: list[int] = []
    i = 0
    while i < len(fmt):
        c = fmt[i]
        if c != "%":
            # Literals match exactly (strptime also takes runs of whitespace for a space and
            # ignores case: those values just take the slow path).
            pattern.append(re.escape(c))
            i += 1
            continue
        d = fmt[i + 1 : i + 2]
        if d not in _FIELDS or _FIELDS[d] in order:
            return None
        followed_by_directive = fmt[i + 2 : i + 3] == "%" and fmt[i + 3 : i + 4] in _FIELDS
        if d == "Y":
            pattern.append("([0-9]{4})")
        elif followed_by_directive:
            pattern.append("([0-9]{2})")
        else:
            pattern.append("([0-9]{1,2})")
        order.append(_FIELDS[d])
        i += 2
    if not {0, 1, 2} <= set(order):
        return None
    rx = re.compile("".join(pattern))
    slots = [order.index(k) if k in order else None for k in range(6)]
    fullmatch = rx.fullmatch

    def parse(s: str) -> list[int] | None:
        m = fullmatch(s)
        if m is None:
            return None
        g = m.groups()
        return [0 if j is None else int(g[j]) for j in slots]

    return parse


def _strptime_reason(exc: ValueError, fmt: str, what: str) -> str:
    # strptime's own messages quote the value: never pass them on.
    msg = str(exc)
    if "out of range" in msg or "must be in" in msg:
        return f"not a valid calendar {what} (a field is out of range)"
    return f"does not match the {what} format {fmt!r}"


def compile_date(fmt: str) -> Callable[[str], _Date]:
    """A parser ``str -> datetime.date`` for the strptime format ``fmt``.

    Formats ``%d/%m/%Y``, ``%m/%d/%Y``, ``%Y-%m-%d``, ``%d-%m-%Y``, ``%d.%m.%Y``, ``%Y%m%d`` (and
    ``%Y/%m/%d``, ``%m-%d-%Y``) get a split/slice fast path, other formats made only of
    ``%Y %m %d %H %M %S`` and literals a regex fast path; anything the fast path does not accept
    (including every invalid value) goes to ``strptime``, so the accepted set and the results are
    exactly strptime's. A format with a time part gives the written calendar date (no tz shift).
    Raises ``ConversionError`` for values that do not match.
    """
    if not isinstance(fmt, str) or not fmt:
        raise ConversionError("date", None, "the date format must be a non-empty string")
    fast = _fast_date_parser(fmt)
    if fast is None:
        fields = _fast_fields_parser(fmt)
        if fields is not None:

            def fast(s: str) -> _Date | None:
                f = fields(s)
                if f is None:
                    return None
                try:
                    return _DateTime(*f).date()  # validates the time part too, like strptime
                except ValueError:
                    return None

    strptime = _DateTime.strptime

    def slow(s: str) -> _Date:
        try:
            return strptime(s, fmt).date()
        except ValueError as exc:
            raise ConversionError("date", s, _strptime_reason(exc, fmt, "date")) from None

    if fast is None:
        return slow

    def parse(s: str) -> _Date:
        d = fast(s)
        return d if d is not None else slow(s)

    return parse


def compile_datetime(fmt: str, tz: str | _dt.tzinfo = "UTC") -> Callable[[str], _DateTime]:
    """A parser ``str -> aware datetime.datetime`` for the strptime format ``fmt``.

    Naive results are read in ``tz`` (fold=0, see the module notes); a format with ``%z`` keeps the
    written offset. Formats made only of ``%Y %m %d %H %M %S`` and literal characters (e.g.
    ``%d/%m/%Y %H:%M``, ``%Y-%m-%dT%H:%M:%S``) get a regex fast path; strptime otherwise, and for
    every value the fast path does not accept.
    """
    if not isinstance(fmt, str) or not fmt:
        raise ConversionError("datetime", None, "the datetime format must be a non-empty string")
    zone = get_timezone(tz)
    fields = _fast_fields_parser(fmt)
    strptime = _DateTime.strptime
    Dt = _DateTime
    utc = zone is _UTC

    def slow(s: str) -> _DateTime:
        try:
            dt = strptime(s, fmt)
        except ValueError as exc:
            raise ConversionError("datetime", s, _strptime_reason(exc, fmt, "datetime")) from None
        return dt if dt.tzinfo is not None else _localize(dt, zone)

    if fields is None:
        return slow

    def parse(s: str) -> _DateTime:
        f = fields(s)
        if f is None:
            return slow(s)
        try:
            dt = Dt(*f, tzinfo=zone)
        except ValueError:
            return slow(s)
        # Same offset for both folds: the wall time is neither in a DST gap nor an overlap.
        if utc or dt.utcoffset() == Dt(*f, tzinfo=zone, fold=1).utcoffset():
            return dt
        return _localize(Dt(*f), zone)

    return parse


# Formats whose usual spelling has a fixed width: (length, separator positions, year/month/day
# slices). "01/02/2020" is read by slicing into ISO form for ``date.fromisoformat`` (C, strict:
# only ASCII digits, only real dates; with a separator at both positions, an ISO week date cannot
# be formed); "1/2/2020" and anything unusual take the general path.
_FIXED_WIDTH: dict[str, tuple[int, tuple[int, ...], tuple[slice, slice, slice]]] = {
    "%d/%m/%Y": (10, (2, 5), (slice(6, 10), slice(3, 5), slice(0, 2))),
    "%m/%d/%Y": (10, (2, 5), (slice(6, 10), slice(0, 2), slice(3, 5))),
    "%Y-%m-%d": (10, (4, 7), (slice(0, 4), slice(5, 7), slice(8, 10))),
    "%d-%m-%Y": (10, (2, 5), (slice(6, 10), slice(3, 5), slice(0, 2))),
    "%d.%m.%Y": (10, (2, 5), (slice(6, 10), slice(3, 5), slice(0, 2))),
    "%Y/%m/%d": (10, (4, 7), (slice(0, 4), slice(5, 7), slice(8, 10))),
    "%m-%d-%Y": (10, (2, 5), (slice(6, 10), slice(0, 2), slice(3, 5))),
    "%Y%m%d": (8, (), (slice(0, 4), slice(4, 6), slice(6, 8))),
}


def date_reader(fmt: str | None = None) -> Callable[[Any], Any]:
    """``value -> date(value, fmt)`` for one fixed format, built once per mapping.

    Generated code calls this once per record and field, so the common spelling of the common
    formats ("31/01/1980" for ``%d/%m/%Y``, "1980-01-31" for ``%Y-%m-%d`` or no format) is read
    by slicing, with no split, regex or strptime. Every other value (other spellings, padding,
    null, non-text, and every invalid one, Feb 30 included) goes through ``date(value, fmt)``
    itself, so the results and errors are exactly ``date``'s (tested on random text).
    """
    if fmt is not None and (not isinstance(fmt, str) or not fmt):
        raise ConversionError("date", None, "the date format must be a non-empty string")
    fmt_key = "%Y-%m-%d" if fmt is None else fmt  # ISO: the same fixed-width spelling
    layout = _FIXED_WIDTH.get(fmt_key)
    general = date
    if layout is None:
        if fmt is None:
            return general

        def read_any(value: Any) -> Any:
            return general(value, fmt)

        return read_any
    width, seps, (ys, ms, ds) = layout
    sep = fmt_key[2] if seps else ""
    Date = _Date
    if seps:
        i, j = seps
        iso = _Date.fromisoformat  # strict: exactly ASCII digits, and a real calendar date

        def read(value: Any) -> Any:
            if value.__class__ is str and len(value) == width and value[i] == sep == value[j]:
                try:
                    return iso(f"{value[ys]}-{value[ms]}-{value[ds]}")
                except ValueError:  # not digits; Feb 30 or month 13: date() says why
                    pass
            return general(value, fmt)

        return read

    def read_compact(value: Any) -> Any:
        if value.__class__ is str and len(value) == width and value.isascii() and value.isdigit():
            try:
                return Date(int(value[ys]), int(value[ms]), int(value[ds]))
            except ValueError:
                pass
        return general(value, fmt)

    return read_compact


def datetime_reader(fmt: str, tz: str = "UTC") -> Callable[[Any], Any]:
    """``value -> datetime(value, fmt, tz=tz)`` for one fixed format and zone, built once per
    mapping: text with no surrounding whitespace goes straight to the parser ``compile_datetime``
    built (what ``datetime`` would call after its checks); everything else through ``datetime``
    itself, so results and errors are exactly ``datetime``'s."""
    parse = compile_datetime(fmt, tz)
    general = datetime

    def read(value: Any) -> Any:
        if value.__class__ is str and value and not (value[0].isspace() or value[-1].isspace()):
            return parse(value)
        return general(value, fmt, tz=tz)

    return read


@lru_cache(maxsize=256)
def _date_parser(fmt: str) -> Callable[[str], _Date]:
    return compile_date(fmt)


@lru_cache(maxsize=256)
def _datetime_parser(fmt: str, tz: str) -> Callable[[str], _DateTime]:
    return compile_datetime(fmt, tz)


# ---------------------------------------------------------------- ISO


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_date(s: str) -> _Date:
    # Only the extended calendar form: fromisoformat would also take 20200101 and 2020-W01-1.
    if not _ISO_DATE.match(s):
        pass
    elif len(s) == 10:
        try:
            return _Date.fromisoformat(s)
        except ValueError:
            pass
    elif len(s) > 10 and s[10] in "T ":
        # A datetime: its written calendar date, with no time-zone conversion.
        try:
            return _DateTime.fromisoformat(s).date()
        except ValueError:
            pass
    raise ConversionError("date", s, "not an ISO date (YYYY-MM-DD); give a format")


def _formats_arg(function: str, value: Any, fmt: Any, formats: Any) -> list[str]:
    out: list[str] = []
    if fmt is not None:
        out.append(fmt)
    if formats is not None:
        if isinstance(formats, str) or not isinstance(formats, Iterable):
            raise ConversionError(function, value, "formats must be a list of format strings")
        out.extend(formats)
    for f in out:
        if not isinstance(f, str) or not f:
            raise ConversionError(function, value, "a format must be a non-empty string")
    if not out:
        raise ConversionError(function, value, "formats is empty")
    return out


def date(value: Any, fmt: str | None = None, *, formats: list[str] | None = None) -> Any:
    """Parse a date (returns ``datetime.date``).

    ``fmt`` is a strptime format (``"%d/%m/%Y"``); ``formats`` a list tried in order after ``fmt``.
    With neither, ISO ``YYYY-MM-DD`` is accepted, and ISO datetimes give their written date (no
    time-zone conversion, so date-only values never shift a day). A ``date`` is returned as is; a
    ``datetime`` gives its own ``.date()`` (again without conversion). Null propagates; anything
    else (including ``""`` and impossible dates like ``31/02/2020``) raises ``ConversionError``.
    """
    if value is MISSING or value is None:
        return value
    if isinstance(value, _DateTime):
        return value.date()
    if isinstance(value, _Date):
        return value
    if not isinstance(value, str):
        raise ConversionError("date", value, f"cannot read a date from a {type(value).__name__}")
    s = value.strip()
    if not s:
        raise ConversionError("date", value, "empty text is not a date")
    if fmt is None and formats is None:
        try:
            return _iso_date(s)
        except ConversionError:
            raise ConversionError("date", value, "not an ISO date (YYYY-MM-DD); give a format") from None
    fmts = _formats_arg("date", value, fmt, formats)
    reason = ""
    for f in fmts:
        try:
            return _date_parser(f)(s)
        except ConversionError as exc:
            reason = exc.reason
    if len(fmts) > 1:
        reason = f"does not match any of the date formats {fmts}"
    raise ConversionError("date", value, reason)


def datetime(
    value: Any,
    fmt: str | None = None,
    *,
    tz: str = "UTC",
    formats: list[str] | None = None,
) -> Any:
    """Parse a datetime (returns an aware ``datetime.datetime``).

    ``fmt``/``formats`` as for ``date``; without them ISO 8601 is accepted (``2024-03-31T01:30``,
    ``...Z``, ``...+01:00``, or a bare date = midnight). Values without an offset are read in ``tz``
    (an IANA name, default ``"UTC"``) with fold=0 (see the module notes on DST); values with an
    offset keep it. An aware ``datetime`` is returned as is, a naive one is localised, a ``date``
    becomes midnight in ``tz``. Unknown ``tz`` raises ``ConversionError``.
    """
    if value is MISSING or value is None:
        return value
    zone = get_timezone(tz, "datetime", value)
    if isinstance(value, _DateTime):
        return value if value.tzinfo is not None else _localize(value, zone)
    if isinstance(value, _Date):
        return _localize(_DateTime(value.year, value.month, value.day), zone)
    if not isinstance(value, str):
        raise ConversionError(
            "datetime", value, f"cannot read a datetime from a {type(value).__name__}"
        )
    s = value.strip()
    if not s:
        raise ConversionError("datetime", value, "empty text is not a datetime")
    if fmt is None and formats is None:
        try:
            if not _ISO_DATE.match(s):  # fromisoformat also takes 20240601 and week dates
                raise ValueError
            dt = _DateTime.fromisoformat(s)
        except ValueError:
            raise ConversionError("datetime", value, "not an ISO 8601 datetime; give a format") from None
        return dt if dt.tzinfo is not None else _localize(dt, zone)
    fmts = _formats_arg("datetime", value, fmt, formats)
    reason = ""
    for f in fmts:
        try:
            if isinstance(tz, str):
                return _datetime_parser(f, tz)(s)
            return compile_datetime(f, zone)(s)
        except ConversionError as exc:
            reason = exc.reason
    if len(fmts) > 1:
        reason = f"does not match any of the datetime formats {fmts}"
    raise ConversionError("datetime", value, reason)


# ---------------------------------------------------------------- formatting and arithmetic


def _as_date(function: str, value: Any) -> _Date:
    if isinstance(value, _Date):
        return value
    if isinstance(value, str):
        try:
            return date(value)
        except ConversionError as exc:
            raise ConversionError(function, value, exc.reason) from None
    raise ConversionError(function, value, f"needs a date, not a {type(value).__name__}")


def _as_aware(function: str, value: Any) -> _DateTime:
    """An aware datetime; naive datetimes and ISO strings without offset are taken as UTC."""
    if isinstance(value, _DateTime):
        return value if value.tzinfo is not None else value.replace(tzinfo=_UTC)
    if isinstance(value, str):
        try:
            return datetime(value)
        except ConversionError as exc:
            raise ConversionError(function, value, exc.reason) from None
    raise ConversionError(function, value, f"needs a datetime, not a {type(value).__name__}")


def format_date(value: Any, fmt: str) -> Any:
    """Format a date with a strftime format (``"%d/%m/%Y"``); ISO date strings are accepted.

    A datetime is formatted as given (no time-zone conversion). Null propagates.
    """
    if value is MISSING or value is None:
        return value
    d = _as_date("format_date", value)
    if not isinstance(fmt, str):
        raise ConversionError("format_date", value, "the format must be a string")
    return d.strftime(fmt)


def format_datetime(value: Any, fmt: str, *, tz: str | None = None) -> Any:
    """Format a datetime with a strftime format, first converted to ``tz`` when given.

    Naive datetimes (and ISO strings without offset) are taken as UTC. A plain ``date`` is
    formatted as midnight without any conversion (date-only values never shift). Null propagates.
    """
    if value is MISSING or value is None:
        return value
    if not isinstance(fmt, str):
        raise ConversionError("format_datetime", value, "the format must be a string")
    if isinstance(value, _Date) and not isinstance(value, _DateTime):
        return _DateTime(value.year, value.month, value.day).strftime(fmt)
    dt = _as_aware("format_datetime", value)
    if tz is not None:
        dt = dt.astimezone(get_timezone(tz, "format_datetime", value))
    return dt.strftime(fmt)


def to_timezone(value: Any, tz: str) -> Any:
    """Convert a datetime to the zone ``tz`` (same instant, different wall time).

    Naive datetimes are taken as UTC. A plain ``date`` is returned unchanged: a date has no instant,
    so it never shifts. Null propagates; unknown ``tz`` raises ``ConversionError``.
    """
    if value is MISSING or value is None:
        return value
    zone = get_timezone(tz, "to_timezone", value)
    if isinstance(value, _Date) and not isinstance(value, _DateTime):
        return value
    return _as_aware("to_timezone", value).astimezone(zone)


def age(value: Any, at: Any = None) -> Any:
    """Whole years from the date ``value`` to ``at`` (default: the run date, ``today()``).

    Someone born on 29 February turns a year older on 1 March in non-leap years (as in UK law).
    A date after ``at`` raises ``ConversionError`` (a birth date in the future is bad data).
    Datetimes use their calendar date, without conversion. Null propagates.
    """
    if value is MISSING or value is None:
        return value
    born = _as_date("age", value)
    ref = today() if at is None or at is MISSING else _as_date("age", at)
    if isinstance(born, _DateTime):
        born = born.date()
    if isinstance(ref, _DateTime):
        ref = ref.date()
    if born > ref:
        raise ConversionError("age", value, "the date is after the reference date")
    return ref.year - born.year - ((ref.month, ref.day) < (born.month, born.day))
