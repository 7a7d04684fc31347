"""Pipedrive naming rules (API_NOTES.md 4.5).

A custom field's key is a random 40-character hash assigned at creation (it differs per account),
so mappings refer to a custom field by its NAME made API-safe (``"Outstanding Balance"`` ->
``Outstanding_Balance``) and the loader keeps the hash in ``vendor['key']``. A field name must be
non-empty, contain a letter or digit, and fit Pipedrive's 255-character varchar. Pipedrive has no
custom objects.
"""

from __future__ import annotations

from runtime.dialects._loader import api_safe_name
from runtime.dialects.base import UnsupportedByDialect

__all__ = ["check_custom_name", "custom_api_name", "MAX_LENGTH"]

MAX_LENGTH = 255
_NO_OBJECTS = ("Pipedrive has no custom objects (only custom fields on Person, Organization, "
               "Deal, Product, Activity, Lead and Project)")


def check_custom_name(kind: str, name: str) -> list[str]:
    if kind == "module":
        return [_NO_OBJECTS]
    if not name or not name.strip():
        return ["Pipedrive custom field name is empty"]
    problems = []
    if not api_safe_name(name):
        problems.append(f"Pipedrive custom field name {name!r} has no letters or digits, so "
                        "mappings cannot refer to it")
    if len(name) > MAX_LENGTH:
        problems.append(f"Pipedrive custom field name is {len(name)} characters; the limit is "
                        f"{MAX_LENGTH}")
    if name != name.strip():
        problems.append(f"Pipedrive custom field name {name!r} has leading or trailing spaces")
    return problems


def custom_api_name(label_or_name: str, kind: str) -> str:
    """The name mappings use; Pipedrive itself assigns a hash key when the field is created."""
    if kind == "module":
        raise UnsupportedByDialect("pipedrive", _NO_OBJECTS)
    return api_safe_name(label_or_name)
