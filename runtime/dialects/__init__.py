"""CRM dialects: one folder per CRM, looked up by name.

    >>> get_dialect("zoho").batch_size
    100
    >>> get_dialect("zoh")
    Traceback (most recent call last):
    UnknownDialect: unknown dialect 'zoh'; did you mean 'zoho'?

Built-in dialects are imported lazily (importing ``runtime.dialects`` is cheap); a fifth CRM is a
new folder plus one line in ``_BUILTIN``, or :func:`register_dialect` from outside the package.
"""

from __future__ import annotations

from importlib import import_module

from rapidfuzz import process

from runtime.dialects.base import Dialect, NameKind, PlanLimits, RateLimit, UnsupportedByDialect

__all__ = [
    "Dialect",
    "NameKind",
    "PlanLimits",
    "RateLimit",
    "UnknownDialect",
    "UnsupportedByDialect",
    "dialect_names",
    "get_dialect",
    "register_dialect",
]

_BUILTIN = {
    "zoho": "runtime.dialects.zoho",
    "salesforce": "runtime.dialects.salesforce",
    "freshsales": "runtime.dialects.freshsales",
    "pipedrive": "runtime.dialects.pipedrive",
}
# Other spellings users write; they resolve silently.
_ALIASES = {
    "zohocrm": "zoho",
    "zoho_crm": "zoho",
    "sfdc": "salesforce",
    "sf": "salesforce",
    "freshworks": "freshsales",
    "freshworks_crm": "freshsales",
}
_REGISTERED: dict[str, Dialect] = {}


class UnknownDialect(LookupError):
    """No dialect by that name. ``suggestion`` is the closest known name, or None."""

    def __init__(self, name: str, suggestion: str | None, known: list[str]) -> None:
        self.name = name
        self.suggestion = suggestion
        self.known = known
        hint = f"; did you mean {suggestion!r}?" if suggestion else f"; known dialects: {', '.join(known)}"
        super().__init__(f"unknown dialect {name!r}{hint}")

    def __str__(self) -> str:  # LookupError would repr() the message
        return self.args[0]


def dialect_names() -> list[str]:
    return sorted(set(_BUILTIN) | set(_REGISTERED))


def register_dialect(dialect: Dialect) -> Dialect:
    _REGISTERED[dialect.name] = dialect
    return dialect


def get_dialect(name: str) -> Dialect:
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    key = _ALIASES.get(key, key)
    if key in _REGISTERED:
        return _REGISTERED[key]
    if key in _BUILTIN:
        module = import_module(_BUILTIN[key])
        return register_dialect(module.DIALECT)
    known = dialect_names()
    match = process.extractOne(key, known + list(_ALIASES), score_cutoff=60)
    suggestion = _ALIASES.get(match[0], match[0]) if match else None
    raise UnknownDialect(name, suggestion, known)
