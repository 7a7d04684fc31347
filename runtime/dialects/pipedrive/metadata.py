"""Pipedrive ``*Fields`` metadata (API v2 and v1) -> normalised schema.

Accepted payloads: a v2 response ``GET /api/v2/personFields`` (``{"success", "data": [{field_code,
field_name, field_type, options, is_custom_field, required_fields: {enabled}}]}``) or a v1 response
``GET /v1/personFields``, ``/v1/leadFields``, ``/v1/noteFields`` (``{"data": [{key, name,
field_type, mandatory_flag, edit_flag, options, active_flag}]}``), detected per field; pass
``object_name`` (``Person``, ``persons``, ``personFields`` ...); or a bundle ``{"objects":
{"Person": <response>, ...}}``, whose ``no_field_metadata`` lists objects the client could not
read fields of (each a warning).

A v1 field is custom when its key is a 40-character hash: ``edit_flag`` is no guide, as standard
fields carry it too (``pinned_to_deal_flag`` in openapi-v1.yaml's getNoteFields example).

Custom fields are keyed by 40-character hashes that differ per account, so the normalised
``api_name`` of a custom field is its human name made API-safe (``"Outstanding Balance"`` ->
``Outstanding_Balance``) and the hash lives in ``vendor['key']``; enum/set option ids live in
``vendor['options'] = {label: id}`` (Pipedrive writes option ids). Two custom fields whose names
make the same API name (ignoring case) get ``_2``, ``_3`` ... suffixes (with a warning). Standard fields keep their
key (``name``, ``org_id``, ``owner_id``) as ``api_name``.
"""

from __future__ import annotations

import re
from typing import Any

from runtime.dialects._loader import Warnings, api_safe_name, load_bundle, map_type
from runtime.schema.io import (
    SchemaLoadError,
    SchemaWarning,
    expect_dict,
    expect_list,
    join_path,
)
from runtime.schema.model import (
    FieldSchema,
    FieldType,
    ObjectCapabilities,
    ObjectSchema,
    SystemSchema,
)

__all__ = ["PIPEDRIVE_TYPES", "ENTITY_OBJECTS", "load_pipedrive_metadata", "object_for_entity"]

PIPEDRIVE_TYPES: dict[str, FieldType] = {
    "varchar": FieldType.text,
    "varchar_auto": FieldType.text,
    "varchar_options": FieldType.text,
    "text": FieldType.textarea,
    "double": FieldType.decimal,
    "int": FieldType.integer,
    "monetary": FieldType.currency,
    "date": FieldType.date,
    "daterange": FieldType.date,  # {"value", "until"} in v2; vendor['range'] = True
    "time": FieldType.text,
    "timerange": FieldType.text,
    "enum": FieldType.picklist,
    "set": FieldType.multipicklist,
    "status": FieldType.picklist,
    "visible_to": FieldType.picklist,
    "boolean": FieldType.boolean,
    "phone": FieldType.phone,
    "address": FieldType.text,  # v2 {"value", subfields...}; the value is a formatted address
    "user": FieldType.owner,
    "org": FieldType.lookup,
    "people": FieldType.lookup,
    "deal": FieldType.lookup,
    "deals": FieldType.lookup,
    "lead": FieldType.lookup,
    "activity": FieldType.lookup,
    "stage": FieldType.lookup,
    "project": FieldType.lookup,
    "picture": FieldType.file,
    "json": FieldType.unknown,
    "price_list": FieldType.unknown,
    "billing_frequency": FieldType.picklist,
}
_TARGETS = {"user": "User", "org": "Organization", "people": "Person", "deal": "Deal",
            "deals": "Deal", "lead": "Lead", "activity": "Activity", "stage": "Stage",
            "project": "Project"}
_LENGTHS = {"varchar": 255, "varchar_auto": 255, "varchar_options": 255, "text": 65_535,
            "phone": 255, "address": 255}
# add_time is accepted on create in v2 (POST /persons body), so it is audit + create-only.
_READ_ONLY = {"id", "update_time", "creator_user_id", "open_deals_count",
              "closed_deals_count", "won_deals_count", "lost_deals_count", "activities_count",
              "done_activities_count", "undone_activities_count", "email_messages_count",
              "files_count", "notes_count", "followers_count", "last_activity_date",
              "next_activity_date", "last_activity_id", "next_activity_id", "picture_id"}
_AUDIT = {"add_time", "update_time", "creator_user_id"}
_HASH_KEY = re.compile(r"^[0-9a-f]{40}$")
ENTITY_OBJECTS = {
    "person": "Person", "persons": "Person", "personfields": "Person",
    "organization": "Organization", "organizations": "Organization",
    "organizationfields": "Organization", "org": "Organization",
    "deal": "Deal", "deals": "Deal", "dealfields": "Deal",
    "activity": "Activity", "activities": "Activity", "activityfields": "Activity",
    "product": "Product", "products": "Product", "productfields": "Product",
    "lead": "Lead", "leads": "Lead", "leadfields": "Lead",
    "note": "Note", "notes": "Note", "notefields": "Note",
    "project": "Project", "projects": "Project", "projectfields": "Project",
}


def object_for_entity(name: str) -> str:
    return ENTITY_OBJECTS.get(name.lower(), name)


def load_pipedrive_metadata(payload: Any, *, source_name: str, object_name: str | None = None,
                            warnings: list[SchemaWarning] | None = None) -> SystemSchema:
    warn = Warnings(source_name, warnings)

    def one(sub: Any, name: str | None, path: str) -> ObjectSchema:
        if not name:
            raise SchemaLoadError(source_name, path, "a Pipedrive *Fields response does not name "
                                  "its entity; pass object_name (e.g. 'Person')")
        return _load_fields(sub, object_for_entity(name), path, source_name, warn)

    if isinstance(payload, dict) and isinstance(payload.get("no_field_metadata"), list):
        for i, name in enumerate(payload["no_field_metadata"]):
            warn.add(f"$.no_field_metadata[{i}]", f"{name}: Pipedrive has no fields endpoint "
                     "for it, so this snapshot holds none of its fields")
    return load_bundle(payload, system="pipedrive", source_name=source_name,
                       object_name=object_name, load_object=one)


def _load_fields(payload: Any, name: str, path: str, source: str, warn: Warnings) -> ObjectSchema:
    d = expect_dict(payload, path, source)
    dpath = join_path(path, "data")
    if "data" not in d:
        raise SchemaLoadError(source, dpath, "missing required key 'data'")
    if d.get("success") is False:
        raise SchemaLoadError(source, join_path(path, "success"),
                              f"the response is an error: {d.get('error')!r}")
    fields: list[FieldSchema] = []
    used: dict[str, int] = {}
    for i, raw in enumerate(expect_list(d["data"], dpath, source)):
        fp = f"{dpath}[{i}]"
        fld = _field(expect_dict(raw, fp, source), fp, source, warn)
        if fld is None:
            continue
        folded = fld.api_name.lower()  # names differing only in case would confuse mappings
        if folded in used:
            used[folded] += 1
            new = f"{fld.api_name}_{used[folded]}"
            warn.add(fp, f"field name {fld.label!r} gives API name {fld.api_name!r}, already "
                     f"used; this field is {new!r}")
            fld.api_name = new
        used.setdefault(fld.api_name.lower(), 1)
        fields.append(fld)
    return ObjectSchema(
        api_name=name,
        fields=fields,
        capabilities=ObjectCapabilities(
            upsert=False,
            attachments=name in {"Person", "Organization", "Deal", "Product", "Activity", "Lead"},
            notes=name in {"Person", "Organization", "Deal", "Lead"},
        ),
    )


def _str(f: dict[str, Any], key: str, path: str, source: str) -> str:
    value = f.get(key)
    if key not in f:
        raise SchemaLoadError(source, join_path(path, key), f"missing required key {key!r}")
    if not isinstance(value, str) or not value:
        raise SchemaLoadError(source, join_path(path, key), "expected a non-empty string")
    return value


def _field(f: dict[str, Any], path: str, source: str, warn: Warnings) -> FieldSchema | None:
    v2 = "field_code" in f or "field_name" in f
    key = _str(f, "field_code" if v2 else "key", path, source)
    human = _str(f, "field_name" if v2 else "name", path, source)
    pd_type = _str(f, "field_type", path, source)
    if v2:
        custom = f.get("is_custom_field") is True
        req = f.get("required_fields")
        required = isinstance(req, dict) and req.get("enabled") is True
    else:
        custom = bool(_HASH_KEY.match(key))
        required = f.get("mandatory_flag") is True
        if f.get("active_flag") is False:
            return None  # deleted/inactive custom field: Pipedrive ignores it on write
    ftype = map_type(PIPEDRIVE_TYPES, pd_type, join_path(path, "field_type"), warn, "Pipedrive")
    vendor: dict[str, Any] = {"key": key, "field_type": pd_type}
    if pd_type == "daterange":
        vendor["range"] = True
    if pd_type == "monetary":
        vendor["value_shape"] = "{value, currency}"
    options: dict[str, Any] = {}
    opath = join_path(path, "options")
    for j, raw in enumerate(expect_list(f.get("options") or [], opath, source)):
        o = expect_dict(raw, f"{opath}[{j}]", source)
        if "id" not in o:
            raise SchemaLoadError(source, join_path(f"{opath}[{j}]", "id"), "missing required key 'id'")
        label = o.get("label")
        if not isinstance(label, str):
            raise SchemaLoadError(source, join_path(f"{opath}[{j}]", "label"),
                                  "expected a string option label")
        options[label] = o["id"]
    if options:
        vendor["options"] = options
    if custom:
        api_name = api_safe_name(human)
        if not api_name:
            raise SchemaLoadError(source, join_path(path, "field_name" if v2 else "name"),
                                  f"custom field name {human!r} has no letters or digits")
    else:
        api_name = key
    return FieldSchema(
        api_name=api_name,
        label=human,
        type=ftype,
        required=required and key not in _READ_ONLY,
        max_length=_LENGTHS.get(pd_type),
        picklist_values=list(options),
        lookup_targets=[_TARGETS[pd_type]] if pd_type in _TARGETS else [],
        read_only=key in _READ_ONLY,
        create_only=key == "add_time",
        audit=key in _AUDIT,
        custom=custom,
        description=f.get("description") if isinstance(f.get("description"), str) else None,
        vendor=vendor,
    )
