"""`fmap schema`: org snapshots and custom schema changes, for every CRM dialect.

    fmap schema pull zoho://eu --object Contacts --object Leads -o snapshot.json
    fmap schema pull salesforce://login -m Account -o snapshot.json
    fmap schema apply mapping.fmap --target zoho://eu            # dry run: prints the changes
    fmap schema apply mapping.fmap --target zoho://eu --apply    # creates modules and fields
    fmap schema apply mapping.fmap --target salesforce://login --emit package deploy/

The target names the dialect (``zoho://...``, ``sandbox:pipedrive``...). ``pull`` saves the
client's ``metadata_bundle`` verbatim after checking that the dialect's ``load_metadata`` reads it.
``apply`` compares the mapping's ``create module`` / ``extend`` blocks with the org and has the
client's ``apply_schema_changes`` create what is missing, objects first; a CRM whose schema goes
through an admin deployment instead emits that package (``--emit package DIR``). The contract
these rely on is in :mod:`runtime.dialects.base`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["app", "pending_changes", "target_dialect"]

app = typer.Typer(name="schema", help="Org snapshots and custom schema changes.",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code=code)


def target_dialect(target: str):
    """The dialect a target URI speaks (``sandbox:<d>``, ``<d>://...``), or None (``jsonl:``).
    Raises :class:`runtime.dialects.UnknownDialect`."""
    from runtime.dialects import get_dialect

    scheme, _, rest = target.partition(":")
    rest = rest.partition("?")[0]
    if scheme == "sandbox":
        return get_dialect(rest)
    if rest.startswith("//"):
        return get_dialect(scheme)
    return None


def _dialect_of(target: str):
    from runtime.dialects import UnknownDialect

    try:
        d = target_dialect(target)
    except UnknownDialect as exc:
        raise _fail(f"target {target}: {exc}", 2) from None
    if d is None:
        raise _fail(f"{target}: not a CRM target (use <dialect>://... or sandbox:<dialect>); "
                    "it has no metadata to pull or schema to change", 2)
    return d


def _open(target: str, needs: tuple[str, ...]):
    from runtime.destinations.base import DestinationError
    from runtime.targets import TargetError, open_target

    try:
        dest = open_target(target)
    except (TargetError, ValueError) as exc:
        raise _fail(f"target error: {exc}", 2) from None
    except DestinationError as exc:  # e.g. no credentials for a real API
        raise _fail(f"target error: {exc}", 1) from None
    missing = [m for m in needs if not callable(getattr(dest, m, None))]
    if missing:
        dest.close()
        raise _fail(f"{target}: this connector has no {' / '.join(missing)} yet, so fmap schema "
                    "cannot use it", 2)
    return dest


def _load(dialect, bundle: Any, source: str):
    from runtime.schema.io import SchemaLoadError

    try:
        return dialect.load_metadata(bundle, source_name=source)
    except SchemaLoadError as exc:
        raise _fail(f"the org's metadata does not load: {exc}", 1) from None


@app.command()
def pull(
    target: Annotated[str, typer.Argument(help="zoho://<dc>, salesforce://..., sandbox:<dialect>")],
    objects: Annotated[list[str], typer.Option(
        "--object", "--module", "-m", help="object/module to snapshot (repeatable)")],
    output: Annotated[Path, typer.Option("-o", "--output", help="snapshot file")] = Path(
        "snapshot.json"),
) -> None:
    """Snapshot objects (fields, required flags, picklists) of an org in the vendor's format."""
    from runtime.destinations.base import DestinationError

    dialect = _dialect_of(target)
    dest = _open(target, ("metadata_bundle",))
    try:
        bundle = dest.metadata_bundle(list(objects))
    except DestinationError as exc:
        raise _fail(f"schema pull failed: {exc}", 1) from None
    finally:
        dest.close()
    schema = _load(dialect, bundle, str(output))
    # objects the vendor's API gives no field metadata for (Pipedrive files): said
    # so, not reported as absent from the org
    no_metadata = set(bundle.get("no_field_metadata") or ()) if isinstance(bundle, dict) else set()
    for name in sorted(no_metadata & set(objects)):
        typer.echo(f"note: {dialect.label}'s API has no field metadata for {name}; "
                   "its fields are not in the snapshot", err=True)
    missing = [o for o in objects if not _fields(schema, o) and o not in no_metadata]
    if missing:
        raise _fail(f"{target}: the org has no {', '.join(missing)} "
                    f"({dialect.label} object names are case-sensitive)", 1)
    try:
        output.write_text(json.dumps(bundle, indent=1, sort_keys=True) + "\n", "utf-8")
    except OSError as exc:
        raise _fail(f"cannot write {output}: {exc.strerror or exc}", 1) from None
    n = sum(len(_fields(schema, o)) for o in dict.fromkeys(objects))
    typer.echo(f"wrote {output}: {len(set(objects))} object(s), {n} field(s)")


def _fields(schema, name: str) -> set[str]:
    obj = schema.object(name)
    return {f.api_name for f in obj.fields} if obj is not None else set()


def pending_changes(changes: list[dict[str, Any]], modules: set[str],
                    fields: dict[str, set[str]]) -> list[dict[str, Any]]:
    """The schema changes the org does not have yet (modules first, then their fields)."""
    out = [c for c in changes if c["action"] == "create_module" and c["object"] not in modules]
    out += [c for c in changes if c["action"] == "create_field"
            and c["field"] not in fields.get(c["object"], set())]
    return out


def _describe(c: dict[str, Any]) -> str:
    if c["action"] == "create_module":
        return f"+ module {c['object']}"
    flags = [k for k in ("required", "unique", "external_id") if (c.get("details") or {}).get(k)]
    return f"+ field  {c['object']}.{c['field']} {c.get('type') or 'text'}" + (
        f" [{', '.join(flags)}]" if flags else "")


def _org_state(dest, dialect, changes: list[dict[str, Any]],
               also: Iterable[str] = ()) -> dict[str, set[str]]:
    """The fields of each object ``changes`` touch (and of the objects ``also`` names) that the
    org has (absent: the org lacks it).

    A dialect may refuse a bundle naming an object the org lacks (the contract leaves that
    open). Then the org's users are read first (every destination can, cheaply), so a bad token
    or a dead host still fails here, and each object is asked for alone; a refusal counts as "missing" only for an object the mapping
    creates (one it only extends must exist, so that refusal is an error)."""
    from runtime.destinations.base import FatalError

    objects = sorted({c["object"] for c in changes} | set(also))
    created = {c["object"] for c in changes if c["action"] == "create_module"}
    try:
        bundles = [dest.metadata_bundle(objects)]
    except FatalError:
        if not set(objects) & created:
            raise
        dest.list_users()
        bundles = []
        for o in objects:
            try:
                bundles.append(dest.metadata_bundle([o]))
            except FatalError:
                if o not in created:
                    raise
    have: dict[str, set[str]] = {}
    for bundle in bundles:
        schema = _load(dialect, bundle, f"{dialect.name} org")
        for o in objects:
            if fields := _fields(schema, o):
                have[o] = fields
    return have


def _loaded_objects(plan) -> list[str]:
    """The objects a plan's steps write records into (files and attachments aside)."""
    from runtime.executor import ATTACHMENT_OBJECTS

    return sorted({st.target for st in plan.steps} - ATTACHMENT_OBJECTS)


@app.command()
def apply(
    file: Annotated[Path, typer.Argument(help="the .fmap file")],
    target: Annotated[str, typer.Option(
        "--target", help="zoho://<dc>, salesforce://..., sandbox:<dialect>, zoho://127.0.0.1:PORT")],
    do_apply: Annotated[bool, typer.Option("--apply", help="create them (default: dry run)")] = False,
    emit: Annotated[tuple[str, Path] | None, typer.Option(
        "--emit", metavar="package DIR",
        help="write the changes as a deployment package for the admin instead")] = None,
) -> None:
    """Create the custom objects and fields a mapping declares (dry run unless --apply)."""
    from rich.console import Console

    from fmap.runcmd import compile_for_run
    from runtime.destinations.base import DestinationError
    from runtime.dialects import UnsupportedByDialect
    from runtime.targets import _dialect_hook

    dialect = _dialect_of(target)
    emitter = None
    if emit is not None:
        kind, _ = emit
        if kind != "package":
            raise _fail(f"--emit {kind}: the only kind is 'package' (--emit package DIR)", 2)
        if do_apply:
            raise _fail("--emit package writes the changes for an admin to deploy; it cannot be "
                        "combined with --apply", 2)
        emitter = _dialect_hook(dialect.name, "emit_schema_package")
        if emitter is None:
            raise _fail(f"{dialect.label} creates custom objects and fields through its API; "
                        "there is no package to emit (use --apply)", 2)
    console = Console(stderr=True)
    module, _ = compile_for_run(file, Path(".fmap") / "build", console)
    changes = [dict(c) if not hasattr(c, "model_dump") else c.model_dump()
               for c in module.PLAN.schema_changes]
    # a package also carries the connector's external-id field for every object the mapping
    # loads into (it upserts by it), including objects the mapping declares nothing on
    loaded = _loaded_objects(module.PLAN) if emitter is not None else []
    if not changes and not loaded:
        typer.echo("the mapping declares no custom objects or fields")
        return
    dest = _open(target, ("metadata_bundle",) if emitter else
                 ("metadata_bundle", "apply_schema_changes"))
    try:
        have = _org_state(dest, dialect, changes, loaded)
        todo = pending_changes(changes, set(have), have)
        ext_field = getattr(dest, "external_id_field", None) if emitter is not None else None
        ext_objects = [o for o in loaded if ext_field and o in have and ext_field not in have[o]]
        if not todo and not ext_objects:
            typer.echo("the org already has every module and field the mapping declares")
            return
        for c in todo:
            typer.echo(_describe(c))
        for o in ext_objects:
            typer.echo(_describe({"action": "create_field", "object": o, "field": ext_field,
                                  "type": "text(255)",
                                  "details": {"unique": True, "external_id": True}})
                       + " (fmap's external id)")
        if emitter is not None:
            try:
                # the client's field name (external_id_field= on the target URI), the one
                # ext_objects were checked for
                written = emitter(todo, emit[1], external_id_objects=ext_objects,
                                  **({"external_id_field": ext_field} if ext_field else {}))
            except UnsupportedByDialect as exc:  # the dialect's package error: bad names/types
                raise _fail(f"{dialect.label}: {exc.what}\nnothing was written; fix these in "
                            "the mapping's create/extend blocks and emit again", 2) from None
            for p in written:
                typer.echo(f"wrote {p}")
            n = len(todo) + len(ext_objects)
            typer.echo(f"{n} change(s) in the package; an admin deploys it "
                       f"(then run fmap schema apply again to check)")
            return
        if not do_apply:
            typer.echo(f"{len(todo)} change(s); dry run (add --apply to make them)")
            return
        results = dest.apply_schema_changes(todo)
        failed = [r for r in results if r.get("status") != "created"]
        for r in failed:
            where = r["object"] + (f".{r['field']}" if r.get("field") else "")
            typer.echo(f"! {where}: {r.get('message') or r.get('status')}", err=True)
        typer.echo(f"applied {len(results) - len(failed)} change(s)"
                   + (f", {len(failed)} failed" if failed else ""))
        if failed or len(results) != len(todo):
            raise typer.Exit(code=1)
    except UnsupportedByDialect as exc:
        hint = ("write the changes as a package for the admin with --emit package DIR"
                if _dialect_hook(dialect.name, "emit_schema_package") is not None else
                f"an admin must make this change in {dialect.label}'s settings, or the mapping "
                "must do without it")
        raise _fail(f"{dialect.label} cannot do this through its API: {exc.what}\n{hint}",
                    2) from None
    except DestinationError as exc:
        raise _fail(f"schema apply failed: {exc}", 1) from None
    except OSError as exc:  # the package directory
        raise _fail(f"cannot write the package: {exc.strerror or exc}", 1) from None
    finally:
        dest.close()


@app.command("infer")
def infer(
    paths: Annotated[list[Path], typer.Argument(help="sample CSV/JSON/JSONL files or directories")],
    system: Annotated[str, typer.Option("--system", help="source system name")] = "source",
    output: Annotated[Path | None, typer.Option("-o", "--output", help="write the schema here (.yaml/.json)")] = None,
    sample_rows: Annotated[int, typer.Option(help="records read per file")] = 1000,
) -> None:
    """Infer a source schema (types, nullability, enums, lengths, nested arrays) from samples."""
    from runtime.schema.infer import infer_schema
    from runtime.schema.io import SchemaLoadError, dump_schema, save_schema

    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files.extend(sorted(f for f in p.iterdir()
                                if f.suffix.lower() in (".csv", ".json", ".jsonl", ".ndjson")))
        elif p.exists():
            files.append(p)
        else:
            typer.echo(f"no such file: {p}", err=True)
            raise typer.Exit(code=2)
    if not files:
        typer.echo("no CSV/JSON/JSONL files to read", err=True)
        raise typer.Exit(code=2)
    warnings: list = []
    try:
        schema = infer_schema(files, system, sample_rows=sample_rows, warnings=warnings)
    except SchemaLoadError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=1) from None
    for w in warnings:
        typer.echo(f"warning: {w.source} {w.json_path}: {w.message}", err=True)
    if output is None:
        typer.echo(dump_schema(schema, fmt="yaml"), nl=False)
    else:
        save_schema(schema, output)
        typer.echo(f"wrote {output} ({len(schema.objects)} object(s))", err=True)
