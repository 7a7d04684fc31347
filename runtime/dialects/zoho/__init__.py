"""Zoho CRM (API v8)."""

from __future__ import annotations

from typing import Any

from runtime.dialects._faults import parse_faults  # re-exported: tests and scripts import it here
from runtime.dialects.base import Dialect
from runtime.dialects.zoho import capabilities as caps
from runtime.dialects.zoho import naming
from runtime.dialects.zoho.metadata import load_zoho_metadata
from runtime.schema.model import SystemSchema

__all__ = ["DIALECT", "ZohoDialect", "open_sandbox", "open_client", "serve_sandbox",
           "parse_faults"]


class ZohoDialect(Dialect):
    custom_name_field = "Name"
    metadata_loader = staticmethod(load_zoho_metadata)
    naming_rules = naming


DIALECT = ZohoDialect.from_capabilities(
    caps,
    name="zoho",
    label="Zoho CRM",
    upsert="native",
    metadata_format="GET /crm/v8/settings/fields?module= (+ modules, layouts)",
)


# ---------------------------------------------------------------------- target hooks
def _tier(options: dict[str, Any]):
    """The tier from option text; a bad value raises :class:`ValueError` naming the option, so
    the CLI can say which flag is wrong instead of printing a traceback."""
    from runtime.dialects.zoho.ratelimit import WINDOW_SECONDS, Tier, credits_for

    def num(key: str, kind: type, default: Any = None) -> Any:
        raw = options.get(key)
        if raw is None or raw == "":
            return default
        try:
            value = kind(raw)
        except (TypeError, ValueError):
            raise ValueError(f"zoho option {key}={raw!r} is not a number") from None
        if value < 0:
            raise ValueError(f"zoho option {key}={raw!r} must not be negative")
        return value

    tier = Tier(edition=str(options.get("edition") or "professional"),
                users=num("users_count", int, num("licences", int, 10)),
                credits=num("credits", float),
                window_seconds=num("window", float, WINDOW_SECONDS) or WINDOW_SECONDS,
                concurrency=num("concurrency", int))
    credits_for(tier.edition, tier.users)  # an unknown edition fails here, by name
    return tier


def open_sandbox(schema: SystemSchema, path: Any, users: Any, options: dict[str, Any]):
    """``sandbox:zoho``: a :class:`ZohoClient` speaking Zoho's HTTP API to an in-process
    :class:`ZohoSandbox` over the SQLite file ``path`` (no network; a private event-loop thread).

    Options (URI query or programmatic): ``edition``, ``users_count``, ``credits``, ``window``,
    ``concurrency`` (the tier); ``external_id_field``; ``faults`` (a :class:`FaultPlan`, or
    ``seed=..,throttle_rate=..`` text); ``clock`` (monotonic seconds, for the credit window);
    ``strict_picklists`` (``0`` stores unlisted picklist values, as older Zoho did);
    ``retry_after`` (``0``: 429s without ``details.retry_after``, as Zoho may answer)."""
    from runtime.dialects._asgi import in_process_http
    from runtime.dialects.zoho.auth import ZohoCredentials
    from runtime.dialects.zoho.client import DEFAULT_EXTERNAL_ID_FIELD, ZohoClient
    from runtime.dialects.zoho.sandbox import ZohoSandbox

    tier = _tier(options)
    ext = options.get("external_id_field", DEFAULT_EXTERNAL_ID_FIELD)
    kwargs: dict[str, Any] = {}
    if options.get("clock") is not None:
        kwargs["clock"] = options["clock"]
    sandbox = ZohoSandbox(schema, path, users=users, tier=tier, faults=parse_faults(
        options.get("faults")), external_id_field=ext,
        strict_picklists=str(options.get("strict_picklists", "1")) not in ("0", "false"),
        send_retry_after=str(options.get("retry_after", "1")).lower() not in ("0", "false"),
        **kwargs)
    http, transport = in_process_http(sandbox)
    client = ZohoClient(api_domain="http://zoho-sandbox.invalid",
                        accounts_domain="http://zoho-sandbox.invalid",
                        credentials=ZohoCredentials(access_token=sandbox.token, source="sandbox"),
                        http=http, tier=tier, schema=sandbox.schema(), external_id_field=ext,
                        name="sandbox:zoho", owns=(http, transport, sandbox),
                        clock=options.get("clock"))
    client.sandbox = sandbox  # type: ignore[attr-defined]  # tests and benchmarks inspect it
    return client


def serve_sandbox(schema: SystemSchema, path: Any, users: Any, token: str | None,
                  options: dict[str, Any]):
    """``fmap sandbox serve --dialect zoho``: the same :class:`ZohoSandbox` as ``sandbox:zoho``,
    served as an ASGI app so a connector is exercised over real HTTP. Records are stamped with
    the wall clock (a served org is a rehearsal target people inspect), unlike the in-process
    sandbox. Options (text, from the CLI): ``edition``, ``licences`` (or ``users_count``),
    ``credits``, ``window``, ``concurrency``, ``faults``, ``external_id_field``,
    ``strict_picklists``, ``retry_after`` (``0``: 429s without ``details.retry_after``)."""
    from runtime.destinations.sandbox_store import real_clock
    from runtime.dialects.base import ServedSandbox
    from runtime.dialects.zoho.client import DEFAULT_EXTERNAL_ID_FIELD
    from runtime.dialects.zoho.sandbox import ZohoSandbox

    sandbox = ZohoSandbox(schema, path, users=users, token=token, tier=_tier(options),
                          faults=parse_faults(options.get("faults")),
                          external_id_field=options.get("external_id_field")
                          or DEFAULT_EXTERNAL_ID_FIELD,
                          strict_picklists=str(options.get("strict_picklists", "1")).lower()
                          not in ("0", "false"),
                          send_retry_after=str(options.get("retry_after", "1")).lower()
                          not in ("0", "false"),
                          store_clock=real_clock)
    return ServedSandbox(app=sandbox, token=sandbox.token,
                         client_env={"ZOHO_ACCESS_TOKEN": sandbox.token}, base_path="/crm/v8",
                         target_scheme="zoho", close=sandbox.close)


def open_client(uri: str, options: dict[str, Any]):
    """``zoho://<dc>`` (``com``, ``eu``, ``in``, ``com.au``, ``jp``, ``ca``, ``sa``, ``com.cn``;
    empty = ``com``) -> the real API, TLS verified; ``zoho://127.0.0.1:PORT`` -> a loopback
    ``fmap sandbox serve`` (plain HTTP, loopback only). Credentials from ``ZOHO_*`` environment
    variables or the keyring. Options: the tier (``edition``, ``users_count``...),
    ``external_id_field``."""
    from runtime.dialects._http import split_target
    from runtime.dialects.zoho.auth import ZohoCredentials, data_centre
    from runtime.dialects.zoho.client import DEFAULT_EXTERNAL_ID_FIELD, ZohoClient

    netloc, loopback = split_target(uri)
    api, accounts = (loopback, loopback) if loopback else data_centre(netloc or "com")
    return ZohoClient(api_domain=api, accounts_domain=accounts,
                      credentials=ZohoCredentials.discover(), tier=_tier(options),
                      schema=options.get("schema"),
                      external_id_field=options.get("external_id_field",
                                                    DEFAULT_EXTERNAL_ID_FIELD))
