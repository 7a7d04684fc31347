"""Salesforce schema changes as a Metadata API deployment package.

Salesforce's REST API cannot create objects or fields (API_NOTES.md 2.5): an admin deploys them
(Setup > Deploy, ``sf project deploy start --metadata-dir DIR``, or the REST ``deployRequest``).
So ``fmap schema apply --emit package DIR`` writes that package instead of calling an API:

- ``package.xml``: ``CustomObject`` members for new objects, ``CustomField`` members
  (``Object.Field__c``) for every field, API version;
- ``objects/<Object>.object``: a ``CustomObject`` (new objects carry ``label``, ``pluralLabel``,
  an auto-number ``nameField``, ``deploymentStatus`` and ``sharingModel``; standard objects carry
  only their new ``fields``).

Fields are written with the Metadata API's element order (``fullName`` first, the rest
alphabetical, as the WSDL sequence has them), so a strict deploy accepts them. The executor's own
external-id field (``Fmap_External_ID__c`` unless the connector's ``external_id_field`` says
otherwise; Text(255) External ID + Unique) is added to every object in the package and to
``external_id_objects``: the connector upserts by it.

The output is deterministic (sorted objects and fields, no timestamps) so a package can be
reviewed and diffed. :func:`read_package` is the inverse, used by the sandbox's ``deployRequest``
and by tests.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from runtime.dialects.base import UnsupportedByDialect
from runtime.dialects.salesforce import naming
from runtime.dialects.salesforce.client import DEFAULT_EXTERNAL_ID_FIELD as EXTERNAL_ID_FIELD

__all__ = ["emit_package", "read_package", "SchemaPackageError", "METADATA_NS",
           "package_files"]

METADATA_NS = "http://soap.sforce.com/2006/04/metadata"
API_VERSION = "62.0"
_MAX_LONG_TEXT = 131_072
_MAX_PRECISION = 18


class SchemaPackageError(UnsupportedByDialect):
    """The changes cannot be written as a package Salesforce would deploy (bad names, types it
    does not have): an :class:`UnsupportedByDialect`, so ``fmap schema apply`` reports it."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = "; ".join(problems[:5])
        more = f" ... and {len(problems) - 5} more" if len(problems) > 5 else ""
        super().__init__("salesforce", f"cannot write the metadata package: {shown}{more}")


def _type_args(type_text: str) -> tuple[str, list[str]]:
    name, _, rest = (type_text or "text").partition("(")
    args = [a.strip() for a in rest.rstrip(")").split(",") if a.strip()] if rest else []
    return name.strip(), args


def _int(args: list[str], i: int, default: int) -> int:
    try:
        return int(args[i])
    except (IndexError, ValueError):
        return default


def _plural(label: str) -> str:
    return label if label.endswith("s") else label + "s"


def _relationship_name(obj: str, field: str) -> str:
    """A child-relationship name unique per (object, field): ``Appointment_Contact``."""
    base = f"{obj.removesuffix('__c')}_{field.removesuffix('__c')}"
    base = "_".join(p for p in base.split("_") if p)
    return base[:40].rstrip("_")


def _field_meta(obj: str, change: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    """One ``CustomField`` as ordered (element, value) data; values are str or lists."""
    name = str(change.get("field") or "")
    details = change.get("details") or {}
    tname, args = _type_args(str(change.get("type") or "text"))
    label = str(details.get("label") or name.removesuffix("__c").replace("_", " "))
    m: dict[str, Any] = {"label": label}
    required = bool(details.get("required"))
    if tname == "text":
        m["type"], m["length"] = "Text", str(_int(args, 0, 255))
        if not 1 <= int(m["length"]) <= 255:
            problems.append(f"{obj}.{name}: Text length must be 1..255")
    elif tname == "textarea":
        n = _int(args, 0, 0)
        if n and n > 255:
            if n > _MAX_LONG_TEXT:
                problems.append(f"{obj}.{name}: Long Text Area length must be at most "
                                f"{_MAX_LONG_TEXT}")
            m["type"], m["length"], m["visibleLines"] = "LongTextArea", str(n), "3"
        else:
            m["type"] = "TextArea"
    elif tname in ("email", "phone", "url", "date", "datetime"):
        m["type"] = {"email": "Email", "phone": "Phone", "url": "Url", "date": "Date",
                     "datetime": "DateTime"}[tname]
    elif tname == "boolean":
        m["type"], m["defaultValue"] = "Checkbox", "false"
        required = False  # a checkbox is always true or false: it cannot be required
    elif tname in ("integer", "decimal", "currency", "percent"):
        precision = _int(args, 0, _MAX_PRECISION)
        scale = 0 if tname == "integer" else _int(args, 1, 2)
        if not 1 <= precision <= _MAX_PRECISION or not 0 <= scale <= precision:
            problems.append(f"{obj}.{name}: precision must be 1..{_MAX_PRECISION} and scale "
                            "0..precision")
        m["type"] = {"integer": "Number", "decimal": "Number", "currency": "Currency",
                     "percent": "Percent"}[tname]
        m["precision"], m["scale"] = str(precision), str(scale)
    elif tname in ("picklist", "multipicklist"):
        values = [str(v) for v in details.get("values") or []]
        if not values:
            problems.append(f"{obj}.{name}: a picklist needs values")
        m["type"] = "Picklist" if tname == "picklist" else "MultiselectPicklist"
        if tname == "multipicklist":
            m["visibleLines"] = "4"
        m["valueSet"] = values
    elif tname in ("lookup", "owner"):
        target = "User" if tname == "owner" else str(details.get("lookup") or
                                                    (args[0] if args else ""))
        if not target:
            problems.append(f"{obj}.{name}: a lookup needs a target object")
        m["type"], m["referenceTo"] = "Lookup", target
        m["relationshipName"] = _relationship_name(obj, name)
        m["relationshipLabel"] = _plural(label)
        if target != "User":  # lookups to User take no delete constraint
            # a required lookup must stop its parent's deletion; an optional one is cleared
            m["deleteConstraint"] = "Restrict" if required else "SetNull"
    else:
        problems.append(f"{obj}.{name}: type {tname!r} has no Salesforce field type")
        m["type"] = "Text"
    if tname not in ("boolean",):
        m["required"] = "true" if required else "false"
    if details.get("external_id"):
        if m["type"] not in ("Text", "Number", "Email"):
            problems.append(f"{obj}.{name}: only Text, Number and Email fields can be external ids")
        m["externalId"] = "true"
    if details.get("unique"):
        if m["type"] not in ("Text", "Number", "Email"):
            problems.append(f"{obj}.{name}: only Text, Number and Email fields can be unique")
        m["unique"] = "true"
        if m["type"] == "Text":
            m["caseSensitive"] = "false"
    return m


def _external_id_meta() -> dict[str, Any]:
    return {"label": "fmap External ID", "type": "Text", "length": "255", "externalId": "true",
            "unique": "true", "caseSensitive": "false", "required": "false"}


def _el(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    e = ET.SubElement(parent, tag)
    if text is not None:
        e.text = text
    return e


def _field_xml(parent: ET.Element, name: str, meta: dict[str, Any]) -> None:
    f = _el(parent, "fields")
    _el(f, "fullName", name)
    for key in sorted(meta):
        value = meta[key]
        if key == "valueSet":
            vs = _el(f, "valueSet")
            _el(vs, "restricted", "true")
            vsd = _el(vs, "valueSetDefinition")
            _el(vsd, "sorted", "false")
            for v in value:
                ve = _el(vsd, "value")
                _el(ve, "fullName", v)
                _el(ve, "default", "false")
                _el(ve, "label", v)
        else:
            _el(f, key, value)


def _write_xml(root: ET.Element, path: Path) -> None:
    ET.indent(root, space="    ")
    data = ET.tostring(root, encoding="unicode", xml_declaration=False)
    path.write_text('<?xml version="1.0" encoding="UTF-8"?>\n' + data + "\n", encoding="utf-8")


def emit_package(changes: Iterable[dict[str, Any]], out_dir: str | Path, *,
                 external_id_objects: Iterable[str] = (),
                 external_id_field: str = EXTERNAL_ID_FIELD,
                 api_version: str = API_VERSION) -> list[Path]:
    """Write ``package.xml`` and ``objects/*.object`` for ``changes`` (``PLAN.schema_changes``
    entries as dicts) into ``out_dir``; returns the written paths. ``external_id_field`` is the
    connector's (``external_id_field=`` on the target URI): the field added to every object.
    Raises :class:`SchemaPackageError` listing every problem before anything is written."""
    problems: list[str] = [f"external_id_field {p}"
                           for p in naming.check_custom_name("field", external_id_field)]
    new_objects: dict[str, dict[str, Any]] = {}
    fields: dict[str, dict[str, dict[str, Any]]] = {}
    for c in changes:
        c = dict(c)
        obj = str(c.get("object") or "")
        if c.get("action") == "create_module":
            problems += naming.check_custom_name("module", obj)
            details = c.get("details") or {}
            label = str(details.get("label") or obj.removesuffix("__c").replace("_", " "))
            new_objects[obj] = {"label": label, "pluralLabel": _plural(label)}
            fields.setdefault(obj, {})
        elif c.get("action") == "create_field":
            name = str(c.get("field") or "")
            problems += naming.check_custom_name("field", name)
            fields.setdefault(obj, {})[name] = _field_meta(obj, c, problems)
        else:
            problems.append(f"unknown schema change action {c.get('action')!r}")
    for obj in [*fields, *external_id_objects]:
        fields.setdefault(obj, {}).setdefault(external_id_field, _external_id_meta())
    for obj, fs in fields.items():
        for name, meta in fs.items():
            if meta.get("type") == "Lookup" and meta["referenceTo"] != "User":
                problems += [f"{obj}.{name}: relationship name {p}" for p in naming.check_custom_name(
                    "field", meta["relationshipName"] + "__c")]
    if problems:
        raise SchemaPackageError(problems)
    out = Path(out_dir)
    (out / "objects").mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for obj in sorted(fields):
        root = ET.Element("CustomObject", xmlns=METADATA_NS)
        new = new_objects.get(obj)
        if new is not None:
            _el(root, "deploymentStatus", "Deployed")
            _el(root, "enableBulkApi", "true")
            _el(root, "enableReports", "true")
        for name in sorted(fields[obj]):
            _field_xml(root, name, fields[obj][name])
        if new is not None:
            _el(root, "label", new["label"])
            nf = _el(root, "nameField")
            _el(nf, "displayFormat", f"{obj.removesuffix('__c')[:3].upper()}-{{000000}}")
            _el(nf, "label", f"{new['label']} Number")
            _el(nf, "type", "AutoNumber")
            _el(root, "pluralLabel", new["pluralLabel"])
            _el(root, "sharingModel", "ReadWrite")
        path = out / "objects" / f"{obj}.object"
        _write_xml(root, path)
        written.append(path)
    pkg = ET.Element("Package", xmlns=METADATA_NS)
    members = sorted(f"{o}.{f}" for o, fs in fields.items() for f in fs)
    if members:
        t = _el(pkg, "types")
        for m in members:
            _el(t, "members", m)
        _el(t, "name", "CustomField")
    if new_objects:
        t = _el(pkg, "types")
        for o in sorted(new_objects):
            _el(t, "members", o)
        _el(t, "name", "CustomObject")
    _el(pkg, "version", api_version)
    _write_xml(pkg, out / "package.xml")
    return [out / "package.xml", *written]


def package_files(out_dir: str | Path) -> dict[str, bytes]:
    """The package's files by relative path (what a deploy zip holds)."""
    root = Path(out_dir)
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


_SF_TO_FMAP = {"Text": "text", "TextArea": "textarea", "LongTextArea": "textarea",
               "Email": "email", "Phone": "phone", "Url": "url", "Date": "date",
               "DateTime": "datetime", "Checkbox": "boolean", "Number": "decimal",
               "Currency": "currency", "Percent": "percent", "Picklist": "picklist",
               "MultiselectPicklist": "multipicklist", "Lookup": "lookup",
               "MasterDetail": "lookup"}


def read_package(files: dict[str, bytes]) -> list[dict[str, Any]]:
    """The schema changes a package's ``objects/*.object`` files describe (the inverse of
    :func:`emit_package`). Raises :class:`SchemaPackageError` on XML it cannot read."""
    ns = {"m": METADATA_NS}
    changes: list[dict[str, Any]] = []
    for rel in sorted(files):
        parts = rel.split("/")
        if len(parts) < 2 or parts[-2] != "objects" or not parts[-1].endswith(".object"):
            continue
        obj = parts[-1].removesuffix(".object")
        try:
            root = ET.fromstring(files[rel])
        except ET.ParseError as exc:
            raise SchemaPackageError([f"{rel}: not valid XML ({exc})"]) from None
        if root.tag != f"{{{METADATA_NS}}}CustomObject":
            raise SchemaPackageError([f"{rel}: the root element is not a CustomObject"])
        label = root.findtext("m:label", namespaces=ns)
        if label is not None:
            changes.append({"action": "create_module", "object": obj,
                            "details": {"label": label}})
        for f in root.findall("m:fields", ns):
            name = f.findtext("m:fullName", namespaces=ns) or ""
            sf_type = f.findtext("m:type", namespaces=ns) or "Text"
            ftype = _SF_TO_FMAP.get(sf_type)
            if ftype is None:
                raise SchemaPackageError([f"{rel}: field {name} has unsupported type {sf_type}"])
            details: dict[str, Any] = {}
            text = f.findtext("m:label", namespaces=ns)
            if text:
                details["label"] = text
            for tag, key in (("required", "required"), ("unique", "unique"),
                             ("externalId", "external_id")):
                if f.findtext(f"m:{tag}", namespaces=ns) == "true":
                    details[key] = True
            type_text = ftype
            length = f.findtext("m:length", namespaces=ns)
            precision = f.findtext("m:precision", namespaces=ns)
            scale = f.findtext("m:scale", namespaces=ns)
            if length and ftype in ("text", "textarea"):
                type_text = f"{ftype}({length})"
            elif precision:
                if sf_type == "Number" and scale == "0":
                    ftype = type_text = "integer"
                else:
                    type_text = f"{ftype}({precision}, {scale or 0})"
            if ftype == "lookup":
                target = f.findtext("m:referenceTo", namespaces=ns) or ""
                if target == "User":
                    type_text = "owner"
                else:
                    details["lookup"] = target
                    type_text = f"lookup({target})"
            values = [v.findtext("m:fullName", namespaces=ns) or ""
                      for v in f.findall("m:valueSet/m:valueSetDefinition/m:value", ns)]
            if values:
                details["values"] = values
            changes.append({"action": "create_field", "object": obj, "field": name,
                            "type": type_text, "details": details})
    return changes
