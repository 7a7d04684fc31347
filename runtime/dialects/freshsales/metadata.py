"""Freshsales (Freshworks CRM) field metadata -> normalised schema.

Accepted payloads: ``GET /api/settings/<entity>/fields`` responses ``{"fields": [...]}`` (pass
``object_name``: ``contacts``/``Contact``, ``sales_accounts``/``SalesAccount``, ``deals``, ``leads``
...; otherwise the first field's ``base_model`` names it), or a bundle
``{"objects": {"Contact": <fields response>, ...}}``.

ASSUMPTION: no verbatim Freshsales fields response exists anywhere we could read (API_NOTES.md
3.4); the keys used here (``id``, ``name``, ``label``, ``type``, ``required``, ``default``,
``base_model``, ``choices[{id, value}]``) are those real integrations read, and the ``type``
vocabulary below is our best knowledge of the admin field types (text, textarea/paragraph,
number, dropdown, radio, multi_select_dropdown, checkbox, date, datetime, email, phone_number,
url, lookup/auto_complete, group_field). Anything else maps to ``unknown`` with a warning.
Capture a real response before relying on the details.

Dropdowns are written as the numeric choice id, so each picklist field keeps
``vendor['choices'] = {value: id}``. Custom fields are ``cf_*`` (``vendor['custom_field'] = True``:
they go under ``custom_field: {...}`` in the record body).
"""

from __future__ import annotations

from typing import Any

from runtime.dialects._loader import Warnings, load_bundle, map_type
from runtime.schema.io import (
    SchemaLoadError,
    SchemaWarning,
    expect_dict,
    expect_list,
    expect_str,
    join_path,
    opt_bool,
    opt_str,
)
from runtime.schema.model import (
    FieldSchema,
    FieldType,
    ObjectCapabilities,
    ObjectSchema,
    SystemSchema,
)

__all__ = ["FRESHSALES_TYPES", "ENTITY_OBJECTS", "load_freshsales_metadata", "object_for_entity"]

FRESHSALES_TYPES: dict[str, FieldType] = {
    "text": FieldType.text,
    "textarea": FieldType.textarea,
    "paragraph": FieldType.textarea,
    "number": FieldType.decimal,
    "dropdown": FieldType.picklist,
    "radio": FieldType.picklist,
    "multi_select_dropdown": FieldType.multipicklist,
    "checkbox": FieldType.boolean,
    "date": FieldType.date,
    "datetime": FieldType.datetime,
    "date_time": FieldType.datetime,
    "email": FieldType.email,
    "phone_number": FieldType.phone,
    "url": FieldType.url,
    "lookup": FieldType.lookup,
    "auto_complete": FieldType.lookup,
    "group_field": FieldType.owner,
}
# entity path segment -> our object name
ENTITY_OBJECTS = {
    "contacts": "Contact", "contact": "Contact",
    "leads": "Lead", "lead": "Lead",
    "sales_accounts": "SalesAccount", "sales_account": "SalesAccount",
    "deals": "Deal", "deal": "Deal",
    "tasks": "Task", "appointments": "Appointment", "notes": "Note",
    "products": "Product", "users": "User", "documents": "Document",
    "sales_activities": "SalesActivity",
}
# Standard reference fields whose targets the field type does not say.
_REFERENCES = {
    "sales_account_id": "SalesAccount", "sales_accounts": "SalesAccount",
    "contact_id": "Contact", "contacts": "Contact", "deal_id": "Deal", "lead_id": "Lead",
    "product_id": "Product",
}
_OWNERS = {"owner_id", "creater_id", "updater_id", "created_by_id", "updated_by_id"}
_READ_ONLY = {"id", "created_at", "updated_at", "creater_id", "updater_id", "last_contacted",
              "last_seen", "lead_score", "open_deals_amount", "won_deals_amount", "recent_note"}
_AUDIT = {"created_at", "updated_at", "creater_id", "updater_id"}


def object_for_entity(name: str) -> str:
    return ENTITY_OBJECTS.get(name.lower(), name)


def load_freshsales_metadata(payload: Any, *, source_name: str, object_name: str | None = None,
                             warnings: list[SchemaWarning] | None = None) -> SystemSchema:
    warn = Warnings(source_name, warnings)

    def one(sub: Any, name: str | None, path: str) -> ObjectSchema:
        return _load_fields(sub, name, path, source_name, warn)

    return load_bundle(payload, system="freshsales", source_name=source_name,
                       object_name=object_name, load_object=one)


def _load_fields(payload: Any, name: str | None, path: str, source: str,
                 warn: Warnings) -> ObjectSchema:
    d = expect_dict(payload, path, source)
    fpath = join_path(path, "fields")
    if "fields" not in d:
        raise SchemaLoadError(source, fpath, "missing required key 'fields'")
    items = expect_list(d["fields"], fpath, source)
    if not name:
        first = items[0] if items and isinstance(items[0], dict) else {}
        name = first.get("base_model") if isinstance(first.get("base_model"), str) else None
    if not name:
        raise SchemaLoadError(source, path, "a Freshsales fields response does not name its "
                              "entity; pass object_name (e.g. 'contacts')")
    fields = [_field(expect_dict(raw, f"{fpath}[{i}]", source), f"{fpath}[{i}]", source, warn)
              for i, raw in enumerate(items)]
    obj_name = object_for_entity(name)
    return ObjectSchema(
        api_name=obj_name,
        fields=fields,
        capabilities=ObjectCapabilities(
            upsert=obj_name in {"Contact", "SalesAccount", "Deal"},
            attachments=obj_name in {"Contact", "SalesAccount", "Deal", "Product"},
            notes=obj_name in {"Contact", "SalesAccount", "Deal", "Lead"},
        ),
    )


def _field(f: dict[str, Any], path: str, source: str, warn: Warnings) -> FieldSchema:
    name = expect_str(f, "name", path, source)
    fs_type = expect_str(f, "type", path, source)
    ftype = map_type(FRESHSALES_TYPES, fs_type, join_path(path, "type"), warn, "Freshsales")
    custom = name.startswith("cf_")
    vendor: dict[str, Any] = {"type": fs_type}
    if f.get("id") is not None:
        vendor["id"] = f["id"]
    if custom:
        vendor["custom_field"] = True
    targets: list[str] = []
    if name in _OWNERS:
        ftype, targets = FieldType.owner, ["User"]
    elif name in _REFERENCES:
        ftype, targets = FieldType.lookup, [_REFERENCES[name]]
    values: list[str] = []
    choices: dict[str, Any] = {}
    cpath = join_path(path, "choices")
    for j, raw in enumerate(expect_list(f.get("choices") or [], cpath, source)):
        c = expect_dict(raw, f"{cpath}[{j}]", source)
        value = c.get("value")
        if not isinstance(value, str):
            raise SchemaLoadError(source, join_path(f"{cpath}[{j}]", "value"),
                                  "expected a string choice value")
        if "id" not in c:
            raise SchemaLoadError(source, join_path(f"{cpath}[{j}]", "id"),
                                  "missing required key 'id' (dropdowns are written by choice id)")
        values.append(value)
        choices[value] = c["id"]
    if choices:
        vendor["choices"] = choices
    if ftype in (FieldType.picklist, FieldType.multipicklist) and not values:
        warn.add(join_path(path, "choices"), f"dropdown {name!r} has no choices; values cannot "
                 "be checked or converted to choice ids")
    return FieldSchema(
        api_name=name,
        label=opt_str(f, "label", path, source),
        type=ftype,
        required=opt_bool(f, "required", path, source) and name not in _READ_ONLY,
        max_length=255 if ftype in (FieldType.text, FieldType.email, FieldType.url,
                                    FieldType.phone) else None,
        # owner/lookup dropdowns list records, not values: keep the ids, check no values
        picklist_values=[] if targets else values,
        lookup_targets=targets,
        read_only=name in _READ_ONLY,
        audit=name in _AUDIT,
        custom=custom,
        vendor=vendor,
    )
