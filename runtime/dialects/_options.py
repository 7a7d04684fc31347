"""Sandbox options, read the same way from text and from code, for every dialect's hooks.

``open_sandbox`` gets the query of a ``sandbox:<dialect>?...`` URI (text) or a caller's dict
(typed: ``0``, ``False``, a clock); ``serve_sandbox`` gets the CLI's ``--option KEY=VALUE`` (text).
When each hook read its own options, the same option came to mean different things on the two
paths (``strict_picklists=False`` stayed strict in process; ``licences=0`` became 10 when served).
So each dialect reads its options once, through an :class:`OptionReader`, in one function both
hooks call. A name the dialect does not know, or a value it cannot read, raises
:class:`ValueError` naming the option: ``fmap sandbox serve`` and ``fmap run`` print it as a
message, never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["OptionReader", "TARGET_KEYS"]

# ``open_target``'s own query keys (the SQLite file, the users file, the generic store): they come
# along with a dialect's options in the same query and are not the dialect's to refuse
TARGET_KEYS = frozenset({"db", "users", "generic"})

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class OptionReader:
    """Typed reads of one dialect's options. ``known`` names every option the dialect takes
    (``None``: do not check, for connector options that other layers add to)."""

    def __init__(self, dialect: str, options: Mapping[str, Any],
                 known: Iterable[str] | None = None) -> None:
        self.dialect = dialect
        self.options = options
        if known is not None:
            names = set(known)
            unknown = sorted(set(options) - names - TARGET_KEYS)
            if unknown:
                raise ValueError(f"unknown {dialect} option{'s' if len(unknown) > 1 else ''} "
                                 f"{', '.join(unknown)}; known: {', '.join(sorted(names))}")

    def given(self, key: str) -> bool:
        """An empty text value (``?credits=``) counts as not given, as when the key is absent."""
        return self.options.get(key) not in (None, "")

    def raw(self, key: str, default: Any = None) -> Any:
        """The value as given (a callable, a plan object...), or ``default``."""
        return self.options[key] if self.given(key) else default

    def function(self, key: str) -> Any:
        """A callable given from code (a clock, a sleep), or None; text cannot name one."""
        value = self.raw(key)
        if value is not None and not callable(value):
            raise ValueError(f"{self.dialect} option {key}={value!r} must be a function "
                             "(it can only be given from code)")
        return value

    def text(self, key: str, default: str) -> str:
        return str(self.options[key]).strip() if self.given(key) else default

    def flag(self, key: str, default: bool) -> bool:
        """``True``/``False`` from code; ``1/0``, ``true/false``, ``yes/no``, ``on/off`` (any
        case) from text. Anything else is refused rather than guessed."""
        if not self.given(key):
            return default
        value = self.options[key]
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(f"{self.dialect} option {key}={value!r} is not a yes/no value "
                         "(use 1 or 0, true or false)")

    def integer(self, key: str, default: Any = None, *, minimum: int = 0) -> Any:
        """A whole number of at least ``minimum``; ``3.0`` from code is 3, ``"3.5"`` is refused."""
        if not self.given(key):
            return default
        value = self.options[key]
        try:
            number = int(str(value).strip()) if not isinstance(value, float) else value
        except ValueError:
            raise ValueError(f"{self.dialect} option {key}={value!r} is not a whole number") \
                from None
        if number != int(number):
            raise ValueError(f"{self.dialect} option {key}={value!r} is not a whole number")
        return self._at_least(key, value, int(number), minimum)

    def number(self, key: str, default: Any = None, *, minimum: float = 0.0,
               positive: bool = False) -> Any:
        """A real number of at least ``minimum`` (above 0 with ``positive``)."""
        if not self.given(key):
            return default
        value = self.options[key]
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{self.dialect} option {key}={value!r} is not a number") from None
        if positive and number <= 0:
            raise ValueError(f"{self.dialect} option {key}={value!r} must be positive")
        return self._at_least(key, value, number, minimum)

    def _at_least(self, key: str, value: Any, number: Any, minimum: float) -> Any:
        if number < minimum:
            raise ValueError(f"{self.dialect} option {key}={value!r} must be at least {minimum:g}"
                             if minimum else
                             f"{self.dialect} option {key}={value!r} must not be negative")
        return number
