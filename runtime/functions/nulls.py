"""Null handling: the functions that look *at* emptiness instead of propagating it.

"Empty" here is ``is_blank``: ``MISSING``, ``None``, ``""`` and whitespace-only text. Zero,
``False`` and empty lists are values, not emptiness.
"""

from __future__ import annotations

from typing import Any

from .values import MISSING, is_blank

__all__ = ["coalesce", "default", "nullif", "is_missing"]


def coalesce(value: Any, *others: Any) -> Any:
    """The first value that is not blank (missing, null, ``""`` or whitespace-only).

    When every value is blank the result is ``MISSING`` if they were all ``MISSING`` (so a field
    absent from every source stays "don't touch"), else ``None``.
    """
    values = (value, *others)
    for v in values:
        if not is_blank(v):
            return v
    return MISSING if all(v is MISSING for v in values) else None


def default(value: Any, fallback: Any) -> Any:
    """``value``, or ``fallback`` when ``value`` is blank (missing, null, ``""``, whitespace)."""
    return fallback if is_blank(value) else value


def nullif(value: Any, other: Any) -> Any:
    """``None`` when ``value`` equals ``other`` (e.g. ``"N/A"``, ``"0000-00-00"``), else ``value``.

    Text is compared after trimming both sides, case-sensitively (``" N/A "`` matches ``"N/A"``, but
    ``"n/a"`` does not: chain ``| upper`` first, or call nullif twice). Other values compare with
    ``==`` (``Decimal("0")`` equals ``0``). ``MISSING`` stays ``MISSING``.
    """
    if value is MISSING:
        return value
    if isinstance(value, str) and isinstance(other, str):
        return None if value.strip() == other.strip() else value
    if isinstance(value, bool) != isinstance(other, bool):
        return value  # True == 1 in Python; a boolean never equals a number here
    return None if value == other else value


def is_missing(value: Any) -> bool:
    """Whether the value is missing, null, ``""`` or whitespace-only (``is_blank``)."""
    return is_blank(value)
