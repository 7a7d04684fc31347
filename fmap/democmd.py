"""`fmap demo --pair NAME`: the main job on a fresh clone.

Checks every mapping in mappings/, then runs one seed migration against its in-process sandbox:
profile, a sample of 50 with its field-level diff, the full run, reconciliation, and the reports.
Everything it writes goes under .fmap/demo/<pair>/ (git-ignored) and is recreated on each call,
so the demo always starts from an empty sandbox.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from rich.console import Console
from rich.rule import Rule

__all__ = ["run_demo", "PAIRS"]

MAPPINGS = Path("mappings")
# pair -> (fmap file, committed sample directory, sandbox users file)
PAIRS = {
    "aeronaclinic_to_zoho": ("aeronaclinic_to_zoho.fmap", "samples/aeronaclinic_api"),
    "aeronaclinic_to_freshsales": ("aeronaclinic_to_freshsales.fmap", "samples/aeronaclinic_api"),
    "aeronaclinic_to_salesforce": ("aeronaclinic_to_salesforce.fmap", "samples/aeronaclinic_api"),
    "aeronaclinic_to_pipedrive": ("aeronaclinic_to_pipedrive.fmap", "samples/aeronaclinic_api"),
    "clinic_mgmt_to_zoho": ("clinic_mgmt_to_zoho.fmap", "samples/clinic_mgmt_csv"),
}


def check_all(console: Console) -> int:
    from compiler.check import check_path
    from dsl.diagnostics import render_text

    files = sorted(MAPPINGS.glob("*.fmap"))
    errors = 0
    for f in files:
        r = check_path(f)
        errors += r.errors
        status = "ok" if r.ok else f"{r.errors} error(s)"
        console.print(f"  check {f}: {status}, {r.warnings} warning(s)")
        if not r.ok:
            console.print(render_text(r.diagnostics, r.program.sources), markup=False,
                          highlight=False)
    return errors


def run_demo(pair: str, console: Console) -> int:
    from fmap.profilecmd import execute_profile
    from fmap.runcmd import execute_run, print_summary
    from fmap.samplecmd import execute_sample

    console.print(Rule("fmap demo: checking mappings/"))
    if check_all(console):
        return 1
    if pair not in PAIRS:
        console.print(f"[red]unknown pair {pair!r}[/red]; pairs: {', '.join(PAIRS)}")
        return 2
    fmap_name, sample_dir = PAIRS[pair]
    fmap_file = MAPPINGS / fmap_name
    source_dir = MAPPINGS / sample_dir
    if not fmap_file.is_file() or not source_dir.is_dir():
        console.print(f"[yellow]{fmap_file} or {source_dir} is not there yet: "
                      "nothing to run for this pair.[/yellow]")
        return 0
    work = Path(".fmap") / "demo" / pair
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    state = work / "state.sqlite"
    dialect = _dialect(fmap_file)
    users = MAPPINGS / "sandbox" / f"{dialect}_users.json"
    target = f"sandbox:{dialect}?db={work / 'sandbox.sqlite'}"
    if users.is_file():
        target += f"&users={users}"
    source_uri = str(source_dir)
    console.print(Rule(f"1. profile {fmap_file} on {source_dir}"))
    execute_profile(fmap_file, source_uri, target, work / "reports", None, console)
    console.print(Rule("2. sample of 50 with field-level diff (then removed)"))
    execute_sample(fmap_file, source_uri, target, state, 50, True, {}, None, console)
    console.print(Rule("3. full run"))
    result, _ = execute_run(fmap_file, source_uri, target, state, False, None, {}, None, console)
    print_summary(console, result.counts, f"run {result.run_id}: {result.status}")
    console.print(Rule("4. reconciliation and reports"))
    _reconcile_and_report(result.run_id, state, target, fmap_file, work / "reports", console)
    console.print(Rule("done"))
    console.print(f"reports: {work / 'reports'} (open run/run.html in a browser)")
    return 0 if result.status == "completed" else 1


def _dialect(fmap_file: Path) -> str:
    for line in fmap_file.read_text("utf-8").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "target":
            return parts[1].split("(")[0]
    return "zoho"


def _reconcile_and_report(run_id: int, state: Path, target: str, fmap_file: Path, work: Path,
                          console: Console) -> None:
    from fmap.opscmd import cmd_reconcile, cmd_report

    cmd_reconcile(run_id, state, target, 0.1, None, work / "reconcile", fmap_file, False, 7,
                  console)
    cmd_report(run_id, state, work / "run", fmap_file, False, console)
