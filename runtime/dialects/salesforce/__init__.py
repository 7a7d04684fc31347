"""Salesforce Sales Cloud (REST sObjects, sObject Collections, Bulk API 2.0)."""

from __future__ import annotations

from typing import Any

from runtime.dialects.base import Dialect
from runtime.dialects.salesforce import capabilities as caps
from runtime.dialects.salesforce import naming
from runtime.dialects.salesforce.metadata import load_salesforce_metadata
from runtime.schema.model import SystemSchema

__all__ = ["DIALECT", "SalesforceDialect", "open_client", "open_sandbox", "serve_sandbox",
           "emit_schema_package", "bulk_settings", "pacing"]


class SalesforceDialect(Dialect):
    custom_name_field = "Name"
    metadata_loader = staticmethod(load_salesforce_metadata)
    naming_rules = naming


DIALECT = SalesforceDialect.from_capabilities(
    caps,
    name="salesforce",
    label="Salesforce Sales Cloud",
    upsert="native",
    metadata_format="GET /services/data/vXX.X/sobjects/{SObject}/describe",
)


# ---------------------------------------------------------------------- target hooks
def open_client(uri: str, options: dict[str, Any]):
    """``salesforce://<instance host>`` (e.g. ``salesforce://acme.my.salesforce.com``; empty =
    ``SF_INSTANCE_URL``) -> the real REST API over HTTPS, TLS verified;
    ``salesforce://127.0.0.1:PORT`` -> a loopback emulator (plain HTTP, loopback only).
    Credentials from ``SF_ACCESS_TOKEN`` or the refresh flow (``SF_CLIENT_ID``,
    ``SF_CLIENT_SECRET``, ``SF_REFRESH_TOKEN``, ``SF_LOGIN_URL``). Options: ``api_version``,
    ``external_id_field``, ``edition`` + ``licences`` or ``api_limit`` (the daily request
    allocation), ``schema``, the pacing options of :func:`pacing`, and the Bulk API 2.0 options
    of :func:`bulk_settings`."""
    from runtime.dialects._http import split_target
    from runtime.dialects.salesforce.auth import SalesforceCredentials
    from runtime.dialects.salesforce.client import (
        DEFAULT_API_VERSION,
        DEFAULT_EXTERNAL_ID_FIELD,
        SalesforceClient,
    )

    netloc, loopback = split_target(uri)
    instance = loopback or (f"https://{netloc}" if netloc else None)
    return SalesforceClient(
        credentials=SalesforceCredentials.discover(), instance_url=instance,
        api_version=str(options.get("api_version", DEFAULT_API_VERSION)),
        schema=options.get("schema"),
        external_id_field=options.get("external_id_field", DEFAULT_EXTERNAL_ID_FIELD),
        daily_limit=_api_limit(options), bulk=bulk_settings(options), **pacing(options))


def _api_limit(options: dict[str, Any]) -> int:
    """The org's daily request allocation: ``api_limit``, else that of ``edition`` with
    ``licences`` (enterprise, 10)."""
    from runtime.dialects.salesforce.client import daily_api_limit

    return int(options.get("api_limit") or daily_api_limit(
        options.get("edition", "enterprise"), int(options.get("licences", 10))))


def pacing(options: dict[str, Any]) -> dict[str, Any]:
    """Client pacing from target options: every request waits for room in the org's rolling
    24 h allocation, learnt from ``Sforce-Limit-Info`` (see ``salesforce/ratelimit.py``).
    ``api_reserve`` (share kept for the admin and other integrations, default 0.03),
    ``max_wait`` (seconds; a longer wait stops the run, resumable with ``--resume``; default
    900), ``api_pacing=off`` (no client pacing: the executor's bucket and the org's 403 only)."""
    from runtime.dialects.salesforce.ratelimit import DEFAULT_MAX_WAIT, DEFAULT_RESERVE

    if str(options.get("api_pacing", "on")).strip().lower() in ("off", "no", "false", "0"):
        return {"pacer": None}
    return {"pacer": "default",
            "api_reserve": float(options.get("api_reserve", DEFAULT_RESERVE)),
            "max_wait": float(options.get("max_wait", DEFAULT_MAX_WAIT))}


def bulk_settings(options: dict[str, Any], **defaults: Any):
    """Bulk API 2.0 settings from target options (text): ``bulk_threshold`` (records of one
    object in one batch from which Bulk is used; ``off`` never), ``bulk_batch_size`` (records per
    executor batch when Bulk is on), ``bulk_poll_interval`` / ``bulk_poll_timeout`` (seconds)."""
    from runtime.dialects.salesforce.bulk import BulkSettings

    s = BulkSettings(**defaults)
    raw = options.get("bulk_threshold")
    if raw is not None:
        text = str(raw).strip().lower()
        s.threshold = None if text in ("off", "none", "no", "false", "0", "") else int(text)
    if options.get("bulk_batch_size") is not None:
        s.batch_size = int(options["bulk_batch_size"])
    if options.get("bulk_poll_interval") is not None:
        s.poll_interval = float(options["bulk_poll_interval"])
    if options.get("bulk_poll_timeout") is not None:
        s.poll_timeout = float(options["bulk_poll_timeout"])
    return s


def open_sandbox(schema: SystemSchema, path: Any, users: Any, options: dict[str, Any]):
    """``sandbox:salesforce``: a :class:`SalesforceClient` speaking the REST API to an in-process
    :class:`SalesforceSandbox` over the SQLite file ``path`` (no network). Options: ``edition``
    + ``licences`` or ``api_limit`` (the daily request allocation), ``api_used`` (already spent
    by other integrations), ``api_window`` (seconds; the allocation's rolling window scaled
    down) with ``api_clock`` / ``api_sleep`` (callables; tests' fake clock, shared with the
    client's pacing and Bulk polls), the options of :func:`pacing`, ``external_id_field``,
    ``faults`` (a :class:`FaultPlan` or ``seed=..,throttle_rate=..`` text), ``page_size``,
    ``audit_fields`` (``1``: CreatedDate & co. settable on insert, as with the "Set Audit Fields
    upon Record Creation" permission; otherwise refused), and
    the Bulk options of :func:`bulk_settings` (polls are not slept on: the emulator is local)."""
    from runtime.dialects._asgi import in_process_http
    from runtime.dialects._faults import parse_faults
    from runtime.dialects.salesforce.auth import SalesforceCredentials
    from runtime.dialects.salesforce.client import DEFAULT_EXTERNAL_ID_FIELD, SalesforceClient
    from runtime.dialects.salesforce.sandbox import SalesforceSandbox

    limit = _api_limit(options)
    ext = options.get("external_id_field", DEFAULT_EXTERNAL_ID_FIELD)
    window = float(options["api_window"]) if options.get("api_window") else None
    timing = {k: v for k, v in (("clock", options.get("api_clock")),
                                ("sleep", options.get("api_sleep"))) if v is not None}
    sandbox = SalesforceSandbox(schema, path, users=users, api_limit=limit,
                                faults=parse_faults(options.get("faults")),
                                external_id_field=ext,
                                page_size=int(options.get("page_size", 2000)),
                                audit_fields=_flag(options.get("audit_fields")),
                                api_used=int(options.get("api_used") or 0),
                                api_window=window, api_clock=options.get("api_clock"))
    http, transport = in_process_http(sandbox)
    client = SalesforceClient(
        credentials=SalesforceCredentials(instance_url="http://salesforce-sandbox.invalid",
                                          access_token=sandbox.token, source="sandbox"),
        http=http, schema=sandbox.schema(), external_id_field=ext, daily_limit=limit,
        name="sandbox:salesforce", owns=(http, transport, sandbox),
        bulk=bulk_settings(options, poll_interval=0.0, **timing), **pacing(options),
        **({"api_window": window} if window is not None else {}), **timing)
    client.sandbox = sandbox  # type: ignore[attr-defined]  # tests and benchmarks inspect it
    return client


def _flag(value: Any) -> bool:
    return str(value or "").strip().lower() in ("1", "true", "yes", "on")


def serve_sandbox(schema: SystemSchema, path: Any, users: Any, token: str | None,
                  options: dict[str, Any]):
    """``fmap sandbox serve --dialect salesforce``: the :class:`SalesforceSandbox` of
    :func:`open_sandbox` as an ASGI app on loopback, demanding ``Authorization: Bearer <token>``
    (anything else: 401 ``INVALID_SESSION_ID``). Options (text): ``faults``,
    ``external_id_field``, ``edition`` + ``licences`` or ``api_limit`` (the daily allocation),
    ``page_size``, ``bulk_max_upload_bytes``, ``audit_fields`` (``1``: the org granted "Set Audit
    Fields upon Record Creation"). Custom objects come from deploying the package of
    ``fmap schema apply --emit package`` to its ``/metadata/deployRequest``. A client reaches it
    with ``SF_ACCESS_TOKEN`` and ``--target salesforce://127.0.0.1:PORT``."""
    from runtime.destinations.sandbox_store import real_clock
    from runtime.dialects._faults import parse_faults
    from runtime.dialects.base import ServedSandbox
    from runtime.dialects.salesforce.client import DEFAULT_EXTERNAL_ID_FIELD, daily_api_limit
    from runtime.dialects.salesforce.sandbox import SalesforceSandbox

    limit = int(options.get("api_limit") or daily_api_limit(
        str(options.get("edition") or "enterprise"), int(options.get("licences") or 10)))
    sandbox = SalesforceSandbox(
        schema, path, users=users, token=token or None, api_limit=limit,
        faults=parse_faults(options.get("faults")),
        external_id_field=str(options.get("external_id_field") or DEFAULT_EXTERNAL_ID_FIELD),
        page_size=int(options.get("page_size") or 2000), store_clock=real_clock,
        audit_fields=_flag(options.get("audit_fields")))
    if options.get("bulk_max_upload_bytes"):
        sandbox.bulk.max_upload_bytes = int(options["bulk_max_upload_bytes"])
    return ServedSandbox(app=sandbox, token=sandbox.token,
                         client_env={"SF_ACCESS_TOKEN": sandbox.token},
                         base_path=f"/services/data/v{sandbox.version}",
                         target_scheme="salesforce", close=sandbox.close)


def emit_schema_package(changes: Any, out_dir: Any, *, external_id_objects: Any = (),
                        external_id_field: str | None = None) -> list:
    """``fmap schema apply --emit package DIR``: Salesforce creates objects and fields through a
    Metadata API deployment, so write that package (``package.xml`` + ``objects/*.object``) for
    the admin to deploy. ``changes`` are ``PLAN.schema_changes`` (dicts or models);
    ``external_id_objects`` names objects loaded without changes, which still need the
    connector's external-id field: ``external_id_field`` (the client's, from the target URI;
    None = ``Fmap_External_ID__c``). Raises ``SchemaPackageError`` (a ValueError)."""
    from runtime.dialects.salesforce.package import EXTERNAL_ID_FIELD, emit_package

    items = [c.model_dump() if hasattr(c, "model_dump") else dict(c) for c in changes]
    return emit_package(items, out_dir, external_id_objects=external_id_objects,
                        external_id_field=external_id_field or EXTERNAL_ID_FIELD)
