"""Salesforce describe -> normalised schema.

Accepted payloads: one ``GET /services/data/vXX.X/sobjects/{SObject}/describe`` response (it names
its object), a list of them, or a bundle ``{"objects": {"Contact": <describe>, ...}}``.

Derived flags (API_NOTES.md 2.4; Salesforce does not state "required"):

- required   = createable and not nillable and not defaultedOnCreate (booleans never required);
- read_only  = not createable and not updateable, or calculated, or autoNumber;
- create_only = createable and not updateable;
- audit      = CreatedDate, CreatedById, LastModifiedDate, LastModifiedById (settable only with
  "Set Audit Fields upon Record Creation");
- picklists keep active values only (the API ``value``; labels that differ go to
  ``vendor['labels']``); ``restrictedPicklist`` and ``controllerName`` are kept in ``vendor``;
- a reference whose targets are only User/Group is an ``owner`` field.

Missing optional flags default to the permissive reading (createable, updateable, nillable), so a
trimmed describe never invents a required field.
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
    opt_int,
    opt_str,
)
from runtime.schema.model import (
    TEXT_TYPES,
    FieldSchema,
    FieldType,
    ObjectCapabilities,
    ObjectSchema,
    SystemSchema,
)

__all__ = ["SALESFORCE_TYPES", "AUDIT_FIELDS", "load_salesforce_metadata", "load_describe"]

SALESFORCE_TYPES: dict[str, FieldType] = {
    "id": FieldType.id,
    "string": FieldType.text,
    "encryptedstring": FieldType.text,
    "textarea": FieldType.textarea,
    "email": FieldType.email,
    "phone": FieldType.phone,
    "url": FieldType.url,
    "picklist": FieldType.picklist,
    "combobox": FieldType.picklist,
    "multipicklist": FieldType.multipicklist,
    "boolean": FieldType.boolean,
    "currency": FieldType.currency,
    "double": FieldType.decimal,
    "percent": FieldType.percent,
    "int": FieldType.integer,
    "long": FieldType.integer,
    "date": FieldType.date,
    "datetime": FieldType.datetime,
    "time": FieldType.text,
    "reference": FieldType.lookup,
    "base64": FieldType.file,
    "address": FieldType.object,  # compound fields: read-only, written through their parts
    "location": FieldType.object,
}
AUDIT_FIELDS = ("CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById")
_USER_TARGETS = {"User", "Group"}


def load_salesforce_metadata(payload: Any, *, source_name: str, object_name: str | None = None,
                             warnings: list[SchemaWarning] | None = None) -> SystemSchema:
    warn = Warnings(source_name, warnings)

    def one(sub: Any, name: str | None, path: str) -> ObjectSchema:
        return load_describe(sub, path, source_name, warn, object_name=name)

    return load_bundle(payload, system="salesforce", source_name=source_name,
                       object_name=object_name, load_object=one)


def load_describe(payload: Any, path: str, source: str, warn: Warnings, *,
                  object_name: str | None = None) -> ObjectSchema:
    d = expect_dict(payload, path, source)
    name = opt_str(d, "name", path, source) or object_name
    if not name:
        raise SchemaLoadError(source, join_path(path, "name"), "missing required key 'name'")
    fpath = join_path(path, "fields")
    if "fields" not in d:
        raise SchemaLoadError(source, fpath, "missing required key 'fields'")
    fields = [_field(expect_dict(raw, f"{fpath}[{i}]", source), f"{fpath}[{i}]", source, warn)
              for i, raw in enumerate(expect_list(d["fields"], fpath, source))]
    # Attachments/notes follow from the child relationships; a trimmed describe without
    # ``childRelationships`` is assumed to allow both (every standard business object does).
    if isinstance(d.get("childRelationships"), list):
        children = {c.get("childSObject") for c in d["childRelationships"] if isinstance(c, dict)}
    else:
        children = {"Attachment", "Note"}
    vendor: dict[str, Any] = {}
    if isinstance(d.get("keyPrefix"), str):
        vendor["key_prefix"] = d["keyPrefix"]
    return ObjectSchema(
        api_name=name,
        label=opt_str(d, "label", path, source),
        plural_label=opt_str(d, "labelPlural", path, source),
        custom=opt_bool(d, "custom", path, source, default=name.endswith("__c")),
        capabilities=ObjectCapabilities(
            createable=opt_bool(d, "createable", path, source, default=True),
            updateable=opt_bool(d, "updateable", path, source, default=True),
            deletable=opt_bool(d, "deletable", path, source, default=True),
            upsert=True,
            attachments=bool(children & {"Attachment", "ContentVersion", "ContentDocumentLink"}),
            notes=bool(children & {"Note", "ContentNote", "ContentDocumentLink"}),
        ),
        fields=fields,
        vendor=vendor,
    )


def _field(f: dict[str, Any], path: str, source: str, warn: Warnings) -> FieldSchema:
    name = expect_str(f, "name", path, source)
    sf_type = expect_str(f, "type", path, source)
    ftype = map_type(SALESFORCE_TYPES, sf_type, join_path(path, "type"), warn, "Salesforce")
    createable = opt_bool(f, "createable", path, source, default=True)
    updateable = opt_bool(f, "updateable", path, source, default=True)
    nillable = opt_bool(f, "nillable", path, source, default=True)
    defaulted = opt_bool(f, "defaultedOnCreate", path, source)
    calculated = opt_bool(f, "calculated", path, source)
    auto_number = opt_bool(f, "autoNumber", path, source)
    read_only = (not createable and not updateable) or calculated or auto_number
    required = (createable and not nillable and not defaulted and ftype != FieldType.boolean
                and not read_only)
    refs_raw = f.get("referenceTo") or []
    refs = [r for r in expect_list(refs_raw, join_path(path, "referenceTo"), source)
            if isinstance(r, str)]
    if ftype == FieldType.lookup and refs and set(refs) <= _USER_TARGETS:
        ftype = FieldType.owner
    vendor: dict[str, Any] = {"type": sf_type}
    values: list[str] = []
    labels: dict[str, str] = {}
    plv_path = join_path(path, "picklistValues")
    for j, raw in enumerate(expect_list(f.get("picklistValues") or [], plv_path, source)):
        v = expect_dict(raw, f"{plv_path}[{j}]", source)
        if v.get("active", True) is False:
            continue
        value = expect_str(v, "value", f"{plv_path}[{j}]", source)
        values.append(value)
        label = v.get("label")
        if isinstance(label, str) and label != value:
            labels[value] = label
        if v.get("defaultValue") is True:
            vendor["default_value"] = value
    if labels:
        vendor["labels"] = labels
    if ftype in (FieldType.picklist, FieldType.multipicklist):
        vendor["restricted"] = opt_bool(f, "restrictedPicklist", path, source)
    for key in ("controllerName", "relationshipName", "compoundFieldName"):
        if isinstance(f.get(key), str):
            vendor[key] = f[key]
    for key in ("nameField", "idLookup", "calculated", "autoNumber"):
        if f.get(key) is True:
            vendor[key] = True
    length = opt_int(f, "length", path, source)
    precision = opt_int(f, "precision", path, source)
    scale = opt_int(f, "scale", path, source)
    audit = name in AUDIT_FIELDS
    return FieldSchema(
        api_name=name,
        label=opt_str(f, "label", path, source),
        type=ftype,
        required=required,
        max_length=length if length and ftype in TEXT_TYPES | {FieldType.multipicklist} else None,
        precision=precision or None,
        scale=scale if precision else None,
        picklist_values=values,
        lookup_targets=refs,
        read_only=read_only,
        create_only=createable and not updateable and not read_only,
        audit=audit,
        unique=opt_bool(f, "unique", path, source),
        external_id=opt_bool(f, "externalId", path, source),
        custom=opt_bool(f, "custom", path, source, default=name.endswith("__c")),
        vendor=vendor,
    )
