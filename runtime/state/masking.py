"""Masking of sensitive (PHI) values for quarantine rows, logs, errors and reports."""

from __future__ import annotations

from typing import Any

__all__ = ["mask", "is_masked"]


def mask(value: Any) -> str:
    """A stand-in for a sensitive value that says what kind of value it was without revealing any
    of it: ``"<null>"``, ``"<empty>"``, or ``"***"`` plus the type and length
    (``"*** (str, 10 chars)"``). No characters, prefix or hash of the value are kept: low-entropy PHI
    such as dates of birth or NHS numbers could be recovered from an unsalted hash."""
    if value is None:
        return "<null>"
    if isinstance(value, str):
        if value == "":
            return "<empty>"
        return f"*** (str, {len(value)} chars)"
    if isinstance(value, (list, tuple, dict, set)):
        return f"*** ({type(value).__name__}, {len(value)} items)"
    return f"*** ({type(value).__name__})"


def is_masked(value: Any) -> bool:
    """Already a :func:`mask` stand-in (the state store masks sensitive quarantine values, so a
    report must not mask them a second time)."""
    return isinstance(value, str) and (value in ("<null>", "<empty>") or (
        value.startswith("*** (") and value.endswith(")")))
