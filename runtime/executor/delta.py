"""Delta runs: watermarks per source object.

After a run, each source object's watermark advances to the latest modified-at T such that every
record modified at or before T (among the records this run read) has a settled outcome in every
map: loaded, skipped or quarantined. A record that failed, or that a stopped run never reached,
holds the watermark below its timestamp, so the next `--delta` run reads it again (and everything
after it: records that were fine come back as "unchanged" and cost no write). Records at exactly T
are remembered by key (ties: many rows often share one export timestamp, a bulk import all of
them), so the next run skips exactly those and no other record at T; the keys go from the stage
to the state file's ``watermark_keys`` in one streamed statement and are looked up one by one,
only for records at T, never loaded whole. Rows arrive in any order; timestamps are compared as
instants (read with the source object's declared format and zone, ISO-8601 otherwise), never as
text; a value that does not parse neither holds nor moves the watermark (the record is read by
every delta run, and the run reports how many there were).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from runtime.executor.stage import Stage
from runtime.plan import Plan
from runtime.sources.base import instant_parser
from runtime.state import StateStore

__all__ = ["advance_watermarks", "settled_watermark"]


def settled_watermark(rows: Iterable[tuple[str, str | None]], bad: set[str],
                      parse: Any = None) -> tuple[str, set[str]] | None:
    """(timestamp, keys at it) for the latest prefix of ``rows`` (key, modified_at) containing no
    bad key; None when the earliest instant already holds a bad key (or there are no rows).
    Rows are grouped by the instant they stand for (``parse``; ISO-8601 by default), so ``...Z``
    and ``...+00:00`` are one tie; rows without a readable timestamp take no part.

    The rule in memory, for reasoning and property tests; ``advance_watermarks`` computes the
    same in SQL so that a run never holds every key."""
    parse = parse or instant_parser()
    by_instant: dict[float, tuple[str, set[str]]] = {}
    for key, ts in rows:
        inst = parse(ts)
        if inst is None:
            continue
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


# the key a split part ("k#2") or a duplicate ("k#dup7") was recorded under belongs to record "k"
_BASE = "CASE WHEN instr({k}, '#') > 0 THEN substr({k}, 1, instr({k}, '#') - 1) ELSE {k} END"


def _first_unsettled(plan: Plan, state: StateStore, run_id: int, obj: str) -> float | None:
    """The earliest instant of a root record of ``obj`` that some map did not settle (no outcome,
    or failed), or None. Runs in SQL over the stage (attached as ``stg``) and the outcomes, so
    memory does not grow with the source: the sets of every key this used to build in Python
    were the largest thing a 1,000,000-record run held. Every table is walked or probed by its
    primary key, so SQLite needs no temporary b-tree either: grouping the outcomes by record
    (and joining the groups through an automatic index) grew with the source;
    tests/runtime/test_watermark_query_plan.py keeps it so."""
    first: float | None = None
    b = _BASE.format(k="s.source_key")
    for st in plan.steps:
        if st.source != obj or st.kind == "merge":
            continue
        row = state.conn.execute(
            # CROSS JOIN keeps the staged rows as the outer loop (each root found by its
            # primary key); left to itself the planner walks roots by instant and scans the
            # step's staged rows for each one: quadratic. The record's outcomes are the ones
            # under its own key and its parts' ("k#..." sort from "k#" to just before "k$"):
            # two primary-key searches; NULL when it has none, 1 when one failed
            f"""SELECT MIN(r.instant) FROM stg.staged s
                CROSS JOIN stg.roots r ON r.source_object = :obj AND r.root_key = s.root_key
                WHERE s.step = :step AND r.instant IS NOT NULL
                AND IFNULL((SELECT MAX(o.outcome = 'failed') FROM outcomes o
                            WHERE o.run_id = :run AND o.map = :step AND (o.source_key = {b}
                            OR (o.source_key >= {b} || '#' AND o.source_key < {b} || '$'))), 1)""",
            {"obj": obj, "step": st.name, "run": run_id}).fetchone()
        if row[0] is not None and (first is None or row[0] < first):
            first = row[0]
    return first


def _keys_at(state: StateStore, obj: str, instant: float) -> Iterator[str]:
    """The staged root keys of ``obj`` at ``instant``, streamed (every key of a bulk import that
    stamped all rows alike); the query starts when the store's write transaction reads the first."""
    for (k,) in state.conn.execute(
            "SELECT root_key FROM stg.roots WHERE source_object = ? AND instant = ? "
            "ORDER BY root_key", (obj, instant)):
        yield k


def advance_watermarks(plan: Plan, stage: Stage, state: StateStore, run_id: int,
                       parsers: dict[str, Any] | None = None) -> dict[str, str]:
    """Advance each source object's watermark to the latest instant before the first unsettled
    record (``settled_watermark``'s rule, computed in SQL on the instants the stage recorded).
    ``parsers``: per object, the instant parser its timestamps were read with."""
    moved: dict[str, str] = {}
    objects = sorted({st.source for st in plan.steps})
    timed = [o for o in objects if stage.conn.execute(
        "SELECT 1 FROM roots WHERE source_object = ? AND instant IS NOT NULL LIMIT 1",
        (o,)).fetchone()]
    if not timed:
        return moved
    stage.commit()
    with state.attached(stage.path, "stg"):
        for obj in timed:
            bound = _first_unsettled(plan, state, run_id, obj)
            q = "SELECT MAX(instant) FROM stg.roots WHERE source_object = ? AND instant IS NOT NULL"
            args: tuple = (obj,)
            if bound is not None:
                q += " AND instant < ?"
                args = (obj, bound)
            top = state.conn.execute(q, args).fetchone()[0]
            if top is None:
                continue  # the earliest instant already holds an unsettled record
            ts = state.conn.execute(
                "SELECT MIN(modified_at) FROM stg.roots WHERE source_object = ? AND instant = ?",
                (obj, top)).fetchone()[0]
            wm = state.advance_watermark(obj, ts, _keys_at(state, obj, top), run_id=run_id,
                                         parse=(parsers or {}).get(obj))
            moved[obj] = wm.modified_at
    return moved
