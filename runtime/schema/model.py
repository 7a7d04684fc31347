"""One normalised schema model for every system fmap talks to.

Source exports (AeronaClinic JSON/CSV, Clinic Management CSV) and destination CRMs (Zoho, Salesforce,
Freshsales, Pipedrive) are all described by the same three models, so the compiler's checks, the
runtime's preflight and the sandboxes' validation can never disagree about what a field is.
Vendor metadata is converted into this model by each dialect's loader; schemas are committed as
JSON (``SystemSchema.model_dump_json``) so CI checks against a snapshot instead of a live org.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PField

__all__ = ["FieldType", "FieldSchema", "ObjectSchema", "SystemSchema", "ObjectCapabilities"]


class FieldType(str, Enum):
    """The normalised field types. ``unknown`` is what a loader maps an unrecognised vendor type to
    (with a warning), so new vendor types degrade to "no type checks" rather than a crash."""

    text = "text"
    textarea = "textarea"
    email = "email"
    phone = "phone"
    url = "url"
    integer = "integer"
    decimal = "decimal"
    currency = "currency"
    percent = "percent"
    boolean = "boolean"
    date = "date"
    datetime = "datetime"
    picklist = "picklist"
    multipicklist = "multipicklist"
    lookup = "lookup"
    owner = "owner"  # a user reference (Zoho ownerlookup, Salesforce OwnerId, Pipedrive user)
    file = "file"
    id = "id"  # the record's own primary id
    array = "array"  # source only: a nested array of records (see FieldSchema.item_object)
    object = "object"  # source only: a nested record (address blocks etc.)
    unknown = "unknown"


# Types whose values are strings that a length limit applies to.
TEXT_TYPES = frozenset(
    {FieldType.text, FieldType.textarea, FieldType.email, FieldType.phone, FieldType.url,
     FieldType.picklist}
)
NUMERIC_TYPES = frozenset(
    {FieldType.integer, FieldType.decimal, FieldType.currency, FieldType.percent}
)


class FieldSchema(BaseModel):
    """One field of one object. Everything a compile-time check or a sandbox needs, nothing vendor-only
    (vendor specifics such as Pipedrive hash keys or Freshsales choice ids live in ``vendor``)."""

    model_config = ConfigDict(extra="forbid")

    api_name: str
    label: str | None = None
    type: FieldType = FieldType.text
    required: bool = False
    max_length: int | None = None
    precision: int | None = None
    scale: int | None = None
    picklist_values: list[str] = PField(default_factory=list)  # active values only
    lookup_targets: list[str] = PField(default_factory=list)
    read_only: bool = False
    create_only: bool = False  # writable on create, not on update
    audit: bool = False  # CreatedDate-style fields: read-only unless the org allows setting them
    unique: bool = False
    external_id: bool = False
    custom: bool = False
    sensitive: bool = False  # PHI: masked in logs, errors and reports
    nullable: bool = True  # source schemas: may the value be missing/null
    item_object: str | None = None  # source arrays: the object describing each element
    description: str | None = None
    vendor: dict[str, Any] = PField(default_factory=dict)  # vendor-specific metadata (choice ids...)


class ObjectCapabilities(BaseModel):
    model_config = ConfigDict(extra="forbid")

    createable: bool = True
    updateable: bool = True
    deletable: bool = True
    upsert: bool = False  # native upsert by an external-id field
    attachments: bool = False  # records of this object can carry attachments
    notes: bool = False


class ObjectSchema(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_name: str
    label: str | None = None
    plural_label: str | None = None
    custom: bool = False
    key: str | None = None  # source objects: the stable source key field
    modified_at: str | None = None  # source objects: field for delta runs
    parent: str | None = None  # source nested objects: the object whose array holds this one
    capabilities: ObjectCapabilities = PField(default_factory=ObjectCapabilities)
    fields: list[FieldSchema] = PField(default_factory=list)
    vendor: dict[str, Any] = PField(default_factory=dict)

    def field(self, name: str) -> FieldSchema | None:
        for f in self.fields:
            if f.api_name == name:
                return f
        return None

    def field_names(self) -> list[str]:
        return [f.api_name for f in self.fields]


class SystemSchema(BaseModel):
    """A whole system: a CRM org (standard objects plus a snapshot's custom ones) or a source export."""

    model_config = ConfigDict(extra="forbid")

    system: str  # dialect or source-system name: "zoho", "aeronaclinic"
    kind: str = "target"  # "target" or "source"
    version: str | None = None
    description: str | None = None
    objects: list[ObjectSchema] = PField(default_factory=list)

    def object(self, name: str) -> ObjectSchema | None:
        for o in self.objects:
            if o.api_name == name:
                return o
        return None

    def object_names(self) -> list[str]:
        return [o.api_name for o in self.objects]

    def merged(self, other: SystemSchema) -> SystemSchema:
        """Overlay ``other`` (an org snapshot) on this one (the bundled standard schema): objects and
        fields in ``other`` replace same-named ones here; new ones are added."""
        objects = {o.api_name: o.model_copy(deep=True) for o in self.objects}
        for o in other.objects:
            if o.api_name in objects:
                base = objects[o.api_name]
                fields = {f.api_name: f for f in base.fields}
                for f in o.fields:
                    fields[f.api_name] = f
                objects[o.api_name] = o.model_copy(update={"fields": list(fields.values())})
            else:
                objects[o.api_name] = o
        return self.model_copy(update={"objects": list(objects.values())})
