"""Delta runs: watermarks per source object.

After a run, each source object's watermark advances to the latest modified-at T such that every
record modified at or before T (among the records this run read) has a settled outcome in every
map: loaded, skipped or quarantined. A record that failed, or that a stopped run never reached,
holds the watermark below its timestamp, so the next `--delta` run reads it again (and everything
after it: records that were fine come back as "unchanged" and cost no write). Records at exactly T
are remembered by key (ties: many rows often share one export timestamp), so the next run skips
exactly those and no other record at T. Rows arrive in any order; timestamps are compared as
instants (ISO with offsets), not as text.
"""

from __future__ import annotations

from collections.abc import Iterable

from runtime.executor.stage import Stage
from runtime.plan import Plan
from runtime.state import StateStore

__all__ = ["advance_watermarks", "settled_watermark"]


def _instant(ts: str):
    from datetime import UTC, datetime

    try:
        d = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return (1, ts)  # not a timestamp: order after parseable ones, as text
    if d.tzinfo is None:
        d = d.replace(tzinfo=UTC)
    return (0, d.timestamp())


def settled_watermark(rows: Iterable[tuple[str, str | None]], bad: set[str]
                      ) -> tuple[str, set[str]] | None:
    """(timestamp, keys at it) for the latest prefix of ``rows`` (key, modified_at) containing no
    bad key; None when the earliest instant already holds a bad key (or there are no rows).
    Rows are grouped by the instant they stand for, so ``...Z`` and ``...+00:00`` are one tie."""
    by_instant: dict[tuple, tuple[str, set[str]]] = {}
    for key, ts in rows:
        if ts is None:
            continue
        inst = _instant(ts)
        if inst not in by_instant:
            by_instant[inst] = (ts, set())
        by_instant[inst][1].add(key)
    best: tuple[str, set[str]] | None = None
    for inst in sorted(by_instant):
        ts, keys = by_instant[inst]
        if keys & bad:
            break
        best = (ts, keys)
    return best


def _bad_roots(plan: Plan, stage: Stage, state: StateStore, run_id: int, obj: str) -> set[str]:
    bad: set[str] = set()
    for st in plan.steps:
        if st.source != obj or st.kind == "merge":
            continue
        present: set[str] = set()
        failed: set[str] = set()
        for key, outcome in state.conn.execute(
            "SELECT source_key, outcome FROM outcomes WHERE run_id = ? AND map = ?",
            (run_id, st.name),
        ):
            base = key.split("#", 1)[0]
            present.add(base)
            if outcome == "failed":
                failed.add(base)
        for source_key, root_key in stage.root_keys_by_step(st.name):
            base = source_key.split("#", 1)[0]
            if base not in present or base in failed:
                bad.add(root_key)
    return bad


def advance_watermarks(plan: Plan, stage: Stage, state: StateStore, run_id: int) -> dict[str, str]:
    moved: dict[str, str] = {}
    for obj in sorted({st.source for st in plan.steps}):
        bad = _bad_roots(plan, stage, state, run_id, obj)
        found = settled_watermark(stage.roots(obj), bad)
        if found is not None:
            ts, keys = found
            wm = state.advance_watermark(obj, ts, keys, run_id=run_id)
            moved[obj] = wm.modified_at
    return moved
