"""List functions and aggregates.

A ``MISSING``/``None`` list behaves as an empty list: ``count`` 0, ``sum`` ``Decimal(0)``,
``min``/``max``/``first``/``last`` ``None``, ``distinct``/``sort``/``each`` ``[]``. Inputs must be
lists (or tuples); text is not a list (``"abc" | count`` is a ``ConversionError``, not 3).
"""

from __future__ import annotations

import builtins
from decimal import Decimal
from typing import Any

from .errors import ConversionError
from .numbers import _to_decimal
from .values import MISSING

__all__ = ["count", "sum", "min", "max", "first", "last", "distinct", "sort", "each"]


def _items(function: str, values: Any) -> list | tuple:
    if values is MISSING or values is None:
        return ()
    if isinstance(values, (list, tuple)):
        return values
    raise ConversionError(function, values, f"needs a list, not a {type(values).__name__}")


def _present(values: list | tuple) -> list:
    return [v for v in values if v is not MISSING and v is not None]


def count(values: Any) -> int:
    """Number of elements (nulls included: they are elements); 0 for a missing list."""
    return len(_items("count", values))


def sum(values: Any) -> Decimal:  # noqa: A001 - the catalog name
    """Sum as ``Decimal``, ignoring null elements; numeric text is read like ``number``
    (``["1.5", 2]`` -> ``Decimal("3.5")``). Non-numbers (including ``""`` and booleans) raise
    ``ConversionError``. An empty or missing list sums to ``Decimal(0)``."""
    total = Decimal(0)
    for v in _present(_items("sum", values)):
        total += _to_decimal("sum", v)
    return total


def _extreme(function: str, values: Any, pick) -> Any:
    present = _present(_items(function, values))
    if not present:
        return None
    try:
        return pick(present)
    except TypeError:
        raise ConversionError(function, values, "elements of different types cannot be compared") from None


def min(values: Any) -> Any:  # noqa: A001 - the catalog name
    """Smallest non-null element (``None`` when there is none). Elements are compared as they are
    (text alphabetically, numbers numerically); mixing text and numbers is a ``ConversionError``."""
    return _extreme("min", values, builtins.min)


def max(values: Any) -> Any:  # noqa: A001 - the catalog name
    """Largest non-null element (``None`` when there is none); see ``min``."""
    return _extreme("max", values, builtins.max)


def first(values: Any) -> Any:
    """The first element, even if it is null; ``None`` for an empty or missing list."""
    items = _items("first", values)
    return items[0] if items else None


def last(values: Any) -> Any:
    """The last element, even if it is null; ``None`` for an empty or missing list."""
    items = _items("last", values)
    return items[-1] if items else None


def distinct(values: Any) -> list:
    """Elements without duplicates, in first-seen order (``==`` equality, so ``1`` and
    ``Decimal("1")`` are duplicates). Unhashable elements (records) are compared one by one."""
    out: list = []
    seen: set = set()
    for v in _items("distinct", values):
        try:
            if v in seen:
                continue
            seen.add(v)
        except TypeError:
            if v in out:
                continue
        out.append(v)
    return out


def sort(values: Any) -> list:
    """Elements sorted ascending (stable), nulls (``None``/``MISSING``) last. Mixed types that cannot
    be compared raise ``ConversionError``."""
    items = _items("sort", values)
    present = _present(items)
    try:
        ordered = sorted(present)
    except TypeError:
        raise ConversionError("sort", values, "elements of different types cannot be compared") from None
    return ordered + [v for v in items if v is MISSING or v is None]


def each(values: Any, fname: str, *args: Any, **kwargs: Any) -> list:
    """Apply the catalog function named ``fname`` to every element, with the extra arguments:
    ``codes | each("upper")``, ``phones | each("phone", "US")``. Null elements go through the
    function too (so they propagate as that function defines). An unknown name raises
    ``ConversionError``. A missing list gives ``[]``."""
    from . import FUNCTIONS  # the registry is built in the package __init__ (import cycle)

    fn = FUNCTIONS.get(fname) if isinstance(fname, str) else None
    if fn is None:
        raise ConversionError("each", values, f"unknown function {fname!r}")
    return [fn(v, *args, **kwargs) for v in _items("each", values)]
