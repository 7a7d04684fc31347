"""Numbers, money and booleans. Decimal only, never float.

Floats given as input (from JSON sources) are converted via ``str()`` (``0.1`` -> ``Decimal("0.1")``,
not the binary expansion). NaN and infinities are rejected. ``True``/``False`` are not numbers.
Text numbers use ASCII digits, an optional sign, one ``.`` decimal point and an optional exponent;
thousands separators are only understood by ``money`` (``number("1,234")`` is an error: it is
ambiguous between locales).
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from .errors import ConversionError, report
from .values import MISSING

__all__ = ["number", "integer", "decimal", "money", "round", "boolean"]

_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,6})?")
# Larger magnitudes are refused: no CRM field holds them, and int(Decimal("1e999999")) is slow.
_MAX_ADJUSTED = 100


def _to_decimal(function: str, value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ConversionError(function, value, "a boolean is not a number")
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, int):
        d = Decimal(value)
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ConversionError(function, value, "not a finite number")
        d = Decimal(str(value))
    elif isinstance(value, str):
        s = value.strip()
        if not _NUMBER.fullmatch(s):
            raise ConversionError(function, value, "not a number")
        d = Decimal(s)
    else:
        raise ConversionError(function, value, f"cannot read a number from a {type(value).__name__}")
    if not d.is_finite():
        raise ConversionError(function, value, "not a finite number")
    if d and d.adjusted() > _MAX_ADJUSTED:
        raise ConversionError(function, value, "number too large")
    return d


def _places(function: str, value: Any, places: Any) -> Decimal:
    if isinstance(places, bool) or not isinstance(places, int) or not -18 <= places <= 28:
        raise ConversionError(function, value, "places must be an integer between -18 and 28")
    return Decimal(1).scaleb(-places)


def _quantize(function: str, value: Any, d: Decimal, places: int) -> Decimal:
    try:
        return d.quantize(_places(function, value, places), rounding=ROUND_HALF_EVEN)
    except InvalidOperation:
        raise ConversionError(function, value, "too many digits for the requested places") from None


def number(value: Any) -> Any:
    """Parse a number to ``Decimal``, keeping its written precision (``"1.50"`` -> ``Decimal("1.50")``).

    Accepts int, Decimal, float (via ``str``) and text like ``"-12.5"``, ``" 3 "``, ``"1e3"``.
    Raises ``ConversionError`` for anything else (``""``, ``"1,234"``, ``"12abc"``, ``"NaN"``,
    booleans). Null propagates.
    """
    if value is MISSING or value is None:
        return value
    return _to_decimal("number", value)


def integer(value: Any) -> Any:
    """Parse a whole number to ``int``: ``"3"``, ``"3.0"``, ``"1e3"`` are fine, ``"3.5"`` is a
    ``ConversionError`` (a fraction is never rounded away silently). Null propagates."""
    if value is MISSING or value is None:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    d = _to_decimal("integer", value)
    if d != d.to_integral_value():
        raise ConversionError("integer", value, "has a fractional part")
    return int(d)


def decimal(value: Any, places: int | None = None) -> Any:
    """Parse a ``Decimal``; with ``places``, quantised to that many decimal places (ROUND_HALF_EVEN,
    ``decimal("2.675", 2)`` -> ``Decimal("2.68")``, ``decimal("2.665", 2)`` -> ``Decimal("2.66")``).
    Null propagates."""
    if value is MISSING or value is None:
        return value
    d = _to_decimal("decimal", value)
    return d if places is None else _quantize("decimal", value, d, places)


def round(value: Any, places: int = 0) -> Any:  # noqa: A001 - the catalog name
    """Round half-even to ``places`` decimal places (default 0), returning a ``Decimal``.

    Banker's rounding: ``round("2.5")`` -> ``2``, ``round("3.5")`` -> ``4``. Negative ``places``
    round to tens/hundreds. Accepts what ``number`` accepts. Null propagates.
    """
    if value is MISSING or value is None:
        return value
    return _quantize("round", value, _to_decimal("round", value), places)


_CURRENCY_SYMBOLS = "£$€¥₹¢₩₽₺₪₫฿₱₦"
_CURRENCY_CODE = re.compile(r"^[A-Z]{3}(?=[\s\d(+\-.])|(?<=[\d\s).\-])[A-Z]{3}$")
_GROUPED = re.compile(r"[0-9]{1,3}(?:([,.' ])[0-9]{3})(?:\1[0-9]{3})*")


def _parse_money(value: str) -> Decimal | None:
    s = value.strip()
    s = s.replace("\u00a0", " ").replace("\u202f", " ").replace("\u2009", " ")
    s = _CURRENCY_CODE.sub("", s.strip()).strip()
    signs = 0  # at most one sign marker: "(12)", "12-", "-12" or "+12"
    negative = False
    if s.startswith("(") and s.endswith(")"):
        negative, signs, s = True, 1, s[1:-1].strip()
    if s.endswith("-"):
        negative, signs, s = True, signs + 1, s[:-1].strip()
    # One currency symbol, before or after the amount; the sign may precede or follow a leading
    # symbol (-£12, £-12).
    symbol = False
    for _ in range(2):
        if s[:1] in ("-", "+"):
            negative, signs, s = negative or s[0] == "-", signs + 1, s[1:].strip()
        if not symbol and s[:1] and s[0] in _CURRENCY_SYMBOLS:
            symbol, s = True, s[1:].strip()
    if not symbol and s[-1:] and s[-1] in _CURRENCY_SYMBOLS:
        s = s[:-1].strip()
    if not s or signs > 1:
        return None
    integer_part, decimal_part = s, ""
    last_dot, last_comma = s.rfind("."), s.rfind(",")
    if last_dot >= 0 and last_comma >= 0:
        # Both separators: the last one is the decimal separator (1,234.50 and 1.234,50).
        cut = max(last_dot, last_comma)
        integer_part, decimal_part = s[:cut], s[cut + 1:]
    elif last_comma >= 0:
        # Only commas: grouping when it looks like grouping (1,234 / 1,234,567), else a
        # decimal comma with 1-2 decimals (12,50). "1,234" is read as 1234 (GB/US convention).
        if not _GROUPED.fullmatch(s):
            if s.count(",") != 1 or len(s) - last_comma - 1 not in (1, 2):
                return None
            integer_part, decimal_part = s[:last_comma], s[last_comma + 1:]
    elif last_dot >= 0 and s.count(".") == 1:
        integer_part, decimal_part = s[:last_dot], s[last_dot + 1:]
    # Now integer_part may hold grouping (commas, dots, spaces, apostrophes): validate it.
    if integer_part and not (integer_part.isascii() and integer_part.isdigit()):
        if not _GROUPED.fullmatch(integer_part):
            return None
        integer_part = re.sub(r"[,.' ]", "", integer_part)
    if decimal_part and not (decimal_part.isascii() and decimal_part.isdigit()):
        return None
    if not integer_part and not decimal_part:
        return None
    d = Decimal(f"{integer_part or '0'}.{decimal_part or '0'}") if decimal_part else Decimal(integer_part)
    return -d if negative else d


def money(value: Any, places: int | None = 2) -> Any:
    """Parse an amount of money to a ``Decimal`` quantised to ``places`` (default 2, ROUND_HALF_EVEN;
    ``None`` keeps the written precision).

    Text: currency symbols (``£ $ € ¥ ₹`` ...) and ISO codes (``GBP 12``, ``12.00 USD``) are
    stripped, as are thousands separators. Negatives: ``-12``, ``-£12``, ``£-12``, accounting
    ``(12.50)`` and trailing ``12.50-``. Separators, decided for GB/US data first:

    * both ``,`` and ``.`` present: the *last* one is the decimal point (``"1,234.50"`` and
      ``"1.234,50"`` are both 1234.50);
    * only commas: ``"1,234"`` / ``"1,234,567"`` are grouping (1234), ``"12,5"``/``"12,50"`` are a
      decimal comma; anything else is an error;
    * only dots: one dot is a decimal point (``"1.234"`` = 1.234), several must be valid grouping
      (``"1.234.567"``);
    * spaces and apostrophes are accepted as grouping (``"1 234,50"``, ``"1'234.50"``).

    Rounding away digits (``"12.345"`` -> 12.34) is reported (kind ``"rounded"``). Numbers (int,
    Decimal, float via str) are accepted. Null propagates; anything else is ``ConversionError``.
    """
    if value is MISSING or value is None:
        return value
    if isinstance(value, str):
        d = _parse_money(value)
        if d is None:
            raise ConversionError("money", value, "not an amount of money")
        if d and d.adjusted() > _MAX_ADJUSTED:
            raise ConversionError("money", value, "amount too large")
    else:
        d = _to_decimal("money", value)
    if places is None:
        return d
    q = _quantize("money", value, d, places)
    if q != d:
        report("rounded", f"amount rounded to {places} decimal places")
    return q


_TRUE = frozenset({"true", "yes", "y", "1", "t", "on", "checked"})
_FALSE = frozenset({"false", "no", "n", "0", "f", "off", "unchecked"})


def boolean(value: Any) -> Any:
    """``True``/``False`` from true/false, yes/no, y/n, 1/0, t/f, on/off, checked/unchecked
    (case-insensitive, trimmed), booleans, and the numbers 0 and 1.

    Anything else (``""``, ``"maybe"``, ``2``) raises ``ConversionError``. Null propagates.
    """
    if value is MISSING or value is None:
        return value
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, Decimal)) and value in (0, 1):
        return value == 1
    if isinstance(value, str):
        s = value.strip().lower()
        if s in _TRUE:
            return True
        if s in _FALSE:
            return False
    raise ConversionError("boolean", value, "not a recognised yes/no value")
