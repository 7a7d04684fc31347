"""The functions the .fmap language names: the contract between the language and the runtime.

The compiler resolves calls and pipes against this table (unknown names, arity, keyword arguments,
types for inference); the runtime (``runtime.functions``) implements each entry under the same name,
and a test asserts the two agree. In a pipe ``x | f(a, b)`` the piped value is the first argument,
so ``f`` is called as ``f(x, a, b)``; arities below count that first argument.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Builtin", "BUILTINS", "AGGREGATES"]


@dataclass(frozen=True)
class Builtin:
    name: str
    min_args: int
    max_args: int | None  # None: variadic
    kwargs: frozenset[str] = field(default_factory=frozenset)
    returns: str = "any"  # a FieldType name, "list", "any", or "same" (type of the first argument)
    accepts: str = "any"  # "text", "list", "number", "any": what the first argument should be
    doc: str = ""


def _b(name, lo, hi, returns="any", accepts="any", kwargs=(), doc=""):
    return Builtin(name, lo, hi, frozenset(kwargs), returns, accepts, doc)


_ALL = [
    # text
    _b("trim", 1, 1, "text", "text", doc="Strip leading and trailing whitespace."),
    _b("lower", 1, 1, "text", "text", doc="Lower-case."),
    _b("upper", 1, 1, "text", "text", doc="Upper-case."),
    _b("title", 1, 1, "text", "text", doc="Title-case names, keeping O'Brien and McDonald sensible."),
    _b("collapse_spaces", 1, 1, "text", "text", doc="Collapse runs of whitespace to one space."),
    _b("truncate", 2, 2, "text", "text", kwargs=("ellipsis",),
       doc="Cut to at most N characters; the truncation is reported, never silent."),
    _b("replace", 3, 3, "text", "text", doc="Replace every occurrence of a substring."),
    _b("regex_replace", 3, 3, "text", "text", doc="Replace regex matches (Python re syntax)."),
    _b("regex_extract", 2, 3, "text", "text", doc="First match of a regex, or the given group."),
    _b("split", 2, 2, "list", "text", doc="Split text into a list on a separator."),
    _b("join", 2, 2, "text", "list", doc="Join a list's non-empty values with a separator."),
    _b("concat", 1, None, "text", doc="Concatenate values, skipping null/missing ones."),
    _b("substring", 2, 3, "text", "text", doc="Characters from start (0-based) to end (exclusive)."),
    _b("length", 1, 1, "integer", doc="Length of text or a list."),
    _b("pad_left", 3, 3, "text", doc="Left-pad to a width with a fill character."),
    _b("digits", 1, 1, "text", "text", doc="Keep only the digits (codes, NHS numbers)."),
    _b("html_to_text", 1, 1, "textarea", "text",
       doc="Rich text / HTML to plain text: block tags become line breaks, entities decoded."),
    _b("text", 1, 1, "text", doc="Convert any scalar to its text form."),
    # dates and times
    _b("date", 1, 2, "date", "text", kwargs=("formats",),
       doc="Parse a date with an explicit strptime format (or ISO); date-only values never shift."),
    _b("datetime", 1, 2, "datetime", "text", kwargs=("tz", "formats"),
       doc="Parse a datetime with an explicit format; naive values are read in `tz`."),
    _b("format_date", 2, 2, "text", doc="Format a date with a strftime format."),
    _b("format_datetime", 2, 2, "text", kwargs=("tz",), doc="Format a datetime (optionally in tz)."),
    _b("to_timezone", 2, 2, "datetime", doc="Convert an aware datetime to another time zone."),
    _b("today", 0, 0, "date", doc="The run's date (fixed for the whole run)."),
    _b("age", 1, 2, "integer", doc="Whole years between a date and the run date (or a given date)."),
    # contact data
    _b("phone", 1, 2, "phone", "text", kwargs=("region",),
       doc="Normalise a phone number to E.164 (default region e.g. \"GB\")."),
    _b("email", 1, 1, "email", "text", doc="Normalise (trim, lower-case domain) and validate an email."),
    _b("is_email", 1, 1, "boolean", "text", doc="Whether the value is a syntactically valid email."),
    # numbers and money (Decimal, never float)
    _b("number", 1, 1, "decimal", doc="Parse a number (Decimal)."),
    _b("integer", 1, 1, "integer", doc="Parse a whole number; fractions are an error, not rounded."),
    _b("decimal", 1, 2, "decimal", doc="Parse a Decimal, optionally quantised to N places."),
    _b("money", 1, 2, "currency", kwargs=("places",),
       doc="Parse an amount (strips currency symbols and thousands separators) to Decimal."),
    _b("round", 1, 2, "decimal", doc="Round half-even to N places."),
    # booleans
    _b("boolean", 1, 1, "boolean", doc="true/false from yes/no, y/n, 1/0, true/false, on/off."),
    # nulls
    _b("coalesce", 1, None, "same", doc="The first value that is not null, missing or empty."),
    _b("default", 2, 2, "same", doc="The value, or the default when null, missing or empty."),
    _b("nullif", 2, 2, "same", doc="Null when the value equals the given one (e.g. \"N/A\")."),
    _b("is_missing", 1, 1, "boolean", doc="Whether a value is missing, null or empty."),
    # lists / aggregates
    _b("count", 1, 1, "integer", "list", doc="Number of elements (0 for missing)."),
    _b("sum", 1, 1, "decimal", "list", doc="Sum of numeric elements as Decimal."),
    _b("min", 1, 1, "same", "list", doc="Smallest non-null element."),
    _b("max", 1, 1, "same", "list", doc="Largest non-null element."),
    _b("first", 1, 1, "any", "list", doc="First element (null when empty)."),
    _b("last", 1, 1, "any", "list", doc="Last element (null when empty)."),
    _b("distinct", 1, 1, "list", "list", doc="Elements without duplicates, in first-seen order."),
    _b("sort", 1, 1, "list", "list", doc="Elements sorted (nulls last)."),
    _b("each", 2, None, "list", "list",
       doc="Apply a function by name to every element: `codes | each(\"upper\")`."),
    # notes
    _b("split_note", 2, 3, "list", "text",
       doc="Split long text into numbered parts of at most N characters (see `split`)."),
]

BUILTINS: dict[str, Builtin] = {b.name: b for b in _ALL}
AGGREGATES = frozenset({"count", "sum", "min", "max", "first", "last", "distinct", "sort", "join"})
