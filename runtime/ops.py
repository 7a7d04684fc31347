"""Operators and record access for generated code.

Each helper implements one operator of the .fmap language with its null semantics (docs/language.md,
"Missing, null and empty"). The compiler inlines the cheap cases (string `==`, `in` a constant set,
plain field access) and calls these for the rest.
"""

from __future__ import annotations

from datetime import date as _date
from decimal import Decimal, InvalidOperation
from typing import Any

from runtime.functions.errors import ConversionError
from runtime.functions.values import MISSING, is_blank
from runtime.plan import QuarantineRecord

__all__ = [
    "get_path", "project", "op_add", "op_sub", "op_mul", "op_div", "op_mod", "op_neg",
    "op_concat", "op_lt", "op_le", "op_gt", "op_ge", "op_eq", "op_ne", "op_in", "truthy",
    "present", "ref_key", "key_str", "drop_missing",
]


def get_path(obj: Any, parts: tuple) -> Any:
    """Follow a dotted path. Absent keys give MISSING; a path through null gives null."""
    for p in parts:
        if obj is MISSING or obj is None:
            return obj
        if isinstance(p, int):
            if isinstance(obj, (list, tuple)) and -len(obj) <= p < len(obj):
                obj = obj[p]
            else:
                return MISSING
        elif isinstance(obj, dict):
            obj = obj.get(p, MISSING)
        else:
            return MISSING
    return obj


def project(records: Any, parts: tuple) -> list:
    """`group.balance`: the list of each record's value (missing ones dropped)."""
    if records is MISSING or records is None:
        return []
    out = []
    for r in records:
        v = get_path(r, parts) if parts else r
        if v is not MISSING:
            out.append(v)
    return out


def _num(v: Any, op: str) -> Any:
    if isinstance(v, bool):
        raise ConversionError(op, v, "a boolean is not a number")
    if isinstance(v, (int, Decimal)):
        return v
    if isinstance(v, float):
        return Decimal(str(v))
    if isinstance(v, str):
        try:
            return Decimal(v.strip().replace(",", ""))
        except InvalidOperation:
            raise ConversionError(op, v, "not a number") from None
    raise ConversionError(op, v, f"a {type(v).__name__} is not a number")


def _arith(a: Any, b: Any, op: str):
    if a is MISSING or b is MISSING:
        return MISSING, None, None
    if a is None or b is None:
        return None, None, None
    if a == "" or b == "":
        return None, None, None
    return True, _num(a, op), _num(b, op)


def op_add(a: Any, b: Any) -> Any:
    ok, x, y = _arith(a, b, "+")
    return ok if ok is not True else x + y


def op_sub(a: Any, b: Any) -> Any:
    if isinstance(a, _date) and isinstance(b, _date):
        return (a - b).days
    ok, x, y = _arith(a, b, "-")
    return ok if ok is not True else x - y


def op_mul(a: Any, b: Any) -> Any:
    ok, x, y = _arith(a, b, "*")
    return ok if ok is not True else x * y


def op_div(a: Any, b: Any) -> Any:
    ok, x, y = _arith(a, b, "/")
    if ok is not True:
        return ok
    if y == 0:
        raise ConversionError("/", b, "division by zero")
    return Decimal(x) / Decimal(y)


def op_mod(a: Any, b: Any) -> Any:
    ok, x, y = _arith(a, b, "%")
    if ok is not True:
        return ok
    if y == 0:
        raise ConversionError("%", b, "division by zero")
    return x % y


def op_neg(a: Any) -> Any:
    if a is MISSING or a is None or a == "":
        return a
    return -_num(a, "-")


def _text(v: Any) -> str:
    if v is MISSING or v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, _date):
        return v.isoformat()
    return str(v)


def op_concat(*parts: Any) -> str:
    """`a ++ b ++ c`: text concatenation; missing and null count as empty text. The compiler
    flattens a chain of `++` into one call."""
    out = ""
    for p in parts:
        out += p if p.__class__ is str else _text(p)
    return out


def _cmp_pair(a: Any, b: Any):
    if a is MISSING or b is MISSING or a is None or b is None:
        return None
    # text against a number compares as a number; empty text (a CSV's empty cell) is no value,
    # as in arithmetic, not a conversion error
    if isinstance(a, str) and isinstance(b, (int, Decimal)) and not isinstance(b, bool):
        return (_num(a, "compare"), b) if a.strip() else None
    if isinstance(b, str) and isinstance(a, (int, Decimal)) and not isinstance(a, bool):
        return (a, _num(b, "compare")) if b.strip() else None
    return a, b


def _compare(a: Any, b: Any, op: str, f) -> bool:
    pair = _cmp_pair(a, b)
    if pair is None:
        return False
    try:
        return f(*pair)
    except TypeError:
        raise ConversionError(op, a, f"cannot compare {type(a).__name__} with {type(b).__name__}") from None


def op_lt(a, b):
    return _compare(a, b, "<", lambda x, y: x < y)


def op_le(a, b):
    return _compare(a, b, "<=", lambda x, y: x <= y)


def op_gt(a, b):
    return _compare(a, b, ">", lambda x, y: x > y)


def op_ge(a, b):
    return _compare(a, b, ">=", lambda x, y: x >= y)


def op_eq(a: Any, b: Any) -> bool:
    pair = _cmp_pair(a, b)
    if pair is None:
        return a is b or (a is None and b is None)
    return pair[0] == pair[1]


def op_ne(a: Any, b: Any) -> bool:
    return not op_eq(a, b)


def op_in(a: Any, b: Any) -> bool:
    if b is MISSING or b is None:
        return False
    try:
        return a in b
    except TypeError:
        return False


def truthy(v: Any) -> bool:
    """Conditions: missing, null, "", false and 0 are false."""
    if v is MISSING or v is None:
        return False
    return bool(v)


def present(v: Any) -> bool:
    """`??` takes the left side when it is present: not missing, null or blank text
    (``not is_blank(v)``, inlined: it runs once per `??` per record)."""
    if v.__class__ is str:
        return v != "" and not v.isspace()
    if v is MISSING or v is None:
        return False
    return not isinstance(v, str) or not v.isspace() and v != ""


def ref_key(v: Any) -> str | None:
    """A lookup key as text (source keys are compared as text: CSV "12" and JSON 12 match)."""
    if v.__class__ is str:
        v = v.strip()
        return v if v else None
    if v.__class__ is int:
        return str(v)
    if is_blank(v):
        return None
    if isinstance(v, Decimal) and v == v.to_integral_value():
        return str(v.quantize(Decimal(1)))
    return str(v).strip()


def key_str(v: Any) -> str:
    k = ref_key(v)
    if k is None:
        raise QuarantineRecord("the record has no key (its `key` expression is empty)")
    return k


def drop_missing(out: dict) -> dict:
    """Assignments whose value is missing write nothing."""
    return {k: v for k, v in out.items() if v is not MISSING}
