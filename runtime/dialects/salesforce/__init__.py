"""Salesforce Sales Cloud (REST sObjects, sObject Collections, Bulk API 2.0)."""

from __future__ import annotations

from typing import Any

from runtime.dialects.base import Dialect, NameKind
from runtime.dialects.salesforce import capabilities as caps
from runtime.dialects.salesforce import naming
from runtime.dialects.salesforce.metadata import load_salesforce_metadata
from runtime.schema.io import SchemaWarning
from runtime.schema.model import SystemSchema

__all__ = ["DIALECT", "SalesforceDialect", "open_client"]


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


# ---------------------------------------------------------------------- target hooks
_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def open_client(uri: str, options: dict[str, Any]):
    """``salesforce://<instance host>`` (e.g. ``salesforce://acme.my.salesforce.com``; empty =
    ``SF_INSTANCE_URL``) -> the real REST API over HTTPS, TLS verified;
    ``salesforce://127.0.0.1:PORT`` -> a loopback emulator (plain HTTP, loopback only).
    Credentials from ``SF_ACCESS_TOKEN`` or the refresh flow (``SF_CLIENT_ID``,
    ``SF_CLIENT_SECRET``, ``SF_REFRESH_TOKEN``, ``SF_LOGIN_URL``). Options: ``api_version``,
    ``external_id_field``, ``edition`` + ``licences`` (the daily request allocation), ``schema``."""
    from urllib.parse import urlsplit

    from runtime.dialects.salesforce.auth import SalesforceCredentials
    from runtime.dialects.salesforce.client import (
        DEFAULT_API_VERSION,
        DEFAULT_EXTERNAL_ID_FIELD,
        SalesforceClient,
        daily_api_limit,
    )

    parts = urlsplit(uri.split("?", 1)[0])
    host = parts.hostname or ""
    if not host:
        instance = None
    elif host in _LOOPBACK or host.strip("[]") in _LOOPBACK:
        instance = f"http://{parts.netloc}"
    else:
        instance = f"https://{parts.netloc}"
    return SalesforceClient(
        credentials=SalesforceCredentials.discover(), instance_url=instance,
        api_version=str(options.get("api_version", DEFAULT_API_VERSION)),
        schema=options.get("schema"),
        external_id_field=options.get("external_id_field", DEFAULT_EXTERNAL_ID_FIELD),
        daily_limit=daily_api_limit(options.get("edition", "enterprise"),
                                    int(options.get("licences", 10))))
