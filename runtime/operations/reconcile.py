"""`fmap reconcile`: does the destination hold what the journal says the run loaded?

Per target object:

- **source** count: what each map extracted in the run (``StateStore.counts``), optionally
  re-counted from the source (``source_counts``, per source object);
- **journal** count: records with a confirmed create/upsert/update in the run;
- **destination** count: ``dest.count(obj)``, and of those the records that are ours (their
  ``$external_id`` is one fmap gave, or their id is in the id map), from ``list_records``;
- a **spot check**: a share of the run's loaded records read back with ``dest.get`` and compared
  field by field (:func:`compare_record`) with the values fmap wrote (``ops.written``);
- **attachments**: uploaded files on our records (when the destination can list them).

Every difference is explained (records skipped, quarantined, failed, unchanged, with counts and
reasons) or flagged. Flags make ``ok`` False.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from runtime.executor.load import ATTACHMENT_OBJECTS, is_file_namespace
from runtime.operations.compare import FieldDiff, compare_record
from runtime.operations.rollback import expected_state
from runtime.state import StateStore

__all__ = ["Reconciliation", "ObjectReconciliation", "SpotCheck", "reconcile_run", "journal_targets"]


@dataclass
class SpotCheck:
    target_object: str
    destination_id: str
    map: str
    source_key: str | None
    diffs: list[FieldDiff]
    found: bool = True

    @property
    def ok(self) -> bool:
        return self.found and all(d.ok for d in self.diffs)


@dataclass
class ObjectReconciliation:
    target_object: str
    maps: list[str]
    source: int = 0  # records the maps extracted
    source_recount: int | None = None
    outcomes: dict[str, int] = field(default_factory=dict)  # created/updated/unchanged/...
    journal: int = 0  # records with a confirmed write in this run
    id_map: int = 0  # records fmap knows in this object (all runs)
    destination: int | None = None  # dest.count
    ours_in_destination: int | None = None
    missing_in_destination: list[str] = field(default_factory=list)  # our ids not found
    per_map: dict[str, dict[str, int]] = field(default_factory=dict)  # map -> counts
    reasons: list[dict[str, Any]] = field(default_factory=list)  # {map, outcome, reason, count}
    sampled: int = 0
    sample_mismatches: int = 0
    attachments_expected: int | None = None
    attachments_found: int | None = None
    explained: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)


@dataclass
class Reconciliation:
    run_id: int
    migration: str
    objects: list[ObjectReconciliation]
    spot_checks: list[SpotCheck]
    sample_share: float

    @property
    def flags(self) -> list[str]:
        return [f"{o.target_object}: {f}" for o in self.objects for f in o.flags]

    @property
    def ok(self) -> bool:
        return not self.flags


def journal_targets(store: StateStore, run_id: int) -> dict[str, str]:
    """outcome namespace (step name) -> target object, from the run's journal (the run report
    names targets from here too). A step's uploaded files sit beside its records under their own
    namespace and target; they are not the step's target."""
    out: dict[str, str] = {}
    for m, obj in store.conn.execute(
            "SELECT DISTINCT map, target_object FROM ops WHERE run_id = ?", (run_id,)):
        if not is_file_namespace(m):
            out.setdefault(m.split("@", 1)[0], obj)
    return out


def reconcile_run(store: StateStore, dest: Any, run_id: int, *, plan: Any = None,
                  sample_share: float = 0.1, seed: int = 0,
                  source_counts: dict[str, int] | None = None,
                  schema: Any = None) -> Reconciliation:
    run = store.get_run(run_id)
    counts = store.counts(run_id)
    targets = journal_targets(store, run_id)
    steps = {s.name: s for s in getattr(plan, "steps", ())}
    for name, st in steps.items():
        obj = st.target
        if st.kind == "merge":
            try:
                obj = plan.step(st.target).target
            except KeyError:
                pass
        targets.setdefault(name, obj)
        if st.deferred_fields:
            targets.setdefault(f"{name}:deferred", obj)
    by_obj: dict[str, list[str]] = {}
    for m in counts:
        obj = targets.get(m) or targets.get(m.split(":", 1)[0])
        if obj is None:
            obj = "(nothing loaded)"
        by_obj.setdefault(obj, []).append(m)
    if schema is None:
        try:
            schema = dest.schema()
        except Exception:  # noqa: BLE001
            schema = None
    oschemas = {o.api_name: o for o in getattr(schema, "objects", [])}
    rng = random.Random(seed)
    objects: list[ObjectReconciliation] = []
    spot: list[SpotCheck] = []
    for obj in sorted(by_obj, key=lambda o: min(_first_op(store, run_id, m) for m in by_obj[o])):
        maps = by_obj[obj]
        r = ObjectReconciliation(obj, maps)
        primary = [m for m in maps if "." not in m.split("->")[0] and ":" not in m
                   and not _is_merge(steps, m)]
        for m in maps:
            c = counts[m]
            for k in ("created", "updated", "unchanged", "skipped", "quarantined", "failed",
                      "pending"):
                r.outcomes[k] = r.outcomes.get(k, 0) + c.get(k, 0)
            r.source += c["extracted"] if m in primary else 0
            r.per_map[m] = dict(c)
            _explain_map(store, run_id, m, c, r)
        if source_counts:
            src = {getattr(steps.get(m), "source", None) for m in primary} - {None}
            if src:
                r.source_recount = sum(source_counts.get(s, 0) for s in src)
                if r.source_recount != r.source:
                    r.flags.append(f"the source now holds {r.source_recount} record(s); the run "
                                   f"extracted {r.source}")
        written = _written_records(store, run_id, obj)
        r.journal = len(written)
        ids = {d for (d,) in store.conn.execute(
            "SELECT DISTINCT destination_id FROM id_map WHERE target_object = ?", (obj,))}
        r.id_map = len(ids)
        if obj in ATTACHMENT_OBJECTS:
            # files uploaded to other records: CRMs cannot count or list them across records,
            # and each upload was confirmed (and de-duplicated by key) when it was made
            r.explained.append(f"{r.journal} file(s) uploaded to their records; files are "
                               "confirmed per upload, not counted in the destination")
        elif obj in oschemas or schema is None:
            _destination_counts(store, dest, obj, ids, r)
            picks = [(d, written[d]) for d in _pick(rng, sorted(written), sample_share)]
            r.sampled = len(picks)
            found = dest.get(obj, [d for d, _ in picks]) if picks else {}
            unverifiable = 0
            for did, (m, key) in picks:
                expected = expected_state(store.ops_for_destination(obj, did))
                if did not in found:
                    sc = SpotCheck(obj, did, m, key, [], found=False)
                elif expected is None:
                    unverifiable += 1
                    continue
                else:
                    sc = SpotCheck(obj, did, m, key,
                                   compare_record(expected, found[did], oschemas.get(obj)))
                spot.append(sc)
                if not sc.ok:
                    r.sample_mismatches += 1
            if unverifiable:
                r.explained.append(f"{unverifiable} sampled record(s) could not be compared: the "
                                   "journal holds no written values for them")
            if r.sample_mismatches:
                r.flags.append(f"{r.sample_mismatches} of {r.sampled} spot-checked record(s) "
                               "differ from what fmap wrote")
            _attachments(store, dest, obj, maps, steps, ids, r)
        _summarise(r, primary)
        objects.append(r)
    return Reconciliation(run_id, run.migration, objects, spot, sample_share)


def _is_merge(steps: dict, m: str) -> bool:
    st = steps.get(m)
    return (st is not None and st.kind == "merge") or ("->" in m and "." in m.split("->")[0])


def _first_op(store: StateStore, run_id: int, m: str) -> int:
    row = store.conn.execute(
        "SELECT MIN(id) FROM ops WHERE run_id = ? AND (map = ? OR map LIKE ?)",
        (run_id, m, m + "@%")).fetchone()
    return row[0] if row and row[0] is not None else 1 << 62


def _explain_map(store: StateStore, run_id: int, m: str, c: dict, r: ObjectReconciliation) -> None:
    for outcome in ("skipped", "quarantined", "failed"):
        if not c.get(outcome):
            continue
        reasons = Counter(d or "(no reason)" for (d,) in store.conn.execute(
            "SELECT detail FROM outcomes WHERE run_id = ? AND map = ? AND outcome = ?",
            (run_id, m, outcome)))
        for why, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])):
            r.reasons.append({"map": m, "outcome": outcome, "reason": why, "count": n})


def _written_records(store: StateStore, run_id: int, obj: str) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for did, m, key in store.conn.execute(
            "SELECT destination_id, map, source_key FROM ops WHERE run_id = ? AND target_object = ? "
            "AND state = 'confirmed' AND op IN ('create','upsert','update') "
            "AND destination_id IS NOT NULL ORDER BY id", (run_id, obj)):
        out.setdefault(did, (m, key))
    return out


def _pick(rng: random.Random, ids: list[str], share: float) -> list:
    if not ids or share <= 0:
        return []
    n = min(len(ids), max(1, round(len(ids) * share)))
    return sorted(rng.sample(ids, n))


def _destination_counts(store: StateStore, dest: Any, obj: str, ids: set[str],
                        r: ObjectReconciliation) -> None:
    ext_ids = {e for (e,) in store.conn.execute(
        "SELECT DISTINCT external_id FROM ops WHERE target_object = ? AND external_id IS NOT NULL "
        "AND state = 'confirmed' AND op IN ('create','upsert')", (obj,))}
    r.destination = dest.count(obj)
    live = list(dest.list_records(obj))
    ours = {rec.get("id") for rec in live
            if rec.get("$external_id") in ext_ids or rec.get("id") in ids}
    r.ours_in_destination = len(ours)
    r.missing_in_destination = sorted(ids - {rec.get("id") for rec in live})
    if r.missing_in_destination:
        r.flags.append(f"{len(r.missing_in_destination)} record(s) in the id map are not in the "
                       "destination (deleted there?)")


def _attachments(store: StateStore, dest: Any, obj: str, maps: list[str], steps: dict,
                 ids: set[str], r: ObjectReconciliation) -> None:
    attach_maps = [m for m in maps if getattr(steps.get(m), "attach", None) is not None]
    if not attach_maps or not hasattr(dest, "attachments"):
        return
    expected = 0
    for m in attach_maps:  # one file per record the attachment map created (and still holds)
        (n,) = store.conn.execute(
            "SELECT COUNT(*) FROM ops WHERE map = ? AND state = 'confirmed' "
            "AND op IN ('create','upsert') AND undone_by IS NULL", (m,)).fetchone()
        expected += n
    r.attachments_expected = expected
    r.attachments_found = sum(len(dest.attachments(obj, d)) for d in ids)
    if r.attachments_found != expected:
        r.flags.append(f"{expected} attachment(s) expected, {r.attachments_found} found")


def _summarise(r: ObjectReconciliation, primary: list[str]) -> None:
    keys = ("created", "updated", "unchanged", "skipped", "quarantined", "failed", "pending")
    for m, c in r.per_map.items():
        if m in primary:
            what = "source record(s)"
        elif m.endswith(":deferred"):
            what = "loaded record(s) whose deferred lookups to fill"
        else:
            what = "parent record(s) to update"
        parts = [f"{c[k]} {k}" for k in keys if c.get(k)]
        r.explained.append(f"{m}: {c['extracted']} {what} = {' + '.join(parts) or 'nothing'}")
    for x in r.reasons:
        r.explained.append(f"{x['map']}: {x['count']} {x['outcome']}: {x['reason']}")
    o = r.outcomes
    if o.get("pending"):
        r.flags.append(f"{o['pending']} record(s) have no outcome (run incomplete)")
    if r.destination is not None and r.ours_in_destination is not None:
        other = r.destination - r.ours_in_destination
        if other > 0:
            r.explained.append(f"{other} record(s) in the destination were not loaded by fmap "
                               "(there before the migration, or added since)")
        if r.ours_in_destination != r.id_map - len(r.missing_in_destination):
            r.flags.append(f"{r.ours_in_destination} record(s) carry fmap's ids but the id map "
                           f"holds {r.id_map}")
    created = sum(r.per_map[m].get("created", 0) for m in primary)
    if r.journal < created:
        r.flags.append(f"{created} record(s) counted created but only {r.journal} confirmed "
                       "writes in the journal")
