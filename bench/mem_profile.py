"""Where does a run's memory go? Attribution for bench_load.py's "peak RSS must be flat" target.

Runs the bench_load memory pipeline (the executor fixture migration, a JSONL source of about N
records, the null destination) in this process and, at every phase change and every ~10% of a
phase, records:

- RSS (``/proc/self/statm``) and the high-water mark (``ru_maxrss``);
- the glibc heap (``mallinfo2``: bytes in use vs free-but-held, i.e. fragmentation) and the memory
  SQLite itself holds (``sqlite3_memory_used``: page caches, statements, sorters), both through
  ctypes from the libraries this interpreter already loaded;
- the size of the SQLite WAL files in the run's directory (disk, not memory: a WAL that is never
  checkpointed grows with the run);
- with ``--trace``, the Python heap (tracemalloc) and, at the end of each phase, the top growers
  by traceback against the snapshot taken at the start of the load phase.

Comparing two sizes (e.g. 200,000 vs 600,000, then 100,000 vs 1,000,000) shows which of the
three grows with the source. tracemalloc slows the run about threefold; RSS figures without
``--trace`` are the ones to compare with bench_load.py.

Run: .venv/bin/python bench/mem_profile.py N [--trace] [--keep-dups] [--top 12]
(``--keep-dups``: the connector's own duplicate-key set on, as a plain ``open_source`` without
the plan's options does.)
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import gc
import json
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_load  # noqa: E402
import execfix  # noqa: E402  (bench_load put the fixture directory on sys.path)

from runtime.executor import LoadOptions, RunOptions, run_migration  # noqa: E402
from runtime.executor import run as run_mod  # noqa: E402
from runtime.sources import open_source, plan_source_options  # noqa: E402
from runtime.state import StateStore  # noqa: E402


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                                 "usmblks", "fsmblks", "uordblks", "fordblks",
                                                 "keepcost")]


def _libs():
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    mallinfo = getattr(libc, "mallinfo2", None)
    if mallinfo is not None:
        mallinfo.restype = _Mallinfo2
    import _sqlite3

    try:  # the libsqlite3 the sqlite3 module is linked against (same handle: same counters)
        sq = ctypes.CDLL(_sqlite3.__file__)
        used = sq.sqlite3_memory_used
    except (OSError, AttributeError):
        used = None
    if used is not None:
        used.restype = ctypes.c_int64
    return mallinfo, used


MALLINFO, SQLITE_USED = _libs()
MIB = 1048576


class Probe:
    def __init__(self, trace: bool, top: int, work: Path | None = None) -> None:
        self.work = work
        self.trace = trace
        self.top = top
        self.rows: list[dict] = []
        self.phase = "start"
        self.base_snap = None
        self._last = (None, -1)

    def sample(self, where: str) -> None:
        row = {"phase": self.phase, "where": where, "rss": round(bench_load._rss_mib(), 1),
               "maxrss": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
        if MALLINFO is not None:
            mi = MALLINFO()
            row["heap_used"] = round(mi.uordblks / MIB, 1)
            row["heap_free"] = round(mi.fordblks / MIB, 1)
            row["mmapped"] = round(mi.hblkhd / MIB, 1)
        if SQLITE_USED is not None:
            row["sqlite"] = round(SQLITE_USED() / MIB, 1)
        if self.work is not None and self.work.is_dir():  # on disk, not memory: WAL files
            row["wal"] = round(sum(f.stat().st_size for f in self.work.glob("*-wal")) / MIB, 1)
        if self.trace:
            row["py_traced"] = round(tracemalloc.get_traced_memory()[0] / MIB, 1)
        self.rows.append(row)

    def tick(self, what: str, done: int, total: int | None) -> None:
        """Sample at ~10% steps of a phase (every 50,000 when the total is unknown)."""
        step = max(1, (total or 500_000) // 10)
        bucket = done // step
        if (what, bucket) != self._last:
            self._last = (what, bucket)
            self.sample(f"{what} {done}")

    def enter(self, phase: str) -> None:
        self.sample(f"end of {self.phase}")
        self.growers(f"end of {self.phase}")
        self.phase = phase
        if phase == "load" and self.trace:
            gc.collect()
            self.base_snap = tracemalloc.take_snapshot()
        self.sample(f"start of {phase}")

    def growers(self, label: str) -> None:
        if not self.trace or self.base_snap is None:
            return
        snap = tracemalloc.take_snapshot()
        stats = snap.compare_to(self.base_snap, "traceback")
        print(f"-- top Python heap growers since the start of the load phase, at {label}:")
        for s in stats[:self.top]:
            frames = " <- ".join(f"{Path(f.filename).name}:{f.lineno}" for f in s.traceback[:4])
            print(f"   {s.size_diff / MIB:+8.2f} MiB {s.count_diff:+9d} blocks  {frames}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("n", type=int)
    ap.add_argument("--trace", action="store_true", help="tracemalloc (slow)")
    ap.add_argument("--keep-dups", action="store_true",
                    help="connector duplicate-key set on (open_source without the plan options)")
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--json", type=Path, help="write the samples here")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        src = tmp / "src"
        records = bench_load.write_jsonl_source(src, args.n)
        module = execfix.compile_module(tmp / "build")
        gc.collect()
        work = tmp / "work"
        probe = Probe(args.trace, args.top, work)
        if args.trace:
            tracemalloc.start(8)

        # phase boundaries: wrap the executor's steps (this module only; nothing is patched in
        # the runtime for other users)
        real_loader_run = run_mod.Loader.run
        real_adv = run_mod.advance_watermarks

        def loader_run(self, extracted):
            probe.enter("load")
            return real_loader_run(self, extracted)

        def adv(*a, **kw):
            probe.enter("watermarks")
            return real_adv(*a, **kw)

        run_mod.Loader.run = loader_run
        run_mod.advance_watermarks = adv

        work.mkdir()
        opts = {} if args.keep_dups else plan_source_options(module.PLAN.source_config)
        source = open_source(f"jsonl:{src}", options=opts)
        state = StateStore(work / "state.sqlite")
        real_finish = state.finish_run

        def finish_run(*a, **kw):
            probe.enter("counts")  # the per-map counts (finish_run), then closing the stage
            try:
                return real_finish(*a, **kw)
            finally:
                probe.enter("close stage")

        state.finish_run = finish_run
        dest = bench_load.NullDestination()
        probe.enter("stage")
        ropts = RunOptions(
            on_stage_progress=lambda o, k: probe.tick(f"stage {o}", k, None),
            load=LoadOptions(on_progress=lambda s, k, t: probe.tick(f"load {s}", k, t)))
        t0 = time.perf_counter()
        res = run_migration(module, source, dest, state, work / "stage", source_id=str(src),
                            options=ropts)
        wall = time.perf_counter() - t0
        source.close()
        state.close()
        probe.enter("closed")
    cols = ["rss", "maxrss", "heap_used", "heap_free", "mmapped", "sqlite", "wal", "py_traced"]
    cols = [c for c in cols if c in probe.rows[0]]
    print(f"n={records:,} status={res.status} written={res.stats.written:,} wall={wall:.1f}s")
    print(f"{'where':<34}" + "".join(f"{c:>10}" for c in cols))
    for r in probe.rows:
        print(f"{r['where'][:34]:<34}" + "".join(f"{r.get(c, ''):>10}" for c in cols))
    if args.json:
        args.json.write_text(json.dumps({"n": records, "rows": probe.rows}, indent=1))


if __name__ == "__main__":
    main()
