"""FM307: an assignment whose inferred type cannot be stored in the target field.

Types come from literals, source field types and the function library's return types
(:mod:`compiler.checks._scope`); anything unknown is not an error. Text literals into number, date,
datetime and boolean fields must parse as such.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from compiler.checks._scope import category, contexts, infer
from compiler.program import Program
from compiler.schemas import Schemas
from dsl.codes import diag
from dsl.diagnostics import Diagnostic

__all__ = ["check_types", "ACCEPTS"]

# target category -> value categories it accepts (anything unknown is accepted)
ACCEPTS = {
    "text": {"text", "number", "bool", "date", "datetime", "null"},
    "number": {"number", "text", "null"},
    "bool": {"bool", "text", "null"},
    "date": {"date", "datetime", "text", "null"},
    "datetime": {"datetime", "date", "text", "null"},
    "lookup": {"ref", "text", "number", "null"},
    "owner": {"owner", "text", "null"},
    "list": {"list", "text", "null"},
    "file": {"text", "file", "null"},
}
_HOW = {
    "date": "parse it: `value | date(\"%d/%m/%Y\")`",
    "datetime": "parse it: `value | datetime(\"%Y-%m-%d %H:%M\", tz=\"Europe/London\")`",
    "number": "convert it: `value | number` (or `money`)",
    "bool": "convert it: `value | boolean`, or compare: `value == \"Y\"`",
    "text": "convert it to text: `join(value, \", \")` for a list, `format_date` for a date",
    "lookup": "link records with `ref(MapName, key)`",
    "owner": "assign owners with `owner(email)`",
    "list": "a multi-select takes a list: `split(value, \";\")`",
}
_BOOL_TEXT = {"true", "false", "yes", "no", "y", "n", "1", "0", "on", "off"}


def _target_category(ftype: str) -> str:
    if ftype == "lookup":
        return "lookup"
    if ftype == "owner":
        return "owner"
    if ftype == "multipicklist":
        return "list"
    return category(ftype)


def check_types(prog: Program, s: Schemas) -> list[Diagnostic]:
    if s.target is None:
        return []
    out: list[Diagnostic] = []
    for om, ctx, obj in contexts(prog, s):
        if obj is None:
            continue
        for a in om.assignments:
            f = obj.field(a.target.value)
            if f is None or f.read_only:
                continue
            want = _target_category(f.type.value)
            if want not in ACCEPTS:
                continue  # unknown/id/array/object: no type checks
            v = a.value
            if v.kind == "string" and want in ("number", "date", "datetime", "bool"):
                if not _parses(v.value, want):
                    out.append(diag(
                        "FM307", f"\"{v.value}\" is not a {want} value for `{f.api_name}` "
                                 f"({f.type.value})", v.span,
                        hint=f"write a {f.type.value} literal"
                        + (" such as `@2024-01-31`" if want in ("date", "datetime") else
                           " such as `true`" if want == "bool" else " such as `0`")))
                continue
            got = infer(v, ctx)
            if category(got) in ("any",) or category(got) in ACCEPTS[want]:
                continue
            out.append(diag(
                "FM307", f"`{f.api_name}` is {_a(f.type.value)} field but the value is "
                         f"{_a(got)}", v.span,
                hint=_HOW.get(want, f"give it {_a(f.type.value)} value")))
    return out


def _a(t: str) -> str:
    return ("an " if t[:1] in "aeiou" else "a ") + t


def _parses(text: str, want: str) -> bool:
    t = text.strip()
    if t == "":
        return True  # "" clears the field
    if want == "number":
        try:
            Decimal(t.replace(",", ""))
            return True
        except InvalidOperation:
            return False
    if want == "bool":
        return t.lower() in _BOOL_TEXT
    if want == "date":
        try:
            date.fromisoformat(t)
            return True
        except ValueError:
            return False
    try:
        datetime.fromisoformat(t)
        return bool(re.match(r"\d{4}-\d{2}-\d{2}", t))
    except ValueError:
        return False
