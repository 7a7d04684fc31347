"""The `fmap` command line: a thin typer layer over dsl, compiler and runtime.

Exit codes everywhere: 0 ok, 1 findings or failures, 2 usage. Diagnostics are values until here,
where they are rendered. Locals are never shown in tracebacks (they hold tokens and patient data).
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from fmap import __version__

app = typer.Typer(
    name="fmap",
    help="Compile and run CRM data migrations written in the .fmap language.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


class CheckFormat(str, Enum):
    text = "text"
    json = "json"
    sarif = "sarif"
    github = "github"


def _expand(paths: list[Path]) -> list[Path]:
    """Directories expand to the .fmap files under them (sorted, for stable output)."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = sorted(p.rglob("*.fmap"))
            out.extend(found if found else [p])
        else:
            out.append(p)
    return out


from fmap.sandboxcmd import app as _sandbox_app  # noqa: E402
from fmap.schemacmd import app as _schema_app  # noqa: E402

app.add_typer(_sandbox_app, name="sandbox")
app.add_typer(_schema_app, name="schema")


@app.callback()
def _root() -> None:
    """fmap: mapping-DSL compiler and runtime for CRM data migrations."""


@app.command()
def version() -> None:
    """Print the fmap version."""
    typer.echo(__version__)


@app.command()
def check(
    files: Annotated[list[Path], typer.Argument(help=".fmap files or directories")],
    format: Annotated[CheckFormat, typer.Option("--format", "-f")] = CheckFormat.text,
    strict: Annotated[bool, typer.Option(help="treat warnings as errors")] = False,
    schema: Annotated[
        Path | None, typer.Option("--schema", help="directory of committed org snapshots")
    ] = None,
    color: Annotated[bool | None, typer.Option("--color/--no-color")] = None,
) -> None:
    """Check .fmap files: syntax, names, and (with schemas) the destination's rules."""
    from compiler.check import check_path
    from dsl.diagnostics import render_text
    from dsl.render import to_github, to_json, to_sarif

    results = [check_path(f, schema_dir=schema) for f in _expand(files)]
    diags = [d for r in results for d in r.diagnostics]
    sources: dict[str, str] = {}
    for r in results:
        sources.update(r.program.sources)
    if format is CheckFormat.text:
        use_color = sys.stdout.isatty() if color is None else color
        text = render_text(diags, sources, color=use_color)
        if text:
            typer.echo(text)
        errors = sum(r.errors for r in results)
        warnings = sum(r.warnings for r in results)
        typer.echo(f"{len(results)} file(s) checked: {errors} error(s), {warnings} warning(s)")
    elif format is CheckFormat.json:
        typer.echo(to_json(diags))
    elif format is CheckFormat.sarif:
        typer.echo(to_sarif(diags, __version__))
    else:
        out = to_github(diags)
        if out:
            typer.echo(out)
    failed = any(not r.ok for r in results) or (strict and any(r.warnings for r in results))
    raise typer.Exit(code=1 if failed else 0)


class Emit(str, Enum):
    ir = "ir"
    plan = "plan"
    py = "py"


def _render_diags(diags, sources) -> None:
    from dsl.diagnostics import render_text

    if diags:
        typer.echo(render_text(diags, sources, color=sys.stderr.isatty()), err=True)


@app.command()
def compile(
    file: Annotated[Path, typer.Argument(help="the .fmap file")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="output directory")] = None,
    emit: Annotated[Emit, typer.Option(help="what to write: the IR, the plan or the module")] = Emit.py,
    cache: Annotated[Path | None, typer.Option(help="compile cache directory")] = Path(".fmap-cache"),
) -> None:
    """Compile a .fmap file to a Python module (or its IR / load plan as JSON)."""
    import json

    from compiler.compile import compile_path

    result = compile_path(file, cache_dir=cache if emit is Emit.py else None)
    _render_diags(result.diagnostics, result.check.program.sources)
    if emit is Emit.ir:
        module = result.check.program.module
        if module is None:
            raise typer.Exit(code=1)
        text = json.dumps(module.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"
        suffix = ".ir.json"
    elif emit is Emit.plan:
        if result.plan is None:
            raise typer.Exit(code=1)
        text = result.plan.model_dump_json(indent=2) + "\n"
        suffix = ".plan.json"
    else:
        if not result.ok:
            raise typer.Exit(code=1)
        text = result.python
        suffix = ".py"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.mkdir(parents=True, exist_ok=True)
        dest = output / (file.stem.replace("-", "_") + suffix)
        dest.write_text(text, encoding="utf-8")
        note = " (cached)" if result.cached else ""
        typer.echo(f"wrote {dest}{note}", err=True)
    if emit is not Emit.py and not result.check.ok:
        raise typer.Exit(code=1)


@app.command()
def fmt(
    files: Annotated[list[Path], typer.Argument(help=".fmap files or directories")],
    check_only: Annotated[
        bool, typer.Option("--check", help="exit 1 if any file is not formatted; change nothing")
    ] = False,
) -> None:
    """Format .fmap files in the canonical layout (comments kept)."""
    from dsl.diagnostics import render_text
    from dsl.formatter import format_source
    from dsl.parser import parse_file

    unformatted = 0
    failed = False
    for f in _expand(files):
        result = parse_file(f)
        if result.module is None or any(d.severity.value == "error" for d in result.diagnostics):
            typer.echo(render_text(result.diagnostics, {str(f): result.source or ""}), err=True)
            failed = True
            continue
        new = format_source(result.module, result.source or "")
        if new != result.source:
            unformatted += 1
            if check_only:
                typer.echo(f"would reformat {f}")
            else:
                f.write_text(new, encoding="utf-8")
                typer.echo(f"reformatted {f}")
    if failed:
        raise typer.Exit(code=1)
    if check_only and unformatted:
        raise typer.Exit(code=1)


class PlanFormat(str, Enum):
    text = "text"
    markdown = "markdown"
    json = "json"


@app.command()
def plan(
    file: Annotated[Path, typer.Argument(help="the .fmap file")],
    format: Annotated[PlanFormat, typer.Option("--format", "-f")] = PlanFormat.text,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="write the plan here instead of stdout")
    ] = None,
    color: Annotated[bool | None, typer.Option("--color/--no-color")] = None,
    estimate: Annotated[
        bool, typer.Option("--estimate", help="estimate API calls and duration from --counts")
    ] = False,
    counts: Annotated[
        str | None, typer.Option("--counts", help="record counts: patients=10000,clinics=3")
    ] = None,
    tier: Annotated[str | None, typer.Option("--tier", help="the CRM plan tier")] = None,
    users: Annotated[int, typer.Option("--users", help="licensed users (budgets per user)")] = 1,
    latency: Annotated[float, typer.Option("--latency", help="seconds per API call")] = 0.5,
) -> None:
    """Show the load plan: schema setup, load order (cycles deferred), and the mapping table;
    with --estimate --counts, the API calls and duration it takes."""
    from compiler.check import check_path
    from compiler.plan import build_plan, render_markdown, render_text
    from dsl.diagnostics import has_errors, sort_diagnostics
    from dsl.diagnostics import render_text as render_diagnostics

    result = check_path(file)
    use_color = sys.stdout.isatty() if color is None else color
    diags = list(result.diagnostics)
    module = result.program.module
    if result.ok and module is not None:
        built, plan_diags = build_plan(module)
        diags = sort_diagnostics([*diags, *plan_diags])
    else:
        built = None
    if built is None or has_errors(diags):  # like `check`: the findings on stdout, exit 1
        typer.echo(render_diagnostics(diags, result.program.sources, color=use_color))
        errors = sum(1 for d in diags if d.severity.value == "error")
        typer.echo(f"{file}: {errors} error(s); no plan")
        raise typer.Exit(code=1)
    if diags:  # warnings only: keep stdout for the plan (json stays parseable)
        typer.echo(render_diagnostics(diags, result.program.sources, color=use_color), err=True)
    if estimate or counts is not None:
        from fmap.opscmd import estimate_text

        if not counts:
            raise typer.BadParameter("--estimate needs --counts object=n,...")
        typer.echo(estimate_text(built, module, counts, tier, users, latency), nl=False)
        return
    if format is PlanFormat.json:
        text = built.model_dump_json(indent=2) + "\n"
    elif format is PlanFormat.markdown:
        text = render_markdown(built)
    else:
        text = render_text(built)
    if output is not None:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}", err=True)
    else:
        typer.echo(text, nl=False)


@app.command(name="test")
def test_(
    file: Annotated[Path, typer.Argument(help="the .fmap file whose `test` blocks to run")],
) -> None:
    """Run the `test` blocks of a .fmap file: path-level differences, then mapping coverage."""
    from compiler.testing import run_file

    if not file.is_file():
        typer.echo(f"{file}: no such file", err=True)
        raise typer.Exit(code=2)
    report = run_file(file)
    if report.compile_error is not None:
        typer.echo(report.compile_error, err=True, nl=False)
        raise typer.Exit(code=1)
    typer.echo(report.render(), nl=False)
    raise typer.Exit(code=0 if report.ok else 1)


@app.command()
def run(
    file: Annotated[Path, typer.Argument(help="the .fmap file")],
    source: Annotated[str, typer.Option("--source", help="source URI (directory, csv:, json:, sqlite:///...)")],
    target: Annotated[str, typer.Option("--target", help="target URI (sandbox:zoho, jsonl:DIR, ...)")] = "",
    state: Annotated[Path | None, typer.Option(help="state file (default .fmap/<name>.state.sqlite)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="write JSONL files instead of calling the target")] = False,
    resume: Annotated[int | None, typer.Option(help="continue a stopped or killed run")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", help="name=value, overrides a param")] = None,
    files_root: Annotated[Path | None, typer.Option(help="the export's files folder: attachment paths are read from it and must stay inside it")] = None,
    delta: Annotated[bool, typer.Option("--delta", help="only records new or changed since the last run's watermark")] = False,
    sample: Annotated[int | None, typer.Option("--sample", help="load N representative records and diff them field by field")] = None,
    cleanup: Annotated[bool, typer.Option("--cleanup", help="with --sample: remove the sample afterwards")] = False,
) -> None:
    """Run a migration: extract, transform, stage, preflight, load; journaled and resumable."""
    from rich.console import Console

    from fmap.runcmd import execute_run, parse_params, print_summary

    console = Console(stderr=False)
    if not target and not dry_run:
        raise typer.BadParameter("give --target (e.g. sandbox:zoho) or --dry-run")
    if cleanup and sample is None:
        raise typer.BadParameter("--cleanup goes with --sample")
    if sample is not None:
        from fmap.samplecmd import execute_sample

        code = execute_sample(file, source, target, state, sample, cleanup,
                              parse_params(param or []), files_root, console)
        raise typer.Exit(code=code)
    result, state_path = execute_run(file, source, target, state, dry_run, resume,
                                     parse_params(param or []), files_root, console, delta=delta)
    if result.unmatched_owners:
        console.print(f"[yellow]{sum(result.unmatched_owners.values())} record(s) name an owner "
                      f"with no destination user ({len(result.unmatched_owners)} email(s)); "
                      "the owners policy applied.[/yellow]")
    print_summary(console, result.counts, f"run {result.run_id}: {result.status}")
    if result.message:
        console.print(f"[red]{result.message}[/red]")
    console.print(f"state: {state_path}  (audit: fmap audit {result.run_id} --state {state_path})")
    raise typer.Exit(code=0 if result.ok else 1)


class AuditFormat(str, Enum):
    table = "table"
    csv = "csv"
    jsonl = "jsonl"


@app.command()
def audit(
    run_id: Annotated[int, typer.Argument(help="run id")],
    state: Annotated[Path, typer.Option(help="state file")],
    format: Annotated[AuditFormat, typer.Option("--format", "-f")] = AuditFormat.table,
    output: Annotated[Path | None, typer.Option("-o", "--output")] = None,
) -> None:
    """Print or export a run's operation journal (the audit log)."""
    from rich.console import Console
    from rich.table import Table

    from runtime.state import StateError, StateStore

    if not state.is_file():
        typer.echo(f"no state file at {state}", err=True)
        raise typer.Exit(code=2)
    with StateStore(state) as store:
        try:
            store.get_run(run_id)
        except StateError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(code=2) from None
        if format is AuditFormat.table:
            table = Table(title=f"audit of run {run_id}")
            cols = ("id", "map", "op", "state", "source_key", "destination_id", "error")
            for c in cols:
                table.add_column(c)
            for row in store.audit_rows(run_id):
                table.add_row(*(str(row.get(c) if row.get(c) is not None else "") for c in cols))
            Console().print(table)
            return
        dest = output or Path(f"audit-run{run_id}.{format.value}")
        store.export_audit(run_id, dest, fmt=format.value)
        typer.echo(f"wrote {dest}")


@app.command()
def profile(
    file: Annotated[Path, typer.Argument(help="the .fmap file")],
    source: Annotated[str, typer.Option("--source", help="source URI")],
    target: Annotated[str | None, typer.Option("--target", help="target URI (for owners and limits)")] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="directory for profile.json")] = None,
    files_root: Annotated[Path | None, typer.Option(help="the export's files folder: attachment paths are read from it and must stay inside it")] = None,
) -> None:
    """Data-quality report of a source, through the mapping, before anything moves."""
    from rich.console import Console

    from fmap.profilecmd import execute_profile

    code = execute_profile(file, source, target, output, files_root, Console())
    raise typer.Exit(code=code)


@app.command()
def rollback(
    run_id: Annotated[int | None, typer.Argument(help="the run to roll back")] = None,
    state: Annotated[Path, typer.Option(help="state file")] = Path(".fmap/state.sqlite"),
    target: Annotated[str, typer.Option("--target", help="target URI the run loaded into")] = "",
    all_runs: Annotated[bool, typer.Option("--all", help="every run of the migration, newest first")] = False,
    force: Annotated[bool, typer.Option("--force", help="also undo records changed since the migration")] = False,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="report directory")] = None,
    fmap_file: Annotated[Path | None, typer.Option("--fmap", help="the .fmap file (default: the run's)")] = None,
    show_sensitive: Annotated[bool, typer.Option("--show-sensitive")] = False,
) -> None:
    """Undo a run: delete what it created (children first), restore what it updated."""
    from rich.console import Console

    from fmap.opscmd import cmd_rollback

    if not target:
        raise typer.BadParameter("give --target (the URI the run loaded into)")
    raise typer.Exit(code=cmd_rollback(run_id, state, target, all_runs, force, output, fmap_file,
                                       show_sensitive, Console()))


@app.command()
def reconcile(
    run_id: Annotated[int, typer.Argument(help="the run to reconcile")],
    state: Annotated[Path, typer.Option(help="state file")] = Path(".fmap/state.sqlite"),
    target: Annotated[str, typer.Option("--target", help="target URI the run loaded into")] = "",
    sample_share: Annotated[float, typer.Option("--sample-share", help="share of loaded records to compare field by field")] = 0.1,
    source: Annotated[str | None, typer.Option("--source", help="re-count the source")] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="report directory")] = None,
    fmap_file: Annotated[Path | None, typer.Option("--fmap", help="the .fmap file (default: the run's)")] = None,
    show_sensitive: Annotated[bool, typer.Option("--show-sensitive")] = False,
    seed: Annotated[int, typer.Option(help="seed of the spot-check sample")] = 0,
) -> None:
    """Reconcile a run: counts per object explained, field spot checks, attachments."""
    from rich.console import Console

    from fmap.opscmd import cmd_reconcile

    if not target:
        raise typer.BadParameter("give --target (the URI the run loaded into)")
    raise typer.Exit(code=cmd_reconcile(run_id, state, target, sample_share, source, output,
                                        fmap_file, show_sensitive, seed, Console()))


@app.command()
def report(
    run_id: Annotated[int, typer.Argument(help="the run")],
    state: Annotated[Path, typer.Option(help="state file")] = Path(".fmap/state.sqlite"),
    output: Annotated[Path | None, typer.Option("-o", "--output", help="report directory")] = None,
    fmap_file: Annotated[Path | None, typer.Option("--fmap", help="the .fmap file (default: the run's)")] = None,
    show_sensitive: Annotated[bool, typer.Option("--show-sensitive")] = False,
) -> None:
    """Write a run's report (JSON + HTML): counts, quarantine, failures, load order. Per-record
    tables show at most 200 rows per map; run-<table>.csv beside the report lists every row."""
    from rich.console import Console

    from fmap.opscmd import cmd_report

    raise typer.Exit(code=cmd_report(run_id, state, output, fmap_file, show_sensitive, Console()))


@app.command()
def demo(
    pair: Annotated[str, typer.Option(help="which seed migration to run")] = "aeronaclinic_to_zoho",
) -> None:
    """Check every mapping, then run one seed migration end to end against its sandbox."""
    from rich.console import Console

    from fmap.democmd import run_demo

    raise typer.Exit(code=run_demo(pair, Console()))


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
