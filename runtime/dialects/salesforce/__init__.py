"""Salesforce Sales Cloud (REST sObjects, sObject Collections, Bulk API 2.0)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runtime.dialects._options import OptionReader
from runtime.dialects.base import Dialect
from runtime.dialects.salesforce import capabilities as caps
from runtime.dialects.salesforce import naming
from runtime.dialects.salesforce.metadata import load_salesforce_metadata
from runtime.schema.model import SystemSchema

__all__ = ["DIALECT", "SalesforceDialect", "open_client", "open_sandbox", "serve_sandbox",
           "emit_schema_package", "bulk_settings", "pacing", "sandbox_options", "SandboxOptions"]


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
        daily_limit=_api_limit(OptionReader("salesforce", options)), bulk=bulk_settings(options),
        **pacing(options))


def _api_limit(read: OptionReader) -> int:
    """The org's daily request allocation: ``api_limit``, else that of ``edition`` with
    ``licences`` (enterprise, 10; ``licences=0`` is an org with no licences, not the default)."""
    from runtime.dialects.salesforce.client import daily_api_limit

    if read.given("api_limit"):
        return read.integer("api_limit")
    return daily_api_limit(read.text("edition", "enterprise"), read.integer("licences", 10))


def pacing(options: dict[str, Any]) -> dict[str, Any]:
    """Client pacing from target options: every request waits for room in the org's rolling
    24 h allocation, learnt from ``Sforce-Limit-Info`` (see ``salesforce/ratelimit.py``).
    ``api_reserve`` (share kept for the admin and other integrations, default 0.03),
    ``max_wait`` (seconds; a longer wait stops the run, resumable with ``--resume``; default
    900), ``api_pacing=off`` (no client pacing: the executor's bucket and the org's 403 only)."""
    from runtime.dialects.salesforce.ratelimit import DEFAULT_MAX_WAIT, DEFAULT_RESERVE

    read = OptionReader("salesforce", options)
    if not read.flag("api_pacing", True):
        return {"pacer": None}
    return {"pacer": "default", "api_reserve": read.number("api_reserve", DEFAULT_RESERVE),
            "max_wait": read.number("max_wait", DEFAULT_MAX_WAIT)}


def bulk_settings(options: dict[str, Any], **defaults: Any):
    """Bulk API 2.0 settings from target options (text): ``bulk_threshold`` (records of one
    object in one batch from which Bulk is used; ``off`` never), ``bulk_batch_size`` (records per
    executor batch when Bulk is on), ``bulk_poll_interval`` / ``bulk_poll_timeout`` (seconds)."""
    from runtime.dialects.salesforce.bulk import BulkSettings

    read = OptionReader("salesforce", options)
    s = BulkSettings(**defaults)
    raw = options.get("bulk_threshold")
    if raw is not None:
        off = str(raw).strip().lower() in ("off", "none", "no", "false", "0", "")
        s.threshold = None if off else read.integer("bulk_threshold")
    s.batch_size = read.integer("bulk_batch_size", s.batch_size, minimum=1)
    s.poll_interval = read.number("bulk_poll_interval", s.poll_interval)
    s.poll_timeout = read.number("bulk_poll_timeout", s.poll_timeout)
    return s


_PACING_KEYS = ("api_pacing", "api_reserve", "max_wait")
_BULK_KEYS = ("bulk_threshold", "bulk_batch_size", "bulk_poll_interval", "bulk_poll_timeout")
_SANDBOX_KEYS = ("edition", "licences", "api_limit", "api_used", "api_window", "api_clock",
                 "api_sleep", "external_id_field", "faults", "page_size", "audit_fields",
                 "bulk_max_upload_bytes", *_PACING_KEYS, *_BULK_KEYS)


@dataclass(frozen=True)
class SandboxOptions:
    """What both sandbox hooks build a :class:`SalesforceSandbox` from (the in-process client's
    pacing and Bulk settings come from :func:`pacing` and :func:`bulk_settings`)."""

    api_limit: int
    api_used: int
    api_window: float | None  # the allocation's rolling window scaled down, or None (24 h)
    clock: Any  # api_clock: tests' fake clock, or None
    sleep: Any  # api_sleep, or None
    external_id_field: str
    faults: Any
    page_size: int
    audit_fields: bool  # the org granted "Set Audit Fields upon Record Creation"
    bulk_max_upload_bytes: int | None


def sandbox_options(options: dict[str, Any]) -> SandboxOptions:
    """``options`` (text from the CLI or a URI query, or typed values from code) read once for
    ``open_sandbox`` and ``serve_sandbox`` alike; raises :class:`ValueError` naming a bad or
    unknown option."""
    from runtime.dialects._faults import parse_faults
    from runtime.dialects.salesforce.client import DEFAULT_EXTERNAL_ID_FIELD

    read = OptionReader("salesforce", options, _SANDBOX_KEYS)
    return SandboxOptions(
        api_limit=_api_limit(read), api_used=read.integer("api_used", 0),
        api_window=read.number("api_window", positive=True), clock=read.function("api_clock"),
        sleep=read.function("api_sleep"),
        external_id_field=read.text("external_id_field", DEFAULT_EXTERNAL_ID_FIELD),
        faults=parse_faults(read.raw("faults")), page_size=read.integer("page_size", 2000,
                                                                        minimum=1),
        audit_fields=read.flag("audit_fields", False),
        bulk_max_upload_bytes=read.integer("bulk_max_upload_bytes", minimum=1))


def _sandbox(schema: SystemSchema, path: Any, users: Any, opts: SandboxOptions, **kw: Any):
    from runtime.dialects.salesforce.sandbox import SalesforceSandbox

    sandbox = SalesforceSandbox(schema, path, users=users, api_limit=opts.api_limit,
                                faults=opts.faults, external_id_field=opts.external_id_field,
                                page_size=opts.page_size, audit_fields=opts.audit_fields,
                                api_used=opts.api_used, api_window=opts.api_window,
                                api_clock=opts.clock, **kw)
    if opts.bulk_max_upload_bytes is not None:
        sandbox.bulk.max_upload_bytes = opts.bulk_max_upload_bytes
    return sandbox


def open_sandbox(schema: SystemSchema, path: Any, users: Any, options: dict[str, Any]):
    """``sandbox:salesforce``: a :class:`SalesforceClient` speaking the REST API to an in-process
    :class:`SalesforceSandbox` over the SQLite file ``path`` (no network). Options: ``edition``
    + ``licences`` or ``api_limit`` (the daily request allocation), ``api_used`` (already spent
    by other integrations), ``api_window`` (seconds; the allocation's rolling window scaled
    down) with ``api_clock`` / ``api_sleep`` (callables; tests' fake clock, shared with the
    client's pacing and Bulk polls), the options of :func:`pacing`, ``external_id_field``,
    ``faults`` (a :class:`FaultPlan` or ``seed=..,throttle_rate=..`` text), ``page_size``,
    ``audit_fields`` (``1``: CreatedDate & co. settable on insert, as with the "Set Audit Fields
    upon Record Creation" permission; otherwise refused), ``bulk_max_upload_bytes``, and
    the Bulk options of :func:`bulk_settings` (polls are not slept on: the emulator is local)."""
    from runtime.dialects._asgi import in_process_http
    from runtime.dialects.salesforce.auth import SalesforceCredentials
    from runtime.dialects.salesforce.client import SalesforceClient

    opts = sandbox_options(options)
    timing = {k: v for k, v in (("clock", opts.clock), ("sleep", opts.sleep)) if v is not None}
    sandbox = _sandbox(schema, path, users, opts)
    http, transport = in_process_http(sandbox)
    client = SalesforceClient(
        credentials=SalesforceCredentials(instance_url="http://salesforce-sandbox.invalid",
                                          access_token=sandbox.token, source="sandbox"),
        http=http, schema=sandbox.schema(), external_id_field=opts.external_id_field,
        daily_limit=opts.api_limit, name="sandbox:salesforce", owns=(http, transport, sandbox),
        bulk=bulk_settings(options, poll_interval=0.0, **timing), **pacing(options),
        **({"api_window": opts.api_window} if opts.api_window is not None else {}), **timing)
    client.sandbox = sandbox  # type: ignore[attr-defined]  # tests and benchmarks inspect it
    return client


def serve_sandbox(schema: SystemSchema, path: Any, users: Any, token: str | None,
                  options: dict[str, Any]):
    """``fmap sandbox serve --dialect salesforce``: the :class:`SalesforceSandbox` of
    :func:`open_sandbox`, from the same options (:func:`sandbox_options`), as an ASGI app on
    loopback, demanding ``Authorization: Bearer <token>`` (anything else: 401
    ``INVALID_SESSION_ID``). Custom objects come from deploying the package of ``fmap schema
    apply --emit package`` to its ``/metadata/deployRequest``. A client reaches it with
    ``SF_ACCESS_TOKEN`` and ``--target salesforce://127.0.0.1:PORT``."""
    from runtime.destinations.sandbox_store import real_clock
    from runtime.dialects.base import ServedSandbox

    opts = sandbox_options(options)
    sandbox = _sandbox(schema, path, users, opts, token=token or None, store_clock=real_clock)
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
