"""Share of Freshsales' hourly request ceiling that the connector reaches.

    .venv/bin/python bench/ceiling_freshsales.py [--records 20000] [--limit 100]

Freshsales meters requests per account per clock hour (Growth: 1,000; API_NOTES.md 3.7) and
answers 429 once the hour's count is spent. The run is ``FreshsalesClient.upsert`` in chunks of
100 records (``bulk_upsert`` jobs: a read of which records exist, the POST, job polls until done,
the read-back through the unique identifier) over httpx -> the ASGI sandbox -> SQLite, with the
sandbox enforcing ``--limit`` requests per hour on a **fake clock** shared with the client's
sleeps, so many hours pass in seconds. A 429 (``Retry-After`` = seconds to the next hour) is waited
out and the upsert re-sent, as the executor does.

The ceiling is in requests per (simulated) second, ``limit / 3600``. Since windows are fixed
clock hours and the run starts at the top of one, the requests the limit allows over a run of
``elapsed`` seconds are ``limit x (elapsed / 3600 + 1)`` (the hour open at the end counts whole);
achieved = accepted requests / (elapsed + 3600), share = achieved / ceiling. Target: >= 90 %.
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
from runtime.dialects.freshsales import open_sandbox  # noqa: E402
from runtime.executor.ratelimit import Backoff  # noqa: E402

WINDOW = 3600.0


def _batches(n: int):
    for start in range(0, n, 100):
        yield [WriteItem(f"c{i}", f"c{i}", {"first_name": "Bench", "last_name": f"Patient {i}",
                                            "mobile_number": "+44 20 7946 0000"})
               for i in range(start, min(start + 100, n))]


def ceiling(n: int, tmp: Path, limit: int = 100) -> dict:
    """Upsert ``n`` contacts under ``limit`` requests per hour (fake clock) and measure."""
    clock = FakeClock()
    dest = open_sandbox(get_dialect("freshsales").standard_schema(), tmp / "ceiling.sqlite",
                        None, {"limit": str(limit), "clock": clock, "sleep": clock.sleep})
    sandbox = dest.sandbox
    backoff = Backoff(seed=1)
    written = 0
    resent = 0
    try:
        t0 = time.perf_counter()
        for batch in _batches(n):
            attempt = 0
            while True:
                try:
                    results = dest.upsert("Contact", batch)
                except TransientError as exc:
                    attempt += 1
                    resent += 1
                    clock.sleep(backoff.delay(attempt, exc.retry_after))
                    continue
                written += sum(r.ok for r in results)
                break
        wall = time.perf_counter() - t0
        accepted = sandbox.requests - sandbox.throttled
        throttled = sandbox.throttled
        sandbox.ledger.limit = float("inf")  # count what landed outside the measurement
        stored = dest.count("Contact")
    finally:
        dest.close()
    elapsed = clock.t
    ceiling_rate = limit / WINDOW
    achieved = accepted / (elapsed + WINDOW)
    return {
        "dialect": "freshsales",
        "model": f"{limit} requests per clock hour per account (429 + Retry-After when spent); "
                 "bulk_upsert 100 records a job",
        "records": written, "calls": accepted, "ceiling": round(ceiling_rate, 6),
        "achieved": round(achieved, 6), "share": round(achieved / ceiling_rate, 4),
        "records_per_call": round(written / accepted, 2) if accepted else None,
        "throttled_429": throttled, "upserts_resent": resent,
        "stored": stored, "simulated_hours": round(elapsed / WINDOW, 2),
        "wall_seconds": round(wall, 2),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=20000)
    ap.add_argument("--limit", type=int, default=100, help="requests per hour (scaled down)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        out = ceiling(args.records, Path(d), args.limit)
    print(json.dumps(out))
    ok = out["share"] >= 0.9 and out["stored"] == args.records
    print(f"ceiling share {out['share']:.1%} (target >= 90%): {'ok' if ok else 'LOW'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
