"""`fmap run` and `fmap audit`: the CLI face of the executor (progress, summary, exit codes)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

__all__ = ["execute_run", "print_summary"]


def compile_for_run(fmap_file: Path, build_dir: Path, console: Console):
    from compiler.compile import compile_path
    from dsl.diagnostics import render_text
    from runtime.executor import load_compiled

    result = compile_path(fmap_file, cache_dir=build_dir / "cache")
    errors = [d for d in result.diagnostics if d.severity.value == "error"]
    if errors or not result.ok:
        console.print(render_text(result.diagnostics, result.check.program.sources), markup=False,
                      highlight=False)
        raise typer.Exit(code=1)
    build_dir.mkdir(parents=True, exist_ok=True)
    out = build_dir / (fmap_file.stem.replace("-", "_") + ".py")
    if not out.exists() or out.read_text("utf-8") != result.python:
        out.write_text(result.python, "utf-8")
    return load_compiled(out), result


def print_summary(console: Console, counts: dict[str, dict[str, int]], title: str) -> None:
    table = Table(title=title, show_lines=False)
    cols = ("extracted", "created", "updated", "unchanged", "skipped", "quarantined", "failed")
    table.add_column("map")
    for c in cols:
        table.add_column(c, justify="right")
    totals = dict.fromkeys(cols, 0)
    for name, c in counts.items():
        table.add_row(name, *(f"{c.get(k, 0):,}" for k in cols))
        for k in cols:
            totals[k] += c.get(k, 0)
    table.add_row("[b]total[/b]", *(f"[b]{totals[k]:,}[/b]" for k in cols))
    console.print(table)


def execute_run(fmap_file: Path, source_uri: str, target_uri: str, state: Path | None,
                dry_run: bool, resume: int | None, params: dict[str, str],
                files_root: Path | None, console: Console, *, delta: bool = False,
                include=None):
    from runtime.executor import LoadOptions, RunOptions, run_migration
    from runtime.sources import SourceError, open_source, plan_source_options
    from runtime.state import StateError, StateStore
    from runtime.targets import TargetError, open_target

    state_path = state or Path(".fmap") / f"{fmap_file.stem}.state.sqlite"
    state_path.parent.mkdir(parents=True, exist_ok=True)
    module, _compiled = compile_for_run(fmap_file, state_path.parent / "build", console)
    plan = module.PLAN
    if dry_run:  # same org users as the real target, so owners resolve as they will
        query = target_uri.partition("?")[2]
        target_uri = f"jsonl:{state_path.parent / 'dry-run'}" + (f"?{query}" if query else "")
    try:
        source = open_source(source_uri, defaults=plan_source_options(plan.source_config))
    except SourceError as exc:
        console.print(f"[red]source error:[/red] {exc}", markup=True)
        raise typer.Exit(code=2) from None
    try:
        dest = open_target(target_uri, schema_changes=list(plan.schema_changes),
                           state_dir=state_path.parent)
    except TargetError as exc:
        console.print(f"[red]target error:[/red] {exc}")
        raise typer.Exit(code=2) from None
    root = files_root
    if root is None:
        p = Path(source_uri.split(":", 1)[-1].split("?", 1)[0])
        root = p if p.is_dir() else p.parent
    with Progress(TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), console=console,
                  transient=False, disable=not console.is_terminal) as progress:
        tasks: dict[str, int] = {}

        def on_stage(obj: str, n: int) -> None:
            key = f"read {obj}"
            if key not in tasks:
                tasks[key] = progress.add_task(key, total=None, rate="")
            progress.update(tasks[key], completed=n)

        def on_load(step: str, done: int, total: int) -> None:
            key = f"load {step}"
            if key not in tasks:
                tasks[key] = progress.add_task(key, total=total, rate="")
            task = progress.tasks[tasks[key]]
            rate = f"{task.speed:,.0f}/s" if task.speed else ""
            progress.update(tasks[key], completed=done, rate=rate)

        opts = RunOptions(params=params, resume=resume, on_stage_progress=on_stage,
                          delta=delta, include=include,
                          load=LoadOptions(files_root=root, on_progress=on_load))
        with StateStore(state_path) as store:
            try:
                result = run_migration(module, source, dest, store, state_path,
                                       source_id=source_uri, options=opts)
            except StateError as exc:  # e.g. --resume of a completed run
                console.print(f"[red]{exc}[/red]")
                raise typer.Exit(code=2) from None
    source.close()
    dest.close()
    for obj, n in sorted(result.unreadable_modified.items()):  # counts only: values are patient data
        if n:
            console.print(f"[yellow]{obj}: {n:,} modified-at value(s) do not parse with the "
                          "declared format (modified_format/modified_tz or the schema's vendor "
                          "date_format/tz); delta runs read these records every time.[/yellow]")
    for step, n in sorted(result.stats.files_skipped.items()):
        console.print(f"[yellow]{step}: {n:,} file(s) over the size limit were not uploaded "
                      "(oversize skip); their records were loaded without them.[/yellow]")
    write_rebuild_reference(plan, state_path.parent / "reports")
    return result, state_path


def write_rebuild_reference(plan, out_dir: Path) -> Path | None:
    """What the mapping deliberately does not migrate, with the reasons: the list the clinic's
    admin works through after the migration (workflows, reminders, portal logic...)."""
    if not plan.not_migrated:
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "rebuild_reference.md"
    lines = [f"# Rebuild reference: {plan.migration}", "",
             "These parts of the source system are not migrated; rebuild them in the CRM.", "",
             "| item | what to do |", "|---|---|"]
    for subject, reason in plan.not_migrated:
        lines.append(f"| {subject.replace('|', '/')} | {reason.replace('|', '/')} |")
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def parse_params(values: list[str]) -> dict[str, str]:
    out = {}
    for v in values:
        if "=" not in v:
            raise typer.BadParameter(f"--param expects name=value, got {v!r}")
        k, _, val = v.partition("=")
        out[k.strip()] = val
    return out
