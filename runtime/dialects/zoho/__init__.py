"""Zoho CRM (API v8)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runtime.dialects._faults import parse_faults  # re-exported: tests and scripts import it here
from runtime.dialects._options import OptionReader
from runtime.dialects.base import Dialect
from runtime.dialects.zoho import capabilities as caps
from runtime.dialects.zoho import naming
from runtime.dialects.zoho.metadata import load_zoho_metadata
from runtime.schema.model import SystemSchema

__all__ = ["DIALECT", "ZohoDialect", "open_sandbox", "open_client", "serve_sandbox",
           "parse_faults", "sandbox_options", "SandboxOptions"]


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
_TIER_KEYS = ("edition", "users_count", "licences", "credits", "window", "concurrency")
_SANDBOX_KEYS = (*_TIER_KEYS, "external_id_field", "faults", "clock", "strict_picklists",
                 "retry_after")


def _tier(read: OptionReader):
    """The tier from the options; a bad value raises :class:`ValueError` naming the option, so
    the CLI can say which flag is wrong instead of printing a traceback."""
    from runtime.dialects.zoho.ratelimit import WINDOW_SECONDS, Tier, credits_for

    tier = Tier(edition=read.text("edition", "professional"),
                users=read.integer("users_count", read.integer("licences", 10)),
                credits=read.number("credits"),
                window_seconds=read.number("window", WINDOW_SECONDS, positive=True),
                concurrency=read.integer("concurrency"))
    credits_for(tier.edition, tier.users)  # an unknown edition fails here, by name
    return tier


@dataclass(frozen=True)
class SandboxOptions:
    """What both sandbox hooks build a :class:`ZohoSandbox` from."""

    tier: Any
    external_id_field: str
    faults: Any
    clock: Any  # monotonic seconds for the credit window, or None (the sandbox's own)
    strict_picklists: bool  # False: store unlisted picklist values, as older Zoho did
    send_retry_after: bool  # False: 429s without details.retry_after, as Zoho may answer


def sandbox_options(options: dict[str, Any]) -> SandboxOptions:
    """``options`` (text from the CLI or a URI query, or typed values from code) read once for
    ``open_sandbox`` and ``serve_sandbox`` alike; raises :class:`ValueError` naming a bad or
    unknown option."""
    from runtime.dialects.zoho.client import DEFAULT_EXTERNAL_ID_FIELD

    read = OptionReader("zoho", options, _SANDBOX_KEYS)
    return SandboxOptions(tier=_tier(read),
                          external_id_field=read.text("external_id_field",
                                                      DEFAULT_EXTERNAL_ID_FIELD),
                          faults=parse_faults(read.raw("faults")), clock=read.function("clock"),
                          strict_picklists=read.flag("strict_picklists", True),
                          send_retry_after=read.flag("retry_after", True))


def open_sandbox(schema: SystemSchema, path: Any, users: Any, options: dict[str, Any]):
    """``sandbox:zoho``: a :class:`ZohoClient` speaking Zoho's HTTP API to an in-process
    :class:`ZohoSandbox` over the SQLite file ``path`` (no network; a private event-loop thread).

    Options (URI query or programmatic): ``edition``, ``users_count`` (or ``licences``),
    ``credits``, ``window``, ``concurrency`` (the tier); ``external_id_field``; ``faults`` (a
    :class:`FaultPlan`, or ``seed=..,throttle_rate=..`` text); ``clock`` (monotonic seconds, for
    the credit window); ``strict_picklists`` (``0``: store unlisted picklist values, as older
    Zoho did); ``retry_after`` (``0``: 429s without ``details.retry_after``, as Zoho may
    answer)."""
    from runtime.dialects._asgi import in_process_http
    from runtime.dialects.zoho.auth import ZohoCredentials
    from runtime.dialects.zoho.client import ZohoClient
    from runtime.dialects.zoho.sandbox import ZohoSandbox

    opts = sandbox_options(options)
    kwargs: dict[str, Any] = {} if opts.clock is None else {"clock": opts.clock}
    sandbox = ZohoSandbox(schema, path, users=users, tier=opts.tier, faults=opts.faults,
                          external_id_field=opts.external_id_field,
                          strict_picklists=opts.strict_picklists,
                          send_retry_after=opts.send_retry_after, **kwargs)
    http, transport = in_process_http(sandbox)
    client = ZohoClient(api_domain="http://zoho-sandbox.invalid",
                        accounts_domain="http://zoho-sandbox.invalid",
                        credentials=ZohoCredentials(access_token=sandbox.token, source="sandbox"),
                        http=http, tier=opts.tier, schema=sandbox.schema(),
                        external_id_field=opts.external_id_field, name="sandbox:zoho",
                        owns=(http, transport, sandbox), clock=opts.clock)
    client.sandbox = sandbox  # type: ignore[attr-defined]  # tests and benchmarks inspect it
    return client


def serve_sandbox(schema: SystemSchema, path: Any, users: Any, token: str | None,
                  options: dict[str, Any]):
    """``fmap sandbox serve --dialect zoho``: the same :class:`ZohoSandbox` as ``sandbox:zoho``,
    from the same options (:func:`sandbox_options`), served as an ASGI app so a connector is
    exercised over real HTTP. Records are stamped with the wall clock (a served org is a
    rehearsal target people inspect), unlike the in-process sandbox."""
    from runtime.destinations.sandbox_store import real_clock
    from runtime.dialects.base import ServedSandbox
    from runtime.dialects.zoho.sandbox import ZohoSandbox

    opts = sandbox_options(options)
    kwargs: dict[str, Any] = {} if opts.clock is None else {"clock": opts.clock}
    sandbox = ZohoSandbox(schema, path, users=users, token=token, tier=opts.tier,
                          faults=opts.faults, external_id_field=opts.external_id_field,
                          strict_picklists=opts.strict_picklists,
                          send_retry_after=opts.send_retry_after, store_clock=real_clock,
                          **kwargs)
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
                      credentials=ZohoCredentials.discover(),
                      tier=_tier(OptionReader("zoho", options)),
                      schema=options.get("schema"),
                      external_id_field=options.get("external_id_field",
                                                    DEFAULT_EXTERNAL_ID_FIELD))
