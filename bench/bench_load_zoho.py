"""Load throughput through the in-process Zoho sandbox, and the share of the credit ceiling a
paced client reaches.

    .venv/bin/python bench/bench_load_zoho.py [--records 20000] [--windows 10]

Two runs, both ``ZohoClient.upsert`` in batches of 100 over HTTP (httpx -> the sync ASGI adapter ->
the sandbox -> SQLite):

1. **raw**: no credit limit: records/s through the whole stack (wall clock).
2. **paced**: a configured tier (Professional, with its credit limit scaled down to
   ``--credits`` per ``--window`` seconds so many windows pass in a short run) on a **fake clock**
   shared by the sandbox's rolling-window ledger and the client's pacing (the executor's
   ``TokenBucket`` fed by ``capabilities.rate_limit``, and ``Backoff`` honouring 429's
   ``retry_after``). The share of the ceiling is credits spent / credits the rolling window allows
   over the run (``limit x (elapsed / window + 1)``: a full window at the start, then one per
   window). Target: >= 90 %.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fakeclock import FakeClock  # noqa: E402

from runtime.destinations.base import TransientError, WriteItem  # noqa: E402
from runtime.dialects import get_dialect  # noqa: E402
from runtime.dialects.zoho import open_sandbox  # noqa: E402
from runtime.dialects.zoho.ratelimit import write_cost  # noqa: E402
from runtime.executor.ratelimit import Backoff, TokenBucket  # noqa: E402


def _batches(n: int, prefix: str):
    for start in range(0, n, 100):
        yield [WriteItem(f"{prefix}:{i}", f"{prefix}:{i}",
                         {"Last_Name": f"Patient {i}", "First_Name": "Bench",
                          "Email": f"p{i}@example.org", "Phone": "+44 20 7946 0000"})
               for i in range(start, min(start + 100, n))]


def run_raw(n: int, tmp: Path) -> dict:
    dest = open_sandbox(get_dialect("zoho").standard_schema(), tmp / "raw.sqlite", None,
                        {"credits": "1e12"})
    try:
        t0 = time.perf_counter()
        written = 0
        for batch in _batches(n, "raw"):
            written += sum(r.ok for r in dest.upsert("Contacts", batch))
        wall = time.perf_counter() - t0
    finally:
        dest.close()
    return {"run": "raw", "records": written, "seconds": round(wall, 2),
            "records_per_s": round(written / wall)}


def run_paced(n: int, credits: float, window: float, tmp: Path) -> dict:
    clock = FakeClock()
    dest = open_sandbox(get_dialect("zoho").standard_schema(), tmp / "paced.sqlite", None,
                        {"edition": "professional", "credits": str(credits),
                         "window": str(window), "clock": clock})
    rl = dest.capabilities.rate_limit
    bucket = TokenBucket(rl.per_window, rl.window_seconds, clock=clock, sleep=clock.sleep)
    backoff = Backoff(seed=1)
    spent = 0.0
    written = 0
    throttled = 0
    try:
        t0 = time.perf_counter()
        for batch in _batches(n, "paced"):
            attempt = 0
            while True:
                bucket.acquire(rl.write_cost_per_call + rl.write_cost_per_record * len(batch))
                try:
                    results = dest.upsert("Contacts", batch)
                except TransientError as exc:
                    attempt += 1
                    throttled += 1
                    clock.sleep(backoff.delay(attempt, exc.retry_after))
                    continue
                spent += write_cost(len(batch))
                written += sum(r.ok for r in results)
                break
        wall = time.perf_counter() - t0
    finally:
        dest.close()
    elapsed = clock.t
    allowed = credits * (elapsed / window + 1)
    return {"run": "paced", "records": written, "seconds": round(wall, 2),
            "records_per_s": round(written / wall), "simulated_s": round(elapsed, 1),
            "windows": round(elapsed / window, 2), "credits_spent": spent,
            "credits_allowed": round(allowed, 1), "ceiling_share": round(spent / allowed, 4),
            "throttled_429": throttled,
            "records_per_simulated_s": round(written / elapsed, 2) if elapsed else None,
            "ceiling_records_per_simulated_s": round(credits * 10 / window, 2)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=20000, help="records for the raw run")
    ap.add_argument("--credits", type=float, default=300, help="credits per window (paced)")
    ap.add_argument("--window", type=float, default=60.0, help="window seconds (paced)")
    ap.add_argument("--windows", type=int, default=10, help="windows the paced run spans")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        raw = run_raw(args.records, tmp)
        print(json.dumps(raw))
        paced_n = int(args.credits * 10 * args.windows)
        paced = run_paced(paced_n, args.credits, args.window, tmp)
        print(json.dumps(paced))
    ok = paced["ceiling_share"] >= 0.9
    print(f"ceiling share {paced['ceiling_share']:.1%} (target >= 90%): {'ok' if ok else 'LOW'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
