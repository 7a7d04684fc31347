"""Freshsales naming rules (API_NOTES.md 3.5).

Custom fields are ``cf_`` + lower snake case (``"Outstanding Balance"`` -> ``cf_outstanding_balance``),
written under ``custom_field: {...}``. Custom modules are addressed by a lower-snake entity name
(``cm_projects`` was seen in one integration test [unverified]); we require lower snake case and
do not force a prefix.
"""

from __future__ import annotations

import re

from runtime.dialects._loader import api_safe_name

__all__ = ["check_custom_name", "custom_api_name"]

_FIELD = re.compile(r"^cf_[a-z][a-z0-9_]*$")
_MODULE = re.compile(r"^[a-z][a-z0-9_]*$")


def _snake(text: str) -> str:
    return re.sub(r"_+", "_", api_safe_name(text).lower()).strip("_")


def check_custom_name(kind: str, name: str) -> list[str]:
    if not name:
        return [f"Freshsales custom {kind} name is empty"]
    problems: list[str] = []
    if kind == "field":
        if not name.startswith("cf_"):
            problems.append(f"Freshsales custom field name {name!r} must start with 'cf_'")
        elif not _FIELD.match(name):
            problems.append(f"Freshsales custom field name {name!r} must be 'cf_' followed by "
                            "lower-case snake_case (a-z, 0-9, _; starting with a letter)")
    elif not _MODULE.match(name):
        problems.append(f"Freshsales custom module name {name!r} must be lower-case snake_case "
                        "starting with a letter")
    if "__" in name:
        problems.append(f"Freshsales custom {kind} name {name!r} contains consecutive underscores")
    if name.endswith("_"):
        problems.append(f"Freshsales custom {kind} name {name!r} must not end with an underscore")
    return problems


def custom_api_name(label_or_name: str, kind: str) -> str:
    if kind == "field":
        if _FIELD.match(label_or_name):
            return label_or_name
        base = _snake(label_or_name)
        if base.startswith("cf_"):
            base = base[3:]
        if not base or not base[0].isalpha():
            base = "f_" + base
        return "cf_" + base.rstrip("_")
    base = _snake(label_or_name)
    return base if base and base[0].isalpha() else "m_" + base
