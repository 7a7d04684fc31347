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

A per-record table (quarantined and failed records, conflicts, flags, spot checks) shows the first
``ROW_CAP`` rows per map or object, in the order the state file or the operation gave them, with a
``note`` saying how many more there are and which CSV beside the report holds them all: a
:class:`RecordList` per such table, streamed to ``<kind>-<section>.csv`` by
:func:`runtime.reports.render.write_report` with the same masking as the report's rows.

Sensitive values (the plan's ``Step.sensitive`` fields, schema fields with ``sensitive=True``, and
every quarantined value) are masked with :func:`runtime.state.mask` unless ``show_sensitive``.
The clock and the report id are injected (``clock``, ``report_id``) so the JSON is deterministic.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from runtime.operations.compare import FieldDiff
from runtime.operations.reconcile import journal_targets
from runtime.state import StateStore, mask
from runtime.state.masking import is_masked

__all__ = ["ROW_CAP", "RecordDiff", "RecordList", "Sensitivity", "build_run_report",
           "build_reconciliation_report", "build_rollback_report", "build_diff_section",
           "build_load_order", "csv_name", "diff_list", "reconciliation_report_lists", "rollback_report_lists",
           "run_report_lists"]

# rows a per-record table shows per map or object: 100,000 quarantined rows make a report nobody
# can open (and hold them all in memory); the rest are in the CSV beside it
ROW_CAP = 200

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


@dataclass(frozen=True)
class RecordList:
    """Every row of one per-record table: the report shows the first ``ROW_CAP`` per group, the
    CSV beside it all of them. ``rows`` is called once per pass (the report's, the CSV's), so rows
    read from the state file are streamed each time and never held. ``group``: the column the cap
    counts by (None: the table as a whole)."""

    section: str
    columns: tuple[str, ...]
    rows: Callable[[], Iterable[list[Any]]]
    group: int | None = 0


def csv_name(kind: str, section: str) -> str:
    """The file beside a ``kind`` report that holds a section's complete list."""
    return f"{kind}-{section}.csv"


def _capped_table(kind: str, lst: RecordList, title: str, empty: str, cap: int
                  ) -> dict[str, Any]:
    """A ``table`` section of the first ``cap`` rows per group; a ``note`` counts the rest and
    names the CSV (``omitted``, ``complete_list``: the same as data). Nothing is added when every
    row fits, so small reports are as they were."""
    shown: list[list[Any]] = []
    seen: dict[Any, int] = {}
    for row in lst.rows():
        g = row[lst.group] if lst.group is not None else None
        seen[g] = seen.get(g, 0) + 1
        if seen[g] <= cap:
            shown.append(row)
    sec = {"id": lst.section, "title": title, "type": "table", "columns": list(lst.columns),
           "rows": shown, "empty": empty}
    _note_omitted(sec, kind, None if lst.group is None else lst.columns[lst.group], seen, cap)
    return sec


def _note_omitted(sec: dict[str, Any], kind: str, per: str | None, seen: Mapping[Any, int],
                  cap: int) -> None:
    """``seen``: rows per group (``per`` names the group's column; None: one group)."""
    more = {g: n - cap for g, n in seen.items() if n > cap}
    if not more:
        return
    total = sum(more.values())
    where = csv_name(kind, sec["id"])
    groups = ", ".join(f"{'(none)' if g is None else g} {n:,}"
                       for g, n in sorted(more.items(), key=lambda x: str(x[0])))
    sec.update(omitted=total, complete_list=where,
               note=f"Showing the first {cap:,}" + (f" per {per}" if per else "")
                    + f"; {total:,} more" + (f" ({groups})" if per else "")
                    + f" are listed in {where}, beside this report.")


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
_DIFF_COLUMNS = ("object", "record", "field", "result", "kind", "written", "in the destination")


def build_diff_section(diffs: Iterable[RecordDiff | FieldDiff], *,
                       sensitivity: Sensitivity | None = None, title: str = "Field differences",
                       section_id: str = "diff", only_differences: bool = False,
                       cap: int | None = None, kind: str = "diff") -> dict[str, Any]:
    """A ``diff`` section from per-record comparisons (or a flat list of FieldDiffs). ``cap``:
    records shown per object, those with differences first (the rest are in
    ``csv_name(kind, section_id)``, see :func:`diff_list`); the shown ones keep their order."""
    sens = sensitivity or Sensitivity()
    items = list(diffs)
    recs = [d for d in items if not isinstance(d, FieldDiff)]
    loose = [d for d in items if isinstance(d, FieldDiff)]
    seen: dict[Any, int] = {}
    for d in recs:
        seen[d.object] = seen.get(d.object, 0) + 1
    keep = None
    if cap is not None and any(n > cap for n in seen.values()):
        ranked = sorted(range(len(recs)),
                        key=lambda i: (all(x.ok for x in recs[i].diffs), i))
        taken: dict[Any, int] = {}
        keep = set()
        for i in ranked:
            o = recs[i].object
            if taken.get(o, 0) < cap:
                taken[o] = taken.get(o, 0) + 1
                keep.add(i)
    records = [_record_diff(d.object, d.record, d.diffs, sens, only_differences)
               for i, d in enumerate(recs) if keep is None or i in keep]
    if loose:
        records.append(_record_diff(None, "", loose, sens, only_differences))
    counts: dict[str, int] = {}
    for d in [x for r in recs for x in r.diffs] + loose:
        if not (only_differences and d.ok):
            counts[d.kind] = counts.get(d.kind, 0) + 1
    sec = {"id": section_id, "title": title, "type": "diff", "records": records,
           "counts": dict(sorted(counts.items()))}
    if cap is not None:
        _note_omitted(sec, kind, _DIFF_COLUMNS[0], seen, cap)
    return sec


def diff_list(diffs: Iterable[RecordDiff], *, sensitivity: Sensitivity | None = None,
              section_id: str = "diff", only_differences: bool = False) -> RecordList:
    """Every field row of a ``diff`` section, masked as the section masks it, for its CSV."""
    sens = sensitivity or Sensitivity()
    recs = list(diffs)

    def rows() -> Iterator[list[Any]]:
        for d in recs:
            r = _record_diff(d.object, d.record, d.diffs, sens, only_differences)
            for f in r["fields"] or [dict.fromkeys(("field", "status", "kind", "expected",
                                                    "actual"))]:
                yield [d.object, d.record, f["field"], f["status"], f["kind"], f["expected"],
                       f["actual"]]

    return RecordList(section_id, _DIFF_COLUMNS, rows)


def _record_diff(obj: str | None, record: str, diffs: list[FieldDiff], sens: Sensitivity,
                 only_differences: bool) -> dict[str, Any]:
    fields = [{"field": d.field, "status": d.status, "kind": d.kind,
               "expected": sens.value(obj, d.field, d.expected),
               "actual": sens.value(obj, d.field, d.actual)}
              for d in diffs if not (only_differences and d.ok)]
    return {"object": obj, "record": record, "fields": fields,
            "differences": sum(1 for d in diffs if not d.ok)}


# ---------------------------------------------------------------------------- run report
def _targets(store: StateStore, run_id: int, plan: Any) -> dict[str, str]:
    targets = journal_targets(store, run_id)
    for st in getattr(plan, "steps", ()):
        targets.setdefault(st.name, st.target)
    return targets


def run_report_lists(store: StateStore, run_id: int, *, plan: Any = None, schema: Any = None,
                     show_sensitive: bool = False,
                     unmatched_owners: Mapping[str, int] | None = None) -> list[RecordList]:
    """The run report's per-record tables in full (the report shows ``ROW_CAP`` per map): for
    :func:`runtime.reports.render.write_report` to stream to CSV beside it."""
    sens = Sensitivity.from_plan(plan, schema, show=show_sensitive)
    return _run_lists(store, run_id, sens, _targets(store, run_id, plan), unmatched_owners)


def _run_lists(store: StateStore, run_id: int, sens: Sensitivity, targets: Mapping[str, str],
               unmatched_owners: Mapping[str, int] | None) -> list[RecordList]:
    def quarantined() -> Iterator[list[Any]]:
        for q in store.quarantined(run_id):
            yield [q["map"], q["source_key"], q["field"],
                   sens.value(targets.get(q["map"] or ""), q["field"], q["value"], force=True)
                   if q["value"] is not None else None, q["reason"], q["rule"],
                   _location(q["location"])]

    def failed() -> Iterator[list[Any]]:
        for m, k, d in store.conn.execute(
                "SELECT map, source_key, detail FROM outcomes WHERE run_id = ? "
                "AND outcome = 'failed' ORDER BY map, source_key", (run_id,)):
            yield [m, k, d]

    def reasons() -> Iterator[list[Any]]:
        return (list(r) for r in _reasons(store, run_id))

    def owners() -> Iterator[list[Any]]:
        for e, n in sorted((unmatched_owners or {}).items()):
            yield [sens.value(None, None, e, force=True), n]

    return [
        RecordList("reasons", ("map", "outcome", "reason", "records"), reasons),
        RecordList("quarantine",
                   ("map", "source key", "field", "value", "reason", "rule", "location"),
                   quarantined),
        RecordList("failures", ("map", "source key", "error"), failed),
        RecordList("owners", ("owner email", "records"), owners, group=None),
    ]


def build_run_report(store: StateStore, run_id: int, *, plan: Any = None, schema: Any = None,
                     show_sensitive: bool = False, unmatched_owners: Mapping[str, int] | None = None,
                     clock: Callable[[], datetime] | None = None,
                     report_id: str | None = None, cap: int = ROW_CAP) -> dict[str, Any]:
    run = store.get_run(run_id)
    sens = Sensitivity.from_plan(plan, schema, show=show_sensitive)
    counts = store.counts(run_id)
    rep = _header("run", f"Migration run {run_id}: {run.migration}", run.migration, clock,
                  report_id)
    rep["run"] = _run_info(store, run_id)
    targets = _targets(store, run_id, plan)
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
    for r in islice(_reasons(store, run_id), 10):
        rep["summary"]["lines"].append(f"{r[3]} {r[1]} in {r[0]}: {r[2]}")
    rows = [[m, targets.get(m, ""), *(counts[m][k] for k in _COUNT_COLS)] for m in counts]
    rows.append(["total", "", *(tot[k] for k in _COUNT_COLS)])
    journal_order = [m.split("@", 1)[0] for (m,) in store.conn.execute(
        "SELECT map FROM ops WHERE run_id = ? GROUP BY map ORDER BY MIN(id)", (run_id,))]
    reasons, quarantine, failures, owners = _run_lists(store, run_id, sens, targets,
                                                       unmatched_owners)
    rep["sections"] = [
        {"id": "objects", "title": "Per object", "type": "table",
         "columns": ["map", "target", *_COUNT_COLS], "rows": rows},
        {"id": "load_order", "title": "Load order", "type": "load_order",
         **build_load_order(plan, journal_order=journal_order)},
        _capped_table("run", reasons, "Why records did not move", "Every record moved.", cap),
        _capped_table("run", quarantine, "Quarantined records", "Nothing was quarantined.", cap),
        _capped_table("run", failures, "Failures", "No record failed.", cap),
        _capped_table("run", owners, "Unmatched owners",
                      "Every owner matched a destination user (or none was checked).", cap),
    ]
    return rep


def _reasons(store: StateStore, run_id: int) -> Iterator[tuple[str, str, str, int]]:
    for m, o, d, n in store.conn.execute(
            "SELECT map, outcome, detail, COUNT(*) FROM outcomes WHERE run_id = ? AND outcome IN "
            "('skipped','quarantined','failed') GROUP BY 1, 2, 3 ORDER BY 4 DESC, 1, 2, 3",
            (run_id,)):
        yield m, o, d or "(no reason)", n


# ---------------------------------------------------------------------------- reconciliation
def _spot_diffs(rec: Any) -> list[RecordDiff]:
    return [RecordDiff(s.target_object, f"{s.map} {s.source_key} ({s.destination_id})"
                       + ("" if s.found else ": not found in the destination"), s.diffs)
            for s in rec.spot_checks]


def _reconciliation_lists(rec: Any, sens: Sensitivity) -> list[RecordList]:
    def flags() -> Iterator[list[Any]]:
        return ([o.target_object, f] for o in rec.objects for f in o.flags)

    return [RecordList("flags", ("object", "finding"), flags),
            diff_list(_spot_diffs(rec), sensitivity=sens, section_id="spot_check")]


def reconciliation_report_lists(rec: Any, *, plan: Any = None, schema: Any = None,
                                show_sensitive: bool = False) -> list[RecordList]:
    """The reconciliation report's per-record tables in full, for the CSVs beside it."""
    return _reconciliation_lists(rec, Sensitivity.from_plan(plan, schema, show=show_sensitive))


def build_reconciliation_report(rec: Any, store: StateStore | None = None, *, plan: Any = None,
                                schema: Any = None, show_sensitive: bool = False,
                                clock: Callable[[], datetime] | None = None,
                                report_id: str | None = None, cap: int = ROW_CAP
                                ) -> dict[str, Any]:
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
    flags, _ = _reconciliation_lists(rec, sens)
    rep["sections"] = [
        {"id": "objects", "title": "Per object", "type": "table",
         "columns": ["object", "source", "created", "updated", "unchanged", "skipped",
                     "quarantined", "failed", "journal", "id map", "destination",
                     "ours in destination", "attachments", "status"], "rows": rows},
        {"id": "explained", "title": "How the counts add up", "type": "lines", "lines": lines},
        _capped_table("reconciliation", flags, "Flagged", "Nothing flagged.", cap),
        build_diff_section(_spot_diffs(rec), sensitivity=sens,
                           title="Spot check (field by field)", section_id="spot_check",
                           cap=cap, kind="reconciliation"),
    ]
    if plan is not None:
        rep["sections"].insert(1, {"id": "load_order", "title": "Load order",
                                   "type": "load_order", **build_load_order(plan)})
    return rep


# ---------------------------------------------------------------------------- rollback
def _conflicts(results: list[Any]) -> list[Any]:
    """Conflicts left alone first, then those overwritten (--force)."""
    cs = [c for r in results for c in r.conflicts]
    return [c for c in cs if not c.forced] + [c for c in cs if c.forced]


def _conflict_diffs(results: list[Any]) -> list[RecordDiff]:
    return [RecordDiff(c.target_object, f"{c.map} {c.source_key} ({c.destination_id})",
                       c.diffs) for c in _conflicts(results) if c.diffs]


def _rollback_lists(results: list[Any], sens: Sensitivity) -> list[RecordList]:
    def conflicts() -> Iterator[list[Any]]:
        for c in _conflicts(results):
            yield [c.action, c.target_object, c.destination_id, c.map, c.source_key, c.reason,
                   "overwritten (--force)" if c.forced else "left alone"]

    def failed() -> Iterator[list[Any]]:
        return (list(f) for r in results for f in r.failed)

    return [
        RecordList("conflicts",
                   ("action", "object", "record", "map", "source key", "why", "what happened"),
                   conflicts, group=1),
        diff_list(_conflict_diffs(results), sensitivity=sens, section_id="conflict_fields",
                  only_differences=True),
        RecordList("failures", ("object", "record", "error"), failed),
    ]


def rollback_report_lists(results: list[Any], *, plan: Any = None, schema: Any = None,
                          show_sensitive: bool = False) -> list[RecordList]:
    """The rollback report's per-record tables in full, for the CSVs beside it."""
    return _rollback_lists(results, Sensitivity.from_plan(plan, schema, show=show_sensitive))


def build_rollback_report(results: list[Any], store: StateStore | None = None, *,
                          plan: Any = None, schema: Any = None, show_sensitive: bool = False,
                          clock: Callable[[], datetime] | None = None,
                          report_id: str | None = None, cap: int = ROW_CAP) -> dict[str, Any]:
    sens = Sensitivity.from_plan(plan, schema, show=show_sensitive)
    migration = store.get_run(results[0].run_id).migration if store and results else None
    runs = ", ".join(str(r.run_id) for r in results)
    rep = _header("rollback", f"Rollback of run(s) {runs}", migration, clock, report_id)
    deleted = sum(sum(r.deleted.values()) for r in results)
    restored = sum(sum(r.restored.values()) for r in results)
    skipped = sum(1 for r in results for c in r.conflicts if not c.forced)
    failed = sum(len(r.failed) for r in results)
    rep["summary"] = {
        "headline": ("Nothing to roll back (already rolled back)"
                     if all(r.noop for r in results) else
                     f"{deleted} record(s) deleted, {restored} restored to their values before "
                     f"the migration; {skipped} left alone (changed since), "
                     f"{failed} failed"),
        "lines": [f"run {r.run_id}: {r.status}" + (" (no-op)" if r.noop else "")
                  + (f", {r.unverified} record(s) could not be checked for changes"
                     if r.unverified else "") for r in results],
        "status": "ok" if not skipped and not failed else "incomplete"}
    rows = []
    for r in results:
        for obj in sorted(set(r.deleted) | set(r.restored)):
            rows.append([r.run_id, obj, r.deleted.get(obj, 0), r.restored.get(obj, 0)])
    order = [r.delete_order for r in results]
    conflicts, _, failures = _rollback_lists(results, sens)
    rep["sections"] = [
        {"id": "objects", "title": "Per object", "type": "table",
         "columns": ["run", "object", "deleted", "restored"], "rows": rows,
         "empty": "Nothing was deleted or restored."},
        {"id": "load_order", "title": "Delete order (children first)", "type": "load_order",
         **build_load_order(None, journal_order=[m for o in order for m in o])},
        _capped_table("rollback", conflicts, "Changed since the migration",
                      "No record was changed after the migration.", cap),
        build_diff_section(_conflict_diffs(results), sensitivity=sens,
                           title="Conflicting fields", section_id="conflict_fields",
                           only_differences=True, cap=cap, kind="rollback"),
        _capped_table("rollback", failures, "Failures", "Nothing failed.", cap),
    ]
    return rep
