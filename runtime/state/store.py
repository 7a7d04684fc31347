"""The per-migration state store: runs, the operation journal, the id map, quarantine, outcomes,
watermarks. One SQLite file per migration project (stdlib ``sqlite3``).

Durability: WAL journal with ``synchronous=FULL``. In WAL mode ``NORMAL`` already survives a killed
process, but a power loss or OS crash can roll back the last commits; losing a "sent"/"confirmed"
mark after the CRM executed the call is exactly how duplicates happen on resume. ``FULL`` costs one
fsync per commit, and the executor commits a few times per API batch (100-200 records per call), so
the cost is noise next to the network round trip.

Every method that writes commits before it returns; multi-statement writes run in one
``BEGIN IMMEDIATE`` transaction (single writer; a second writer waits up to ``busy_timeout``).

The journal protocol around every remote call::

    ids = store.plan_ops(run_id, batch)        # intent, committed BEFORE the call
    store.mark_sent(ids)                       # committed immediately before the call
    ... call the CRM ...
    store.confirm([OpResult(id, dest_id), ...], outcomes=[...])   # or store.fail([...])

After a crash, ``unresolved_ops(run_id)`` lists what has no outcome: ``planned`` ops were never sent
(safe to send); ``sent``/``unknown`` ops may or may not have reached the CRM and must be looked up by
external id first (then ``confirm`` if found, ``requeue`` if absent).
"""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from hashlib import sha256
from itertools import islice
from pathlib import Path
from typing import Any

from runtime.state.masking import mask
from runtime.state.schema import StateError, migrate

__all__ = [
    "StateStore",
    "StateError",
    "DuplicateOutcomeError",
    "PlannedOp",
    "OpResult",
    "Op",
    "Outcome",
    "QuarantineItem",
    "IdEntry",
    "Watermark",
    "TieKeys",
    "RunInfo",
    "canonical_json",
    "chunked",
    "request_hash",
    "RUN_STATUSES",
    "OP_KINDS",
    "OUTCOMES",
    "COUNT_KEYS",
]

RUN_STATUSES = ("running", "completed", "failed", "stopped", "rolled_back")
OP_KINDS = ("create", "update", "upsert", "delete", "restore")
OUTCOMES = ("loaded", "skipped", "quarantined", "failed")
LOADED_DETAILS = ("created", "updated", "unchanged")
COUNT_KEYS = ("extracted", "created", "updated", "unchanged", "skipped", "quarantined", "failed")
UNRESOLVED_STATES = ("planned", "sent", "unknown")
_CHUNK = 500  # keys per IN (...) clause, under SQLite's variable limit


class DuplicateOutcomeError(StateError):
    """A source record already has an outcome for this map in this run."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _json_default(v: Any) -> Any:
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, (datetime, date, time)):
        return v.isoformat()
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex()
    if isinstance(v, (set, frozenset)):
        return sorted(v, key=str)
    raise TypeError(f"cannot serialise {type(v).__name__}")


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, UTF-8 text, Decimals as strings."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default
    )


def request_hash(payload: Any) -> str:
    """sha256 (hex) of the canonical JSON of a request payload."""
    return sha256(canonical_json(payload).encode("utf-8")).hexdigest()


def chunked(items: Iterable[Any], n: int = _CHUNK) -> Iterator[list[Any]]:
    """``items`` in lists of ``n`` (the last shorter). Takes any iterable, so the loader batches a
    staged-record cursor with it as well as key lists; the default size keeps an ``IN (...)`` of
    one chunk under SQLite's variable limit."""
    it = iter(items)
    while chunk := list(islice(it, n)):
        yield chunk


# -- value types ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlannedOp:
    """An operation about to be sent. ``payload`` (the field values to write) is hashed
    (request_hash) and, since state schema 3, stored as the op's ``written`` values (rollback's
    conflict check and reconciliation's spot check compare the destination against them);
    ``before_image`` (the destination record before an update/delete) is stored for rollback."""

    map: str
    target_object: str
    op: str
    source_object: str | None = None
    source_key: str | None = None
    external_id: str | None = None
    payload: Any = None
    request_hash: str | None = None
    before_image: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class OpResult:
    """A confirmed operation. ``created`` says whether an upsert created the record."""

    op_id: int
    destination_id: str | None = None
    created: bool | None = None


@dataclass(frozen=True, slots=True)
class Op:
    id: int
    run_id: int
    map: str
    target_object: str
    source_object: str | None
    source_key: str | None
    external_id: str | None
    op: str
    state: str
    destination_id: str | None
    request_hash: str | None
    before_image: dict[str, Any] | None
    error: str | None
    attempt: int
    planned_at: str
    sent_at: str | None
    finished_at: str | None
    written: dict[str, Any] | None = None  # field values sent (schema 3; None if not journaled)
    created: bool | None = None  # the confirmed op created the record (schema 3)
    undone_by: int | None = None  # the rollback op that undid this op (schema 3)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One source record's outcome for one map. ``detail``: created|updated|unchanged for loaded,
    the rule for skipped, the reason for quarantined, the error for failed (no PHI)."""

    map: str
    source_key: str
    outcome: str
    detail: str | None = None
    source_object: str | None = None


@dataclass(frozen=True, slots=True)
class QuarantineItem:
    """Why a record (or one field of it) was rejected. ``value`` is masked when ``sensitive``."""

    source_object: str | None
    source_key: str
    map: str | None
    reason: str
    field: str | None = None
    value: Any = None
    rule: str | None = None
    location: str | None = None  # "patients.fmap:42"
    sensitive: bool = False


@dataclass(frozen=True, slots=True)
class IdEntry:
    map: str
    source_key: str
    destination_id: str
    target_object: str | None = None
    external_id: str | None = None
    run_id: int | None = None
    created: bool = False


class TieKeys(AbstractSet[str]):
    """The keys recorded at a watermark's instant, left in the state file: a bulk import stamps
    every row alike, so there can be as many as there are records. Membership is one indexed
    lookup (a delta run asks only for records exactly at the tie instant); iterating or comparing
    reads the rows, for inspection and tests, never on a run's path."""

    __slots__ = ("_conn", "_object")

    def __init__(self, conn: sqlite3.Connection, source_object: str) -> None:
        self._conn, self._object = conn, source_object

    def __contains__(self, key: object) -> bool:
        return self._conn.execute(
            "SELECT 1 FROM watermark_keys WHERE source_object = ? AND key = ?",
            (self._object, key)).fetchone() is not None

    def __iter__(self) -> Iterator[str]:
        for (k,) in self._conn.execute(
                "SELECT key FROM watermark_keys WHERE source_object = ? ORDER BY key",
                (self._object,)):
            yield k

    def __len__(self) -> int:
        return self._conn.execute("SELECT COUNT(*) FROM watermark_keys WHERE source_object = ?",
                                  (self._object,)).fetchone()[0]

    def __repr__(self) -> str:
        return f"TieKeys({self._object!r}, {len(self)} keys)"


@dataclass(frozen=True, slots=True)
class Watermark:
    """The last confirmed modified-at value of a source object and the keys already processed at
    exactly that value (records sharing the timestamp that a later delta run must still pick up).
    From the store, ``keys`` is a :class:`TieKeys` that reads the state file's current tie keys:
    valid until that object's watermark next moves."""

    source_object: str
    modified_at: str
    keys: AbstractSet[str]

    def admits(self, modified_at: str | None, key: str, parse: Any = None) -> bool:
        """Should a delta run process this record? Newer: yes; same instant: only keys not yet
        seen; older: no; no timestamp, or one that ``parse`` (the source object's instant parser,
        ISO-8601 by default) cannot read: yes (cannot be proved unchanged)."""
        if modified_at is None:
            return True
        from runtime.sources.base import instant_parser

        parse = parse or instant_parser()
        return self.admits_instant(parse(modified_at), key, parse(self.modified_at))

    def admits_instant(self, instant: float | None, key: str, at: float | None) -> bool:
        """:meth:`admits` for a record whose modified-at was already read as ``instant``; ``at``:
        this watermark's own instant, read with the same parser (a delta run reads each value
        once, not again per comparison). The tie keys are consulted only at exactly ``at``."""
        if instant is None or at is None:
            return True
        return instant > at or (instant == at and key not in self.keys)


@dataclass(frozen=True, slots=True)
class RunInfo:
    id: int
    migration: str
    fmap_path: str | None
    source_sha256: str | None
    started_at: str
    finished_at: str | None
    status: str
    options: dict[str, Any]
    counts: dict[str, Any] | None


def _ts_cmp(a: str, b: str, parse: Any = None) -> int | None:
    """Compare two modified-at strings as the instants they stand for (``parse``: a
    ``runtime.sources.base.instant_parser``; ISO-8601, naive = UTC, by default); None when either
    does not parse. Never as text: ``07/01/2025`` is after ``12/30/2024``."""
    from runtime.sources.base import instant_parser

    parse = parse or instant_parser()
    da, db = parse(a), parse(b)
    if da is None or db is None:
        return None
    return (da > db) - (da < db)


# -- the store -----------------------------------------------------------------------------------


# A connection's own memory fixed so it does not scale with the data (the state store's journal,
# the executor's stage): page cache 2 MiB, sorts and temp tables spill to disk, no mmap, and the
# WAL checkpointed into the file every ~4 MiB (SQLite's default of 1,000 pages), so a
# million-record run's WAL does not grow without bound.
BOUNDED_MEMORY_PRAGMAS = (
    "PRAGMA cache_size = -2048",
    "PRAGMA temp_store = FILE",
    "PRAGMA mmap_size = 0",
    "PRAGMA wal_autocheckpoint = 1000",
)
# the ones a database attached to a connection does not inherit: each schema has a page cache and
# an mmap of its own, at SQLite's defaults until set as ``PRAGMA <schema>.cache_size``
_PER_SCHEMA_PRAGMAS = ("cache_size", "mmap_size")


class StateStore:
    """Open (creating or upgrading) the state file at ``path``. Use as a context manager or call
    :meth:`close`. ``":memory:"`` works for tests."""

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 10_000) -> None:
        self.path = str(path)
        try:
            self.conn = sqlite3.connect(self.path, isolation_level=None)
        except sqlite3.Error as e:
            raise StateError(f"cannot open state file {self.path}: {e}") from None
        self.conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        mode = self.conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal" and self.path != ":memory:":
            raise StateError(f"state file {self.path}: cannot switch to WAL (journal_mode={mode})")
        self.conn.execute("PRAGMA synchronous = FULL")
        self.conn.execute("PRAGMA foreign_keys = ON")
        # memory that does not grow with the journal (the counts' GROUP BY and the watermark
        # queries sort on disk)
        for pragma in BOUNDED_MEMORY_PRAGMAS:
            self.conn.execute(pragma)
        self.schema_version = migrate(self.conn)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction, committed on success, rolled back on error."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    @contextmanager
    def attached(self, path: str, schema: str) -> Iterator[None]:
        """The database at ``path`` attached as ``schema`` for the block, so one statement can join
        it with the state (the watermark query over the stage), under the same memory bounds as
        the state file itself."""
        if not schema.isidentifier():
            raise StateError(f"not a schema name: {schema!r}")
        self.conn.execute(f"ATTACH DATABASE ? AS {schema}", (path,))
        try:
            for pragma in BOUNDED_MEMORY_PRAGMAS:
                if pragma.split()[1] in _PER_SCHEMA_PRAGMAS:
                    self.conn.execute(pragma.replace("PRAGMA ", f"PRAGMA {schema}.", 1))
            yield
        finally:
            self.conn.execute(f"DETACH DATABASE {schema}")

    # -- runs ------------------------------------------------------------------------------------
    def start_run(
        self,
        migration: str,
        *,
        fmap_path: str | None = None,
        source_sha256: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> int:
        cur = self.conn.execute(
            "INSERT INTO runs (migration, fmap_path, source_sha256, started_at, status, options) "
            "VALUES (?, ?, ?, ?, 'running', ?)",
            (migration, fmap_path, source_sha256, _now(), canonical_json(dict(options or {}))),
        )
        return int(cur.lastrowid)

    def set_run_status(self, run_id: int, status: str) -> None:
        if status not in RUN_STATUSES:
            raise StateError(f"unknown run status '{status}'")
        finished = None if status == "running" else _now()
        cur = self.conn.execute(
            "UPDATE runs SET status = ?, finished_at = ? WHERE id = ?", (status, finished, run_id)
        )
        if cur.rowcount != 1:
            raise StateError(f"no run {run_id}")

    def resume_run(self, run_id: int) -> RunInfo:
        """Mark a stopped/failed (or crashed, still 'running') run as running again."""
        run = self.get_run(run_id)
        if run.status not in ("running", "stopped", "failed"):
            raise StateError(
                f"run {run_id} is {run.status}; only running/stopped/failed runs resume"
            )
        self.set_run_status(run_id, "running")
        return self.get_run(run_id)

    def finish_run(self, run_id: int, status: str = "completed") -> dict[str, dict[str, int]]:
        """Set the final status and store the run's counts (returned)."""
        if status not in RUN_STATUSES or status == "running":
            raise StateError(f"'{status}' is not a final run status")
        with self.transaction():
            counts = self.counts(run_id)
            cur = self.conn.execute(
                "UPDATE runs SET status = ?, finished_at = ?, counts = ? WHERE id = ?",
                (status, _now(), canonical_json(counts), run_id),
            )
            if cur.rowcount != 1:
                raise StateError(f"no run {run_id}")
        return counts

    @staticmethod
    def _run_row(row: sqlite3.Row | tuple) -> RunInfo:
        return RunInfo(
            id=row[0],
            migration=row[1],
            fmap_path=row[2],
            source_sha256=row[3],
            started_at=row[4],
            finished_at=row[5],
            status=row[6],
            options=json.loads(row[7] or "{}"),
            counts=json.loads(row[8]) if row[8] else None,
        )

    _RUN_COLS = (
        "id, migration, fmap_path, source_sha256, started_at, finished_at, status, options, counts"
    )

    def get_run(self, run_id: int) -> RunInfo:
        row = self.conn.execute(
            f"SELECT {self._RUN_COLS} FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
        if row is None:
            raise StateError(f"no run {run_id}")
        return self._run_row(row)

    def runs(self, migration: str | None = None) -> list[RunInfo]:
        if migration is None:
            rows = self.conn.execute(f"SELECT {self._RUN_COLS} FROM runs ORDER BY id")
        else:
            rows = self.conn.execute(
                f"SELECT {self._RUN_COLS} FROM runs WHERE migration = ? ORDER BY id", (migration,)
            )
        return [self._run_row(r) for r in rows]

    def latest_run(self, migration: str | None = None, status: str | None = None) -> RunInfo | None:
        runs = [r for r in self.runs(migration) if status is None or r.status == status]
        return runs[-1] if runs else None

    # -- operation journal -----------------------------------------------------------------------
    def plan_ops(self, run_id: int, ops: Iterable[PlannedOp]) -> list[int]:
        """Journal the intent of a batch (state 'planned') in one transaction; returns the op ids in
        batch order. Call before anything is sent."""
        now = _now()
        ids: list[int] = []
        with self.transaction():
            for p in ops:
                if p.op not in OP_KINDS:
                    raise StateError(f"unknown op '{p.op}' (map {p.map})")
                rh = p.request_hash or (request_hash(p.payload) if p.payload is not None else None)
                before = canonical_json(p.before_image) if p.before_image is not None else None
                written = (canonical_json(p.payload)
                           if isinstance(p.payload, Mapping) and p.op != "delete" else None)
                cur = self.conn.execute(
                    "INSERT INTO ops (run_id, map, target_object, source_object, source_key, "
                    "external_id, op, state, request_hash, before_image, planned_at, written) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, 'planned', ?, ?, ?, ?)",
                    (
                        run_id,
                        p.map,
                        p.target_object,
                        p.source_object,
                        p.source_key,
                        p.external_id,
                        p.op,
                        rh,
                        before,
                        now,
                        written,
                    ),
                )
                ids.append(int(cur.lastrowid))
        return ids

    def _transition(
        self, ids: Sequence[int], sets: str, params: tuple, allowed: tuple[str, ...], to: str
    ) -> None:
        """Within a transaction: move ``ids`` to a new state; every id must be in ``allowed``."""
        q = ",".join("?" * len(allowed))
        for chunk in chunked(ids):
            marks = ",".join("?" * len(chunk))
            cur = self.conn.execute(
                f"UPDATE ops SET {sets} WHERE id IN ({marks}) AND state IN ({q})",
                (*params, *chunk, *allowed),
            )
            if cur.rowcount != len(set(chunk)):
                bad = [
                    f"{r[0]}:{r[1]}"
                    for r in self.conn.execute(
                        f"SELECT id, state FROM ops WHERE id IN ({marks})", tuple(chunk)
                    )
                ]
                raise StateError(
                    f"cannot move ops to '{to}' (allowed from {', '.join(allowed)}); "
                    f"ops checked (id:state): {', '.join(bad) or 'none found'}"
                )

    def mark_sent(self, ids: Sequence[int]) -> None:
        """planned -> sent, committed before the remote call is made."""
        with self.transaction():
            self._transition(ids, "state = 'sent', sent_at = ?", (_now(),), ("planned",), "sent")

    def mark_unknown(self, ids: Sequence[int], error: str | None = None) -> None:
        """sent -> unknown: the call's outcome could not be determined (timeout, dropped
        connection). Must be looked up by external id before any re-send."""
        with self.transaction():
            self._transition(
                ids, "state = 'unknown', error = ?", (error,), ("sent", "unknown"), "unknown"
            )

    def requeue(self, ids: Sequence[int]) -> None:
        """sent/unknown -> planned after a lookup proved the record absent; counts an attempt."""
        with self.transaction():
            self._transition(
                ids,
                "state = 'planned', sent_at = NULL, attempt = attempt + 1",
                (),
                ("sent", "unknown"),
                "planned",
            )

    def confirm(
        self, results: Iterable[OpResult | tuple[int, str | None]], outcomes: Iterable[Outcome] = ()
    ) -> None:
        """sent/unknown -> confirmed, in one transaction with: the id map (create/upsert/update/
        restore record the destination id; delete removes the entry) and the given outcomes."""
        now = _now()
        res = [r if isinstance(r, OpResult) else OpResult(*r) for r in results]
        outs = list(outcomes)
        with self.transaction():
            for r in res:
                self._transition(
                    [r.op_id],
                    "state = 'confirmed', destination_id = COALESCE(?, destination_id), "
                    "finished_at = ?, error = NULL, created = CASE op WHEN 'create' THEN 1 "
                    "WHEN 'upsert' THEN ? ELSE 0 END",
                    (r.destination_id, now, None if r.created is None else int(r.created)),
                    ("sent", "unknown"),
                    "confirmed",
                )
                row = self.conn.execute(
                    "SELECT run_id, map, target_object, source_key, external_id, op, destination_id "
                    "FROM ops WHERE id = ?",
                    (r.op_id,),
                ).fetchone()
                run_id, map_, target, key, ext, op, dest = row
                if key is None:
                    continue
                if op == "delete":
                    self.conn.execute(
                        "DELETE FROM id_map WHERE map = ? AND source_key = ?", (map_, key)
                    )
                elif dest is not None:
                    created = op == "create" or (op == "upsert" and bool(r.created))
                    self._record_id(IdEntry(map_, key, dest, target, ext, run_id, created), now)
            if outs:
                self._record_outcomes(self._run_of(res), outs, now)

    def fail(self, failures: Iterable[tuple[int, str]], outcomes: Iterable[Outcome] = ()) -> None:
        """planned/sent/unknown -> failed with an error (which must carry no PHI), in one
        transaction with the given outcomes."""
        now = _now()
        fails = list(failures)
        outs = list(outcomes)
        with self.transaction():
            for op_id, error in fails:
                self._transition(
                    [op_id],
                    "state = 'failed', error = ?, finished_at = ?",
                    (error, now),
                    UNRESOLVED_STATES,
                    "failed",
                )
            if outs:
                self._record_outcomes(self._run_of([OpResult(i) for i, _ in fails]), outs, now)

    def _run_of(self, results: Sequence[OpResult]) -> int:
        ids = [r.op_id for r in results]
        if not ids:
            raise StateError("outcomes given without ops")
        runs = {
            r[0]
            for chunk in chunked(ids)
            for r in self.conn.execute(
                f"SELECT DISTINCT run_id FROM ops WHERE id IN ({','.join('?' * len(chunk))})",
                tuple(chunk),
            )
        }
        if len(runs) != 1:
            raise StateError("ops of one confirm/fail call must belong to one run")
        return runs.pop()

    _OP_COLS = (
        "id, run_id, map, target_object, source_object, source_key, external_id, op, state, "
        "destination_id, request_hash, before_image, error, attempt, planned_at, sent_at, finished_at, "
        "written, created, undone_by"
    )

    @staticmethod
    def _op_row(r: tuple) -> Op:
        vals = list(r)
        vals[11] = json.loads(vals[11]) if vals[11] else None
        vals[17] = json.loads(vals[17]) if vals[17] else None
        vals[18] = None if vals[18] is None else bool(vals[18])
        return Op(*vals)

    def set_written(self, op_id: int, values: Mapping[str, Any]) -> None:
        """Store the field values an op sent (for writers that journal the payload after
        planning, e.g. :class:`runtime.operations.recording.RecordingDestination`)."""
        self.conn.execute("UPDATE ops SET written = ? WHERE id = ?",
                          (canonical_json(dict(values)), op_id))

    def mark_undone(self, op_ids: Iterable[int], by: int) -> None:
        """Record that rollback op ``by`` undid the given ops."""
        with self.transaction():
            for chunk in chunked(op_ids):
                self.conn.execute(
                    f"UPDATE ops SET undone_by = ? WHERE id IN ({','.join('?' * len(chunk))})",
                    (by, *chunk))

    def ops_for_destination(self, target_object: str, destination_id: str) -> list[Op]:
        """Every op (all runs) on one destination record, oldest first."""
        rows = self.conn.execute(
            f"SELECT {self._OP_COLS} FROM ops WHERE target_object = ? AND destination_id = ? "
            "ORDER BY id", (target_object, destination_id))
        return [self._op_row(r) for r in rows]

    def forget_destination(self, target_object: str, destination_id: str) -> int:
        """Remove every id-map entry pointing at a (deleted) destination record; returns how many."""
        cur = self.conn.execute(
            "DELETE FROM id_map WHERE destination_id = ? AND (target_object = ? OR target_object "
            "IS NULL)", (destination_id, target_object))
        return cur.rowcount

    def get_op(self, op_id: int) -> Op:
        row = self.conn.execute(
            f"SELECT {self._OP_COLS} FROM ops WHERE id = ?", (op_id,)
        ).fetchone()
        if row is None:
            raise StateError(f"no op {op_id}")
        return self._op_row(row)

    def ops_by_ids(self, op_ids: Iterable[int]) -> list[Op]:
        """The ops with these ids (any run), in id order; unknown ids are left out."""
        out: list[Op] = []
        for chunk in chunked(dict.fromkeys(op_ids)):
            marks = ",".join("?" * len(chunk))
            out += [self._op_row(r) for r in self.conn.execute(
                f"SELECT {self._OP_COLS} FROM ops WHERE id IN ({marks})", tuple(chunk))]
        return sorted(out, key=lambda o: o.id)

    def ops(self, run_id: int, *, state: str | None = None, map: str | None = None) -> Iterator[Op]:
        sql = f"SELECT {self._OP_COLS} FROM ops WHERE run_id = ?"
        params: list[Any] = [run_id]
        if state is not None:
            sql += " AND state = ?"
            params.append(state)
        if map is not None:
            sql += " AND map = ?"
            params.append(map)
        for r in self.conn.execute(sql + " ORDER BY id", params):
            yield self._op_row(r)

    def unresolved_ops(self, run_id: int) -> list[Op]:
        """Ops without an outcome (planned, sent, unknown), oldest first. 'planned' ones were never
        sent; 'sent'/'unknown' ones must be looked up by external id before anything is re-sent."""
        rows = self.conn.execute(
            f"SELECT {self._OP_COLS} FROM ops WHERE run_id = ? "
            "AND state IN ('planned','sent','unknown') ORDER BY id",
            (run_id,),
        )
        return [self._op_row(r) for r in rows]

    # -- id map ----------------------------------------------------------------------------------
    def _record_id(self, e: IdEntry, now: str) -> None:
        self.conn.execute(
            "INSERT INTO id_map (map, source_key, destination_id, target_object, external_id, "
            "run_id, created, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (map, source_key) DO UPDATE SET destination_id = excluded.destination_id, "
            "target_object = COALESCE(excluded.target_object, target_object), "
            "external_id = COALESCE(excluded.external_id, external_id), "
            "run_id = excluded.run_id, created = MAX(created, excluded.created), "
            "updated_at = excluded.updated_at",
            (
                e.map,
                e.source_key,
                e.destination_id,
                e.target_object,
                e.external_id,
                e.run_id,
                int(e.created),
                now,
            ),
        )

    def record(
        self,
        map: str,
        source_key: str,
        destination_id: str,
        *,
        target_object: str | None = None,
        external_id: str | None = None,
        run_id: int | None = None,
        created: bool = False,
    ) -> None:
        """Record source key -> destination id under ``map`` (the namespace ``ref()`` resolves
        through: the target object for a plain map, or the map name when several maps load the
        same target). ``created`` says fmap created the destination record (kept once set)."""
        self.record_many(
            [IdEntry(map, source_key, destination_id, target_object, external_id, run_id, created)]
        )

    def record_many(self, entries: Iterable[IdEntry]) -> None:
        now = _now()
        with self.transaction():
            for e in entries:
                self._record_id(e, now)

    def lookup(self, map: str, source_key: str) -> str | None:
        row = self.conn.execute(
            "SELECT destination_id FROM id_map WHERE map = ? AND source_key = ?", (map, source_key)
        ).fetchone()
        return row[0] if row else None

    def lookup_many(self, map: str, source_keys: Iterable[str]) -> dict[str, str]:
        """The found subset of ``source_keys`` -> destination id (missing keys are absent)."""
        keys = list(dict.fromkeys(source_keys))
        found: dict[str, str] = {}
        for chunk in chunked(keys):
            for k, d in self.conn.execute(
                f"SELECT source_key, destination_id FROM id_map WHERE map = ? "
                f"AND source_key IN ({','.join('?' * len(chunk))})",
                (map, *chunk),
            ):
                found[k] = d
        return found

    def id_entry(self, map: str, source_key: str) -> IdEntry | None:
        row = self.conn.execute(
            "SELECT map, source_key, destination_id, target_object, external_id, run_id, created "
            "FROM id_map WHERE map = ? AND source_key = ?",
            (map, source_key),
        ).fetchone()
        return IdEntry(*row[:6], bool(row[6])) if row else None

    def forget(self, map: str, source_key: str) -> None:
        self.conn.execute("DELETE FROM id_map WHERE map = ? AND source_key = ?", (map, source_key))

    # -- outcomes --------------------------------------------------------------------------------
    def _record_outcomes(self, run_id: int, outcomes: Iterable[Outcome], now: str) -> None:
        for o in outcomes:
            if o.outcome not in OUTCOMES:
                raise StateError(f"unknown outcome '{o.outcome}' (map {o.map})")
            if o.outcome == "loaded" and o.detail not in LOADED_DETAILS:
                raise StateError(
                    f"a loaded outcome needs detail created|updated|unchanged (map {o.map})"
                )
            try:
                self.conn.execute(
                    "INSERT INTO outcomes (run_id, map, source_key, source_object, outcome, detail, "
                    "recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (run_id, o.map, o.source_key, o.source_object, o.outcome, o.detail, now),
                )
            except sqlite3.IntegrityError as e:
                if "UNIQUE" in str(e) or "PRIMARY KEY" in str(e):
                    raise DuplicateOutcomeError(
                        f"run {run_id}: source key {o.source_key!r} already has an outcome for map "
                        f"{o.map!r}"
                    ) from None
                raise StateError(f"run {run_id}: cannot record outcome: {e}") from None

    def record_outcomes(self, run_id: int, outcomes: Iterable[Outcome]) -> None:
        """Record outcomes in one transaction; a record that already has an outcome for the map in
        this run raises :class:`DuplicateOutcomeError` and nothing of the batch is written."""
        with self.transaction():
            self._record_outcomes(run_id, outcomes, _now())

    def record_outcome(
        self,
        run_id: int,
        map: str,
        source_key: str,
        outcome: str,
        detail: str | None = None,
        *,
        source_object: str | None = None,
    ) -> None:
        self.record_outcomes(run_id, [Outcome(map, source_key, outcome, detail, source_object)])

    def outcomes_for(
        self, run_id: int, map: str, source_keys: Iterable[str]
    ) -> dict[str, tuple[str, str | None]]:
        """The recorded subset of ``source_keys`` -> (outcome, detail); resume skips these."""
        keys = list(dict.fromkeys(source_keys))
        found: dict[str, tuple[str, str | None]] = {}
        for chunk in chunked(keys):
            for k, o, d in self.conn.execute(
                f"SELECT source_key, outcome, detail FROM outcomes WHERE run_id = ? AND map = ? "
                f"AND source_key IN ({','.join('?' * len(chunk))})",
                (run_id, map, *chunk),
            ):
                found[k] = (o, d)
        return found

    def set_extracted(self, run_id: int, map: str, n: int) -> None:
        """How many source records ``map`` saw in this run (set, not added: idempotent on resume)."""
        self.conn.execute(
            "INSERT INTO extracted (run_id, map, n) VALUES (?, ?, ?) "
            "ON CONFLICT (run_id, map) DO UPDATE SET n = excluded.n",
            (run_id, map, n),
        )

    def counts(self, run_id: int) -> dict[str, dict[str, int]]:
        """Per map: extracted, created, updated, unchanged, skipped, quarantined, failed, and
        pending (= extracted minus recorded outcomes; non-zero means records without an outcome).
        ``extracted`` is what :meth:`set_extracted` recorded, or the number of outcomes if the
        executor never set it."""
        result: dict[str, dict[str, int]] = {}

        def entry(m: str) -> dict[str, int]:
            return result.setdefault(m, {k: 0 for k in (*COUNT_KEYS, "pending")})

        for m, outcome, detail, n in self.conn.execute(
            "SELECT map, outcome, CASE WHEN outcome = 'loaded' THEN detail END, COUNT(*) "
            "FROM outcomes WHERE run_id = ? GROUP BY 1, 2, 3",
            (run_id,),
        ):
            entry(m)[detail if outcome == "loaded" else outcome] += n
        extracted = dict(
            self.conn.execute("SELECT map, n FROM extracted WHERE run_id = ?", (run_id,)).fetchall()
        )
        for m in set(extracted) | set(result):
            e = entry(m)
            done = sum(e[k] for k in COUNT_KEYS[1:])
            e["extracted"] = extracted.get(m, done)
            e["pending"] = max(e["extracted"] - done, 0)
        return dict(sorted(result.items()))

    # -- quarantine ------------------------------------------------------------------------------
    def quarantine(
        self, run_id: int, items: Iterable[QuarantineItem], *, record_outcome: bool = True
    ) -> int:
        """Store quarantine rows (sensitive values masked) and, unless ``record_outcome`` is False,
        one 'quarantined' outcome per (map, source key) in the same transaction (the first item's
        reason is the outcome's detail). Returns the number of rows stored."""
        now = _now()
        n = 0
        outs: dict[tuple[str, str], Outcome] = {}
        with self.transaction():
            for q in items:
                if q.value is None:
                    value = None
                elif q.sensitive:
                    value = mask(q.value)
                else:
                    value = q.value if isinstance(q.value, str) else canonical_json(q.value)
                self.conn.execute(
                    "INSERT INTO quarantine (run_id, source_object, source_key, map, field, value, "
                    "rule, location, reason, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        run_id,
                        q.source_object,
                        q.source_key,
                        q.map,
                        q.field,
                        value,
                        q.rule,
                        q.location,
                        q.reason,
                        now,
                    ),
                )
                n += 1
                if record_outcome and q.map is not None:
                    outs.setdefault(
                        (q.map, q.source_key),
                        Outcome(q.map, q.source_key, "quarantined", q.reason, q.source_object),
                    )
            if outs:
                self._record_outcomes(run_id, outs.values(), now)
        return n

    def quarantined(self, run_id: int) -> Iterator[dict[str, Any]]:
        cur = self.conn.execute(
            "SELECT id, run_id, source_object, source_key, map, field, value, rule, location, "
            "reason, created_at FROM quarantine WHERE run_id = ? ORDER BY id",
            (run_id,),
        )
        cols = [d[0] for d in cur.description]
        for r in cur:
            yield dict(zip(cols, r, strict=True))

    # -- watermarks ------------------------------------------------------------------------------
    def get_watermark(self, source_object: str) -> Watermark | None:
        row = self.conn.execute(
            "SELECT modified_at FROM watermarks WHERE source_object = ?", (source_object,)
        ).fetchone()
        if row is None:
            return None
        return Watermark(source_object, row[0], TieKeys(self.conn, source_object))

    def advance_watermark(
        self,
        source_object: str,
        modified_at: str,
        keys: Iterable[str] = (),
        *,
        run_id: int | None = None,
        parse: Any = None,
    ) -> Watermark:
        """Move the watermark forward after records up to ``modified_at`` were confirmed. ``keys``
        are the confirmed records' keys whose modified-at equals ``modified_at``, consumed once
        and streamed into the state file (a generator over a query keeps a bulk import's million
        ties out of memory). A later timestamp replaces the tie keys, the same timestamp adds to
        them, an earlier one changes nothing (watermarks never move back; ``parse`` reads the
        timestamps as instants, see :meth:`Watermark.admits`; a stored value that does not parse
        is replaced). Returns the stored watermark."""
        with self.transaction():
            row = self.conn.execute(
                "SELECT modified_at FROM watermarks WHERE source_object = ?", (source_object,)
            ).fetchone()
            if row is not None:
                c = _ts_cmp(modified_at, row[0], parse)
                if c is not None and c < 0:
                    return Watermark(source_object, row[0], TieKeys(self.conn, source_object))
                if c == 0:
                    modified_at = row[0]
                else:  # later, or an unreadable stored value (older fmap compared text)
                    self.conn.execute("DELETE FROM watermark_keys WHERE source_object = ?",
                                      (source_object,))
            self.conn.executemany(
                "INSERT OR IGNORE INTO watermark_keys (source_object, key) VALUES (?, ?)",
                ((source_object, k) for k in keys))
            self.conn.execute(
                "INSERT INTO watermarks (source_object, modified_at, run_id, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (source_object) DO UPDATE SET "
                "modified_at = excluded.modified_at, run_id = excluded.run_id, "
                "updated_at = excluded.updated_at",
                (source_object, modified_at, run_id, _now()),
            )
        return Watermark(source_object, modified_at, TieKeys(self.conn, source_object))

    def reset_watermark(self, source_object: str) -> None:
        with self.transaction():
            self.conn.execute("DELETE FROM watermark_keys WHERE source_object = ?",
                              (source_object,))
            self.conn.execute("DELETE FROM watermarks WHERE source_object = ?", (source_object,))

    # -- audit -----------------------------------------------------------------------------------
    AUDIT_FIELDS = (
        "op_id",
        "run_id",
        "map",
        "target_object",
        "source_object",
        "source_key",
        "external_id",
        "op",
        "state",
        "destination_id",
        "request_hash",
        "error",
        "attempt",
        "planned_at",
        "sent_at",
        "finished_at",
    )

    def audit_rows(
        self, run_id: int, *, include_before_image: bool = False
    ) -> Iterator[dict[str, Any]]:
        """The journal of a run, one dict per operation, in order. Before-images (destination
        record contents: PHI) are left out unless asked for."""
        for op in self.ops(run_id):
            row = {
                "op_id": op.id,
                "run_id": op.run_id,
                "map": op.map,
                "target_object": op.target_object,
                "source_object": op.source_object,
                "source_key": op.source_key,
                "external_id": op.external_id,
                "op": op.op,
                "state": op.state,
                "destination_id": op.destination_id,
                "request_hash": op.request_hash,
                "error": op.error,
                "attempt": op.attempt,
                "planned_at": op.planned_at,
                "sent_at": op.sent_at,
                "finished_at": op.finished_at,
            }
            if include_before_image:
                row["before_image"] = op.before_image
            yield row

    def export_audit(
        self, run_id: int, path: str | Path, fmt: str = "csv", *, include_before_image: bool = False
    ) -> int:
        """Write the run's journal to ``path`` as CSV or JSON Lines; returns the number of rows."""
        if fmt not in ("csv", "jsonl"):
            raise StateError(f"unknown audit format '{fmt}' (csv or jsonl)")
        self.get_run(run_id)
        fields = list(self.AUDIT_FIELDS) + (["before_image"] if include_before_image else [])
        n = 0
        with open(path, "w", encoding="utf-8", newline="") as fh:
            rows = self.audit_rows(run_id, include_before_image=include_before_image)
            if fmt == "csv":
                w = csv.DictWriter(fh, fieldnames=fields)
                w.writeheader()
                for row in rows:
                    if include_before_image and row["before_image"] is not None:
                        row["before_image"] = canonical_json(row["before_image"])
                    w.writerow(row)
                    n += 1
            else:
                for row in rows:
                    fh.write(canonical_json(row) + "\n")
                    n += 1
        return n
