"""Zoho CRM v8 metadata -> normalised schema.

Accepted payloads (parsed JSON):

- a fields response ``GET /crm/v8/settings/fields?module=Leads`` -> ``{"fields": [...]}``
  (pass ``object_name="Leads"``: the response does not name its module);
- a modules response ``GET /crm/v8/settings/modules`` -> ``{"modules": [...]}`` (objects, no fields);
- one module bundle ``{"module": <modules item>?, "fields": <fields response>,
  "layouts": <layouts response>?}``;
- a snapshot bundle ``{"modules": <modules response>?, "objects": {"Leads": <one of the above>}}``.

Rules (API_NOTES.md 1.4): ``system_mandatory`` is the required flag of the fields API, but
required-ness is really per layout: a layouts response's ``sections[].fields[].required``
overrides it (the first layout is used unless ``vendor['layout']`` names one; the layouts that
require a field are kept in ``vendor['required_in_layouts']``). Picklists keep only ``used``
values and the value to send is ``display_value`` (``actual_value`` kept in
``vendor['actual_values']`` when it differs).
"""

from __future__ import annotations

from typing import Any

from runtime.dialects._loader import Warnings, load_bundle, map_type, require_object_name
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

__all__ = ["ZOHO_TYPES", "DATA_TYPES", "AUDIT_FIELDS", "load_zoho_metadata", "load_fields", "load_modules",
           "apply_layouts"]

ZOHO_TYPES: dict[str, FieldType] = {
    "text": FieldType.text,
    "textarea": FieldType.textarea,
    "email": FieldType.email,
    "phone": FieldType.phone,
    "website": FieldType.url,
    "picklist": FieldType.picklist,
    "multiselectpicklist": FieldType.multipicklist,
    "integer": FieldType.integer,
    "bigint": FieldType.integer,
    "double": FieldType.decimal,
    "currency": FieldType.currency,
    "percent": FieldType.percent,
    "boolean": FieldType.boolean,
    "date": FieldType.date,
    "datetime": FieldType.datetime,
    "lookup": FieldType.lookup,
    "multiselectlookup": FieldType.lookup,
    "ownerlookup": FieldType.owner,
    "userlookup": FieldType.owner,
    "multiuserlookup": FieldType.owner,
    "autonumber": FieldType.text,
    "formula": FieldType.text,  # refined from formula.return_type below
    "fileupload": FieldType.file,
    "imageupload": FieldType.file,
    "profileimage": FieldType.file,
}
# the other way: the ``data_type`` of a field of each normalised type, as a field-create request
# names it (the connector's schema changes) and the sandbox's field metadata shows it
DATA_TYPES: dict[FieldType, str] = {
    FieldType.text: "text", FieldType.textarea: "textarea", FieldType.email: "email",
    FieldType.phone: "phone", FieldType.url: "website", FieldType.integer: "integer",
    FieldType.decimal: "double", FieldType.currency: "currency", FieldType.percent: "percent",
    FieldType.boolean: "boolean", FieldType.date: "date", FieldType.datetime: "datetime",
    FieldType.picklist: "picklist", FieldType.multipicklist: "multiselectpicklist",
    FieldType.lookup: "lookup", FieldType.owner: "ownerlookup", FieldType.file: "fileupload",
    FieldType.id: "bigint",
}
_READ_ONLY_TYPES = {"autonumber", "formula", "rollup_summary"}
_FORMULA_RETURN = {"double": FieldType.decimal, "currency": FieldType.currency,
                   "date": FieldType.date, "datetime": FieldType.datetime,
                   "boolean": FieldType.boolean, "text": FieldType.text}
# Zoho stamps these itself (read-only through the record APIs).
AUDIT_FIELDS = ("Created_Time", "Modified_Time", "Created_By", "Modified_By")


def load_zoho_metadata(payload: Any, *, source_name: str, object_name: str | None = None,
                       warnings: list[SchemaWarning] | None = None) -> SystemSchema:
    warn = Warnings(source_name, warnings)
    if isinstance(payload, dict) and isinstance(payload.get("modules"), list) and "objects" not in payload:
        return SystemSchema(system="zoho", objects=load_modules(payload, "$", source_name))
    modules: dict[str, ObjectSchema] = {}
    if isinstance(payload, dict) and "objects" in payload and "modules" in payload:
        for obj in load_modules(expect_dict(payload["modules"], "$.modules", source_name),
                                "$.modules", source_name):
            modules[obj.api_name] = obj

    def one(sub: Any, name: str | None, path: str) -> ObjectSchema:
        return _load_module_bundle(sub, name, path, source_name, warn)

    schema = load_bundle(payload, system="zoho", source_name=source_name,
                         object_name=object_name, load_object=one)
    if modules:
        merged = []
        for obj in schema.objects:
            meta = modules.pop(obj.api_name, None)
            merged.append(obj if meta is None else meta.model_copy(update={"fields": obj.fields}))
        schema = schema.model_copy(update={"objects": merged + list(modules.values())})
    return schema


def _load_module_bundle(sub: Any, name: str | None, path: str, source: str,
                        warn: Warnings) -> ObjectSchema:
    sub = expect_dict(sub, path, source)
    if "fields" not in sub:
        raise SchemaLoadError(source, join_path(path, "fields"), "missing required key 'fields'")
    fields_raw = sub["fields"]
    if isinstance(fields_raw, dict) and "fields" in fields_raw:  # {"fields": <fields response>}
        fields_list = fields_raw["fields"]
        fields_path = join_path(join_path(path, "fields"), "fields")
    else:
        fields_list, fields_path = fields_raw, join_path(path, "fields")
    obj: ObjectSchema
    if "module" in sub:
        mods = load_modules({"modules": [sub["module"]]}, path, source, key="module")
        obj = mods[0]
        name = name or obj.api_name
    else:
        name = require_object_name(name, source, path, "a Zoho fields response")
        obj = ObjectSchema(api_name=name, capabilities=_default_caps())
    obj.fields = load_fields(fields_list, fields_path, source, warn)
    if "layouts" in sub and sub["layouts"] is not None:
        apply_layouts(obj, sub["layouts"], join_path(path, "layouts"), source,
                      layout=opt_str(sub, "layout", path, source))
    return obj


def _default_caps() -> ObjectCapabilities:
    return ObjectCapabilities(upsert=True, attachments=True, notes=True)


def load_modules(payload: dict[str, Any], path: str, source: str, *,
                 key: str = "modules") -> list[ObjectSchema]:
    """Objects (without fields) from a modules response."""
    if key == "module":
        items, items_path = payload["modules"], path
        items_paths = [join_path(path, "module")]
    else:
        items_path = join_path(path, "modules")
        if "modules" not in payload:
            raise SchemaLoadError(source, items_path, "missing required key 'modules'")
        items = expect_list(payload["modules"], items_path, source)
        items_paths = [f"{items_path}[{i}]" for i in range(len(items))]
    out = []
    for raw, ipath in zip(items, items_paths, strict=True):
        m = expect_dict(raw, ipath, source)
        api_name = expect_str(m, "api_name", ipath, source)
        if m.get("api_supported") is False:
            continue
        generated = opt_str(m, "generated_type", ipath, source) or "default"
        caps = ObjectCapabilities(
            createable=opt_bool(m, "creatable", ipath, source, default=True),
            updateable=opt_bool(m, "editable", ipath, source, default=True),
            deletable=opt_bool(m, "deletable", ipath, source, default=True),
            upsert=True, attachments=True, notes=True,
        )
        out.append(ObjectSchema(
            api_name=api_name,
            label=opt_str(m, "singular_label", ipath, source) or opt_str(m, "module_name", ipath, source),
            plural_label=opt_str(m, "plural_label", ipath, source),
            custom=generated == "custom",
            capabilities=caps,
            vendor={"generated_type": generated, **({"id": m["id"]} if "id" in m else {})},
        ))
    return out


def load_fields(items: Any, path: str, source: str, warn: Warnings) -> list[FieldSchema]:
    items = expect_list(items, path, source)
    return [_field(expect_dict(raw, f"{path}[{i}]", source), f"{path}[{i}]", source, warn)
            for i, raw in enumerate(items)]


def _truthy_meta(value: Any) -> bool:
    """Zoho uses ``{}``/``null`` for "not set" and a non-empty object for "set"."""
    if isinstance(value, dict):
        return bool(value)
    return bool(value)


def _field(f: dict[str, Any], path: str, source: str, warn: Warnings) -> FieldSchema:
    api_name = expect_str(f, "api_name", path, source)
    data_type = expect_str(f, "data_type", path, source)
    ftype = map_type(ZOHO_TYPES, data_type, join_path(path, "data_type"), warn, "Zoho")
    vendor: dict[str, Any] = {"data_type": data_type}
    if data_type == "formula":
        ret = (f.get("formula") or {}).get("return_type") if isinstance(f.get("formula"), dict) else None
        ftype = _FORMULA_RETURN.get(ret or "text", FieldType.text)
    ops = f.get("operation_type")
    ops = expect_dict(ops, join_path(path, "operation_type"), source) if ops is not None else {}
    api_create = ops.get("api_create", True) is not False
    api_update = ops.get("api_update", True) is not False
    # ``field_read_only`` is set on fields the API can still write (the example's Owner has
    # field_read_only=true with api_create/api_update=true), so when ``operation_type`` is present
    # it decides; ``field_read_only`` only counts without it.
    field_ro = opt_bool(f, "field_read_only", path, source)
    if field_ro:
        vendor["field_read_only"] = True
    read_only = (
        opt_bool(f, "read_only", path, source)
        or data_type in _READ_ONLY_TYPES
        or (not api_create and not api_update)
        or (field_ro and not ops)
    )
    length = opt_int(f, "length", path, source)
    decimals = opt_int(f, "decimal_place", path, source)
    picklist: list[str] = []
    actual: dict[str, str] = {}
    plv = f.get("pick_list_values")
    if plv:
        plv_path = join_path(path, "pick_list_values")
        for j, raw in enumerate(expect_list(plv, plv_path, source)):
            v = expect_dict(raw, f"{plv_path}[{j}]", source)
            if v.get("type", "used") != "used":
                continue
            display = expect_str(v, "display_value", f"{plv_path}[{j}]", source)
            if display == "-None-":  # Zoho's placeholder for "no value", not a value to send
                continue
            picklist.append(display)
            act = v.get("actual_value")
            if isinstance(act, str) and act != display:
                actual[display] = act
    if actual:
        vendor["actual_values"] = actual
    targets: list[str] = []
    lookup = f.get("lookup")
    if isinstance(lookup, dict) and isinstance(lookup.get("module"), dict):
        mod = lookup["module"].get("api_name")
        if isinstance(mod, str):
            targets.append(mod)
    msl = f.get("multiselectlookup")
    if isinstance(msl, dict) and msl:
        vendor["multi"] = True
        for key in ("connected_module", "linking_module"):
            if isinstance(msl.get(key), dict) and isinstance(msl[key].get("api_name"), str):
                vendor[key] = msl[key]["api_name"]
        if "connected_module" in vendor:
            targets.append(vendor["connected_module"])
    if ftype == FieldType.owner:
        targets = targets or ["Users"]
        if data_type == "multiuserlookup":
            vendor["multi"] = True
    if isinstance(f.get("column_name"), str):
        vendor["column_name"] = f["column_name"]
    if isinstance(f.get("id"), str):
        vendor["id"] = f["id"]
    audit = api_name in AUDIT_FIELDS
    return FieldSchema(
        api_name=api_name,
        label=opt_str(f, "field_label", path, source) or opt_str(f, "display_label", path, source),
        type=ftype,
        required=opt_bool(f, "system_mandatory", path, source) and not read_only,
        max_length=length if ftype in TEXT_TYPES and length else None,
        precision=length if ftype in (FieldType.decimal, FieldType.currency, FieldType.percent,
                                      FieldType.integer) and length else None,
        scale=decimals if decimals is not None and ftype != FieldType.integer else None,
        picklist_values=picklist,
        lookup_targets=targets,
        read_only=read_only or audit,
        create_only=api_create and not api_update and not read_only,
        audit=audit,
        unique=_truthy_meta(f.get("unique")),
        external_id=_truthy_meta(f.get("external")),
        custom=opt_bool(f, "custom_field", path, source),
        vendor=vendor,
    )


def apply_layouts(obj: ObjectSchema, payload: Any, path: str, source: str, *,
                  layout: str | None = None) -> None:
    """Override ``required`` from a layouts response (in place)."""
    payload = expect_dict(payload, path, source)
    lpath = join_path(path, "layouts")
    if "layouts" not in payload:
        raise SchemaLoadError(source, lpath, "missing required key 'layouts'")
    layouts = expect_list(payload["layouts"], lpath, source)
    required_in: dict[str, list[str]] = {}
    chosen: dict[str, bool] | None = None
    for i, raw in enumerate(layouts):
        lp = f"{lpath}[{i}]"
        lay = expect_dict(raw, lp, source)
        lname = opt_str(lay, "name", lp, source) or f"layout {i}"
        flags: dict[str, bool] = {}
        sections = expect_list(lay.get("sections") or [], join_path(lp, "sections"), source)
        for s, sraw in enumerate(sections):
            sp = f"{join_path(lp, 'sections')}[{s}]"
            sec = expect_dict(sraw, sp, source)
            fp = join_path(sp, "fields")
            for k, fraw in enumerate(expect_list(sec.get("fields") or [], fp, source)):
                fld = expect_dict(fraw, f"{fp}[{k}]", source)
                name = expect_str(fld, "api_name", f"{fp}[{k}]", source)
                req = opt_bool(fld, "required", f"{fp}[{k}]", source)
                flags[name] = req
                if req:
                    required_in.setdefault(name, []).append(lname)
        if chosen is None and (layout is None or lname == layout):
            chosen = flags
    if layout is not None and chosen is None:
        raise SchemaLoadError(source, lpath, f"no layout named {layout!r}")
    chosen = chosen or {}
    for fld in obj.fields:
        if fld.api_name in chosen:
            fld.required = chosen[fld.api_name] and not fld.read_only
        if fld.api_name in required_in:
            fld.vendor["required_in_layouts"] = required_in[fld.api_name]
