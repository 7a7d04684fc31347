"""End-to-end figures per seed pair: records/s, peak memory, API calls per record.

Generates N patients (default 10,000) with `mappings/samples/generate.py`, compiles the pair's
mapping and runs it into its in-process sandbox (`sandbox:<dialect>`), each pair in its own
process so peak RSS is per pair. Run: .venv/bin/python bench/bench_e2e.py [--patients N] [PAIR...]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PAIRS = {
    "aeronaclinic_to_zoho": ("aeronaclinic", "api", "zoho"),
    "aeronaclinic_to_freshsales": ("aeronaclinic", "api", "freshsales"),
    "aeronaclinic_to_salesforce": ("aeronaclinic", "api", "salesforce"),
    "aeronaclinic_to_pipedrive": ("aeronaclinic", "api", "pipedrive"),
    "clinic_mgmt_to_zoho": ("clinic_mgmt", "csv", "zoho"),
}


def one(pair: str, patients: int, work: Path) -> dict:
    from compiler.compile import compile_path
    from runtime.executor import RunOptions, load_compiled, run_migration
    from runtime.sources import open_source, plan_source_options
    from runtime.state import StateStore
    from runtime.targets import open_target

    system, fmt, dialect = PAIRS[pair]
    spec = importlib.util.spec_from_file_location("gen", ROOT / "mappings/samples/generate.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    src = work / "src"
    gen.generate(system, fmt, patients, 42, src)
    result = compile_path(ROOT / "mappings" / f"{pair}.fmap")
    (work / "m.py").write_text(result.python, "utf-8")
    module = load_compiled(work / "m.py")
    plan = module.PLAN
    users = ROOT / "mappings" / "sandbox" / f"{dialect}_users.json"
    dest = open_target(f"sandbox:{dialect}?users={users}&db={work / 'sandbox.sqlite'}",
                       schema_changes=list(plan.schema_changes), state_dir=work)
    source = open_source(str(src), defaults=plan_source_options(plan.source_config))
    t0, c0 = time.perf_counter(), time.process_time()
    with StateStore(work / "state.sqlite") as store:
        res = run_migration(module, source, dest, store, work / "state.sqlite",
                            source_id=str(src), options=RunOptions())
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    extracted = sum(c["extracted"] for c in res.counts.values())
    written = sum(c["created"] + c["updated"] for c in res.counts.values())
    return {
        "pair": pair, "patients": patients, "status": res.status,
        "records": extracted, "written": written, "wall_s": round(wall, 1),
        "records_per_s": round(extracted / wall), "records_per_cpu_s": round(extracted / cpu),
        "api_calls": res.stats.calls,
        "calls_per_written_record": round(res.stats.calls / max(written, 1), 3),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("pairs", nargs="*", default=list(PAIRS))
    args = ap.parse_args()
    if args.one:
        with tempfile.TemporaryDirectory() as d:
            print(json.dumps(one(args.one, args.patients, Path(d))))
        return
    for pair in args.pairs:
        out = subprocess.run([sys.executable, __file__, "--one", pair, "--patients",
                              str(args.patients)], capture_output=True, text=True)
        if out.returncode != 0:
            print(f"{pair}: failed\n{out.stderr[-2000:]}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{r['pair']:<28} {r['patients']:>7,} patients  {r['records']:>9,} records  "
              f"{r['records_per_s']:>6,}/s ({r['records_per_cpu_s']:,}/CPU-s)  "
              f"peak {r['peak_rss_mib']} MiB  {r['calls_per_written_record']} calls/written record"
              f"  [{r['status']}]")


if __name__ == "__main__":
    main()
