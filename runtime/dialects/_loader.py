"""Helpers shared by the vendor metadata loaders (not vendor-specific)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Any

from runtime.schema.io import (
    SchemaLoadError,
    SchemaWarning,
    expect_dict,
    expect_list,
    join_path,
)
from runtime.schema.model import FieldType, ObjectSchema, SystemSchema

__all__ = ["api_safe_name", "load_bundle", "map_type", "Warnings"]


class Warnings:
    """Appends :class:`SchemaWarning` to the caller's list (or drops them if none was given)."""

    def __init__(self, source: str, sink: list[SchemaWarning] | None) -> None:
        self.source = source
        self.sink = sink

    def add(self, json_path: str, message: str) -> None:
        if self.sink is not None:
            self.sink.append(SchemaWarning(self.source, json_path, message))


def map_type(table: dict[str, FieldType], vendor_type: str, json_path: str, warn: Warnings,
             vendor: str) -> FieldType:
    ftype = table.get(vendor_type)
    if ftype is None:
        warn.add(json_path, f"unknown {vendor} field type {vendor_type!r}; no type checks apply")
        return FieldType.unknown
    return ftype


def api_safe_name(name: str) -> str:
    """A human field name as an identifier: ``"Outstanding Balance" -> "Outstanding_Balance"``.

    Accents are folded to ASCII, runs of other characters become one ``_``; a leading digit gets
    a ``_`` prefix so the result is a valid DSL/Python identifier. Empty input gives ``""``.
    """
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    safe = re.sub(r"[^0-9A-Za-z]+", "_", folded).strip("_")
    if safe and safe[0].isdigit():
        safe = "_" + safe
    return safe


def load_bundle(
    payload: Any,
    *,
    system: str,
    source_name: str,
    object_name: str | None,
    load_object: Callable[[Any, str | None, str], ObjectSchema],
) -> SystemSchema:
    """Dispatch a payload that is either one object's metadata or ``{"objects": {name: payload}}``.

    ``load_object(payload, object_name, json_path)`` converts one object's metadata.
    """
    if isinstance(payload, dict) and "objects" in payload:
        objects_raw = payload["objects"]
        objects: list[ObjectSchema] = []
        if isinstance(objects_raw, dict):
            for name, sub in objects_raw.items():
                objects.append(load_object(sub, name, join_path("$.objects", name)))
        else:
            for i, sub in enumerate(expect_list(objects_raw, "$.objects", source_name)):
                objects.append(load_object(sub, None, f"$.objects[{i}]"))
        return SystemSchema(system=system, kind="target", objects=objects)
    if isinstance(payload, list):
        objects = [load_object(sub, None, f"$[{i}]") for i, sub in enumerate(payload)]
        return SystemSchema(system=system, kind="target", objects=objects)
    expect_dict(payload, "$", source_name)
    return SystemSchema(system=system, kind="target",
                        objects=[load_object(payload, object_name, "$")])


def require_object_name(object_name: str | None, source_name: str, json_path: str,
                        what: str) -> str:
    if not object_name:
        raise SchemaLoadError(source_name, json_path,
                              f"{what} does not name its object; pass object_name")
    return object_name
