"""Text functions: trimming, case, names, substitution, splitting and joining.

Null propagation: every function returns ``MISSING``/``None`` unchanged, except ``concat`` and
``join`` (which skip null elements) and ``length`` (0). Non-text scalars (numbers, dates, booleans)
are converted with ``text()`` first; lists and records raise ``ConversionError``.

Note: ``from runtime.functions import text`` gives the *function* ``text``, which shadows this
module's name on the package; import the module itself as ``runtime.functions.text`` via
``importlib`` if ever needed.
"""

from __future__ import annotations

import datetime as _dt
import re
import unicodedata
from decimal import Decimal
from functools import lru_cache
from typing import Any

from .errors import ConversionError, report
from .values import MISSING

__all__ = [
    "trim", "lower", "upper", "title", "collapse_spaces", "truncate", "replace", "regex_replace",
    "regex_extract", "split", "join", "concat", "substring", "length", "pad_left", "digits", "text",
]


def _null(value: Any) -> bool:
    return value is MISSING or value is None


def text(value: Any) -> Any:
    """Convert a scalar to its text form.

    ``str`` is returned as is; booleans become ``"true"``/``"false"``; integers and Decimals use
    plain notation (``Decimal("1E+3")`` -> ``"1000"``, never exponent notation, so ids and amounts
    stay readable); floats go through ``str()`` then Decimal (``0.1`` -> ``"0.1"``); dates, datetimes
    and times use ISO 8601. Lists, dicts and bytes raise ``ConversionError`` (join them instead).
    """
    if value is MISSING or value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ConversionError("text", value, "not a finite number")
        value = Decimal(str(value))
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ConversionError("text", value, "not a finite number")
        return format(value, "f")
    if isinstance(value, (_dt.date, _dt.time)):  # datetime is a date subclass
        return value.isoformat()
    raise ConversionError("text", value, f"cannot convert a {type(value).__name__} to text")


def _str(value: Any, function: str) -> str:
    """``text(value)`` with the error attributed to ``function``."""
    if isinstance(value, str):
        return value
    try:
        return text(value)
    except ConversionError as exc:
        raise ConversionError(function, value, exc.reason) from None


def trim(value: Any) -> Any:
    """Strip leading and trailing whitespace (Unicode whitespace, including non-breaking spaces)."""
    if _null(value):
        return value
    return _str(value, "trim").strip()


def lower(value: Any) -> Any:
    """Lower-case (Unicode-aware ``str.lower``)."""
    if _null(value):
        return value
    return _str(value, "lower").lower()


def upper(value: Any) -> Any:
    """Upper-case (Unicode-aware ``str.upper``; ``"straße"`` -> ``"STRASSE"``)."""
    if _null(value):
        return value
    return _str(value, "upper").upper()


# Name particles kept lower-case when they are not the first word ("Ludwig van Beethoven").
# Deliberately short: "Le", "La", "Di", "Da" are also complete surnames (Vietnamese Le, Italian Di).
_PARTICLES = frozenset({"van", "von", "der", "den", "de", "du", "des", "ter", "ten"})
_ROMAN = frozenset({"ii", "iii", "iv", "vi", "vii", "viii", "ix", "xi", "xii"})
_WORD = re.compile(r"([^\W\d_]+)")  # runs of letters (captured, for re.split)


def _title_word(word: str, first: bool) -> str:
    """Title-case one whitespace-separated word (may contain hyphens and apostrophes)."""
    low = word.lower()
    if not first and low in _PARTICLES:
        return low
    if not first and low in _ROMAN:
        return low.upper()
    tokens = _WORD.split(low)  # [sep, letters, sep, letters, ..., sep]
    for i in range(1, len(tokens), 2):
        letters = tokens[i]
        # After an apostrophe, capitalise only one-letter prefixes (O'Brien, D'Angelo, L'Estrange),
        # not contractions or possessives (Don't, Jones's).
        if i >= 3 and tokens[i - 1] in ("'", "\u2019") and len(tokens[i - 2]) != 1:
            continue
        if tokens[i - 1][-1:].isdigit():  # "3rd", "flat 2b": letters right after digits stay lower
            continue
        if letters.startswith("mc") and len(letters) > 2:
            tokens[i] = "Mc" + letters[2].upper() + letters[3:]
        else:
            tokens[i] = letters[0].upper() + letters[1:]
    return "".join(tokens)


def _title_slow(s: str) -> str:
    """The reference algorithm (every shape of name); ``_title_str`` must always agree with it."""
    parts = _SPLIT_SPACE(s)
    first = True
    for i, part in enumerate(parts):
        if not part or part.isspace():
            continue
        parts[i] = _title_word(part, first)
        first = False
    return "".join(parts)


_SPLIT_SPACE = re.compile(r"(\s+)").split


def _title_str(s: str) -> str:
    """Title-case text. Most names are ASCII letters in words split by single spaces, for which
    the whole word-by-word algorithm reduces to a few str methods: about 10x cheaper than the
    general path, which everything else (hyphens, apostrophes, digits, other whitespace,
    non-ASCII letters) takes. Tested equal to ``_title_slow`` on random text."""
    if not s.isascii():
        return _title_slow(s)
    words = s.lower().split(" ")
    for i, low in enumerate(words):
        if not low.isalpha():  # "" (a double space or an edge), punctuation, digits, tabs
            return _title_slow(s)
        if i and low in _PARTICLES:
            continue
        if i and low in _ROMAN:
            words[i] = low.upper()
        elif low[:2] == "mc" and len(low) > 2:
            words[i] = "Mc" + low[2:].capitalize()
        else:
            words[i] = low.capitalize()
    return " ".join(words)


# Names repeat (a few thousand first names cover most patients), so results are memoised. The
# bound keeps memory flat on a long run: at most this many (name, result) pairs, least recently
# used dropped first, ~1 MB at worst.
_TITLE_MEMO = 4096
_title_memo = lru_cache(maxsize=_TITLE_MEMO)(_title_str)


def title(value: Any) -> Any:
    """Title-case a person's name.

    Unlike ``str.title`` it handles name shapes: ``"o'brien"`` -> ``"O'Brien"``, ``"mcdonald"`` ->
    ``"McDonald"``, ``"anne-marie"`` -> ``"Anne-Marie"``, ``"van der berg"`` -> ``"Van der Berg"``
    (particles van/von/der/den/de/du/des/ter/ten stay lower-case except as the first word),
    ``"henry viii"`` -> ``"Henry VIII"``, ``"don't"`` -> ``"Don't"``. The whole value is lower-cased
    first, so ``"JOHN SMITH"`` -> ``"John Smith"``. ``Mac`` is not special-cased (Mack, Macy, Mace).
    Whitespace is preserved as is.
    """
    if value.__class__ is str:
        return _title_memo(value)
    if _null(value):
        return value
    return _title_memo(_str(value, "title"))


_SPACES = re.compile(r"\s+")


def collapse_spaces(value: Any) -> Any:
    """Replace every run of whitespace (spaces, tabs, newlines, NBSP) with one space.

    Leading/trailing whitespace is collapsed but not removed: chain ``| trim`` for that.
    """
    if _null(value):
        return value
    return _SPACES.sub(" ", _str(value, "collapse_spaces"))


def _int_arg(function: str, value: Any, arg: Any, name: str, minimum: int = 0) -> int:
    if isinstance(arg, bool) or not isinstance(arg, int) or arg < minimum:
        raise ConversionError(function, value, f"{name} must be an integer >= {minimum}")
    return arg


def truncate(value: Any, n: int, *, ellipsis: str = "") -> Any:
    """Cut text to at most ``n`` characters, ending with ``ellipsis`` when it cuts.

    The result including the ellipsis is at most ``n`` characters. A cut is never silent: it is
    reported (kind ``"truncated"``, detail ``"truncated from X to N characters"``) to the active
    ``collect_reports()`` list. Text that fits is returned unchanged.
    """
    if _null(value):
        return value
    s = _str(value, "truncate")
    n = _int_arg("truncate", value, n, "n")
    if len(s) <= n:
        return s
    ellipsis = ellipsis or ""
    if len(ellipsis) >= n:
        out = ellipsis[:n]
    else:
        out = s[: n - len(ellipsis)] + ellipsis
    report("truncated", f"truncated from {len(s)} to {n} characters")
    return out


def replace(value: Any, old: str, new: str) -> Any:
    """Replace every occurrence of the substring ``old`` with ``new`` (case-sensitive).

    An empty ``old`` raises ``ConversionError`` (it would insert ``new`` between every character).
    """
    if _null(value):
        return value
    s = _str(value, "replace")
    if not isinstance(old, str) or not old:
        raise ConversionError("replace", value, "the text to replace must be a non-empty string")
    return s.replace(old, _str("" if _null(new) else new, "replace"))


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _compile(function: str, value: Any, pattern: Any) -> re.Pattern[str]:
    if not isinstance(pattern, str):
        raise ConversionError(function, value, "the pattern must be a string")
    try:
        return _regex(pattern)
    except re.error as exc:
        raise ConversionError(function, value, f"invalid regular expression: {exc.msg}") from None


def regex_replace(value: Any, pattern: str, replacement: str) -> Any:
    """Replace every match of ``pattern`` (Python ``re`` syntax) with ``replacement``.

    The replacement may use group references (``\\1``, ``\\g<name>``). An invalid pattern raises
    ``ConversionError``.
    """
    if _null(value):
        return value
    s = _str(value, "regex_replace")
    rx = _compile("regex_replace", value, pattern)
    try:
        return rx.sub(replacement, s)
    except (re.error, IndexError, TypeError) as exc:
        raise ConversionError("regex_replace", value, f"invalid replacement: {exc}") from None


def regex_extract(value: Any, pattern: str, group: int | str = 0) -> Any:
    """The first match of ``pattern`` (or its ``group``, by number or name), searched anywhere.

    No match returns ``None``: absence of a match is an answer, not a conversion failure. A group
    that did not take part in the match also gives ``None``. A group that does not exist in the
    pattern raises ``ConversionError``.
    """
    if _null(value):
        return value
    s = _str(value, "regex_extract")
    rx = _compile("regex_extract", value, pattern)
    m = rx.search(s)
    if m is None:
        return None
    try:
        return m.group(group)
    except (IndexError, TypeError):
        raise ConversionError("regex_extract", value, "no such group in the pattern") from None


def split(value: Any, sep: str) -> Any:
    """Split text on the separator ``sep`` into a list of strings (parts are not trimmed).

    The empty string gives an empty list (not ``[""]``). Chain ``| each("trim")`` to trim parts.
    """
    if _null(value):
        return value
    s = _str(value, "split")
    if not isinstance(sep, str) or not sep:
        raise ConversionError("split", value, "the separator must be a non-empty string")
    if s == "":
        return []
    return s.split(sep)


def join(values: Any, sep: str) -> Any:
    """Join a list's values with ``sep``, skipping ``MISSING``, ``None`` and ``""`` elements.

    Non-text elements go through ``text()``. A ``MISSING``/``None`` list is returned unchanged (a
    missing list must not turn into an empty string that would blank a CRM field); an empty list,
    or one with only empty elements, gives ``""``.
    """
    if _null(values):
        return values
    if not isinstance(values, (list, tuple)):
        raise ConversionError("join", values, "join needs a list")
    if not isinstance(sep, str):
        raise ConversionError("join", values, "the separator must be a string")
    return sep.join(_str(v, "join") for v in values if not _null(v) and v != "")


def concat(value: Any, *others: Any) -> str:
    """Concatenate values, skipping ``MISSING`` and ``None``; non-text values go through ``text()``.

    Always returns a string (``""`` when every value is null).
    """
    return "".join(_str(v, "concat") for v in (value, *others) if not _null(v))


def substring(value: Any, start: int, end: int | None = None) -> Any:
    """Characters from ``start`` (0-based) up to ``end`` (exclusive), with Python slice rules.

    Negative indexes count from the end; indexes past the end are clamped (no error).
    """
    if _null(value):
        return value
    s = _str(value, "substring")
    for arg in (start, end):
        if arg is not None and (isinstance(arg, bool) or not isinstance(arg, int)):
            raise ConversionError("substring", value, "start and end must be integers")
    return s[start:end]


def length(value: Any) -> int:
    """Number of characters of text, or elements of a list; 0 for ``MISSING``/``None``."""
    if _null(value):
        return 0
    if isinstance(value, (list, tuple, str)):
        return len(value)
    return len(_str(value, "length"))


def pad_left(value: Any, width: int, fill: str) -> Any:
    """Left-pad to ``width`` characters with the single character ``fill`` (``"7" -> "007"``).

    Longer values are returned unchanged (never cut). ``fill`` must be exactly one character.
    """
    if _null(value):
        return value
    s = _str(value, "pad_left")
    width = _int_arg("pad_left", value, width, "width")
    if not isinstance(fill, str) or len(fill) != 1:
        raise ConversionError("pad_left", value, "fill must be exactly one character")
    return s.rjust(width, fill)


def digits(value: Any) -> Any:
    """Keep only the digits, as ASCII ``0-9`` (codes, NHS numbers: ``"943 476 5919"`` -> ``"9434765919"``).

    Other Unicode decimal digits (full-width, Arabic-Indic) are converted to ASCII rather than
    dropped. A value without digits gives ``""``.
    """
    if _null(value):
        return value
    s = _str(value, "digits")
    if s.isascii():
        return "".join(c for c in s if "0" <= c <= "9")
    return "".join(str(unicodedata.decimal(c)) for c in s if c.isdecimal())
