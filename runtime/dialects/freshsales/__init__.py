"""Freshsales / Freshworks CRM."""

from __future__ import annotations

from typing import Any

from runtime.dialects._options import OptionReader
from runtime.dialects.base import Dialect
from runtime.dialects.freshsales import capabilities as caps
from runtime.dialects.freshsales import naming
from runtime.dialects.freshsales.metadata import load_freshsales_metadata
from runtime.schema.model import SystemSchema

__all__ = ["DIALECT", "FreshsalesDialect", "open_sandbox", "open_client", "serve_sandbox"]


class FreshsalesDialect(Dialect):
    custom_name_field = "name"
    metadata_loader = staticmethod(load_freshsales_metadata)
    naming_rules = naming


DIALECT = FreshsalesDialect.from_capabilities(
    caps,
    name="freshsales",
    label="Freshsales (Freshworks CRM)",
    upsert="native",
    metadata_format="GET /api/settings/<entity>/fields",
)


# ---------------------------------------------------------------------- target hooks
_SANDBOX_KEYS = ("plan", "limit", "window", "clock", "sleep", "faults", "external_id_field",
                 "job_polls", "rate_headers")


def _limit(read: OptionReader) -> tuple[str, float]:
    """(plan, requests per hour); a bad value raises :class:`ValueError` naming the option (the
    CLI prints it instead of a traceback). No ``plan``/``limit``: the sandbox does not meter."""
    import math

    from runtime.dialects.freshsales.client import per_hour

    plan = read.text("plan", "growth").lower()
    if read.given("limit"):
        return plan, read.number("limit", positive=True)
    if read.given("plan"):
        return plan, float(per_hour(plan))  # an unknown plan fails here, by name
    return plan, math.inf


def _sandbox(schema: SystemSchema, path: Any, users: Any, options: dict[str, Any], **kw: Any):
    """The :class:`FreshsalesSandbox` ``open_sandbox`` and ``serve_sandbox`` share, from the
    options read once here (text or typed alike)."""
    from runtime.dialects._faults import parse_faults
    from runtime.dialects.freshsales.client import DEFAULT_EXTERNAL_ID_FIELD
    from runtime.dialects.freshsales.sandbox import FreshsalesSandbox

    read = OptionReader("freshsales", options, _SANDBOX_KEYS)
    plan, limit = _limit(read)
    if read.given("window"):
        kw["window"] = read.number("window", positive=True)
    if read.given("clock"):
        kw["clock"] = read.function("clock")
    read.function("sleep")  # the in-process client's: refused here, for both hooks, if not one
    if read.given("plan"):  # legacy plans add a per-minute cap
        from runtime.dialects.freshsales.capabilities import RATE_LIMIT

        minute = RATE_LIMIT.plans[plan].per_minute
        if minute:
            kw["per_minute"] = float(minute)
    return FreshsalesSandbox(schema, path, users=users, limit=limit,
                             faults=parse_faults(read.raw("faults")),
                             external_id_field=read.text("external_id_field",
                                                         DEFAULT_EXTERNAL_ID_FIELD),
                             job_polls=read.integer("job_polls", 1),
                             rate_headers=read.flag("rate_headers", True), **kw)


def serve_sandbox(schema: SystemSchema, path: Any, users: Any, token: str | None,
                  options: dict[str, Any]):
    """``fmap sandbox serve --dialect freshsales``: the same :class:`FreshsalesSandbox` as
    ``sandbox:freshsales``, served over loopback HTTP, demanding ``Authorization: Token
    token=<token>`` (401 ``{"errors": {"code": 401, "message": ["Invalid API key"]}}`` without
    it). Records carry the wall clock (people inspect a served org). Options (text): ``plan``
    or ``limit`` (requests per hour), ``window`` (seconds of the limit's window, 3600; shorter
    for rehearsals), ``faults``, ``external_id_field``, ``job_polls``, ``rate_headers``.

    ``client_env`` carries ``FRESHSALES_API_KEY`` and ``FRESHSALES_FIELD_TYPE_CODES`` (the
    sandbox's numbering of the create-field ``field_type``), so ``fmap run --target
    freshsales://127.0.0.1:PORT`` and ``fmap schema apply`` work with it."""
    from runtime.destinations.sandbox_store import real_clock
    from runtime.dialects.base import ServedSandbox
    from runtime.dialects.freshsales.auth import ENV_VAR
    from runtime.dialects.freshsales.client import FIELD_TYPE_CODES_ENV
    from runtime.dialects.freshsales.sandbox import SANDBOX_FIELD_TYPE_CODES

    sandbox = _sandbox(schema, path, users, options, api_key=token or None,
                       store_clock=real_clock)
    codes = ",".join(f"{k}={v}" for k, v in SANDBOX_FIELD_TYPE_CODES.items())
    return ServedSandbox(app=sandbox, token=sandbox.api_key,
                         client_env={ENV_VAR: sandbox.api_key, FIELD_TYPE_CODES_ENV: codes},
                         base_path="/api", target_scheme="freshsales", close=sandbox.close)


def open_sandbox(schema: SystemSchema, path: Any, users: Any, options: dict[str, Any]):
    """``sandbox:freshsales``: a :class:`FreshsalesClient` speaking Freshsales' HTTP API to an
    in-process :class:`FreshsalesSandbox` over the SQLite file ``path`` (no network).

    Options (URI query or programmatic): ``plan`` (``growth``...) or ``limit`` (requests per hour;
    the sandbox enforces an hourly limit only when one of them is given); ``clock`` (monotonic
    seconds, for the hourly window); ``faults`` (a :class:`FaultPlan` or ``seed=..,throttle_rate=..``
    text); ``external_id_field``; ``job_polls`` (polls before a bulk job completes, default 1);
    ``rate_headers`` (``0``: send no ``X-RateLimit-*``/``Retry-After`` headers)."""
    import math

    from runtime.dialects._asgi import in_process_http
    from runtime.dialects.freshsales.auth import FreshsalesCredentials
    from runtime.dialects.freshsales.client import FreshsalesClient
    from runtime.dialects.freshsales.sandbox import SANDBOX_FIELD_TYPE_CODES

    sandbox = _sandbox(schema, path, users, options)
    read = OptionReader("freshsales", options)  # _sandbox has refused what is unknown or bad
    plan, limit = _limit(read)
    http, transport = in_process_http(sandbox)
    client = FreshsalesClient(
        base_url="http://freshsales-sandbox.invalid/crm/sales",
        credentials=FreshsalesCredentials(sandbox.api_key, source="sandbox"), http=http,
        plan=plan, limit=None if math.isinf(limit) else int(limit), schema=sandbox.schema(),
        external_id_field=sandbox.external_id_field, name="sandbox:freshsales", poll_interval=0.0,
        sleep=read.function("sleep") or (lambda s: None), owns=(http, transport, sandbox),
        field_type_codes=SANDBOX_FIELD_TYPE_CODES)
    if math.isinf(limit):  # the sandbox does not meter: neither should the executor
        client.capabilities.rate_limit.per_window = 0
    client.sandbox = sandbox  # type: ignore[attr-defined]  # tests inspect it
    return client


def open_client(uri: str, options: dict[str, Any]):
    """``freshsales://<bundle>.myfreshworks.com`` (or ``<domain>.freshsales.io``) -> the real
    API over TLS; ``freshsales://127.0.0.1:PORT`` -> a loopback ``fmap sandbox serve`` (plain
    HTTP, loopback only). The key from ``FRESHSALES_API_KEY``; the create-field type numbers
    from the ``field_type_codes`` option or ``FRESHSALES_FIELD_TYPE_CODES``. Options: ``plan``
    (hourly limit: ``free``/``growth``/``pro``/``enterprise``/``legacy_*``), ``limit``,
    ``external_id_field``, ``schema``."""
    import os

    from runtime.dialects._http import split_target
    from runtime.dialects.freshsales.auth import FreshsalesCredentials, api_base
    from runtime.dialects.freshsales.client import (
        DEFAULT_EXTERNAL_ID_FIELD,
        FIELD_TYPE_CODES_ENV,
        FreshsalesClient,
        parse_field_type_codes,
    )

    netloc, loopback = split_target(uri)
    base = loopback or api_base(netloc)
    plan, limit = _limit(OptionReader("freshsales", options))
    return FreshsalesClient(
        base_url=base, credentials=FreshsalesCredentials.discover(), plan=plan,
        limit=None if limit == float("inf") else int(limit),
        schema=options.get("schema"),
        external_id_field=options.get("external_id_field") or DEFAULT_EXTERNAL_ID_FIELD,
        field_type_codes=parse_field_type_codes(options.get("field_type_codes")
                                                or os.environ.get(FIELD_TYPE_CODES_ENV)))
