"""The runtime function library: one Python function per entry of the ``dsl.builtins`` catalog.

Every catalog name is exported here under the same name and registered in ``FUNCTIONS`` (used by
``each`` and by generated code that calls functions by name). A pipe ``x | f(a)`` calls ``f(x, a)``.

Contracts shared by all functions (details in ``docs/functions.md``):

* ``MISSING`` (no such field), ``None`` (null) and ``""`` are distinct; scalar functions return
  ``MISSING``/``None`` unchanged, except the null-aware ones (``coalesce``, ``default``, ``nullif``,
  ``is_missing``, ``count``, ``concat``, ``join``, ``length``, ``is_email``, ``today``).
* A value that cannot be converted raises ``ConversionError`` (never a silent null); its message
  never contains the value.
* Data loss (truncation, a word cut by ``split_note``, a dropped phone extension, money rounding)
  is reported through ``report()`` to the active ``collect_reports()`` list.
* Numbers are ``Decimal``, never float.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .contact import email, is_email, phone
from .dates import (
    age,
    compile_date,
    compile_datetime,
    date,
    date_reader,
    datetime,
    datetime_reader,
    format_date,
    format_datetime,
    set_run_date,
    to_timezone,
    today,
)
from .errors import ConversionError, Report, collect_reports, mask_value, report
from .html import html_to_text
from .lists import count, distinct, each, first, last, max, min, sort, sum
from .notes import split_note
from .nulls import coalesce, default, is_missing, nullif
from .numbers import boolean, decimal, integer, money, number, round
from .text import (
    collapse_spaces,
    concat,
    digits,
    join,
    length,
    lower,
    pad_left,
    regex_extract,
    regex_replace,
    replace,
    split,
    substring,
    text,
    title,
    trim,
    truncate,
    upper,
)
from .values import MISSING, MissingType, is_blank, is_null

# The catalog functions, by their .fmap name (same order as dsl/builtins.py).
FUNCTIONS: dict[str, Callable[..., Any]] = {
    f.__name__: f
    for f in (
        # text
        trim, lower, upper, title, collapse_spaces, truncate, replace, regex_replace,
        regex_extract, split, join, concat, substring, length, pad_left, digits, html_to_text,
        text,
        # dates and times
        date, datetime, format_date, format_datetime, to_timezone, today, age,
        # contact data
        phone, email, is_email,
        # numbers, money, booleans
        number, integer, decimal, money, round, boolean,
        # nulls
        coalesce, default, nullif, is_missing,
        # lists
        count, sum, min, max, first, last, distinct, sort, each,
        # notes
        split_note,
    )
}

__all__ = [
    # catalog functions
    "trim", "lower", "upper", "title", "collapse_spaces", "truncate", "replace", "regex_replace",
    "regex_extract", "split", "join", "concat", "substring", "length", "pad_left", "digits",
    "html_to_text", "text",
    "date", "datetime", "format_date", "format_datetime", "to_timezone", "today", "age",
    "phone", "email", "is_email",
    "number", "integer", "decimal", "money", "round", "boolean",
    "coalesce", "default", "nullif", "is_missing",
    "count", "sum", "min", "max", "first", "last", "distinct", "sort", "each",
    "split_note",
    # support
    "FUNCTIONS", "MISSING", "MissingType", "is_blank", "is_null",
    "ConversionError", "Report", "collect_reports", "report", "mask_value",
    "compile_date", "compile_datetime", "date_reader", "datetime_reader", "set_run_date",
]
