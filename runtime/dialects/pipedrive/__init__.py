"""Pipedrive (API v2, v1 for notes, files, leads and users)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runtime.dialects._options import OptionReader
from runtime.dialects.base import Dialect
from runtime.dialects.pipedrive import capabilities as caps
from runtime.dialects.pipedrive import naming
from runtime.dialects.pipedrive.metadata import load_pipedrive_metadata
from runtime.schema.model import SystemSchema

__all__ = ["DIALECT", "PipedriveDialect", "open_sandbox", "open_client", "serve_sandbox",
           "VirtualClock"]

class PipedriveDialect(Dialect):
    metadata_loader = staticmethod(load_pipedrive_metadata)
    naming_rules = naming


DIALECT = PipedriveDialect.from_capabilities(
    caps,
    name="pipedrive",
    label="Pipedrive",
    upsert="none",
    metadata_format="GET /api/v2/<entity>Fields (v1 /v1/<entity>Fields)",
)


# ---------------------------------------------------------------------- target hooks
class VirtualClock:
    """A shared fake clock: the sandbox's rate windows read it and the client's pacing sleeps
    advance it (``clock=virtual``: rate limits are enforced without real waiting)."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)
        self.slept += max(seconds, 0.0)


def _sent_log(options: dict[str, Any], default: Path) -> Path | None:
    """Where the client keeps what a resumed process needs to find a write whose reply was lost
    (``sentlog.py``): option ``sent_log`` (a path, or ``off``), else next to ``default``
    (``<db>.sent`` for the sandbox; ``.fmap/pipedrive-<host>.db.sent`` for the API, the
    default state directory)."""
    v = options.get("sent_log")
    if v in ("off", "none", "0"):
        return None
    return Path(v) if v else default.with_name(default.name + ".sent")


_SANDBOX_KEYS = ("plan", "seats", "daily_budget", "burst", "lockout_after", "faults",
                 "external_id_field", "clock", "max_429", "sent_log", "mapping", "scan_limit")


def _sandbox(schema: SystemSchema, path: Any, users: Any, options: dict[str, Any], **kw: Any):
    """The :class:`PipedriveSandbox` ``open_sandbox`` and ``serve_sandbox`` share, from the
    options read once here (text or typed alike; ``lockout_after=0`` is 0, not the default 6)."""
    from runtime.dialects._faults import parse_faults
    from runtime.dialects.pipedrive.sandbox import PipedriveSandbox

    read = OptionReader("pipedrive", options, _SANDBOX_KEYS)
    return PipedriveSandbox(
        schema, path, users=users, plan=read.text("plan", "growth"),
        seats=read.integer("seats", minimum=1), daily_budget=read.integer("daily_budget"),
        burst=read.integer("burst", minimum=1),
        lockout_after=read.integer("lockout_after", 6),
        faults=parse_faults(read.raw("faults")), **kw)


def open_sandbox(schema: SystemSchema, path: Any, users: Any, options: dict[str, Any]):
    """``sandbox:pipedrive``: a :class:`PipedriveClient` speaking Pipedrive's HTTP API to an
    in-process :class:`PipedriveSandbox` over the SQLite file ``path`` (no network).

    Options (URI query or programmatic): ``plan`` (lite, growth, premium, ultimate), ``seats``,
    ``daily_budget``, ``burst`` (requests per 2 s), ``lockout_after`` (429s in a row before the
    403 page); ``external_id_field``; ``faults`` (a :class:`FaultPlan` or ``seed=..,
    lost_response_rate=..`` text); ``clock``: ``virtual`` (the default: a shared fake clock, so
    the burst windows are enforced and the client's pacing advances time instead of sleeping),
    ``real`` (wall-clock waiting, as against the vendor), or a :class:`VirtualClock`;
    ``max_429`` (the client's stop threshold); ``scan_limit`` (records a restart may list to
    find a create whose reply was lost, default 20,000)."""
    from runtime.dialects._asgi import in_process_http
    from runtime.dialects.pipedrive.auth import PipedriveCredentials
    from runtime.dialects.pipedrive.client import (
        DEFAULT_EXTERNAL_ID_FIELD,
        SCAN_LIMIT,
        PipedriveClient,
    )

    clock = options.get("clock", "virtual")
    if clock == "virtual":
        clock = VirtualClock()
    elif clock == "real":
        clock = None
    elif not callable(clock):
        raise ValueError(f"pipedrive option clock={clock!r} is not virtual, real or a clock")
    timing: dict[str, Any] = {}
    if isinstance(clock, VirtualClock):
        timing = {"clock": clock, "sleep": clock.sleep}
    elif callable(clock):
        timing = {"clock": clock}
    sandbox = _sandbox(schema, path, users, options,
                       **({"clock": timing["clock"]} if timing else {}))
    read = OptionReader("pipedrive", options)  # _sandbox has refused what is unknown or bad
    http, transport = in_process_http(sandbox)
    client = PipedriveClient(
        base_url="http://pipedrive-sandbox.invalid",
        credentials=PipedriveCredentials(api_token=sandbox.token, source="sandbox"),
        http=http, schema=sandbox.schema(), plan=read.text("plan", "growth"),
        burst=read.integer("burst"),
        external_id_field=read.text("external_id_field", DEFAULT_EXTERNAL_ID_FIELD),
        max_429=read.integer("max_429", 4, minimum=1), name="sandbox:pipedrive",
        scan_limit=read.integer("scan_limit", SCAN_LIMIT, minimum=1),
        owns=(http, transport, sandbox), sent_log=_sent_log(options, Path(path)), **timing)
    client.sandbox = sandbox  # type: ignore[attr-defined]  # tests inspect it
    return client


def open_client(uri: str, options: dict[str, Any]):
    """``pipedrive://<company>.pipedrive.com`` -> the real API (TLS verified). Credentials from
    ``PIPEDRIVE_API_TOKEN`` (``x-api-token``) or ``PIPEDRIVE_ACCESS_TOKEN`` (OAuth bearer).
    ``pipedrive://127.0.0.1:PORT``: a loopback ``fmap sandbox serve --dialect pipedrive``.
    Options: ``plan``, ``seats`` or ``daily_budget`` (the client stops before overdrawing it),
    ``burst`` (requests per 2 s, when the token's limit differs from the plan's),
    ``sent_log`` (path or ``off``),
    ``external_id_field``, ``currency`` (of monetary custom fields), ``max_429``, ``scan_limit``
    (records a restart may list to find a create whose reply was lost)."""
    from runtime.dialects._http import split_target
    from runtime.dialects.pipedrive.auth import PipedriveCredentials, company_base_url
    from runtime.dialects.pipedrive.client import (
        DEFAULT_EXTERNAL_ID_FIELD,
        SCAN_LIMIT,
        PipedriveClient,
    )

    netloc, loopback = split_target(uri)
    base = loopback or company_base_url(netloc)
    read = OptionReader("pipedrive", options)
    return PipedriveClient(
        base_url=base, credentials=PipedriveCredentials.from_env(),
        schema=options.get("schema"), plan=str(options.get("plan", "growth")),
        seats=read.integer("seats", minimum=1), daily_budget=read.integer("daily_budget"),
        burst=read.integer("burst", minimum=1),
        external_id_field=options.get("external_id_field", DEFAULT_EXTERNAL_ID_FIELD),
        currency=str(options.get("currency", "USD")), max_429=read.integer("max_429", 4, minimum=1),
        scan_limit=read.integer("scan_limit", SCAN_LIMIT, minimum=1),
        sent_log=_sent_log(options, Path(".fmap") / f"pipedrive-{netloc or 'api'}.db"))


def serve_sandbox(schema: SystemSchema, path: Any, users: Any, token: str | None,
                  options: dict[str, Any]):
    """``fmap sandbox serve --dialect pipedrive``: the same :class:`PipedriveSandbox` as
    ``sandbox:pipedrive`` as an ASGI app, on the wall clock (its burst windows and daily ledger
    run in real time), demanding ``x-api-token: <token>`` (or ``Authorization: Bearer``).

    Options (text): ``plan``, ``seats``, ``daily_budget``, ``burst``, ``lockout_after``,
    ``faults``, ``external_id_field`` (the name clients look the external id up by; the field
    itself is created by ``fmap schema apply``), and ``mapping``: a ``.fmap`` whose custom
    fields Pipedrive's API cannot create (activity fields) exist from the start, as an admin
    would have added them in Settings > Data fields. The client reads the token from
    ``PIPEDRIVE_API_TOKEN``."""
    from runtime.dialects.base import ServedSandbox

    if options.get("mapping"):
        schema = _with_admin_fields(schema, Path(str(options["mapping"])))
    sandbox = _sandbox(schema, path, users, options, token=token)
    return ServedSandbox(app=sandbox, token=sandbox.token,
                         client_env={"PIPEDRIVE_API_TOKEN": sandbox.token}, base_path="/api/v2",
                         target_scheme="pipedrive", close=sandbox.close)


def _with_admin_fields(schema: SystemSchema, mapping: Path) -> SystemSchema:
    """``schema`` plus the mapping's fields on objects whose fields the API cannot create."""
    import tempfile

    from compiler.compile import compile_path
    from runtime.executor import load_compiled
    from runtime.schema.changes import apply_changes

    if not mapping.is_file():
        raise ValueError(f"mapping={mapping}: no such file")
    result = compile_path(mapping)
    if not result.ok:
        raise ValueError(f"mapping={mapping} does not compile: "
                         + "; ".join(d.message for d in result.diagnostics[:3]))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "admin_fields.py"
        out.write_text(result.python, "utf-8")
        module = load_compiled(out, name="fmap_pipedrive_admin_fields")
    changes = [dict(c) if not hasattr(c, "model_dump") else c.model_dump()
               for c in module.PLAN.schema_changes]
    admin = [c for c in changes if c.get("action") == "create_field"
             and c.get("object") == "Activity"]
    return apply_changes(schema, admin, DIALECT) if admin else schema
