"""`fmap sandbox`: run a CRM dialect's emulator on loopback (a consultant's rehearsal target, and
how the end-to-end tests exercise the connectors over real HTTP).

    fmap sandbox serve --dialect zoho --port 8765 [--host 127.0.0.1] [--db FILE]

The sandbox accepts only ``Authorization: Zoho-oauthtoken <token>``; the token is taken from
``FMAP_SANDBOX_TOKEN`` or generated, and printed once on start as ``ZOHO_ACCESS_TOKEN=...`` so a
client (``fmap run --target zoho://127.0.0.1:8765``) can be pointed at it. Binding anything but
loopback needs ``--allow-remote`` (the sandbox holds migration data and speaks plain HTTP).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["app"]

app = typer.Typer(name="sandbox", help="Local CRM emulators (loopback HTTP).", no_args_is_help=True,
                  pretty_exceptions_show_locals=False)

TOKEN_ENV = "FMAP_SANDBOX_TOKEN"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@app.command()
def serve(
    dialect: Annotated[str, typer.Option(help="CRM dialect to emulate")] = "zoho",
    port: Annotated[int, typer.Option(help="TCP port (0: any free port)")] = 8765,
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    db: Annotated[Path, typer.Option(help="SQLite file holding the sandbox org")] = Path(
        ".fmap/sandbox-zoho-served.sqlite"),
    users: Annotated[Path | None, typer.Option(help="JSON list of {id, email, name} users")] = None,
    edition: Annotated[str, typer.Option(help="edition whose credit/concurrency limits apply")] = "professional",
    licences: Annotated[int, typer.Option(help="licensed users (credits scale with them)")] = 10,
    credits: Annotated[float | None, typer.Option(help="override the credit limit")] = None,
    window: Annotated[float, typer.Option(help="credit window in seconds")] = 86400.0,
    faults: Annotated[str | None, typer.Option(
        help="fault plan, e.g. seed=1,throttle_rate=0.05,lost_response_rate=0.02")] = None,
    external_id_field: Annotated[str, typer.Option(help="field holding the external id")] = "Source_System_ID",
    allow_remote: Annotated[bool, typer.Option(help="allow binding a non-loopback address")] = False,
) -> None:
    """Serve a dialect's sandbox over HTTP until interrupted."""
    import uvicorn

    from runtime.destinations.sandbox_store import real_clock
    from runtime.dialects import UnknownDialect, get_dialect
    from runtime.targets import TargetError, sandbox_users

    try:
        d = get_dialect(dialect)
    except UnknownDialect as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=2) from None
    if d.name != "zoho":
        typer.echo(f"no HTTP sandbox for {d.name} yet (zoho only)", err=True)
        raise typer.Exit(code=2)
    if host not in _LOOPBACK and not allow_remote:
        typer.echo(f"refusing to bind {host}: the sandbox speaks plain HTTP; use 127.0.0.1 or "
                   "--allow-remote", err=True)
        raise typer.Exit(code=2)
    from runtime.dialects.zoho import parse_faults
    from runtime.dialects.zoho.ratelimit import Tier
    from runtime.dialects.zoho.sandbox import ZohoSandbox

    try:
        user_list = sandbox_users(users) if users is not None else None
    except TargetError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=2) from None
    db.parent.mkdir(parents=True, exist_ok=True)
    token = os.environ.get(TOKEN_ENV) or None
    sandbox = ZohoSandbox(d.standard_schema(), db, users=user_list, token=token,
                          tier=Tier(edition=edition, users=licences, credits=credits,
                                    window_seconds=window),
                          faults=parse_faults(faults), external_id_field=external_id_field,
                          store_clock=real_clock)
    if token is None:
        typer.echo(f"ZOHO_ACCESS_TOKEN={sandbox.token}")
    typer.echo(f"zoho sandbox on http://{host}:{port}/crm/v8 (db {db})", err=True)
    try:
        uvicorn.run(sandbox, host=host, port=port, log_level="warning", access_log=False,
                    lifespan="on")
    finally:
        sandbox.close()
