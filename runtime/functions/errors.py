"""Errors and data-loss reports raised by the runtime function library.

``ConversionError`` is what every function raises when a value cannot be converted. Its message
never contains the value itself (patient data must not reach logs); the raw value is kept on the
exception for code that is allowed to show it (``describe(show_value=True)``), and
``masked_value()`` gives a safe rendering.

Functions that lose data (``truncate``, ``split_note`` cutting a word, ``phone`` dropping an
extension, ``money`` rounding) call ``report(kind, detail)``. Reports go to the list opened by the
innermost ``collect_reports()`` block of the current context (thread / asyncio task), so the executor
can attach them to the record being processed; outside such a block ``report`` does nothing.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

from .values import MISSING

__all__ = ["ConversionError", "Report", "collect_reports", "report", "mask_value"]


def mask_value(value: Any) -> str:
    """A rendering of ``value`` safe for logs: first character, ``***`` and the length.

    ``"Jonathan"`` -> ``"J***(8)"`` (values under 4 characters show only ``***(n)``); non-text values show only their type (``<int>``), because even a
    number can be identifying (a patient id, a date of birth as an integer).
    """
    if value is MISSING or value is None:
        return repr(value)
    if isinstance(value, str):
        if not value:
            return "''"
        if len(value) < 4:  # the first character of a very short value would reveal too much
            return f"***({len(value)})"
        return f"{value[0]}***({len(value)})"
    return f"<{type(value).__name__}>"


class ConversionError(ValueError):
    """A value that a runtime function cannot convert.

    Attributes: ``function`` (the catalog name), ``value`` (the raw input; never put it in a log
    line yourself), ``reason`` (a message that does not contain the value). The executor fills
    ``field``, ``rule`` and ``fmap_location`` (e.g. ``"mappings/x.fmap:12"``) when it catches it.
    """

    def __init__(
        self,
        function: str,
        value: Any,
        reason: str,
        *,
        field: str | None = None,
        rule: str | None = None,
        fmap_location: str | None = None,
    ) -> None:
        super().__init__(f"{function}: {reason}")
        self.function = function
        self.value = value
        self.reason = reason
        self.field = field
        self.rule = rule
        self.fmap_location = fmap_location

    def masked_value(self) -> str:
        """The value rendered by ``mask_value`` (first char, ``***``, length)."""
        return mask_value(self.value)

    def describe(self, show_value: bool = False) -> str:
        """One line for reports: location, field, rule, function, reason and the (masked) value.

        Only pass ``show_value=True`` where patient data may be shown (a local, access-controlled
        quarantine report); the default masks it.
        """
        parts = []
        if self.fmap_location:
            parts.append(self.fmap_location)
        if self.field:
            parts.append(f"field {self.field}")
        if self.rule:
            parts.append(f"rule {self.rule}")
        shown = repr(self.value) if show_value else self.masked_value()
        parts.append(f"{self.function}(): {self.reason} (value: {shown})")
        return ": ".join(parts)

    def __str__(self) -> str:
        return self.describe(show_value=False)

    def __reduce__(self):
        # Exceptions pickle through ``args``; keep every attribute across process boundaries.
        return (
            _rebuild_conversion_error,
            (self.function, self.value, self.reason, self.field, self.rule, self.fmap_location),
        )


def _rebuild_conversion_error(function, value, reason, field, rule, fmap_location):
    return ConversionError(
        function, value, reason, field=field, rule=rule, fmap_location=fmap_location
    )


class Report(NamedTuple):
    """One data-loss report: ``kind`` (e.g. ``"truncated"``) and a ``detail`` free of patient data."""

    kind: str
    detail: str


_active: contextvars.ContextVar[list[Report] | None] = contextvars.ContextVar(
    "fmap_function_reports", default=None
)


@contextmanager
def collect_reports() -> Iterator[list[Report]]:
    """Collect the reports made inside the block into the yielded list.

    Nested blocks each get their own list (the inner one does not leak into the outer one).
    """
    reports: list[Report] = []
    token = _active.set(reports)
    try:
        yield reports
    finally:
        _active.reset(token)


def report(kind: str, detail: str) -> None:
    """Record a data-loss event in the active ``collect_reports()`` list; no-op when none is active.

    ``detail`` must not contain the value (lengths and counts only).
    """
    reports = _active.get()
    if reports is not None:
        reports.append(Report(kind, detail))
