"""Freshsales / Freshworks CRM."""

from __future__ import annotations

from typing import Any

from runtime.dialects.base import Dialect, NameKind
from runtime.dialects.freshsales import capabilities as caps
from runtime.dialects.freshsales import naming
from runtime.dialects.freshsales.metadata import load_freshsales_metadata
from runtime.schema.io import SchemaWarning
from runtime.schema.model import SystemSchema

__all__ = ["DIALECT", "FreshsalesDialect", "open_sandbox", "open_client"]


class FreshsalesDialect(Dialect):
    custom_name_field = "name"

    def load_metadata(self, payload: Any, *, source_name: str, object_name: str | None = None,
                      warnings: list[SchemaWarning] | None = None) -> SystemSchema:
        return load_freshsales_metadata(payload, source_name=source_name,
                                        object_name=object_name, warnings=warnings)

    def check_custom_name(self, kind: NameKind, name: str) -> list[str]:
        return naming.check_custom_name(kind, name)

    def custom_api_name(self, label_or_name: str, kind: NameKind) -> str:
        return naming.custom_api_name(label_or_name, kind)


DIALECT = FreshsalesDialect(
    name="freshsales",
    label="Freshsales (Freshworks CRM)",
    batch_size=caps.BATCH_SIZE,
    upsert="native",
    bulk=caps.BULK,
    attachment_limit_bytes=caps.ATTACHMENT_LIMIT_BYTES,
    rate_limit=caps.RATE_LIMIT,
    id_format=caps.ID_FORMAT,
    audit_fields=caps.AUDIT_FIELDS,
    owner_field=caps.OWNER_FIELD,
    external_id_field=caps.EXTERNAL_ID_FIELD,
    metadata_format="GET /api/settings/<entity>/fields",
)


# ---------------------------------------------------------------------- target hooks
def _flag(options: dict[str, Any], name: str, default: bool) -> bool:
    v = options.get(name)
    return default if v is None else str(v).strip().lower() not in ("0", "false", "no")


def open_sandbox(schema: SystemSchema, path: Any, users: Any, options: dict[str, Any]):
    """``sandbox:freshsales``: a :class:`FreshsalesClient` speaking Freshsales' HTTP API to an
    in-process :class:`FreshsalesSandbox` over the SQLite file ``path`` (no network).

    Options (URI query or programmatic): ``plan`` (``growth``...) or ``limit`` (requests per hour;
    the sandbox enforces an hourly limit only when one of them is given); ``clock`` (monotonic
    seconds, for the hourly window); ``faults`` (a :class:`FaultPlan` or ``seed=..,throttle_rate=..``
    text); ``external_id_field``; ``job_polls`` (polls before a bulk job completes, default 1);
    ``rate_headers`` (``0``: send no ``X-RateLimit-*``/``Retry-After`` headers)."""
    import math

    import httpx

    from runtime.dialects.freshsales.auth import FreshsalesCredentials
    from runtime.dialects.freshsales.client import (
        DEFAULT_EXTERNAL_ID_FIELD,
        FreshsalesClient,
        per_hour,
    )
    from runtime.dialects.freshsales.sandbox import FreshsalesSandbox, SyncASGITransport
    from runtime.dialects.zoho import parse_faults

    plan = str(options.get("plan") or "growth")
    limit: float = math.inf
    if options.get("limit"):
        limit = float(options["limit"])
    elif options.get("plan"):
        limit = float(per_hour(plan))
    ext = options.get("external_id_field", DEFAULT_EXTERNAL_ID_FIELD)
    kwargs: dict[str, Any] = {}
    if options.get("clock") is not None:
        kwargs["clock"] = options["clock"]
    sandbox = FreshsalesSandbox(schema, path, users=users, limit=limit,
                                faults=parse_faults(options.get("faults")),
                                external_id_field=ext,
                                job_polls=int(options.get("job_polls", 1)),
                                rate_headers=_flag(options, "rate_headers", True), **kwargs)
    transport = SyncASGITransport(sandbox)
    http = httpx.Client(transport=transport, timeout=60.0)
    client = FreshsalesClient(
        base_url="http://freshsales-sandbox.invalid/crm/sales",
        credentials=FreshsalesCredentials(sandbox.api_key, source="sandbox"), http=http,
        plan=plan, limit=None if math.isinf(limit) else int(limit), schema=sandbox.schema(),
        external_id_field=ext, name="sandbox:freshsales", poll_interval=0.0,
        sleep=options.get("sleep") or (lambda s: None), owns=(http, transport, sandbox))
    if math.isinf(limit):  # the sandbox does not meter: neither should the executor
        client.capabilities.rate_limit.per_window = 0
    client.sandbox = sandbox  # type: ignore[attr-defined]  # tests inspect it
    return client


def open_client(uri: str, options: dict[str, Any]):
    """``freshsales://<bundle>.myfreshworks.com`` (or ``<domain>.freshsales.io``) -> the real
    API over TLS, the key from ``FRESHSALES_API_KEY``. Options: ``plan`` (hourly limit:
    ``free``/``growth``/``pro``/``enterprise``/``legacy_*``), ``limit``, ``external_id_field``,
    ``schema``."""
    from urllib.parse import urlsplit

    from runtime.dialects.freshsales.auth import FreshsalesCredentials, api_base
    from runtime.dialects.freshsales.client import DEFAULT_EXTERNAL_ID_FIELD, FreshsalesClient

    parts = urlsplit(uri.split("?", 1)[0])
    return FreshsalesClient(
        base_url=api_base(parts.netloc), credentials=FreshsalesCredentials.discover(),
        plan=str(options.get("plan") or "growth"),
        limit=int(options["limit"]) if options.get("limit") else None,
        schema=options.get("schema"),
        external_id_field=options.get("external_id_field", DEFAULT_EXTERNAL_ID_FIELD))
