"""Sample migration: N representative records, loaded, read back, and diffed field by field.

Selection: the source is staged once (as a run would), then records of the primary source object
are chosen greedily so that every routing branch and every picklist value the mapping produces
(which covers every value-map entry present in the data) appears at least once, filled up to N in
source order. The sample then takes everything those records need and everything that hangs off
them: the records they reference (their clinic, their practitioner) and the records referencing
them (appointments, notes, invoices), so every lookup in the sample resolves.

After loading, every written record is read back and compared with what the compiled transform
produced (references and owners resolved as the loader resolved them); differences are classified
by ``runtime.operations.compare`` (truncated, coerced by the destination, picklist replaced, time
zone shifted, missing).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from runtime.executor.extract import stage_all
from runtime.executor.load import Loader
from runtime.executor.stage import Stage
from runtime.operations.compare import compare_record
from runtime.plan import Plan, Ref
from runtime.schema.model import FieldType, SystemSchema

__all__ = ["SampleSelection", "select_sample", "diff_sample", "RecordDiff", "summarise_diffs"]


@dataclass
class SampleSelection:
    roots: dict[str, set[str]]  # source object -> selected top-level record keys
    primary: str
    chosen: list[str]
    features_total: int
    features_covered: int

    def includes(self, obj: str, srec: Any) -> bool:
        return srec.key in self.roots.get(obj, ())


@dataclass
class RecordDiff:
    map: str
    object: str
    source_key: str
    destination_id: str | None
    fields: list[dict[str, Any]] = field(default_factory=list)

    @property
    def differences(self) -> list[dict[str, Any]]:
        return [f for f in self.fields if f["status"] == "diff"]


def _primary(plan: Plan) -> str:
    counts: dict[str, int] = defaultdict(int)
    for st in plan.steps:
        counts[st.source] += 1 + len(st.path) + (2 if st.route_group else 0)
    return max(sorted(counts), key=lambda o: counts[o])


def _picklist_fields(plan: Plan, schema: SystemSchema | None) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for st in plan.steps:
        obj = schema.object(st.target) if schema and st.kind == "map" else None
        out[st.name] = {f.api_name for f in (obj.fields if obj else [])
                        if f.type in (FieldType.picklist, FieldType.boolean)}
    return out


def select_sample(module: ModuleType, source, scratch: Path, n: int, *,
                  schema: SystemSchema | None = None, primary: str | None = None,
                  params: dict[str, Any] | None = None, scan_limit: int = 200_000) -> SampleSelection:
    plan: Plan = module.PLAN
    P = {**plan.params, **(params or {})}
    primary = primary or _primary(plan)
    stage = Stage(scratch)
    stage.reset()
    try:
        stage_all(module, plan, source, stage, P)
        picks = _picklist_fields(plan, schema)
        # features of each primary root: (map taken) and (map, picklist field, value)
        features: dict[str, set[tuple]] = defaultdict(set)
        order: list[str] = []
        seen_roots: set[str] = set()
        for st in plan.steps:
            if st.source != primary:
                continue
            for r in stage.records(st.name):
                if r.root_key not in seen_roots:
                    if len(seen_roots) >= scan_limit:
                        continue
                    seen_roots.add(r.root_key)
                    order.append(r.root_key)
                if r.status != "ready":
                    continue
                features[r.root_key].add((st.name,))
                for f in picks.get(st.name, ()):
                    v = r.payload.get(f)
                    if isinstance(v, (str, bool)):
                        features[r.root_key].add((st.name, f, v))
        all_features = set().union(*features.values()) if features else set()
        covered: set[tuple] = set()
        chosen: list[str] = []
        for key in order:  # greedy: take a record when it shows something new
            if len(chosen) >= n:
                break
            new = features.get(key, set()) - covered
            if new:
                chosen.append(key)
                covered |= new
        for key in order:
            if len(chosen) >= n:
                break
            if key not in chosen and features.get(key):
                chosen.append(key)
        roots = _closure(plan, stage, primary, set(chosen))
        return SampleSelection(roots, primary, chosen, len(all_features), len(covered))
    finally:
        stage.close()


def _closure(plan: Plan, stage: Stage, primary: str, chosen: set[str]) -> dict[str, set[str]]:
    """Source records to load: the chosen ones, what they reference, what references them."""
    included: set[tuple[str, str]] = set()  # (map, key) pairs in the sample
    roots: dict[str, set[str]] = defaultdict(set)
    roots[primary] |= chosen
    refs_of: dict[tuple[str, str], list[tuple[str, ...]]] = {}
    owner_of: dict[tuple[str, str], tuple[str, str]] = {}  # (map, key) -> (source obj, root key)
    for st in plan.steps:
        for r in stage.records(st.name):
            owner_of[(st.name, r.source_key)] = (st.source, r.root_key)
            if r.status == "ready":
                refs_of[(st.name, r.source_key)] = [
                    (*v.maps, v.key) for v in r.payload.values()
                    if isinstance(v, Ref) and v.key is not None]
            if st.source == primary and r.root_key in chosen:
                included.add((st.name, r.source_key))
    # records referencing the sample (children), in load order: one pass suffices
    for st in plan.steps:
        for (m, k), refs in refs_of.items():
            if m != st.name or (m, k) in included:
                continue
            if any((mp, ref[-1]) in included for ref in refs for mp in ref[:-1]):
                included.add((m, k))
    # records the sample references (parents), transitively
    todo = list(included)
    while todo:
        pair = todo.pop()
        for ref in refs_of.get(pair, ()):
            for mp in ref[:-1]:
                target = (mp, ref[-1])
                if target in owner_of and target not in included:
                    included.add(target)
                    todo.append(target)
    for pair in included:
        if pair in owner_of:
            obj, root = owner_of[pair]
            roots[obj].add(root)
    return dict(roots)


def diff_sample(module: ModuleType, dest, state, stage_path: str | Path, run_id: int,
                *, params: dict[str, Any] | None = None) -> list[RecordDiff]:
    """Read back every record the run wrote and compare it with the transform's output."""
    plan: Plan = module.PLAN
    P = {**plan.params, **(params or {})}
    stage = Stage(f"{stage_path}.run{run_id}")
    schema = dest.schema()
    loader = Loader(plan, dest, state, stage, run_id, P)
    loader._fallback = loader._fallback_owner()
    out: list[RecordDiff] = []
    try:
        for st in plan.steps:
            obj, lookup_ns, op_ns = loader._namespaces(st)
            written = {k for (k,) in state.conn.execute(
                "SELECT source_key FROM outcomes WHERE run_id = ? AND map = ? AND outcome = "
                "'loaded' AND detail IN ('created', 'updated')", (run_id, st.name))}
            if not written:
                continue
            ready = [r for r in stage.records(st.name, status="ready")
                     if r.source_key in written or f"{r.source_key}#1" in written]
            items, _, _ = loader._prepare(st, obj, lookup_ns, ready)
            ids = state.lookup_many(lookup_ns, [p.key for p in items])
            actual = dest.get(obj, sorted(set(ids.values()))) if ids else {}
            for p in items:
                dest_id = ids.get(p.key)
                got = actual.get(dest_id, {}) if dest_id else {}
                diffs = compare_record(p.record, got, schema.object(obj))
                out.append(RecordDiff(st.name, obj, p.key, dest_id, [
                    {"field": d.field, "status": d.status, "kind": d.kind,
                     "expected": d.expected, "actual": d.actual} for d in diffs]))
    finally:
        stage.close()
    return out


def summarise_diffs(diffs: list[RecordDiff]) -> dict[str, Any]:
    by_kind: dict[str, int] = defaultdict(int)
    by_field: dict[tuple[str, str, str], int] = defaultdict(int)
    fields = 0
    for rd in diffs:
        for f in rd.fields:
            fields += 1
            by_kind[f["kind"]] += 1
            if f["status"] == "diff":
                by_field[(rd.map, f["field"], f["kind"])] += 1
    return {
        "records": len(diffs),
        "fields": fields,
        "by_kind": dict(sorted(by_kind.items())),
        "differences": [{"map": m, "field": f, "kind": k, "count": n}
                        for (m, f, k), n in sorted(by_field.items())],
    }


def to_dict(diffs: list[RecordDiff]) -> list[dict[str, Any]]:
    return [asdict(d) for d in diffs]
