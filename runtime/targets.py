"""Target URIs -> destinations.

- ``sandbox:<dialect>``: the in-process sandbox of a CRM dialect (the generic store with the
  dialect's standard schema, the mapping's schema changes applied, and the dialect's batch size and
  limits), persisted under the state directory so `run`, `reconcile` and `rollback` see one org.
  Query options: ``users=<json file>`` seeds the org's users (a list of {id, email, name});
  ``db=<path>`` picks the sandbox file.
- ``jsonl:<dir>``: write records to JSONL files (dry runs, inspection).
- ``<dialect>://...``: the dialect's real API client (credentials from the environment).

A dialect folder plugs in by defining, in its package (``runtime/dialects/<name>/__init__.py``):
``open_sandbox(schema, path, users, options) -> Destination`` (its vendor-API sandbox in front of
the generic store, spoken to over an in-process ASGI transport) and
``open_client(uri, options) -> Destination``. Without ``open_sandbox`` the generic store is used
directly with the dialect's capabilities.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qsl

from runtime.destinations import Destination, DestinationCapabilities, RateLimit, User
from runtime.schema.changes import apply_changes

__all__ = ["open_target", "TargetError", "sandbox_users"]


class TargetError(ValueError):
    """A target URI that cannot be opened (the message says which part is wrong)."""


def sandbox_users(path: str | Path | None) -> list[User]:
    if path is None:
        return [User("sandbox-admin", "admin@example.com", "Sandbox Admin")]
    try:
        data = json.loads(Path(path).read_text("utf-8"))
        return [User(str(u["id"]), str(u["email"]), str(u.get("name", "")),
                     bool(u.get("active", True))) for u in data]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TargetError(f"cannot read users file {path}: {exc}") from None


def _capabilities(dialect) -> DestinationCapabilities:
    return DestinationCapabilities(
        name=f"sandbox:{dialect.name}",
        batch_size=dialect.batch_size,
        native_upsert=dialect.upsert == "native",
        attachment_limit_bytes=dialect.attachment_limit_bytes,
        rate_limit=RateLimit(),
    )


def open_target(uri: str, *, schema_changes: list[dict] | None = None,
                state_dir: Path = Path(".fmap")) -> Destination:
    scheme, _, rest = uri.partition(":")
    rest, _, query = rest.partition("?")
    opts = dict(parse_qsl(query))
    if scheme == "sandbox":
        from runtime.destinations.sandbox_store import SandboxStore
        from runtime.dialects import UnknownDialect, get_dialect

        try:
            dialect = get_dialect(rest)
        except UnknownDialect as exc:
            raise TargetError(str(exc)) from None
        schema = apply_changes(dialect.standard_schema(), schema_changes or [], dialect)
        db = Path(opts.get("db") or state_dir / f"sandbox-{dialect.name}.sqlite")
        db.parent.mkdir(parents=True, exist_ok=True)
        users = sandbox_users(opts.get("users"))
        hook = _dialect_hook(dialect.name, "open_sandbox")
        if hook is not None and opts.get("generic") != "1":
            return hook(schema, db, users, opts)
        return SandboxStore(schema, db, capabilities=_capabilities(dialect), users=users)
    if scheme == "jsonl":
        from runtime.destinations.jsonl import JsonlDestination

        return JsonlDestination(Path(rest), users=sandbox_users(opts.get("users")))
    if rest.startswith("//"):
        hook = _dialect_hook(scheme, "open_client")
        if hook is not None:
            return hook(uri, opts)
        raise TargetError(f"no API client for {scheme!r} yet")
    raise TargetError(f"unknown target {uri!r}: use sandbox:<dialect>, <dialect>://... or jsonl:<dir>")


def _dialect_hook(name: str, attr: str):
    import importlib

    try:
        package = importlib.import_module(f"runtime.dialects.{name}")
    except ImportError:
        return None
    return getattr(package, attr, None)
