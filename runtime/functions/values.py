"""Value model shared by every runtime function: the MISSING sentinel and blank checks.

Three "empty-ish" values are kept distinct on purpose, because a migration must treat them
differently when writing to a CRM:

* ``MISSING``: the source record had no such field at all (don't touch the target field);
* ``None``: the source had the field, explicitly null;
* ``""``: the source had the field, as an empty string.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MISSING", "MissingType", "is_blank", "is_null"]


class MissingType:
    """Type of the ``MISSING`` singleton.

    Falsy, repr ``MISSING``; copying, deep-copying and pickling all return the one instance, so
    ``value is MISSING`` stays true after a record crosses a process boundary (worker pools).
    """

    __slots__ = ()
    _instance: MissingType | None = None

    def __new__(cls) -> MissingType:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False

    def __copy__(self) -> MissingType:
        return self

    def __deepcopy__(self, memo: dict) -> MissingType:
        return self

    def __reduce__(self) -> str:
        # Pickle by reference to the module-level name: unpickling yields the same singleton.
        return "MISSING"


MISSING = MissingType()


def is_null(value: Any) -> bool:
    """True for ``MISSING`` and ``None``: the values every scalar function passes through unchanged."""
    return value is MISSING or value is None


def is_blank(value: Any) -> bool:
    """True for ``MISSING``, ``None``, ``""`` and whitespace-only strings.

    Used by ``coalesce``, ``default`` and ``is_missing``: a field holding only spaces is as empty
    as no field for a CRM, but a zero or ``False`` is a real value (so this is not truthiness).
    """
    if value is MISSING or value is None:
        return True
    return isinstance(value, str) and not value.strip()
