"""Salesforce naming rules for custom objects and fields (API_NOTES.md 2.5).

A custom object or field API name is ``<Name>__c``. Managed-package names (``ns__<Name>__c``) are
not something a migration creates, so a double underscore inside is always reported. The
``<Name>`` part: at most 40 characters, starts with a letter, letters/digits/underscores only, no
two consecutive underscores, does not end with an underscore. Salesforce generates it from the
label by replacing spaces and punctuation with ``_`` and prefixing ``X`` when the label starts
with a digit.
"""

from __future__ import annotations

import re

from runtime.dialects._loader import api_safe_name

__all__ = ["check_custom_name", "custom_api_name", "MAX_BASE_LENGTH"]

MAX_BASE_LENGTH = 40


def check_custom_name(kind: str, name: str) -> list[str]:
    what = "object" if kind == "module" else "field"
    if not name:
        return [f"Salesforce custom {what} name is empty"]
    if not name.endswith("__c"):
        return [f"Salesforce custom {what} name {name!r} must end with '__c'"]
    base = name[: -len("__c")]
    problems: list[str] = []
    if not base:
        problems.append(f"Salesforce custom {what} name {name!r} has nothing before '__c'")
        return problems
    if len(base) > MAX_BASE_LENGTH:
        problems.append(f"Salesforce custom {what} name {name!r}: {len(base)} characters before "
                        f"'__c'; the limit is {MAX_BASE_LENGTH}")
    if not base[0].isalpha():
        problems.append(f"Salesforce custom {what} name {name!r} must start with a letter")
    if re.search(r"[^A-Za-z0-9_]", base):
        problems.append(f"Salesforce custom {what} name {name!r} may contain only letters, digits "
                        "and underscores")
    if "__" in base:
        problems.append(f"Salesforce custom {what} name {name!r} must not contain two consecutive "
                        "underscores before '__c'")
    if base.endswith("_"):
        problems.append(f"Salesforce custom {what} name {name!r} must not end with an underscore "
                        "before '__c'")
    return problems


def custom_api_name(label_or_name: str, kind: str) -> str:
    """``"My Field" -> "My_Field__c"``; already-suffixed names are returned unchanged."""
    if label_or_name.endswith("__c"):
        return label_or_name
    base = re.sub(r"_+", "_", api_safe_name(label_or_name)).strip("_")
    if not base or not base[0].isalpha():
        base = "X" + base
    return base[:MAX_BASE_LENGTH].rstrip("_") + "__c"
