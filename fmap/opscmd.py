"""`fmap rollback`, `fmap reconcile`, `fmap report` and `fmap plan --estimate`: the CLI face of
:mod:`runtime.operations` and :mod:`runtime.reports` (exit 0 ok, 1 findings, 2 usage)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

__all__ = ["cmd_rollback", "cmd_reconcile", "cmd_report", "estimate_text"]


def _open_state(state: Path):
    from runtime.state import StateStore

    if not state.is_file():
        typer.echo(f"no state file at {state}", err=True)
        raise typer.Exit(code=2)
    return StateStore(state)


def _get_run(store, run_id: int):
    from runtime.state import StateError

    try:
        return store.get_run(run_id)
    except StateError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=2) from None


def _plan_for(run, fmap_file: Path | None, state: Path, console: Console):
    """The compiled plan of the run's mapping (for schema changes, load order, sensitive fields),
    or None when the .fmap file is not at hand."""
    path = fmap_file or (Path(run.fmap_path) if run and run.fmap_path else None)
    if path is None or not path.is_file():
        return None
    from fmap.runcmd import compile_for_run

    module, _ = compile_for_run(path, state.parent / "build", console)
    return module.PLAN


def _open_dest(target: str, plan, state: Path):
    from runtime.targets import TargetError, open_target

    try:
        return open_target(target, schema_changes=list(getattr(plan, "schema_changes", ())),
                           state_dir=state.parent)
    except TargetError as exc:
        typer.echo(f"target error: {exc}", err=True)
        raise typer.Exit(code=2) from None


def _out_dir(output: Path | None, state: Path, name: str) -> Path:
    return output or state.parent / "reports" / name


def cmd_rollback(run_id: int | None, state: Path, target: str, all_runs: bool, force: bool,
                 output: Path | None, fmap_file: Path | None, show_sensitive: bool,
                 console: Console) -> int:
    from runtime.operations.rollback import (
        RollbackOptions,
        RollbackStopped,
        rollback_all,
        rollback_run,
    )
    from runtime.reports import build_rollback_report, rollback_report_lists, write_report
    from runtime.state import StateError

    if run_id is None and not all_runs:
        raise typer.BadParameter("give a RUN id, or --all")
    with _open_state(state) as store:
        run = _get_run(store, run_id) if run_id is not None else store.latest_run()
        if run is None:
            typer.echo("no runs in this state file", err=True)
            raise typer.Exit(code=2)
        plan = _plan_for(run, fmap_file, state, console)
        dest = _open_dest(target, plan, state)
        opts = RollbackOptions(force=force)
        try:
            if all_runs:
                results = rollback_all(store, dest, run.migration, opts)
            else:
                results = [rollback_run(store, dest, run.id, opts)]
        except StateError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(code=2) from None
        except RollbackStopped as exc:
            console.print(f"[red]{exc}[/red]")
            return 1
        finally:
            dest.close()
        table = Table(title="rollback")
        for c in ("run", "deleted", "restored", "conflicts", "failed", "status"):
            table.add_column(c)
        for r in results:
            table.add_row(str(r.run_id), str(sum(r.deleted.values())),
                          str(sum(r.restored.values())),
                          f"{len(r.conflicts)}" + (" (forced)" if force and r.conflicts else ""),
                          str(len(r.failed)), r.status + (" (no-op)" if r.noop else ""))
        console.print(table)
        unverified = sum(r.unverified for r in results)
        if unverified:
            console.print(f"[yellow]{unverified} record(s) could not be checked for changes made "
                          "after the migration: the journal holds no written values for them "
                          "(the writer journaled request hashes only).[/yellow]")
        skipped = [c for r in results for c in r.conflicts if not c.forced]
        if skipped:
            console.print(f"[yellow]{len(skipped)} record(s) changed in the destination since the "
                          "migration were left alone; --force overwrites them.[/yellow]")
        name = f"rollback-run{run.id if not all_runs else 'all'}"
        j, h = write_report(build_rollback_report(results, store, plan=plan,
                                                  show_sensitive=show_sensitive),
                            _out_dir(output, state, name), "rollback",
                            rollback_report_lists(results, plan=plan,
                                                  show_sensitive=show_sensitive))
        console.print(f"report: {h} ({j.name})")
        return 0 if all(r.ok for r in results) else 1


def cmd_reconcile(run_id: int, state: Path, target: str, sample_share: float,
                  source: str | None, output: Path | None, fmap_file: Path | None,
                  show_sensitive: bool, seed: int, console: Console) -> int:
    from runtime.operations.reconcile import reconcile_run
    from runtime.reports import (
        build_reconciliation_report,
        reconciliation_report_lists,
        write_report,
    )

    if not 0 <= sample_share <= 1:
        raise typer.BadParameter("--sample-share is a share between 0 and 1")
    with _open_state(state) as store:
        run = _get_run(store, run_id)
        plan = _plan_for(run, fmap_file, state, console)
        dest = _open_dest(target, plan, state)
        source_counts = _source_counts(source) if source else None
        try:
            rec = reconcile_run(store, dest, run_id, plan=plan, sample_share=sample_share,
                                seed=seed, source_counts=source_counts)
        finally:
            dest.close()
        table = Table(title=f"reconciliation of run {run_id}")
        for c in ("object", "source", "loaded", "not loaded", "destination", "ours", "sampled",
                  "status"):
            table.add_column(c)
        for o in rec.objects:
            loaded = sum(o.outcomes.get(k, 0) for k in ("created", "updated", "unchanged"))
            not_loaded = sum(o.outcomes.get(k, 0) for k in ("skipped", "quarantined", "failed"))
            table.add_row(o.target_object, str(o.source), str(loaded), str(not_loaded),
                          str(o.destination), str(o.ours_in_destination), str(o.sampled),
                          "flagged" if o.flags else "ok")
        console.print(table)
        for f in rec.flags:
            console.print(f"[red]flag:[/red] {f}")
        j, h = write_report(build_reconciliation_report(rec, store, plan=plan,
                                                        show_sensitive=show_sensitive),
                            _out_dir(output, state, f"reconcile-run{run_id}"), "reconciliation",
                            reconciliation_report_lists(rec, plan=plan,
                                                        show_sensitive=show_sensitive))
        console.print(f"report: {h} ({j.name})")
        return 0 if rec.ok else 1


def _source_counts(uri: str) -> dict[str, int]:
    from runtime.sources import SourceError, open_source

    try:
        src = open_source(uri)
    except SourceError as exc:
        typer.echo(f"source error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    try:
        return {obj: src.count(obj) for obj in src.objects()}
    finally:
        src.close()


def cmd_report(run_id: int, state: Path, output: Path | None, fmap_file: Path | None,
               show_sensitive: bool, console: Console) -> int:
    from runtime.reports import build_run_report, run_report_lists, write_report

    with _open_state(state) as store:
        run = _get_run(store, run_id)
        plan = _plan_for(run, fmap_file, state, console)
        rep = build_run_report(store, run_id, plan=plan, show_sensitive=show_sensitive)
        j, h = write_report(rep, _out_dir(output, state, f"run{run_id}"), "run",
                            run_report_lists(store, run_id, plan=plan,
                                             show_sensitive=show_sensitive))
    console.print(rep["summary"]["headline"])
    console.print(f"report: {h} ({j.name})")
    return 0


def _estimate_steps(built, module) -> list:
    from runtime.operations.estimate import EstimateStep

    decls = {}
    for d in getattr(module, "body", []):
        name = getattr(d, "name", None)
        if type(d).__name__ in ("ObjectMap", "MergeMap") and isinstance(name, str):
            decls[name] = d
    steps = []
    for s in built.steps:
        d = decls.get(s.name)
        dump = d.model_dump_json() if d is not None else ""
        steps.append(EstimateStep(
            s.name, s.kind, s.source, s.target, bool(s.deferred_fields),
            owners='"kind":"owner"' in dump,
            attachments=any(getattr(x, "kind", None) == "attach" for x in getattr(d, "body", []))))
    return steps


def estimate_text(built: Any, module: Any, counts: str, tier: str | None, users: int,
                  latency: float) -> str:
    from runtime.dialects import UnknownDialect, get_dialect
    from runtime.operations.estimate import estimate_plan, parse_counts, render_estimate

    try:
        parsed = parse_counts(counts)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    try:
        dialect = get_dialect(built.target)
    except UnknownDialect as exc:
        raise typer.BadParameter(str(exc)) from None
    try:
        est = estimate_plan(_estimate_steps(built, module), parsed, dialect, tier=tier,
                            users=users, latency_s=latency)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    return render_estimate(est)
