"""Pipedrive (API v2, v1 for notes, files, leads and users)."""

from __future__ import annotations

from typing import Any

from runtime.dialects.base import Dialect, NameKind
from runtime.dialects.pipedrive import capabilities as caps
from runtime.dialects.pipedrive import naming
from runtime.dialects.pipedrive.metadata import load_pipedrive_metadata
from runtime.schema.io import SchemaWarning
from runtime.schema.model import SystemSchema

__all__ = ["DIALECT", "PipedriveDialect"]


class PipedriveDialect(Dialect):
    def load_metadata(self, payload: Any, *, source_name: str, object_name: str | None = None,
                      warnings: list[SchemaWarning] | None = None) -> SystemSchema:
        return load_pipedrive_metadata(payload, source_name=source_name,
                                       object_name=object_name, warnings=warnings)

    def check_custom_name(self, kind: NameKind, name: str) -> list[str]:
        return naming.check_custom_name(kind, name)

    def custom_api_name(self, label_or_name: str, kind: NameKind) -> str:
        return naming.custom_api_name(label_or_name, kind)


DIALECT = PipedriveDialect(
    name="pipedrive",
    label="Pipedrive",
    batch_size=caps.BATCH_SIZE,
    upsert="none",
    bulk=caps.BULK,
    attachment_limit_bytes=caps.ATTACHMENT_LIMIT_BYTES,
    rate_limit=caps.RATE_LIMIT,
    id_format=caps.ID_FORMAT,
    audit_fields=caps.AUDIT_FIELDS,
    owner_field=caps.OWNER_FIELD,
    external_id_field=caps.EXTERNAL_ID_FIELD,
    metadata_format="GET /api/v2/<entity>Fields (v1 /v1/<entity>Fields)",
)
