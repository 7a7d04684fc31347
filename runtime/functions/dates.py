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
    "compile_date", "compile_datetime", "set_run_date", "get_timezone",
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
    if tz is _UTC:
        return aware
    # A wall time in a DST gap does not survive a round trip through UTC: normalise it.
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
_TIME_FORMATS = ("%H:%M:%S", "%H:%M")


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


def _fast_time(s: str, with_seconds: bool) -> tuple[int, int, int] | None:
    parts = s.split(":")
    if len(parts) != (3 if with_seconds else 2):
        return None
    # strptime: %H, %M and %S take one or two digits.
    if not all(_digits(p, 1, 2) for p in parts):
        return None
    return int(parts[0]), int(parts[1]), int(parts[2]) if with_seconds else 0


def _fast_datetime_parser(fmt: str) -> Callable[[str], _DateTime | None] | None:
    """A parser returning a naive datetime or ``None`` for "<date format><' ' or 'T'><%H:%M[:%S]>"."""
    date_only = _fast_date_parser(fmt)
    if date_only is not None:

        def parse_midnight(s: str) -> _DateTime | None:
            d = date_only(s)
            return None if d is None else _DateTime(d.year, d.month, d.day)

        return parse_midnight
    for tfmt in _TIME_FORMATS:
        for sep in (" ", "T"):
            suffix = sep + tfmt
            if fmt.endswith(suffix):
                dparse = _fast_date_parser(fmt[: -len(suffix)])
                if dparse is None:
                    return None
                with_seconds = tfmt.endswith("%S")

                def parse(s: str, _sep=sep, _dparse=dparse, _ws=with_seconds) -> _DateTime | None:
                    dpart, found, tpart = s.partition(_sep)
                    if not found:
                        return None
                    d = _dparse(dpart)
                    t = _fast_time(tpart, _ws)
                    if d is None or t is None:
                        return None
                    try:
                        return _DateTime(d.year, d.month, d.day, *t)
                    except ValueError:
                        return None

                return parse
    return None


_HAS_TIME = re.compile(r"%[HIMSfpzZ]")


def compile_date(fmt: str) -> Callable[[str], _Date]:
    """A parser ``str -> datetime.date`` for the strptime format ``fmt``.

    Formats ``%d/%m/%Y``, ``%m/%d/%Y``, ``%Y-%m-%d``, ``%d-%m-%Y``, ``%d.%m.%Y``, ``%Y%m%d`` (and
    ``%Y/%m/%d``, ``%m-%d-%Y``) get a split/slice fast path; anything the fast path does not accept
    (including every invalid value) goes to ``strptime``, so the accepted set and the results are
    exactly strptime's. A format with a time part gives the written calendar date (no tz shift).
    Raises ``ConversionError`` for values that do not match.
    """
    if not isinstance(fmt, str) or not fmt:
        raise ConversionError("date", None, "the date format must be a non-empty string")
    fast = _fast_date_parser(fmt)
    strptime = _DateTime.strptime

    def slow(s: str) -> _Date:
        try:
            return strptime(s, fmt).date()
        except ValueError:
            raise ConversionError("date", s, f"does not match the date format {fmt!r}") from None

    if fast is None:
        return slow

    def parse(s: str) -> _Date:
        d = fast(s)
        return d if d is not None else slow(s)

    return parse


def compile_datetime(fmt: str, tz: str | _dt.tzinfo = "UTC") -> Callable[[str], _DateTime]:
    """A parser ``str -> aware datetime.datetime`` for the strptime format ``fmt``.

    Naive results are read in ``tz`` (fold=0, see the module notes); a format with ``%z`` keeps the
    written offset. Fast path for the date formats of ``compile_date`` alone (midnight) or followed
    by ``" "``/``"T"`` and ``%H:%M`` or ``%H:%M:%S``; strptime otherwise.
    """
    if not isinstance(fmt, str) or not fmt:
        raise ConversionError("datetime", None, "the datetime format must be a non-empty string")
    zone = get_timezone(tz)
    fast = _fast_datetime_parser(fmt)
    strptime = _DateTime.strptime

    def finish(dt: _DateTime) -> _DateTime:
        if dt.tzinfo is None:
            return _localize(dt, zone)
        return dt

    def parse(s: str) -> _DateTime:
        dt = fast(s) if fast is not None else None
        if dt is None:
            try:
                dt = strptime(s, fmt)
            except ValueError:
                raise ConversionError(
                    "datetime", s, f"does not match the datetime format {fmt!r}"
                ) from None
        return finish(dt)

    return parse


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
    for f in fmts:
        try:
            return _date_parser(f)(s)
        except ConversionError:
            continue
    what = "the date format" if len(fmts) == 1 else f"any of the {len(fmts)} date formats"
    raise ConversionError("date", value, f"does not match {what} {fmts if len(fmts) > 1 else repr(fmts[0])}")


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
            dt = _DateTime.fromisoformat(s)
        except ValueError:
            raise ConversionError("datetime", value, "not an ISO 8601 datetime; give a format") from None
        return dt if dt.tzinfo is not None else _localize(dt, zone)
    fmts = _formats_arg("datetime", value, fmt, formats)
    tz_key = tz if isinstance(tz, str) else None
    for f in fmts:
        try:
            if tz_key is not None:
                return _datetime_parser(f, tz_key)(s)
            return compile_datetime(f, zone)(s)
        except ConversionError as exc:
            if exc.reason.startswith("unknown time zone"):
                raise
            continue
    what = "the datetime format" if len(fmts) == 1 else f"any of the {len(fmts)} datetime formats"
    raise ConversionError("datetime", value, f"does not match {what} {fmts if len(fmts) > 1 else repr(fmts[0])}")


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
