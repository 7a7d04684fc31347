"""Contact data: phone numbers (E.164 via ``phonenumbers``) and email addresses."""

from __future__ import annotations

import re
from typing import Any

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat

from .errors import ConversionError, report
from .values import MISSING

__all__ = ["phone", "email", "is_email"]


def phone(value: Any, region: str | None = "GB") -> Any:
    """Normalise a phone number to E.164 (``"07700 900123"`` -> ``"+447700900123"``).

    ``region`` (ISO 3166 alpha-2, default ``"GB"``) is how numbers without a ``+``/``00`` country
    prefix are read; numbers with one keep their own country. The number must be *valid* for its
    country according to libphonenumber's metadata (right length and a real number range), else
    ``ConversionError``; ``""`` and text without a number are errors too. Integers (spreadsheet
    exports) are read as their digits. An extension (``"... ext. 123"``) is dropped, because E.164
    has none, and the drop is reported (kind ``"phone_extension_dropped"``). Null propagates.
    """
    if value is MISSING or value is None:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        s = str(value)
    elif isinstance(value, str):
        s = value.strip()
    else:
        raise ConversionError("phone", value, f"cannot read a phone number from a {type(value).__name__}")
    if region is not None and (not isinstance(region, str) or len(region) != 2):
        raise ConversionError("phone", value, "region must be a two-letter country code")
    if not s:
        raise ConversionError("phone", value, "empty text is not a phone number")
    try:
        num = phonenumbers.parse(s, region.upper() if region else None)
    except NumberParseException as exc:
        raise ConversionError("phone", value, _parse_reason(exc)) from None
    if not phonenumbers.is_valid_number(num):
        raise ConversionError("phone", value, "not a valid phone number for its country")
    if num.extension:
        report("phone_extension_dropped", "a phone extension was dropped (E.164 has none)")
    return phonenumbers.format_number(num, PhoneNumberFormat.E164)


def _parse_reason(exc: NumberParseException) -> str:
    # The library's own messages never echo the number; map the codes to stable reasons anyway.
    return {
        NumberParseException.INVALID_COUNTRY_CODE: "unknown country code (or no region given)",
        NumberParseException.NOT_A_NUMBER: "not a phone number",
        NumberParseException.TOO_SHORT_AFTER_IDD: "too short after the international prefix",
        NumberParseException.TOO_SHORT_NSN: "too short",
        NumberParseException.TOO_LONG: "too long",
    }.get(exc.error_type, "not a phone number")


# A practical subset of RFC 5321/5322: dot-atom local part, dotted DNS labels, an alphabetic TLD
# (or an IDN "xn--" one). No quoted local parts, IP literals or comments: CRMs reject those too.
_ATEXT = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_EMAIL = re.compile(
    rf"(?P<local>{_ATEXT}(?:\.{_ATEXT})*)@(?P<domain>(?:{_LABEL}\.)+(?:[a-z]{{2,63}}|xn--[a-z0-9-]{{1,59}}))"
)


def _normalise_email(value: str) -> str | None:
    s = value.strip().lower()
    if not s.isascii() or len(s) > 254:
        return None
    m = _EMAIL.fullmatch(s)
    if m is None or len(m.group("local")) > 64:
        return None
    return s


def email(value: Any) -> Any:
    """Trim, lower-case (the whole address) and validate an email address.

    Lower-casing the local part is technically lossy (RFC 5321 lets it be case-sensitive) but every
    CRM and mail provider in scope treats addresses case-insensitively, and it makes duplicate
    detection work. Validation is syntactic only (no DNS): a dot-atom local part of at most 64
    characters, a domain of dotted labels with an alphabetic TLD, at most 254 characters, ASCII
    only. ``"Name <a@b.com>"``, ``"a@b"``, ``"a..b@c.com"``, ``""`` raise ``ConversionError``.
    Null propagates.
    """
    if value is MISSING or value is None:
        return value
    if not isinstance(value, str):
        raise ConversionError("email", value, f"cannot read an email from a {type(value).__name__}")
    out = _normalise_email(value)
    if out is None:
        raise ConversionError("email", value, "not a valid email address")
    return out


def is_email(value: Any) -> bool:
    """Whether ``email(value)`` would succeed. ``False`` for null, missing and non-text values."""
    return isinstance(value, str) and _normalise_email(value) is not None
