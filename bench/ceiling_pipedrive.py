"""The share of Pipedrive's token budget the client reaches, through the real client -> the
sandbox (over the sync ASGI transport) -> SQLite.

    .venv/bin/python bench/ceiling_pipedrive.py [--records 3000]

Pipedrive meters a daily token budget per company (30,000 x plan multiplier x seats; each call
priced by the spec's ``x-token-cost``: a v2 create is 5 tokens) and a rolling 2 s burst window
per token (Growth: 40 requests). Both are scaled down here on a fake clock shared by the
sandbox's ledger and the client's pacing: a "day" of ``DAY_S`` fake seconds with a budget of
``BUDGET`` tokens, reset at each day boundary like Pipedrive's server midnight. The client
learns the remaining budget from ``x-daily-ratelimit-token-remaining`` and stops before a call
would overdraw it (no 429, no 403 lockout); as ``fmap run --resume`` would, the bench then
waits for the next day and continues with a new client (which reads the fields metadata again:
that is part of the cost). The ceiling is ``BUDGET / 5`` person creates per day; the share is
tokens spent over tokens the days used allowed, and creates done over creates allowed. The
burst window is measured too: requests per fake second within a day against 40 per 2 s.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from runtime.destinations.base import FatalError, WriteItem  # noqa: E402
from runtime.dialects import get_dialect  # noqa: E402
from runtime.dialects.pipedrive import VirtualClock  # noqa: E402
from runtime.dialects.pipedrive.auth import PipedriveCredentials  # noqa: E402
from runtime.dialects.pipedrive.client import PipedriveClient, plan_limits, token_cost  # noqa: E402
from runtime.dialects.pipedrive.sandbox import PipedriveSandbox, SyncASGITransport  # noqa: E402

BUDGET = 5_000  # tokens per scaled day
DAY_S = 600.0  # fake seconds per day: the burst window (20 req/s) could spend 60,000 tokens
PLAN = "growth"


def ceiling(n: int, tmp: Path) -> dict:
    clock = VirtualClock(start=0.0)
    sandbox = PipedriveSandbox(get_dialect("pipedrive").standard_schema(), tmp / "pd.sqlite",
                               plan=PLAN, daily_budget=BUDGET, day_seconds=DAY_S, clock=clock)
    create_cost = token_cost("v2", "POST", "/persons")
    _, burst = plan_limits(PLAN)
    written = calls = days = throttled = 0
    spent_total = 0
    busy_s = 0.0  # fake seconds spent sending (a day's work, not the wait for midnight)
    burst_allowed = 0.0  # requests the rolling 2 s window allowed while sending
    t0 = time.perf_counter()
    try:
        while written < n:
            days += 1
            day_start = clock()
            transport = SyncASGITransport(sandbox)
            http = httpx.Client(transport=transport, timeout=60.0)
            client = PipedriveClient(
                base_url="http://pipedrive-sandbox.invalid",
                credentials=PipedriveCredentials(api_token=sandbox.token, source="sandbox"),
                http=http, schema=sandbox.schema(), plan=PLAN, clock=clock, sleep=clock.sleep,
                name="bench")
            try:
                while written < n:
                    i = written
                    try:
                        r = client.create("Person", [WriteItem(
                            f"b:{i}", None, {"name": f"Patient {i}",
                                             "emails": f"p{i}@example.org"})])[0]
                    except FatalError:  # the budget is nearly spent: stop before a 429
                        break
                    written += int(r.ok)
                busy_s += clock() - day_start
                # a full window at the start, then one per 2 s
                burst_allowed += burst * ((clock() - day_start) / 2.0 + 1)
            finally:
                spent_total += client.tokens_spent
                calls += client.stats.calls
                throttled += client.stats.throttled
                client.close()
                http.close()
                transport.close()
            if written < n:  # wait for the reset, then resume
                clock.now = (int(clock() // DAY_S) + 1) * DAY_S
    finally:
        sandbox.close()
    wall = time.perf_counter() - t0
    # the last day is counted in full only if its budget was used up; else by what it used
    allowed = BUDGET * days
    last_day_spent = sandbox.ledger.spent
    if written >= n and last_day_spent < BUDGET:
        allowed = BUDGET * (days - 1) + last_day_spent
    per_day_ceiling = BUDGET // create_cost
    records_allowed = allowed / create_cost
    return {
        "dialect": "pipedrive",
        "model": (f"daily token budget {BUDGET} tokens per {DAY_S:g} s fake day (scaled from "
                  f"30,000 x multiplier x seats per 24 h; create = {create_cost} tokens, "
                  f"x-token-cost) + {burst} requests per 2 s burst window, fake clock"),
        "records": written,
        "calls": calls,
        "days": days,
        "tokens_spent": spent_total,
        "tokens_allowed": allowed,
        "token_share": round(spent_total / allowed, 4),
        "ceiling": round(per_day_ceiling / DAY_S, 4),  # records per fake second the budget allows
        "achieved": round(written / (records_allowed / per_day_ceiling * DAY_S), 4),
        "share": round(written / records_allowed, 4),
        "burst_ceiling_rps": burst / 2.0,
        "burst_achieved_rps": round(calls / busy_s, 2) if busy_s else None,
        "burst_share": round(calls / burst_allowed, 4) if burst_allowed else None,
        "throttled_429": throttled,
        "lockouts_403": len(sandbox.ledger.locked_until),
        "wall_s": round(wall, 2),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=3000)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        out = ceiling(args.records, Path(d))
    print(json.dumps(out, indent=1))
    ok = out["share"] >= 0.9
    print(f"share of the token budget {out['share']:.1%} (target >= 90%): "
          f"{'ok' if ok else 'LOW'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
