"""Salesforce Sales Cloud (REST sObjects, sObject Collections, Bulk API 2.0)."""

from __future__ import annotations

from typing import Any

from runtime.dialects.base import Dialect, NameKind
from runtime.dialects.salesforce import capabilities as caps
from runtime.dialects.salesforce import naming
from runtime.dialects.salesforce.metadata import load_salesforce_metadata
from runtime.schema.io import SchemaWarning
from runtime.schema.model import SystemSchema

__all__ = ["DIALECT", "SalesforceDialect"]


class SalesforceDialect(Dialect):
    custom_name_field = "Name"

    def load_metadata(self, payload: Any, *, source_name: str, object_name: str | None = None,
                      warnings: list[SchemaWarning] | None = None) -> SystemSchema:
        return load_salesforce_metadata(payload, source_name=source_name,
                                        object_name=object_name, warnings=warnings)

    def check_custom_name(self, kind: NameKind, name: str) -> list[str]:
        return naming.check_custom_name(kind, name)

    def custom_api_name(self, label_or_name: str, kind: NameKind) -> str:
        return naming.custom_api_name(label_or_name, kind)


DIALECT = SalesforceDialect(
    name="salesforce",
    label="Salesforce Sales Cloud",
    batch_size=caps.BATCH_SIZE,
    upsert="native",
    bulk=caps.BULK,
    attachment_limit_bytes=caps.ATTACHMENT_LIMIT_BYTES,
    rate_limit=caps.RATE_LIMIT,
    id_format=caps.ID_FORMAT,
    audit_fields=caps.AUDIT_FIELDS,
    owner_field=caps.OWNER_FIELD,
    external_id_field=caps.EXTERNAL_ID_FIELD,
    metadata_format="GET /services/data/vXX.X/sobjects/{SObject}/describe",
)
