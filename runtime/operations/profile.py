"""`fmap profile`: what will go wrong, before anything moves.

The source is staged through the compiled mapping exactly as a run would (same transforms, same
routing), into a scratch stage, and the staged records are analysed: counts per source object and
map; records that would be quarantined, by reason (unparsable dates and numbers, values a value map
does not cover, with counts per code); required target fields left empty; duplicate candidates
(same email; same name and date of birth) listed for merge decisions; owner emails with no
destination user; attachments over the destination's size limit; orphans (references to records
the source does not have).
"""

from __future__ import annotations

import copy
import json
import re
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from itertools import groupby, islice
from pathlib import Path
from types import ModuleType
from typing import Any

from runtime.executor.extract import stage_all
from runtime.executor.load import AttachmentOutsideRoot, attachment_file
from runtime.executor.run import required_fields
from runtime.executor.stage import Stage
from runtime.plan import Attachment, Plan, Ref
from runtime.schema.model import FieldType, SystemSchema

__all__ = ["KEYS_PER_GROUP", "ProfileReport", "StoredFindings", "profile_source"]

_VM_RE = re.compile(r"value not in value map `([^`]+)`")


@dataclass
class ProfileReport:
    migration: str | None
    source_counts: dict[str, int] = field(default_factory=dict)
    map_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    quarantine_reasons: list[dict[str, Any]] = field(default_factory=list)
    unmapped_values: list[dict[str, Any]] = field(default_factory=list)
    missing_required: list[dict[str, Any]] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    owners: dict[str, Any] = field(default_factory=dict)
    oversize_attachments: list[dict[str, Any]] = field(default_factory=list)
    missing_files: int = 0
    orphans: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Every list in full, in memory: for small profiles (the report and its CSVs stream)."""
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), StoredFindings)
                else copy.deepcopy(v) for f in fields(self)}

    @property
    def problems(self) -> int:
        return (sum(q["count"] for q in self.quarantine_reasons)
                + sum(u["count"] for u in self.unmapped_values)
                + sum(m["count"] for m in self.missing_required)
                + len(self.duplicates) + len(self.oversize_attachments)
                + sum(o["count"] for o in self.orphans)
                + len(self.owners.get("unmatched", {})))


def _norm(v: Any) -> str | None:
    if v is None:
        return None
    s = str(v).strip().lower()
    return s or None


def _name_fields(schema_obj) -> tuple[str | None, str | None, str | None, str | None]:
    """(email, first name, last name, date of birth) field names of a target object, by type and
    by the names CRMs use."""
    email = first = last = dob = None
    for f in schema_obj.fields if schema_obj else []:
        low = f.api_name.lower()
        if f.type is FieldType.email and email is None and "secondary" not in low:
            email = f.api_name
        elif "first" in low and "name" in low and first is None:
            first = f.api_name
        elif "last" in low and "name" in low and last is None:
            last = f.api_name
        elif f.type is FieldType.date and ("birth" in low or "dob" in low) and dob is None:
            dob = f.api_name
    return email, first, last, dob


def profile_source(module: ModuleType, source, scratch: Path, *,
                   schema: SystemSchema | None = None, users: list | None = None,
                   attachment_limit: int | None = None, files_root: Path | None = None,
                   params: dict[str, Any] | None = None) -> ProfileReport:
    """Profile ``source`` through ``module``'s mapping. ``scratch`` is the profile's own stage
    file (emptied first); the report's long lists are read back from it, so keep it until the
    report and its CSVs are written."""
    plan: Plan = module.PLAN
    P = {**plan.params, **(params or {})}
    report = ProfileReport(plan.migration)
    for obj in sorted({st.source for st in plan.steps}):
        try:
            report.source_counts[obj] = source.count(obj)
        except Exception:  # a source that cannot count cheaply: counted while staging
            report.source_counts[obj] = -1
    stage = Stage(scratch)
    stage.reset()
    try:
        extracted = stage_all(module, plan, source, stage, P)
        _analyse(report, plan, stage, extracted, schema, users, attachment_limit, files_root)
    finally:
        stage.close()
    return report


class StoredFindings(Sequence[dict[str, Any]]):
    """One of a profile's finding lists, kept in its scratch stage and read back on every pass
    (the report's table, the CSV beside it, the terminal), so it can be longer than memory allows.
    It compares equal to a list of the same dicts: a report can be built from either."""

    def __init__(self, path: str, length: int,
                 read: Callable[[sqlite3.Connection], Iterator[dict[str, Any]]]) -> None:
        self._path, self._len, self._read = path, length, read

    def __iter__(self) -> Iterator[dict[str, Any]]:
        stage = Stage(self._path)  # the stage's bounded-memory connection
        try:
            yield from self._read(stage.conn)
        finally:
            stage.close()

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            start, stop, step = i.indices(self._len)
            if step < 0:
                return list(self)[i]
            return list(islice(self, start, stop, step))
        if i < 0:
            i += self._len
        if not 0 <= i < self._len:
            raise IndexError("profile finding index out of range")
        return next(islice(self, i, None))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<{self._len} profile finding(s) in {self._path}>"


# the profile's own tables in its scratch stage (made anew by each profile): per-record findings
# are written here and counted, grouped and joined by SQLite, never gathered in Python
_TABLES = {
    "profile_reasons": "(id INTEGER PRIMARY KEY, map TEXT NOT NULL, status TEXT NOT NULL, "
                       "field TEXT NOT NULL, reason TEXT NOT NULL, n INTEGER NOT NULL, "
                       "UNIQUE (map, status, field, reason))",
    "profile_unmapped": "(id INTEGER PRIMARY KEY, valuemap TEXT NOT NULL, map TEXT NOT NULL, "
                        "field TEXT NOT NULL, value TEXT NOT NULL, n INTEGER NOT NULL, "
                        "UNIQUE (valuemap, map, field, value))",
    "profile_refs": "(id INTEGER PRIMARY KEY, map TEXT NOT NULL, field TEXT NOT NULL, "
                    "targets INTEGER NOT NULL, key TEXT NOT NULL)",
    # the maps a reference may resolve in (Ref.maps), numbered per distinct tuple
    "profile_targets": "(targets INTEGER NOT NULL, map TEXT NOT NULL, "
                       "PRIMARY KEY (targets, map)) WITHOUT ROWID",
    "profile_orphans": "(id INTEGER PRIMARY KEY, map TEXT NOT NULL, field TEXT NOT NULL, "
                       "targets INTEGER NOT NULL, key TEXT NOT NULL)",
    # a ready record's normalised email (match 0) or [first, last, dob] (match 1), per map
    "profile_candidates": "(step INTEGER NOT NULL, match INTEGER NOT NULL, value TEXT NOT NULL, "
                          "key TEXT NOT NULL, seq INTEGER NOT NULL)",
    "profile_duplicates": "(id INTEGER PRIMARY KEY, step INTEGER NOT NULL, match INTEGER NOT NULL, "
                          "value TEXT NOT NULL)",
    "profile_files": "(id INTEGER PRIMARY KEY, map TEXT NOT NULL, key TEXT NOT NULL, "
                     "file TEXT NOT NULL, size_mb REAL NOT NULL, limit_mb REAL NOT NULL)",
}
_MATCHES = ("same email", "same name and date of birth")
# source keys listed per duplicate group: a placeholder email shared by half the patients is one
# group whose keys would not fit a report cell (nor memory); the rest are counted
KEYS_PER_GROUP = 1000
_COMMIT_EVERY = 10_000  # writes per transaction: the stage's WAL stays small (see Stage)


class _Findings:
    """Writes a profile's per-record findings to its tables in the stage, then turns them into
    the report's lists."""

    def __init__(self, stage: Stage, step_names: list[str]) -> None:
        self.stage, self.conn, self.names = stage, stage.conn, step_names
        self.targets: dict[tuple[str, ...], int] = {}
        self._writes = 0
        for table, columns in _TABLES.items():
            self.conn.execute(f"DROP TABLE IF EXISTS {table}")
            self.conn.execute(f"CREATE TABLE {table} {columns}")
        self.conn.commit()

    def _wrote(self) -> None:
        self._writes += 1
        if self._writes % _COMMIT_EVERY == 0:
            self.conn.commit()

    def reason(self, m: str, status: str, field_: str, why: str) -> None:
        self.conn.execute("INSERT INTO profile_reasons (map, status, field, reason, n) "
                          "VALUES (?,?,?,?,1) ON CONFLICT DO UPDATE SET n = n + 1",
                          (m, status, field_, why))
        self._wrote()

    def unmapped(self, valuemap: str, m: str, field_: str, value: str) -> None:
        self.conn.execute("INSERT INTO profile_unmapped (valuemap, map, field, value, n) "
                          "VALUES (?,?,?,?,1) ON CONFLICT DO UPDATE SET n = n + 1",
                          (valuemap, m, field_, value))
        self._wrote()

    def ref(self, m: str, field_: str, maps: tuple[str, ...], key: str) -> None:
        t = self.targets.get(maps)
        if t is None:
            t = self.targets[maps] = len(self.targets)
            self.conn.executemany("INSERT OR IGNORE INTO profile_targets VALUES (?, ?)",
                                  [(t, x) for x in maps])
        self.conn.execute("INSERT INTO profile_refs (map, field, targets, key) VALUES (?,?,?,?)",
                          (m, field_, t, key))
        self._wrote()

    def candidate(self, step: int, match: int, value: str, key: str, seq: int) -> None:
        self.conn.execute("INSERT INTO profile_candidates VALUES (?,?,?,?,?)",
                          (step, match, value, key, seq))
        self._wrote()

    def oversize(self, m: str, key: str, file: str, size_mb: float, limit_mb: float) -> None:
        self.conn.execute("INSERT INTO profile_files (map, key, file, size_mb, limit_mb) "
                          "VALUES (?,?,?,?,?)", (m, key, file, size_mb, limit_mb))
        self._wrote()

    def finish(self, report: ProfileReport) -> None:
        c = self.conn
        # orphans: references no ready record of any of their maps answers (the stage's primary
        # key (step, source_key) is the lookup)
        c.execute("""INSERT INTO profile_orphans
            SELECT r.id, r.map, r.field, r.targets, r.key FROM profile_refs r
            WHERE NOT EXISTS (SELECT 1 FROM profile_targets t JOIN staged s
                              ON s.step = t.map AND s.source_key = r.key AND s.status = 'ready'
                              WHERE t.targets = r.targets)""")
        c.execute("CREATE INDEX profile_orphans_group ON profile_orphans (map, field, targets, id)")
        c.execute("CREATE INDEX profile_candidates_value "
                  "ON profile_candidates (step, match, value, key)")
        c.execute("""INSERT INTO profile_duplicates (step, match, value)
            SELECT step, match, value FROM profile_candidates GROUP BY step, match, value
            HAVING COUNT(*) > 1 ORDER BY step, match, MIN(seq)""")
        c.commit()
        labels = {t: " | ".join(maps) for maps, t in self.targets.items()}
        report.orphans = [  # one row per map, field and target maps: bounded by the plan
            {"map": m, "field": f, "references": labels[t], "count": n,
             "example_keys": [k for (k,) in c.execute(
                 "SELECT key FROM profile_orphans WHERE map = ? AND field = ? AND targets = ? "
                 "ORDER BY id LIMIT 5", (m, f, t))]}
            for m, f, t, n in c.execute(
                "SELECT map, field, targets, COUNT(*) FROM profile_orphans "
                "GROUP BY map, field, targets ORDER BY COUNT(*) DESC, MIN(id)").fetchall()]
        names = self.names

        def count(table: str) -> int:
            return c.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]

        def reasons(conn: sqlite3.Connection) -> Iterator[dict[str, Any]]:
            for m, s, f, why, n in conn.execute(
                    "SELECT map, status, field, reason, n FROM profile_reasons "
                    "ORDER BY n DESC, id"):
                yield {"map": m, "status": s, "field": f, "reason": why, "count": n}

        def unmapped(conn: sqlite3.Connection) -> Iterator[dict[str, Any]]:
            for vm, m, f, v, n in conn.execute(
                    "SELECT valuemap, map, field, value, n FROM profile_unmapped "
                    "ORDER BY n DESC, valuemap, map, field, value"):
                yield {"valuemap": vm, "map": m, "field": f, "value": v, "count": n}

        def duplicates(conn: sqlite3.Connection) -> Iterator[dict[str, Any]]:
            rows = conn.execute(
                "SELECT d.id, d.step, d.match, c.key FROM profile_duplicates d "
                "JOIN profile_candidates c "
                "ON c.step = d.step AND c.match = d.match AND c.value = d.value "
                "ORDER BY d.id, c.key")
            for _, group in groupby(rows, key=lambda r: r[0]):
                rest = iter(group)  # consumed in turn: the listed keys, then the count of more
                _, step, match, first = next(rest)
                keys = [first, *(r[3] for r in islice(rest, KEYS_PER_GROUP - 1))]
                more = sum(1 for _ in rest)
                if more:
                    keys.append(f"… and {more:,} more")
                yield {"map": names[step], "match": _MATCHES[match], "keys": keys}

        def files(conn: sqlite3.Connection) -> Iterator[dict[str, Any]]:
            for m, k, f, size, limit in conn.execute(
                    "SELECT map, key, file, size_mb, limit_mb FROM profile_files ORDER BY id"):
                yield {"map": m, "key": k, "file": f, "size_mb": size, "limit_mb": limit}

        path = self.stage.path
        report.quarantine_reasons = StoredFindings(path, count("profile_reasons"), reasons)
        report.unmapped_values = StoredFindings(path, count("profile_unmapped"), unmapped)
        report.duplicates = StoredFindings(path, count("profile_duplicates"), duplicates)
        report.oversize_attachments = StoredFindings(path, count("profile_files"), files)


def _analyse(report: ProfileReport, plan: Plan, stage: Stage, extracted: dict[str, int],
             schema: SystemSchema | None, users, attachment_limit, files_root) -> None:
    found = _Findings(stage, [st.name for st in plan.steps])
    missing: Counter = Counter()  # per map and required field: bounded by the plan
    need = required_fields(plan, schema)
    for i, st in enumerate(plan.steps):
        counts: Counter = Counter()
        target_obj = schema.object(st.target if st.kind == "map" else plan.step(st.target).target) \
            if schema else None
        required = need.get(st.name, ())
        email_f, first_f, last_f, dob_f = _name_fields(target_obj)
        limit = attachment_limit
        if st.attach is not None and st.attach.limit_bytes is not None:
            limit = min(st.attach.limit_bytes, limit or st.attach.limit_bytes)
        for r in stage.records(st.name):
            counts[r.status] += 1
            if r.status in ("quarantined", "failed"):
                m = _VM_RE.search(r.detail or "")
                if m:
                    found.unmapped(m.group(1), st.name, r.field or "", repr(r.value))
                else:
                    found.reason(st.name, r.status, r.field or "", _generic(r.detail))
                continue
            if r.status != "ready":
                continue
            payload = r.payload
            for f in required:
                v = payload.get(f)
                if v is None or (isinstance(v, str) and not v.strip()):
                    missing[(st.name, f)] += 1
            for f, v in payload.items():
                if isinstance(v, Ref) and v.key is not None:
                    found.ref(st.name, f, v.maps, v.key)
                elif isinstance(v, Attachment):
                    _check_attachment(report, found, st.name, r.source_key, v, limit, files_root)
            if st.kind == "map":
                e = _norm(payload.get(email_f)) if email_f else None
                if e:
                    found.candidate(i, 0, e, r.source_key, r.seq)
                if last_f and dob_f and payload.get(last_f) and payload.get(dob_f):
                    person = [_norm(payload.get(first_f)) if first_f else None,
                              _norm(payload.get(last_f)), str(payload.get(dob_f))]
                    found.candidate(i, 1, json.dumps(person), r.source_key, r.seq)
        report.map_counts[st.name] = {"extracted": extracted.get(st.name, 0), **dict(counts)}
    report.missing_required = [{"map": m, "field": f, "count": n}
                               for (m, f), n in missing.most_common()]
    found.finish(report)
    emails = stage.owner_emails()
    if users is not None:
        known = {u.email.strip().lower() for u in users if u.active}
        report.owners = {"emails": len(emails),
                         "unmatched": {e: n for e, n in emails.items() if e not in known}}
    else:
        report.owners = {"emails": len(emails), "unmatched": {}, "note": "no target given"}


def _generic(detail: str | None) -> str:
    """Group reasons without record-specific text (keys, numbers)."""
    text = detail or "unknown"
    return re.sub(r"record \S+ was", "record … was", text)


def _check_attachment(report: ProfileReport, found: _Findings, step: str, key: str,
                      a: Attachment, limit: int | None, files_root: Path | None) -> None:
    try:
        p = attachment_file(a, files_root)
    except AttachmentOutsideRoot:  # the loader quarantines it: not a file of the export
        report.missing_files += 1
        return
    if p is None:  # no file for this record
        return
    if not p.is_file():
        report.missing_files += 1
        return
    size = p.stat().st_size
    if limit is not None and size > limit:
        found.oversize(step, key, p.name, round(size / 1048576, 1), round(limit / 1048576, 1))

