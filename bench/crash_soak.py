"""Long crash soak: the CI crash test (tests/runtime/test_crash_resume.py) over many more seeds and
bigger sources. Each seed SIGKILLs the executor 1-3 times (wall clock or a driver hook: send,
reply, planned, sent, confirm, confirmed, outcome), resumes until the run completes, and checks
against a crash-free reference: 0 duplicates, 0 missing, 0 orphans, equal counts, equal store.

Run: .venv/bin/python bench/crash_soak.py [--seeds 500] [--records 5000] [--minutes 0]
     [--modes upsert,no-upsert,upsert+faults,no-upsert+faults] [--first-seed 1000] [--files]

``--files`` runs the fixture's files variant (``attach`` on Patients, documents -> Attachments):
two more kill hooks (upload, uploaded), every record's files compared with the reference (none
duplicated, none missing), and every tenth seed's completed run rolled back (the store must be
empty again, files included).
Stops at the first failing seed and prints its kill log (re-run one seed with --first-seed S
--seeds 1).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "runtime"))
sys.path.insert(0, str(ROOT / "tests" / "fixtures" / "executor"))

import execfix  # noqa: E402
import test_crash_resume as tcr  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=500)
    ap.add_argument("--records", type=int, default=5000)
    ap.add_argument("--minutes", type=float, default=0.0, help="stop after this long (0: no limit)")
    ap.add_argument("--modes", default="upsert,no-upsert,upsert+faults,no-upsert+faults")
    ap.add_argument("--first-seed", type=int, default=1000)
    ap.add_argument("--exec-every", type=int, default=10,
                    help="every Nth seed runs the driver with subprocess instead of fork")
    ap.add_argument("--files", action="store_true",
                    help="the files variant: uploads, upload kill hooks, files compared")
    a = ap.parse_args()
    root = tcr.scratch_root()
    try:
        execfix.compile_module(root / "build", files=a.files)
        module_py = root / "build" / "exec_build.py"
        src = root / f"src{a.records}{'files' if a.files else ''}"
        execfix.generate_source(src, a.records, seed=a.records, files=a.files)
        modes = [f"{m}+files" if a.files else m for m in a.modes.split(",")]
        refs = {m: tcr.reference(root, module_py, src, m) for m in modes}
        t0 = time.monotonic()
        kills = 0
        for i in range(a.seeds):
            seed = a.first_seed + i
            ref = refs[modes[i % len(modes)]]
            try:
                log = tcr.crash_seed(seed, ref, root, module_py,
                                     use_exec=a.exec_every > 0 and i % a.exec_every == 0)
                if a.files and i % 10 == 0:
                    tcr.rollback_leaves_store_as_before(tcr.seed_work(root, seed, ref), ref)
                    log.append("rolled back")
            except AssertionError as exc:
                print(f"seed {seed} ({ref.mode}) FAILED: {exc}")
                return 1
            kills += sum("killed" in e for e in log)
            shutil.rmtree(tcr.seed_work(root, seed, ref), ignore_errors=True)
            print(f"seed {seed} {ref.mode:<17} ok  {'; '.join(log)}", flush=True)
            if a.minutes and time.monotonic() - t0 > a.minutes * 60:
                break
        print(f"{i + 1} seeds, {kills} kills, {time.monotonic() - t0:.0f}s: no duplicates, "
              f"nothing missing, no orphans, counts and store equal to the crash-free run")
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
