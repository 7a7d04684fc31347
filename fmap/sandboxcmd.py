"""`fmap sandbox`: run a CRM dialect's emulator on loopback (a consultant's rehearsal target, and
how the end-to-end tests exercise the connectors over real HTTP).

    fmap sandbox serve --dialect zoho --port 8765 [--host 127.0.0.1] [--db FILE]
    fmap sandbox serve --dialect salesforce --port 0 --option edition=enterprise

The command is the same for every CRM: the dialect's ``serve_sandbox`` hook (see
:mod:`runtime.dialects.base`) builds the ASGI app, this module binds and serves it. The app
accepts only the dialect's own authorisation header carrying the sandbox token; the token is
taken from ``FMAP_SANDBOX_TOKEN`` or generated. The environment lines a client needs go to stdout
once: the token-bearing one (``ZOHO_ACCESS_TOKEN=...``) only for a generated token, the others
(Freshsales' ``FRESHSALES_FIELD_TYPE_CODES=...``) always. The target to use (``fmap run
--target zoho://127.0.0.1:PORT``) goes to stderr with the real port, so ``--port 0`` works.
Binding anything but loopback needs ``--allow-remote`` (the sandbox holds migration data and
speaks plain HTTP).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["app", "parse_options", "client_env_lines"]

app = typer.Typer(name="sandbox", help="Local CRM emulators (loopback HTTP).", no_args_is_help=True,
                  pretty_exceptions_show_locals=False)

TOKEN_ENV = "FMAP_SANDBOX_TOKEN"


def parse_options(pairs: list[str]) -> dict[str, str]:
    """``--option KEY=VALUE`` pairs as the hook's text options (later ones win)."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--option {pair!r}: expected KEY=VALUE")
        out[key.strip().replace("-", "_")] = value.strip()
    return out


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code=code)


def _bind(host: str, port: int) -> socket.socket:
    """Bind before serving so ``--port 0`` can report the port the OS chose."""
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise _fail(f"cannot resolve {host!r}: {exc.strerror}") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
    except OSError as exc:
        sock.close()
        raise _fail(f"cannot bind {host}:{port}: {exc.strerror or exc}", 1) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


@app.command()
def serve(
    dialect: Annotated[str, typer.Option(help="CRM dialect to emulate")] = "zoho",
    port: Annotated[int, typer.Option(help="TCP port (0: any free port, printed on start)")] = 8765,
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    db: Annotated[Path | None, typer.Option(
        help="SQLite file holding the sandbox org [default: .fmap/sandbox-<dialect>-served.sqlite]"
    )] = None,
    users: Annotated[Path | None, typer.Option(help="JSON list of {id, email, name} users")] = None,
    faults: Annotated[str | None, typer.Option(
        help="fault plan, e.g. seed=1,throttle_rate=0.05,lost_response_rate=0.02")] = None,
    external_id_field: Annotated[str | None, typer.Option(
        help="field holding the external id [default: the dialect's]")] = None,
    option: Annotated[list[str] | None, typer.Option(
        "--option", help="dialect limit option KEY=VALUE (repeatable), e.g. plan=growth")] = None,
    edition: Annotated[str | None, typer.Option(
        help="zoho: edition whose credit/concurrency limits apply [professional]")] = None,
    licences: Annotated[int | None, typer.Option(
        help="zoho: licensed users (credits scale with them) [10]")] = None,
    credits: Annotated[float | None, typer.Option(help="zoho: override the credit limit")] = None,
    window: Annotated[float | None, typer.Option(
        help="zoho: credit window in seconds [86400]")] = None,
    allow_remote: Annotated[bool, typer.Option(help="allow binding a non-loopback address")] = False,
) -> None:
    """Serve a dialect's sandbox over HTTP until interrupted."""
    from runtime.dialects import UnknownDialect, get_dialect
    from runtime.dialects._http import LOOPBACK_HOSTS
    from runtime.targets import TargetError, _dialect_hook, sandbox_users

    try:
        d = get_dialect(dialect)
    except UnknownDialect as exc:
        raise _fail(str(exc)) from None
    hook = _dialect_hook(d.name, "serve_sandbox")
    if hook is None:
        raise _fail(f"{d.name} has no HTTP sandbox (its dialect defines no serve_sandbox); "
                    f"use --target sandbox:{d.name} for an in-process one")
    if host not in LOOPBACK_HOSTS and not allow_remote:
        raise _fail(f"refusing to bind {host}: the sandbox speaks plain HTTP; use 127.0.0.1 or "
                    "--allow-remote")
    try:
        options: dict[str, Any] = parse_options(option or [])
    except ValueError as exc:
        raise _fail(str(exc)) from None
    for key, value in (("faults", faults), ("external_id_field", external_id_field),
                       ("edition", edition), ("licences", licences), ("credits", credits),
                       ("window", window)):
        if value is not None:
            options[key] = str(value)
    try:
        user_list = sandbox_users(users) if users is not None else None
    except TargetError as exc:
        raise _fail(str(exc)) from None
    db = db or Path(".fmap") / f"sandbox-{d.name}-served.sqlite"
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _fail(f"cannot create {db.parent}: {exc.strerror or exc}") from None
    token = os.environ.get(TOKEN_ENV) or None
    try:
        served = hook(d.standard_schema(), db, user_list, token, options)
    except (ValueError, TypeError) as exc:  # a bad option value, named by the dialect
        raise _fail(f"{d.name} sandbox: {exc}") from None
    try:
        sock = _bind(host, port)
        _serve(served, sock, d.name, host, db, print_env=token is None)
    finally:
        if served.close is not None:
            served.close()


def client_env_lines(served: Any, *, print_token: bool) -> list[tuple[str, str]]:
    """The ``client_env`` entries to print: the ones without the token always (e.g. Freshsales'
    ``FRESHSALES_FIELD_TYPE_CODES``), the token-bearing ones only when the sandbox generated the
    token (its own throwaway one; a token the user set in ``FMAP_SANDBOX_TOKEN`` is never
    echoed)."""
    token = served.token or ""
    return [(k, v) for k, v in served.client_env.items()
            if print_token or not token or token not in str(v)]


def _serve(served: Any, sock: socket.socket, name: str, host: str, db: Path, *,
           print_env: bool) -> None:
    """Bind ``served.app`` to ``sock`` until interrupted; ``print_env``: the token was generated
    here, so its client_env line is printed too."""
    import uvicorn

    bound = sock.getsockname()[1]
    netloc = f"[{host}]:{bound}" if ":" in host else f"{host}:{bound}"
    for key, value in client_env_lines(served, print_token=print_env):
        typer.echo(f"{key}={value}")
    typer.echo(f"{name} sandbox on http://{netloc}{served.base_path} (db {db})", err=True)
    typer.echo(f"target: {served.target_scheme}://{netloc}", err=True)
    config = uvicorn.Config(served.app, log_level="warning", access_log=False, lifespan="auto")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
