"""Field-level comparison of what fmap wrote with what the destination holds.

Shared by reconciliation (spot checks), rollback (was a record changed since we wrote it?) and the
sample migration's diff. ``compare_field(expected, actual, field_schema)`` classifies one value:

==================== ======= ==========================================================================
kind                 status  meaning
==================== ======= ==========================================================================
``equal``            match   identical values
``coerced``          match   the same value after normalising type/format: ``"12.50"`` vs
                             ``Decimal("12.5")``, a date vs its ISO string, phone formatting, case
                             and whitespace, ``"true"`` vs ``True``, a list in another order
``truncated``        diff    the destination holds a (shorter) prefix of what was written
``picklist_replaced`` diff   a picklist field holding a different (allowed) value
``timezone_shifted`` diff    the same instant or the same wall time in another UTC offset, or a date
                             one day off (a datetime converted around midnight)
``missing``          diff    a value was written, the destination has none
``unexpected``       diff    the destination has a value fmap did not write
``changed``          diff    any other difference
==================== ======= ==========================================================================

Empty values (``None``, ``""``, ``[]``) all mean "no value" (destinations drop them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["FieldDiff", "compare_field", "compare_record", "MATCH_KINDS", "DIFF_KINDS",
           "is_empty", "SYSTEM_PREFIX"]

MATCH_KINDS = ("equal", "coerced")
DIFF_KINDS = ("truncated", "picklist_replaced", "timezone_shifted", "missing", "unexpected",
              "changed")
SYSTEM_PREFIX = "$"  # $external_id, $created_at, $modified_at: destination bookkeeping, not fields
_PHONE_RE = re.compile(r"^\+?[\d\s().\-/]+$")
_NUM_RE = re.compile(r"^[+-]?[\d,]*\.?\d+(?:[eE][+-]?\d+)?$")


@dataclass(frozen=True, slots=True)
class FieldDiff:
    """One field's comparison. ``status`` is ``match`` or ``diff``; ``kind`` says which (table in
    the module docstring). ``expected``/``actual`` are the raw values (mask before showing)."""

    status: str
    kind: str
    field: str | None = None
    expected: Any = None
    actual: Any = None

    @property
    def ok(self) -> bool:
        return self.status == "match"


def is_empty(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, (list, tuple, set)) and not value)


def _ftype(schema: Any) -> str | None:
    t = getattr(schema, "type", None)
    return getattr(t, "value", t)


def _decimal(v: Any) -> Decimal | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, Decimal)):
        return Decimal(v)
    if isinstance(v, float):
        return Decimal(repr(v))
    if isinstance(v, str):
        s = v.strip().lstrip("£$€").replace(" ", "")
        if _NUM_RE.match(s):
            try:
                return Decimal(s.replace(",", ""))
            except InvalidOperation:
                return None
    return None


def _temporal(v: Any) -> date | datetime | None:
    if isinstance(v, (datetime, date)):
        return v
    if isinstance(v, str):
        s = v.strip()
        if len(s) < 10 or not s[:4].isdigit():
            return None
        try:
            if len(s) == 10:
                return date.fromisoformat(s)
            return datetime.fromisoformat(s[:-1] + "+00:00" if s.endswith("Z") else s)
        except ValueError:
            return None
    return None


def _norm_text(s: str) -> str:
    return " ".join(s.split()).casefold()


def _phone_digits(s: str) -> str | None:
    if not _PHONE_RE.match(s.strip()):
        return None
    digits = re.sub(r"\D", "", s)
    return digits if len(digits) >= 7 else None


def _phones_equal(a: str, b: str) -> bool:
    da, db = _phone_digits(a), _phone_digits(b)
    if da is None or db is None:
        return False
    if da == db:
        return True
    # national vs international form: 020 7946 0000 vs +44 20 7946 0000
    na, nb = da.lstrip("0"), db.lstrip("0")
    short, long_ = sorted((na, nb), key=len)
    return len(short) >= 9 and long_.endswith(short) and len(long_) - len(short) <= 3


def _bool(v: Any) -> bool | None:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.strip().lower() in ("true", "false", "yes", "no", "1", "0"):
        return v.strip().lower() in ("true", "yes", "1")
    return None


def _compare_temporal(e: date | datetime, a: date | datetime) -> str | None:
    e_dt, a_dt = isinstance(e, datetime), isinstance(a, datetime)
    if e_dt and a_dt:
        if e.tzinfo is not None and a.tzinfo is not None:
            if e == a:
                same_offset = e.utcoffset() == a.utcoffset()
                return "coerced" if same_offset else "timezone_shifted"
            if e.replace(tzinfo=None) == a.replace(tzinfo=None):
                return "timezone_shifted"  # same wall time, another offset
            return None
        if e.replace(tzinfo=None) == a.replace(tzinfo=None):
            return "coerced"
        return None
    ed = e.date() if e_dt else e
    ad = a.date() if a_dt else a
    if ed == ad:
        return "coerced"
    if abs(ed - ad) == timedelta(days=1):
        return "timezone_shifted"
    return None


def compare_field(expected: Any, actual: Any, field_schema: Any = None) -> FieldDiff:
    """Classify ``actual`` (read back from the destination) against ``expected`` (written)."""

    def d(kind: str) -> FieldDiff:
        return FieldDiff("match" if kind in MATCH_KINDS else "diff", kind, None, expected, actual)

    e_empty, a_empty = is_empty(expected), is_empty(actual)
    if e_empty and a_empty:
        return d("equal" if expected == actual else "coerced")
    if e_empty:
        return d("unexpected")
    if a_empty:
        return d("missing")
    if type(expected) is type(actual) and expected == actual and not (
            isinstance(expected, datetime) and expected.utcoffset() != actual.utcoffset()):
        return d("equal")  # (aware datetimes compare equal across offsets: not "equal" here)
    ftype = _ftype(field_schema)
    # booleans
    eb, ab = _bool(expected), _bool(actual)
    if (isinstance(expected, bool) or isinstance(actual, bool)) and eb is not None and eb == ab:
        return d("coerced")
    # lists (multipicklists): order does not matter
    if isinstance(expected, (list, tuple, set)) and isinstance(actual, (list, tuple, set)):
        if sorted(map(str, expected)) == sorted(map(str, actual)):
            return d("coerced")
        return d("picklist_replaced" if ftype == "multipicklist" else "changed")
    # dates and datetimes
    if ftype in ("date", "datetime", None):
        et, at = _temporal(expected), _temporal(actual)
        if et is not None and at is not None:
            kind = _compare_temporal(et, at)
            if kind is not None:
                return d(kind)
            return d("changed")
    # numbers
    if ftype not in ("text", "textarea", "phone", "email", "url", "picklist"):
        en, an = _decimal(expected), _decimal(actual)
        if en is not None and an is not None:
            return d("coerced" if en == an else "changed")
    es, as_ = str(expected), str(actual)
    if es == as_:
        return d("coerced")
    if isinstance(expected, str) and isinstance(actual, str):
        if ftype in ("picklist",) and (not getattr(field_schema, "picklist_values", None)
                                       or actual in field_schema.picklist_values):
            return d("coerced" if _norm_text(es) == _norm_text(as_) else "picklist_replaced")
        if _norm_text(es) == _norm_text(as_):
            return d("coerced")
        if (ftype == "phone" or ftype is None) and _phones_equal(es, as_):
            return d("coerced")
        stripped = as_.rstrip(" .…")
        if stripped and len(as_) < len(es) and es.startswith(stripped):
            return d("truncated")
    return d("changed")


def compare_record(expected: Mapping[str, Any], actual: Mapping[str, Any],
                   schema: Any = None, *, include_unwritten: bool = False) -> list[FieldDiff]:
    """Compare every field fmap wrote (the keys of ``expected``); with ``include_unwritten`` also
    the destination's other (non-system) fields, which are ``unexpected`` when they hold a value.
    ``schema`` is an ``ObjectSchema`` (or a mapping field -> FieldSchema) or None."""
    fields = _field_map(schema)
    out: list[FieldDiff] = []
    names = list(expected)
    if include_unwritten:
        names += sorted(k for k in actual if k not in expected and k != "id"
                        and not k.startswith(SYSTEM_PREFIX))
    for name in names:
        diff = compare_field(expected.get(name), actual.get(name), fields.get(name))
        out.append(FieldDiff(diff.status, diff.kind, name, diff.expected, diff.actual))
    return out


def _field_map(schema: Any) -> dict[str, Any]:
    if schema is None:
        return {}
    if isinstance(schema, Mapping):
        return dict(schema)
    return {f.api_name: f for f in getattr(schema, "fields", [])}
