"""Declared source schemas: a :class:`SystemSchema` file with ``kind: source`` (usually YAML).

Conventions (shared with ``mappings/schemas/*.yaml`` and :mod:`runtime.schema.infer`):

- one object per exported entity, with ``key`` (the stable source key field) and optionally
  ``modified_at`` (the field delta runs compare);
- a nested array of records is a field of type ``array`` whose ``item_object`` names another
  object, by convention ``"<parent>.<field>"`` (``patients.appointments``), and that object's
  ``parent`` is the containing object (``patients``); ``parent`` is filled in from the name when
  omitted; an array of plain values (tags) has ``vendor: {items: scalar}`` and no item object;
- a date/datetime field's input format is ``vendor["date_format"]`` (``vendor["format"]`` is read
  too, see :func:`date_format`).

:func:`load_source_schema` loads and checks one file; every structural problem is a
:class:`SchemaLoadError` with the JSON path of the bad value.
"""

from __future__ import annotations

from pathlib import Path

from runtime.schema.io import SchemaLoadError, load_schema
from runtime.schema.model import FieldSchema, FieldType, ObjectSchema, SystemSchema

__all__ = ["load_source_schema", "check_source_schema", "child_objects", "date_format"]


def load_source_schema(path: str | Path) -> SystemSchema:
    """Load a declared source schema and check its structure (see module docstring)."""
    schema = load_schema(path)
    return check_source_schema(schema, source_name=str(path))


def check_source_schema(schema: SystemSchema, *, source_name: str | None = None) -> SystemSchema:
    """Check a source schema's internal references; returns a copy with ``parent`` filled in.

    Problems: ``kind`` is not ``source``; duplicate object or field names; ``key``/``modified_at``
    naming a missing field; an ``array`` field without ``item_object`` or naming a missing object;
    an item object whose ``parent`` disagrees; a ``parent`` that does not exist; a lookup to a
    missing object.
    """
    if schema.kind != "source":
        raise SchemaLoadError(source_name, "$.kind",
                              f"expected kind 'source', got {schema.kind!r}")
    schema = schema.model_copy(deep=True)
    problems: list[tuple[str, str]] = []
    names: dict[str, int] = {}
    for i, obj in enumerate(schema.objects):
        if obj.api_name in names:
            problems.append((f"$.objects[{i}].api_name",
                             f"duplicate object {obj.api_name!r} (also $.objects[{names[obj.api_name]}])"))
        names.setdefault(obj.api_name, i)
    # parents from the dotted-name convention
    for i, obj in enumerate(schema.objects):
        if obj.parent is None and "." in obj.api_name:
            guess = obj.api_name.rsplit(".", 1)[0]
            if guess in names:
                obj.parent = guess
        if obj.parent is not None and obj.parent not in names:
            problems.append((f"$.objects[{i}].parent", f"parent object {obj.parent!r} does not exist"))
    for i, obj in enumerate(schema.objects):
        base = f"$.objects[{i}]"
        seen: set[str] = set()
        for j, fld in enumerate(obj.fields):
            fpath = f"{base}.fields[{j}]"
            if fld.api_name in seen:
                problems.append((f"{fpath}.api_name", f"duplicate field {fld.api_name!r} in {obj.api_name!r}"))
            seen.add(fld.api_name)
            if fld.type == FieldType.array:
                if not fld.item_object and fld.vendor.get("items") == "scalar":
                    pass  # an array of plain values (tags, codes): no item object
                elif not fld.item_object:
                    problems.append((f"{fpath}.item_object",
                                     f"array field {fld.api_name!r} needs item_object "
                                     f"(e.g. {obj.api_name + '.' + fld.api_name!r})"))
                elif fld.item_object not in names:
                    problems.append((f"{fpath}.item_object",
                                     f"item object {fld.item_object!r} does not exist"))
                else:
                    child = schema.objects[names[fld.item_object]]
                    if child.parent is None:
                        child.parent = obj.api_name
                    elif child.parent != obj.api_name:
                        problems.append((f"{fpath}.item_object",
                                         f"{fld.item_object!r} has parent {child.parent!r}, "
                                         f"not {obj.api_name!r}"))
            elif fld.item_object:
                problems.append((f"{fpath}.item_object",
                                 f"item_object is only valid on array fields ({fld.api_name!r} is "
                                 f"{fld.type.value})"))
            for target in fld.lookup_targets:
                if target not in names:
                    problems.append((f"{fpath}.lookup_targets",
                                     f"lookup target {target!r} is not an object of this source"))
        for attr in ("key", "modified_at"):
            value = getattr(obj, attr)
            if value is not None and value not in seen:
                problems.append((f"{base}.{attr}", f"{attr} {value!r} is not a field of {obj.api_name!r}"))
    if problems:
        raise SchemaLoadError(source_name, problems[0][0], problems[0][1], details=problems)
    return schema


def child_objects(schema: SystemSchema, name: str) -> list[ObjectSchema]:
    """Objects whose ``parent`` is ``name`` (the nested arrays of its records)."""
    return [o for o in schema.objects if o.parent == name]


def date_format(field: FieldSchema) -> str | None:
    """The declared/inferred input format of a date or datetime source field, if any."""
    value = field.vendor.get("date_format", field.vendor.get("format"))
    return value if isinstance(value, str) else None
