"""Report builders: plain JSON-able dicts made of sections, rendered to JSON and HTML by
:mod:`runtime.reports.render`.

A report is ``{"kind", "title", "report_id", "generated_at", "migration", "summary": {"headline",
"lines"}, "sections": [...]}``; each section has an ``id``, a ``title`` and a ``type``:

- ``lines``      ``{"lines": [str, ...]}``
- ``table``      ``{"columns": [...], "rows": [[...], ...], "empty": "text when no rows"}``
- ``load_order`` ``{"nodes": [{"name", "target", "kind", "depth", "row", "order"}], "edges": [[from,
  to], ...]}`` (drawn as inline SVG boxes and arrows)
- ``diff``       ``{"records": [{"object", "record", "fields": [{"field", "status", "kind",
  "expected", "actual"}]}], "counts": {kind: n}}``

Sensitive values (the plan's ``Step.sensitive`` fields, schema fields with ``sensitive=True``, and
every quarantined value) are masked with :func:`runtime.state.mask` unless ``show_sensitive``.
The clock and the report id are injected (``clock``, ``report_id``) so the JSON is deterministic.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from runtime.operations.compare import FieldDiff
from runtime.state import StateStore, mask
from runtime.state.masking import is_masked

__all__ = ["RecordDiff", "Sensitivity", "build_run_report", "build_reconciliation_report",
           "build_rollback_report", "build_diff_section", "build_load_order"]

_COUNT_COLS = ("extracted", "created", "updated", "unchanged", "skipped", "quarantined", "failed",
               "pending")


@dataclass
class RecordDiff:
    """One record's field comparison, for :func:`build_diff_section`."""

    object: str
    record: str
    diffs: list[FieldDiff]


@dataclass
class Sensitivity:
    """Which target fields are sensitive: ``{object: {field}}``; ``"*"`` applies to every object."""

    fields: dict[str, set[str]] = field(default_factory=dict)
    show: bool = False

    @classmethod
    def from_plan(cls, plan: Any = None, schema: Any = None, *, show: bool = False) -> Sensitivity:
        out: dict[str, set[str]] = {}
        for st in getattr(plan, "steps", ()):
            target = st.target
            if st.kind == "merge":
                try:
                    target = plan.step(st.target).target
                except KeyError:
                    pass
            if st.sensitive:
                out.setdefault(target, set()).update(st.sensitive)
        for o in getattr(schema, "objects", ()):
            names = {f.api_name for f in o.fields if f.sensitive}
            if names:
                out.setdefault(o.api_name, set()).update(names)
        return cls(out, show)

    def is_sensitive(self, obj: str | None, name: str | None) -> bool:
        if name is None:
            return False
        return name in self.fields.get(obj or "", ()) or name in self.fields.get("*", ())

    def value(self, obj: str | None, name: str | None, value: Any, *, force: bool = False) -> Any:
        if not self.show and (force or self.is_sensitive(obj, name)) and not is_masked(value):
            return mask(value)
        return _plain(value)


def _location(loc: str | None) -> str | None:
    """``/abs/path/clinic.fmap:42`` -> ``clinic.fmap:42`` (readable, and the same on every
    machine)."""
    if not loc:
        return loc
    path, sep, line = loc.rpartition(":")
    if not sep or not line.isdigit():
        return loc.replace("\\", "/").rsplit("/", 1)[-1]
    return f"{path.replace(chr(92), '/').rsplit('/', 1)[-1]}:{line}"


def _plain(v: Any) -> Any:
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    return str(v)


def _header(kind: str, title: str, migration: str | None, clock: Callable[[], datetime] | None,
            report_id: str | None) -> dict[str, Any]:
    now = (clock or (lambda: datetime.now(UTC)))()
    return {"kind": kind, "title": title, "migration": migration,
            "report_id": report_id or uuid.uuid4().hex,
            "generated_at": now.isoformat(timespec="seconds")}


def _run_info(store: StateStore, run_id: int) -> dict[str, Any]:
    r = store.get_run(run_id)
    return {"id": r.id, "status": r.status, "started_at": r.started_at,
            "finished_at": r.finished_at, "fmap_path": r.fmap_path}


# ---------------------------------------------------------------------------- load order
def build_load_order(plan: Any = None, *, journal_order: Iterable[str] = ()) -> dict[str, Any]:
    """Steps as boxes in columns by dependency depth, arrows from each step to its dependants.
    Without a plan: the journal's order (first op per map), chained."""
    steps = list(getattr(plan, "steps", ()))
    if steps:
        names = [s.name for s in steps]
        earlier = {n: set(names[:i]) for i, n in enumerate(names)}
        deps = {s.name: [d for d in s.depends_on if d in earlier[s.name]] for s in steps}
        for s in steps:  # a merge depends on the map it writes into
            if (s.kind == "merge" and s.target in earlier[s.name]
                    and s.target not in deps[s.name]):
                deps[s.name].append(s.target)
        info = {s.name: (s.target if s.kind != "merge" else f"{s.target} (merge)", s.kind)
                for s in steps}
        deferred = [s.name for s in steps if s.deferred_fields]
    else:
        names = list(dict.fromkeys(journal_order))
        deps = {n: ([names[i - 1]] if i else []) for i, n in enumerate(names)}
        info = {n: ("", "map") for n in names}
        deferred = []
    depth: dict[str, int] = {}
    for n in names:
        depth[n] = 1 + max((depth.get(d, 0) for d in deps[n]), default=-1)
    rows: dict[int, int] = {}
    nodes = []
    for i, n in enumerate(names, 1):
        row = rows.get(depth[n], 0)
        rows[depth[n]] = row + 1
        nodes.append({"name": n, "target": info[n][0], "kind": info[n][1], "depth": depth[n],
                      "row": row, "order": i})
    for i, n in enumerate(deferred, len(names) + 1):
        d = max(depth.values(), default=0) + 1
        row = rows.get(d, 0)
        rows[d] = row + 1
        nodes.append({"name": f"{n}:deferred", "target": "deferred lookups", "kind": "deferred",
                      "depth": d, "row": row, "order": i})
        deps[f"{n}:deferred"] = [n]
    edges = [[d, n] for n in deps for d in deps[n]]
    return {"nodes": nodes, "edges": edges,
            "width": 40 + 230 * (max((x["depth"] for x in nodes), default=0) + 1),
            "height": 30 + 70 * max(rows.values(), default=1)}


# ---------------------------------------------------------------------------- diff
def build_diff_section(diffs: Iterable[RecordDiff | FieldDiff], *,
                       sensitivity: Sensitivity | None = None, title: str = "Field differences",
                       section_id: str = "diff", only_differences: bool = False) -> dict[str, Any]:
    """A ``diff`` section from per-record comparisons (or a flat list of FieldDiffs)."""
    sens = sensitivity or Sensitivity()
    records: list[dict[str, Any]] = []
    loose: list[FieldDiff] = []
    for d in diffs:
        if isinstance(d, FieldDiff):
            loose.append(d)
        else:
            records.append(_record_diff(d.object, d.record, d.diffs, sens, only_differences))
    if loose:
        records.append(_record_diff(None, "", loose, sens, only_differences))
    counts: dict[str, int] = {}
    for r in records:
        for f in r["fields"]:
            counts[f["kind"]] = counts.get(f["kind"], 0) + 1
    return {"id": section_id, "title": title, "type": "diff", "records": records,
            "counts": dict(sorted(counts.items()))}


def _record_diff(obj: str | None, record: str, diffs: list[FieldDiff], sens: Sensitivity,
                 only_differences: bool) -> dict[str, Any]:
    fields = [{"field": d.field, "status": d.status, "kind": d.kind,
               "expected": sens.value(obj, d.field, d.expected),
               "actual": sens.value(obj, d.field, d.actual)}
              for d in diffs if not (only_differences and d.ok)]
    return {"object": obj, "record": record, "fields": fields,
            "differences": sum(1 for d in diffs if not d.ok)}


# ---------------------------------------------------------------------------- run report
def build_run_report(store: StateStore, run_id: int, *, plan: Any = None, schema: Any = None,
                     show_sensitive: bool = False, unmatched_owners: Mapping[str, int] | None = None,
                     clock: Callable[[], datetime] | None = None,
                     report_id: str | None = None) -> dict[str, Any]:
    run = store.get_run(run_id)
    sens = Sensitivity.from_plan(plan, schema, show=show_sensitive)
    counts = store.counts(run_id)
    rep = _header("run", f"Migration run {run_id}: {run.migration}", run.migration, clock,
                  report_id)
    rep["run"] = _run_info(store, run_id)
    targets = {m.split("@", 1)[0]: t for m, t in store.conn.execute(
        "SELECT DISTINCT map, target_object FROM ops WHERE run_id = ?", (run_id,))}
    for st in getattr(plan, "steps", ()):
        targets.setdefault(st.name, st.target)
    tot = {k: sum(c[k] for c in counts.values()) for k in _COUNT_COLS}
    moved = tot["created"] + tot["updated"]
    not_moved = tot["skipped"] + tot["quarantined"] + tot["failed"] + tot["pending"]
    rep["summary"] = {
        "headline": f"{moved} record(s) moved ({tot['created']} created, {tot['updated']} "
                    f"updated), {tot['unchanged']} already up to date; {not_moved} did not move "
                    f"({tot['skipped']} skipped, {tot['quarantined']} quarantined, "
                    f"{tot['failed']} failed" + (f", {tot['pending']} pending" if tot["pending"]
                                                  else "") + ")",
        "lines": [], "status": run.status, "totals": tot}
    reasons = _reasons(store, run_id)
    for r in reasons[:10]:
        rep["summary"]["lines"].append(f"{r[3]} {r[1]} in {r[0]}: {r[2]}")
    rows = [[m, targets.get(m, ""), *(counts[m][k] for k in _COUNT_COLS)] for m in counts]
    rows.append(["total", "", *(tot[k] for k in _COUNT_COLS)])
    q_rows = [[q["map"], q["source_key"], q["field"],
               sens.value(targets.get(q["map"] or ""), q["field"], q["value"], force=True)
               if q["value"] is not None else None, q["reason"], q["rule"],
               _location(q["location"])]
              for q in store.quarantined(run_id)]
    f_rows = [[m, k, d] for m, k, d in store.conn.execute(
        "SELECT map, source_key, detail FROM outcomes WHERE run_id = ? AND outcome = 'failed' "
        "ORDER BY map, source_key", (run_id,))]
    journal_order = [m.split("@", 1)[0] for (m,) in store.conn.execute(
        "SELECT map FROM ops WHERE run_id = ? GROUP BY map ORDER BY MIN(id)", (run_id,))]
    owners = [[sens.value(None, None, e, force=True), n]
              for e, n in sorted((unmatched_owners or {}).items())]
    rep["sections"] = [
        {"id": "objects", "title": "Per object", "type": "table",
         "columns": ["map", "target", *_COUNT_COLS], "rows": rows},
        {"id": "load_order", "title": "Load order", "type": "load_order",
         **build_load_order(plan, journal_order=journal_order)},
        {"id": "reasons", "title": "Why records did not move", "type": "table",
         "columns": ["map", "outcome", "reason", "records"], "rows": [list(r) for r in reasons],
         "empty": "Every record moved."},
        {"id": "quarantine", "title": "Quarantined records", "type": "table",
         "columns": ["map", "source key", "field", "value", "reason", "rule", "location"],
         "rows": q_rows, "empty": "Nothing was quarantined."},
        {"id": "failures", "title": "Failures", "type": "table",
         "columns": ["map", "source key", "error"], "rows": f_rows,
         "empty": "No record failed."},
        {"id": "owners", "title": "Unmatched owners", "type": "table",
         "columns": ["owner email", "records"], "rows": owners,
         "empty": "Every owner matched a destination user (or none was checked)."},
    ]
    return rep


def _reasons(store: StateStore, run_id: int) -> list[tuple[str, str, str, int]]:
    return [(m, o, d or "(no reason)", n) for m, o, d, n in store.conn.execute(
        "SELECT map, outcome, detail, COUNT(*) FROM outcomes WHERE run_id = ? AND outcome IN "
        "('skipped','quarantined','failed') GROUP BY 1, 2, 3 ORDER BY 4 DESC, 1, 2, 3",
        (run_id,))]


# ---------------------------------------------------------------------------- reconciliation
def build_reconciliation_report(rec: Any, store: StateStore | None = None, *, plan: Any = None,
                                schema: Any = None, show_sensitive: bool = False,
                                clock: Callable[[], datetime] | None = None,
                                report_id: str | None = None) -> dict[str, Any]:
    sens = Sensitivity.from_plan(plan, schema, show=show_sensitive)
    rep = _header("reconciliation", f"Reconciliation of run {rec.run_id}: {rec.migration}",
                  rec.migration, clock, report_id)
    if store is not None:
        rep["run"] = _run_info(store, rec.run_id)
    flags = rec.flags
    checked = len(rec.spot_checks)
    bad = sum(1 for s in rec.spot_checks if not s.ok)
    rep["summary"] = {
        "headline": ("Everything reconciles" if not flags else f"{len(flags)} difference(s) "
                     "need attention") + f": {len(rec.objects)} object(s), {checked} record(s) "
                     f"spot-checked field by field ({bad} with differences)",
        "lines": flags or ["Every count difference is explained below."],
        "status": "ok" if not flags else "flagged"}
    rows = []
    for o in rec.objects:
        rows.append([o.target_object, o.source, o.outcomes.get("created", 0),
                     o.outcomes.get("updated", 0), o.outcomes.get("unchanged", 0),
                     o.outcomes.get("skipped", 0), o.outcomes.get("quarantined", 0),
                     o.outcomes.get("failed", 0), o.journal, o.id_map, o.destination,
                     o.ours_in_destination,
                     "" if o.attachments_expected is None
                     else f"{o.attachments_found}/{o.attachments_expected}",
                     "flagged" if o.flags else "ok"])
    lines = [x for o in rec.objects for x in o.explained]
    flag_rows = [[o.target_object, f] for o in rec.objects for f in o.flags]
    diffs = [RecordDiff(s.target_object, f"{s.map} {s.source_key} ({s.destination_id})"
                        + ("" if s.found else ": not found in the destination"), s.diffs)
             for s in rec.spot_checks]
    rep["sections"] = [
        {"id": "objects", "title": "Per object", "type": "table",
         "columns": ["object", "source", "created", "updated", "unchanged", "skipped",
                     "quarantined", "failed", "journal", "id map", "destination",
                     "ours in destination", "attachments", "status"], "rows": rows},
        {"id": "explained", "title": "How the counts add up", "type": "lines", "lines": lines},
        {"id": "flags", "title": "Flagged", "type": "table", "columns": ["object", "finding"],
         "rows": flag_rows, "empty": "Nothing flagged."},
        build_diff_section(diffs, sensitivity=sens, title="Spot check (field by field)",
                           section_id="spot_check"),
    ]
    if plan is not None:
        rep["sections"].insert(1, {"id": "load_order", "title": "Load order",
                                   "type": "load_order", **build_load_order(plan)})
    return rep


# ---------------------------------------------------------------------------- rollback
def build_rollback_report(results: list[Any], store: StateStore | None = None, *,
                          plan: Any = None, schema: Any = None, show_sensitive: bool = False,
                          clock: Callable[[], datetime] | None = None,
                          report_id: str | None = None) -> dict[str, Any]:
    sens = Sensitivity.from_plan(plan, schema, show=show_sensitive)
    migration = store.get_run(results[0].run_id).migration if store and results else None
    runs = ", ".join(str(r.run_id) for r in results)
    rep = _header("rollback", f"Rollback of run(s) {runs}", migration, clock, report_id)
    deleted = sum(sum(r.deleted.values()) for r in results)
    restored = sum(sum(r.restored.values()) for r in results)
    skipped = [c for r in results for c in r.conflicts if not c.forced]
    forced = [c for r in results for c in r.conflicts if c.forced]
    failed = [f for r in results for f in r.failed]
    rep["summary"] = {
        "headline": ("Nothing to roll back (already rolled back)"
                     if all(r.noop for r in results) else
                     f"{deleted} record(s) deleted, {restored} restored to their values before "
                     f"the migration; {len(skipped)} left alone (changed since), "
                     f"{len(failed)} failed"),
        "lines": [f"run {r.run_id}: {r.status}" + (" (no-op)" if r.noop else "")
                  + (f", {r.unverified} record(s) could not be checked for changes"
                     if r.unverified else "") for r in results],
        "status": "ok" if not skipped and not failed else "incomplete"}
    rows = []
    for r in results:
        for obj in sorted(set(r.deleted) | set(r.restored)):
            rows.append([r.run_id, obj, r.deleted.get(obj, 0), r.restored.get(obj, 0)])
    conflicts = [[c.action, c.target_object, c.destination_id, c.map, c.source_key, c.reason,
                  "overwritten (--force)" if c.forced else "left alone"]
                 for c in skipped + forced]
    diffs = [RecordDiff(c.target_object, f"{c.map} {c.source_key} ({c.destination_id})",
                        c.diffs) for c in skipped + forced if c.diffs]
    order = [r.delete_order for r in results]
    rep["sections"] = [
        {"id": "objects", "title": "Per object", "type": "table",
         "columns": ["run", "object", "deleted", "restored"], "rows": rows,
         "empty": "Nothing was deleted or restored."},
        {"id": "load_order", "title": "Delete order (children first)", "type": "load_order",
         **build_load_order(None, journal_order=[m for o in order for m in o])},
        {"id": "conflicts", "title": "Changed since the migration", "type": "table",
         "columns": ["action", "object", "record", "map", "source key", "why", "what happened"],
         "rows": conflicts, "empty": "No record was changed after the migration."},
        build_diff_section(diffs, sensitivity=sens, title="Conflicting fields",
                           section_id="conflict_fields", only_differences=True),
        {"id": "failures", "title": "Failures", "type": "table",
         "columns": ["object", "record", "error"], "rows": [list(f) for f in failed],
         "empty": "Nothing failed."},
    ]
    return rep
