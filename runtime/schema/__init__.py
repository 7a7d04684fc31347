"""The normalised schema model shared by the compiler, the runtime and the sandboxes."""

from runtime.schema.model import (
    FieldSchema,
    FieldType,
    ObjectCapabilities,
    ObjectSchema,
    SystemSchema,
)

__all__ = ["FieldSchema", "FieldType", "ObjectCapabilities", "ObjectSchema", "SystemSchema"]
