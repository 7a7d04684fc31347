"""`fmap profile`: render the data-quality report (terminal tables + profile.json)."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

from rich.console import Console
from rich.table import Table

__all__ = ["execute_profile", "print_profile"]

# rows of each finding the terminal shows (the report and its CSVs have the rest)
_SHOWN = 30


def execute_profile(fmap_file: Path, source_uri: str, target_uri: str | None,
                    output: Path | None, files_root: Path | None, console: Console) -> int:
    from fmap.runcmd import compile_for_run
    from runtime.dialects import get_dialect
    from runtime.operations.profile import profile_source
    from runtime.sources import SourceError, open_source, plan_source_options
    from runtime.targets import TargetError, open_target

    work = Path(".fmap")
    module, _ = compile_for_run(fmap_file, work / "build", console)
    plan = module.PLAN
    try:
        source = open_source(source_uri, defaults=plan_source_options(plan.source_config))
    except SourceError as exc:
        console.print(f"[red]source error:[/red] {exc}")
        return 2
    schema, users, limit = None, None, None
    try:
        dialect = get_dialect(plan.target) if plan.target else None
    except Exception:
        dialect = None
    if dialect is not None:
        from runtime.schema.changes import apply_changes

        schema = apply_changes(dialect.standard_schema(), list(plan.schema_changes), dialect)
        limit = dialect.attachment_limit_bytes
    if target_uri:
        try:
            dest = open_target(target_uri, schema_changes=list(plan.schema_changes), state_dir=work)
        except TargetError as exc:
            console.print(f"[red]target error:[/red] {exc}")
            return 2
        users = dest.list_users()
        schema = dest.schema()
        dest.close()
    root = files_root
    if root is None:
        p = Path(source_uri.split(":", 1)[-1].split("?", 1)[0])
        root = p if p.is_dir() else p.parent
    work.mkdir(exist_ok=True)
    report = profile_source(module, source, work / f"{fmap_file.stem}.profile.stage", schema=schema,
                            users=users, attachment_limit=limit, files_root=root)
    source.close()
    print_profile(console, report)
    out = output or work / "reports"
    out.mkdir(parents=True, exist_ok=True)
    from runtime.reports import write_report
    from runtime.reports.preflight import build_profile_report, profile_report_lists

    j, h = write_report(build_profile_report(report), out, "profile",
                        profile_report_lists(report))
    console.print(f"profile: {h} ({j.name})")
    return 0


def print_profile(console: Console, report) -> None:
    t = Table(title=f"source: {report.migration}")
    t.add_column("map")
    for c in ("extracted", "ready", "skipped", "quarantined", "failed"):
        t.add_column(c, justify="right")
    for m, c in report.map_counts.items():
        t.add_row(m, *(f"{c.get(k, 0):,}" for k in ("extracted", "ready", "skipped",
                                                     "quarantined", "failed")))
    console.print(t)
    sections = [
        ("Would be quarantined or fail", report.quarantine_reasons,
         ("map", "status", "field", "reason", "count")),
        ("Values no value map covers", report.unmapped_values,
         ("valuemap", "field", "value", "count")),
        ("Required target fields left empty", report.missing_required, ("map", "field", "count")),
        ("References to records that will not be loaded (orphans)", report.orphans,
         ("map", "field", "references", "count")),
        ("Attachments over the size limit", report.oversize_attachments,
         ("map", "key", "file", "size_mb", "limit_mb")),
        ("Duplicate candidates", [{**d, "keys": ", ".join(d["keys"])}
                                  for d in islice(report.duplicates, _SHOWN)],
         ("map", "match", "keys")),
    ]
    for title, rows, cols in sections:
        if not rows:
            continue
        table = Table(title=title)
        for c in cols:
            table.add_column(c)
        for r in islice(rows, _SHOWN):
            table.add_row(*(str(r.get(c, "")) for c in cols))
        console.print(table)
    unmatched = report.owners.get("unmatched") or {}
    if unmatched:
        table = Table(title="Owner emails with no destination user")
        table.add_column("email")
        table.add_column("records", justify="right")
        for e, n in unmatched.items():
            table.add_row(e, str(n))
        console.print(table)


