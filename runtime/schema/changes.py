"""Apply a mapping's schema changes (its `create module` / `extend` blocks, as the plan lists
them) to a schema: what `fmap schema apply` does to a sandbox, and how the runtime knows the custom
fields it is about to load into."""

from __future__ import annotations

import re
from typing import Any

from runtime.schema.model import (
    FieldSchema,
    FieldType,
    ObjectCapabilities,
    ObjectSchema,
    SystemSchema,
)

__all__ = ["apply_changes", "field_from_change"]

_TYPE_RE = re.compile(r"^(\w+)(?:\((.*)\))?$")


def field_from_change(change: dict[str, Any]) -> FieldSchema:
    m = _TYPE_RE.match(change.get("type") or "text")
    tname, args = (m.group(1), m.group(2)) if m else ("text", None)
    details = change.get("details") or {}
    parts = [a.strip() for a in args.split(",")] if args else []
    kw: dict[str, Any] = {}
    try:
        ftype = FieldType(tname)
    except ValueError:
        ftype = FieldType.unknown
    if ftype in (FieldType.text, FieldType.textarea) and parts and parts[0].isdigit():
        kw["max_length"] = int(parts[0])
    if ftype in (FieldType.decimal, FieldType.currency) and parts:
        if parts[0].isdigit():
            kw["precision"] = int(parts[0])
        if len(parts) > 1 and parts[1].isdigit():
            kw["scale"] = int(parts[1])
    if ftype is FieldType.lookup:
        target = details.get("lookup") or (parts[0] if parts else None)
        kw["lookup_targets"] = [target] if target else []
    if details.get("values"):
        kw["picklist_values"] = [str(v) for v in details["values"]]
    return FieldSchema(
        api_name=change["field"], label=details.get("label"), type=ftype,
        required=bool(details.get("required")), unique=bool(details.get("unique")),
        external_id=bool(details.get("external_id")), sensitive=bool(details.get("sensitive")),
        custom=True, **kw,
    )


def apply_changes(schema: SystemSchema, changes: list[dict[str, Any]],
                  dialect: Any = None) -> SystemSchema:
    """``dialect`` (a ``runtime.dialects`` Dialect) supplies the fields the CRM adds to every new
    custom module (id, owner, record name) and says that custom modules take attachments and
    notes, as they do in every supported CRM."""
    overlay: dict[str, ObjectSchema] = {}
    for c in changes:
        obj = c["object"]
        if c["action"] == "create_module":
            implicit = list(dialect.custom_object_fields(obj)) if dialect is not None else []
            overlay.setdefault(obj, ObjectSchema(
                api_name=obj, label=(c.get("details") or {}).get("label"), custom=True,
                fields=implicit,
                capabilities=ObjectCapabilities(upsert=True, attachments=True, notes=True)))
        elif c["action"] == "create_field":
            if obj not in overlay:
                # extending an existing object keeps everything it has (capabilities, label...)
                base = schema.object(obj)
                overlay[obj] = (base.model_copy(deep=True) if base is not None
                                else ObjectSchema(api_name=obj))
            overlay[obj].fields.append(field_from_change(c))
    return schema.merged(SystemSchema(system=schema.system, objects=list(overlay.values())))
