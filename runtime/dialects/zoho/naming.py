"""Zoho CRM naming rules for custom modules and fields.

Zoho derives a custom field's API name from its label, spaces -> ``_`` (``"Outstanding Balance"``
-> ``Outstanding_Balance``); custom modules get an API name from the plural label the same way.
Rules checked (Zoho's field-creation form and API_NOTES.md 1.5): letters, digits and underscores
only; must start with a letter; no consecutive underscores and no trailing underscore; the ``__s``
suffix is reserved for Zoho system fields. The length cap is Zoho's 50-character label limit
[unverified: applied to API names as a conservative bound].
"""

from __future__ import annotations

import re

from runtime.dialects._loader import api_safe_name

__all__ = ["check_custom_name", "custom_api_name", "MAX_LENGTH"]

MAX_LENGTH = 50
_VALID = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def check_custom_name(kind: str, name: str) -> list[str]:
    what = "module" if kind == "module" else "field"
    problems: list[str] = []
    if not name:
        return [f"Zoho {what} API name is empty"]
    if not _VALID.match(name):
        if not name[0].isalpha():
            problems.append(f"Zoho {what} API name {name!r} must start with a letter")
        if re.search(r"[^A-Za-z0-9_]", name):
            problems.append(
                f"Zoho {what} API name {name!r} may contain only letters, digits and underscores")
    if name.endswith("__s"):
        problems.append(f"Zoho {what} API name {name!r} ends with '__s', which Zoho reserves for "
                        "system fields")
    elif "__" in name:
        problems.append(f"Zoho {what} API name {name!r} contains consecutive underscores")
    if name.endswith("_") and not name.endswith("__s"):
        problems.append(f"Zoho {what} API name {name!r} must not end with an underscore")
    if len(name) > MAX_LENGTH:
        problems.append(f"Zoho {what} API name {name!r} is {len(name)} characters; "
                        f"the limit is {MAX_LENGTH}")
    return problems


def custom_api_name(label_or_name: str, kind: str) -> str:
    """``"Outstanding Balance" -> "Outstanding_Balance"``; a leading digit gets an ``X`` prefix."""
    name = api_safe_name(label_or_name).lstrip("_")
    if name and not name[0].isalpha():
        name = "X" + name
    return re.sub(r"_+", "_", name)[:MAX_LENGTH].rstrip("_")
