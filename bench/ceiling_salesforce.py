"""Share of Salesforce's rolling request allocation that the connector reaches.

    .venv/bin/python bench/ceiling_salesforce.py [--records 20000] [--limit 10] [--window 60]
        [--reserve 0.03]

Salesforce allows an org L API requests in any rolling 24 h (100,000 + 1,000 per licence on
Enterprise; API_NOTES.md 2.7) and answers 403 ``REQUEST_LIMIT_EXCEEDED`` once they are spent, which
the connector treats as fatal (the day is gone). The run is ``upsert`` of ``--records`` contacts
in executor-sized batches by the client of ``open_sandbox`` (``sandbox:salesforce``) with its
**default pacing** (the :class:`RollingWindowPacer` every run gets, learning the org's usage from
``Sforce-Limit-Info`` and keeping ``api_reserve`` back; nothing attached by hand), over httpx ->
the in-process sandbox -> SQLite, with the sandbox enforcing ``--limit`` requests per rolling
``--window`` seconds (the 24 h allocation scaled down) on a **fake clock** that the sandbox, the
pacer and Bulk's polls share (``api_clock`` / ``api_sleep``), so many windows pass in seconds.
A reserve is whole requests: ``round(limit x reserve)`` (0 of 10 at the defaults; 3,300 of an
Enterprise org's 110,000). Measured: 100.0 % at the defaults (100 requests, 0 403s; Bulk 16
requests for 20,000 records, all paced); ``--limit 20 --records 38000``: 95.0 %, the reserve (1 of
20) being the only loss.

Main figures: sObject Collections (200 records per request, Bulk off). The ceiling is in requests
per simulated second, ``limit / window``; the rolling window starts full, so a run of ``elapsed``
seconds may send at most ``limit x (elapsed / window + 1)``; achieved = requests /
(elapsed + window); share = achieved / ceiling. Target: >= 90 %. A second run with Bulk API 2.0
(10,000-record jobs) under the same limit gives ``bulk_records_per_call`` and its records per
simulated second, the reason Bulk is used above ``bulk_threshold``. A third run starts on a busy
org (half the window already spent by other integrations, ``api_used``): the pacer learns it from
the first answer and the run still meets no 403 (``busy_*``).
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

from runtime.destinations.base import WriteItem  # noqa: E402
from runtime.dialects import get_dialect  # noqa: E402
from runtime.dialects.salesforce import open_sandbox  # noqa: E402
from runtime.dialects.salesforce.ratelimit import DEFAULT_RESERVE  # noqa: E402

COLLECTION = 200


def _run(n: int, db: Path, limit: int, window: float, *, bulk: bool,
         reserve: float = DEFAULT_RESERVE, used: int = 0) -> dict:
    clock = FakeClock(min_sleep=0.0)
    options = {"api_limit": str(limit), "api_window": window, "api_clock": clock,
               "api_sleep": clock.sleep, "api_used": str(used), "bulk_poll_interval": "1",
               "bulk_threshold": "2000" if bulk else "off"}
    if reserve != DEFAULT_RESERVE:
        options["api_reserve"] = str(reserve)
    client = open_sandbox(get_dialect("salesforce").standard_schema(), db, None, options)
    sb = client.sandbox
    pacer = client.pacer
    batch = client.capabilities.bulk_batch_size or client.capabilities.batch_size
    written = 0
    try:
        t0 = time.perf_counter()
        for start in range(0, n, batch):
            items = [WriteItem(f"c{i}", f"c{i}", {"LastName": f"Patient {i}", "FirstName": "Bench",
                                                  "Email": f"p{i}@example.org"})
                     for i in range(start, min(start + batch, n))]
            written += sum(r.ok for r in client.upsert("Contact", items))
        wall = time.perf_counter() - t0
        stored = sb.store.count("Contact")
        calls, limited = sb.requests, sb.limited
    finally:
        client.close()
    elapsed = clock.t
    return {"records": written, "stored": stored, "calls": calls, "limited_403": limited,
            "simulated_s": elapsed, "wall_s": wall, "paced": pacer.sent,
            "usable": pacer.limit, "elsewhere": pacer.elsewhere}


def ceiling(n: int, tmp: Path, limit: int = 10, window: float = 60.0,
            reserve: float = DEFAULT_RESERVE) -> dict:
    """Upsert ``n`` contacts under ``limit`` requests per rolling ``window`` s and measure."""
    sync = _run(n, tmp / "collections.sqlite", limit, window, bulk=False, reserve=reserve)
    bulk = _run(n, tmp / "bulk.sqlite", limit, window, bulk=True, reserve=reserve)
    busy = _run(n // 4, tmp / "busy.sqlite", limit, window, bulk=False, reserve=reserve,
                used=limit // 2)
    per_s = limit / window
    achieved = sync["calls"] / (sync["simulated_s"] + window)
    return {
        "dialect": "salesforce",
        "model": (f"requests per rolling window (24 h allocation scaled to {limit} per "
                  f"{window:g} s, 403 REQUEST_LIMIT_EXCEEDED beyond); sObject Collections, "
                  f"{COLLECTION} records per request; the default client pacing"),
        "pacing": "default (open_sandbox)", "reserve": reserve,
        "reserve_requests": limit - sync["usable"], "paced_calls": sync["paced"],
        "records": sync["records"], "stored": sync["stored"], "calls": sync["calls"],
        "ceiling": round(per_s, 4), "ceiling_records_per_s": round(per_s * COLLECTION, 2),
        "achieved": round(achieved, 4),
        "achieved_records_per_s": round(sync["records"] / (sync["simulated_s"] + window), 2),
        "share": round(achieved / per_s, 4),
        "limited_403": sync["limited_403"], "simulated_s": round(sync["simulated_s"], 1),
        "windows": round(sync["simulated_s"] / window, 2), "wall_s": round(sync["wall_s"], 2),
        "bulk_records": bulk["records"], "bulk_calls": bulk["calls"],
        "bulk_records_per_call": round(bulk["records"] / bulk["calls"], 1),
        "bulk_limited_403": bulk["limited_403"], "bulk_paced_calls": bulk["paced"],
        "bulk_records_per_simulated_s": round(bulk["records"] / (bulk["simulated_s"] + window),
                                              2),
        "busy_preset_used": limit // 2, "busy_learnt_elsewhere": busy["elsewhere"],
        "busy_records": busy["stored"], "busy_limited_403": busy["limited_403"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=20000)
    ap.add_argument("--limit", type=int, default=10, help="requests per window (scaled down)")
    ap.add_argument("--window", type=float, default=60.0, help="window seconds (simulated)")
    ap.add_argument("--reserve", type=float, default=DEFAULT_RESERVE,
                    help="api_reserve: share of the allocation the client keeps back")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        out = ceiling(args.records, Path(d), args.limit, args.window, args.reserve)
    print(json.dumps(out))
    ok = (out["share"] >= 0.9 and out["stored"] == args.records and out["limited_403"] == 0
          and out["bulk_limited_403"] == 0 and out["busy_limited_403"] == 0
          and out["paced_calls"] == out["calls"] and out["bulk_paced_calls"] == out["bulk_calls"])
    print(f"ceiling share {out['share']:.1%} (target >= 90%): {'ok' if ok else 'LOW'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
