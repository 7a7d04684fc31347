"""`fmap schema`: org snapshots and custom schema changes.

    fmap schema pull zoho://eu --module Contacts --module Leads -o snapshot.json
    fmap schema apply mapping.fmap --target zoho://eu            # dry run: prints the changes
    fmap schema apply mapping.fmap --target zoho://eu --apply    # creates modules and fields

``pull`` writes the bundle the dialect's metadata loader reads (``{"modules", "objects": {name:
{"fields", "layouts"}}}``) after checking that it loads. ``apply`` compares the mapping's
``create module`` / ``extend`` blocks with the org and creates what is missing, modules first.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["app", "pending_changes"]

app = typer.Typer(name="schema", help="Org snapshots and custom schema changes.",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)


def _open(target: str):
    from runtime.targets import TargetError, open_target

    try:
        dest = open_target(target)
    except (TargetError, ValueError) as exc:
        typer.echo(f"target error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    if not hasattr(dest, "metadata"):
        dest.close()
        typer.echo(f"{target}: this target has no metadata API (a Zoho target is needed)",
                   err=True)
        raise typer.Exit(code=2)
    return dest


@app.command()
def pull(
    target: Annotated[str, typer.Argument(help="zoho://<dc> or sandbox:zoho")],
    module: Annotated[list[str], typer.Option("--module", "-m", help="module to snapshot")],
    output: Annotated[Path, typer.Option("-o", "--output", help="snapshot file")] = Path(
        "snapshot.json"),
) -> None:
    """Snapshot modules (fields + layout required flags) of an org."""
    from runtime.destinations.base import DestinationError
    from runtime.dialects import get_dialect
    from runtime.schema.io import SchemaLoadError

    dest = _open(target)
    try:
        bundle: dict[str, Any] = {"modules": dest.modules(), "objects": {}}
        for m in module:
            bundle["objects"][m] = dest.metadata(m)
    except DestinationError as exc:
        typer.echo(f"schema pull failed: {exc}", err=True)
        raise typer.Exit(code=1) from None
    finally:
        dest.close()
    try:
        schema = get_dialect("zoho").load_metadata(bundle, source_name=str(output))
    except SchemaLoadError as exc:
        typer.echo(f"the org's metadata does not load: {exc}", err=True)
        raise typer.Exit(code=1) from None
    output.write_text(json.dumps(bundle, indent=1, sort_keys=True) + "\n", "utf-8")
    n = sum(len(o.fields) for o in schema.objects if o.api_name in module)
    typer.echo(f"wrote {output}: {len(module)} module(s), {n} field(s)")


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


@app.command()
def apply(
    file: Annotated[Path, typer.Argument(help="the .fmap file")],
    target: Annotated[str, typer.Option("--target", help="zoho://<dc>, zoho://127.0.0.1:PORT")],
    do_apply: Annotated[bool, typer.Option("--apply", help="create them (default: dry run)")] = False,
) -> None:
    """Create the custom modules and fields a mapping declares (dry run unless --apply)."""
    from rich.console import Console

    from fmap.runcmd import compile_for_run
    from runtime.destinations.base import DestinationError
    from runtime.dialects.zoho.client import zoho_field_spec
    from runtime.schema.changes import field_from_change

    console = Console(stderr=True)
    module, _ = compile_for_run(file, Path(".fmap") / "build", console)
    changes = [dict(c) if not hasattr(c, "model_dump") else c.model_dump()
               for c in module.PLAN.schema_changes]
    dest = _open(target)
    try:
        mods = {m["api_name"] for m in dest.modules().get("modules", []) if "api_name" in m}
        have: dict[str, set[str]] = {}
        for obj in sorted({c["object"] for c in changes if c["object"] in mods}):
            have[obj] = {f.get("api_name") for f in dest.metadata(obj)["fields"].get("fields", [])}
        todo = pending_changes(changes, mods, have)
        if not todo:
            typer.echo("the org already has every module and field the mapping declares")
            return
        for c in todo:
            typer.echo(_describe(c))
        if not do_apply:
            typer.echo(f"{len(todo)} change(s); dry run (add --apply to make them)")
            return
        for c in todo:
            if c["action"] == "create_module":
                label = (c.get("details") or {}).get("label")
                dest.create_module(c["object"], label)
        created = {c["object"] for c in todo if c["action"] == "create_module"}
        for obj in created:  # a new module comes with fields of its own (Zoho: Name, Owner)
            have[obj] = {f.get("api_name") for f in dest.metadata(obj)["fields"].get("fields", [])}
        by_obj: dict[str, list[dict[str, Any]]] = {}
        for c in todo:
            if c["action"] == "create_field" and c["field"] not in have.get(c["object"], set()):
                by_obj.setdefault(c["object"], []).append(zoho_field_spec(field_from_change(c)))
        failed = 0
        for obj, specs in by_obj.items():
            resp = dest.create_fields(obj, specs)
            for spec, r in zip(specs, resp["fields"], strict=False):
                if r.get("status") != "success":
                    failed += 1
                    typer.echo(f"! {obj}.{spec['api_name']}: {r.get('code')} {r.get('message')}",
                               err=True)
        typer.echo(f"applied {len(todo) - failed} change(s)" + (f", {failed} failed" if failed else ""))
        if failed:
            raise typer.Exit(code=1)
    except DestinationError as exc:
        typer.echo(f"schema apply failed: {exc}", err=True)
        raise typer.Exit(code=1) from None
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
