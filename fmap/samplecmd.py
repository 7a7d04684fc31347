"""`fmap run --sample N [--cleanup]`: select, load, read back, diff (and remove)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from fmap.runcmd import execute_run, print_summary

__all__ = ["execute_sample"]


def execute_sample(fmap_file: Path, source_uri: str, target_uri: str, state: Path | None, n: int,
                   cleanup: bool, params: dict[str, str], files_root: Path | None,
                   console: Console) -> int:
    from fmap.runcmd import compile_for_run
    from runtime.operations.sample import diff_sample, select_sample, summarise_diffs, to_dict
    from runtime.sources import SourceError, open_source, plan_source_options
    from runtime.state import StateStore
    from runtime.targets import TargetError, open_target

    state_path = state or Path(".fmap") / f"{fmap_file.stem}.state.sqlite"
    state_path.parent.mkdir(parents=True, exist_ok=True)
    module, _ = compile_for_run(fmap_file, state_path.parent / "build", console)
    plan = module.PLAN
    try:
        source = open_source(source_uri, defaults=plan_source_options(plan.source_config))
        dest = open_target(target_uri, schema_changes=list(plan.schema_changes),
                           state_dir=state_path.parent)
    except (SourceError, TargetError) as exc:
        console.print(f"[red]{exc}[/red]")
        return 2
    selection = select_sample(module, source, state_path.with_suffix(".sample.stage"), n,
                              schema=dest.schema(), params=params)
    source.close()
    dest.close()
    console.print(f"sample: {len(selection.chosen)} {selection.primary} record(s) covering "
                  f"{selection.features_covered} of {selection.features_total} routing branches "
                  f"and picklist values; with related records: "
                  + ", ".join(f"{len(v)} {k}" for k, v in sorted(selection.roots.items())))
    result, state_path = execute_run(fmap_file, source_uri, target_uri, state_path, False, None,
                                     params, files_root, console, include=selection.includes)
    print_summary(console, result.counts, f"sample run {result.run_id}: {result.status}")
    dest = open_target(target_uri, schema_changes=list(plan.schema_changes),
                       state_dir=state_path.parent)
    with StateStore(state_path) as store:
        diffs = diff_sample(module, dest, store, state_path, result.run_id, params=params)
    summary = summarise_diffs(diffs)
    table = Table(title=f"field-level diff: {summary['records']} records, {summary['fields']} fields")
    for c in ("map", "field", "kind", "records"):
        table.add_column(c)
    for d in summary["differences"]:
        table.add_row(d["map"], d["field"], d["kind"], str(d["count"]))
    if not summary["differences"]:
        table.add_row("-", "-", "no differences", "")
    console.print(table)
    from runtime.reports import write_report
    from runtime.reports.preflight import build_sample_report

    rep = build_sample_report(selection, result.counts, diffs, plan=plan, schema=dest.schema())
    rep["data"] = {"summary": summary, "records": to_dict(diffs)}
    j, h = write_report(rep, state_path.parent / "reports", f"sample-run{result.run_id}")
    console.print(f"diff report: {h} ({j.name})")
    code = 0 if result.ok else 1
    if cleanup:
        code = max(code, _cleanup(result.run_id, state_path, dest, plan, console))
    dest.close()
    return code


def _cleanup(run_id: int, state_path: Path, dest, plan, console: Console) -> int:
    try:
        from runtime.operations.rollback import rollback_run
    except ImportError:
        console.print("[red]--cleanup needs rollback support (runtime.operations.rollback)[/red]")
        return 1
    from runtime.state import StateStore

    with StateStore(state_path) as store:
        result = rollback_run(store, dest, run_id)
    deleted = sum(result.deleted.values())
    console.print(f"sample removed: {deleted} record(s) deleted"
                  + (f", {len(result.failed)} failed" if result.failed else ""))
    return 1 if result.failed else 0
