"""The generic sandbox store: a SQLite-backed :class:`~runtime.destinations.base.Destination` that
enforces a normalised :class:`~runtime.schema.model.SystemSchema` on every write.

Each CRM sandbox puts its vendor's HTTP API (envelopes, error shapes, rate limits) in front of one
of these; tests load into it directly. It is vendor-neutral: error codes are the generic ones below
and each dialect's sandbox translates them into its vendor's shapes.

Per-record error codes (``WriteResult.code``; ``WriteResult.field`` names the field when there is
one; messages never contain field values):

======================== =========================================================================
``INVALID_MODULE``       the object is not in the schema (every item of the call fails)
``INVALID_FIELD``        a field the object does not have
``READ_ONLY_FIELD``      a read-only field (``id``, formulas, audit fields unless
                         ``allow_audit_fields``), or a create-only field on update
``REQUIRED_FIELD_MISSING`` a required field missing, None or empty on create (or cleared on update)
``INVALID_TYPE``         wrong Python type or malformed value (numbers, dates, datetimes, emails)
``INVALID_PICKLIST``     a value not in ``picklist_values`` (when that list is non-empty)
``STRING_TOO_LONG``      longer than ``max_length``
``INVALID_REFERENCE``    a lookup/owner value that is not a live record of a target object / an
                         active user
``DUPLICATE_VALUE``      the external id or a unique field's value is taken (message names the
                         existing record's id)
``EXTERNAL_ID_MISSING``  upsert of an item without ``external_id``
``NOT_FOUND``            update/delete/restore/attachment of a record that does not exist
``ENTITY_IS_DELETED``    update/delete of a record that is in the recycle bin
``OPERATION_NOT_ALLOWED`` the object is not createable/updateable/deletable, or takes no attachments
``FILE_TOO_LARGE``       attachment over ``capabilities.attachment_limit_bytes``
``FILE_NOT_FOUND``       the local attachment file does not exist
``INJECTED``             a fault plan's record error (``retryable=True``)
======================== =========================================================================

Decisions worth knowing:

- **Empty values clear.** ``None``, ``""`` and ``[]`` mean "no value": on create the field is not
  stored, on update it is removed. Stored records never hold empty values, so a record created with
  ``{"Phone": None}`` equals one created without it.
- **Stored values are canonical JSON**: decimals/currency/percent as the ``str`` of a ``Decimal``,
  dates as ``YYYY-MM-DD``, datetimes as ``isoformat()`` of the parsed aware datetime, multipicklists
  as lists. ``get`` returns them that way.
- **Ids** come from ``id_factory(object_name)``; the default is a persistent per-object counter:
  ``contacts-000001``. The external id lives in its own indexed column (case-sensitive, unique per
  object among live records) and appears as ``"$external_id"`` in ``get``/``list_records``. A schema
  field flagged ``unique`` or ``external_id`` is unique per object too.
- **Clock.** The default clock is *deterministic*: a persistent tick counter, one second per write,
  from 2024-01-01T00:00:00Z, so tests and snapshots are reproducible. Pass ``clock=real_clock`` (or
  any callable returning an aware ``datetime``) for wall-clock times (``fmap sandbox serve`` should).
  Timestamps are stored in UTC and exposed as ``$created_at``/``$modified_at``;
  ``list_records(modified_since=...)`` is inclusive.
- **Audit fields** (``FieldSchema.audit``) are read-only unless ``allow_audit_fields=True``; then they
  may be set on create only (as Salesforce's "Set Audit Fields upon Record Creation").
- **Create-only fields** are rejected on update, including an upsert that matches an existing record.
- **Deletes** move the record to a recycle bin (``restore`` brings it back if its external id and
  unique values are still free). Lookups to binned records fail; ``count``/``snapshot`` exclude them.
- **Batches**: more items than ``capabilities.batch_size`` or a repeated key is a ``ValueError``
  (a programming error). Items are validated and written independently in one transaction per call;
  later items see earlier ones (two creates with one external id: the second is a duplicate).
- **Reads of an unknown object** raise :class:`FatalError` (a schema mismatch retrying cannot fix);
  writes to one fail per item with ``INVALID_MODULE``.
- **Thread safety**: one re-entrant lock around every public method.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from runtime.destinations.base import (
    CallStats,
    DestinationCapabilities,
    FatalError,
    User,
    WriteItem,
    WriteResult,
)
from runtime.destinations.faults import INJECTED, CallFault, FaultPlan
from runtime.schema.model import TEXT_TYPES, FieldSchema, FieldType, ObjectSchema, SystemSchema

__all__ = ["SandboxStore", "CounterClock", "real_clock", "EXTERNAL_ID_KEY", "ERROR_CODES"]

EXTERNAL_ID_KEY = "$external_id"
ERROR_CODES = (
    "INVALID_MODULE", "INVALID_FIELD", "READ_ONLY_FIELD", "REQUIRED_FIELD_MISSING", "INVALID_TYPE",
    "INVALID_PICKLIST", "STRING_TOO_LONG", "INVALID_REFERENCE", "DUPLICATE_VALUE",
    "EXTERNAL_ID_MISSING", "NOT_FOUND", "ENTITY_IS_DELETED", "OPERATION_NOT_ALLOWED",
    "FILE_TOO_LARGE", "FILE_NOT_FOUND", INJECTED,
)
_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_USER_OBJECTS = frozenset({"Users", "User", "users"})
_CHUNK = 1 << 16

_SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS records (
    obj TEXT NOT NULL, id TEXT NOT NULL, external_id TEXT, data TEXT NOT NULL,
    created_at TEXT NOT NULL, modified_at TEXT NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY (obj, id));
CREATE UNIQUE INDEX IF NOT EXISTS records_ext ON records (obj, external_id)
    WHERE external_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS records_mod ON records (obj, modified_at);
CREATE TABLE IF NOT EXISTS uniques (
    obj TEXT NOT NULL, field TEXT NOT NULL, value TEXT NOT NULL, id TEXT NOT NULL,
    PRIMARY KEY (obj, field, value));
CREATE TABLE IF NOT EXISTS recycle_bin (
    obj TEXT NOT NULL, id TEXT NOT NULL, external_id TEXT, data TEXT NOT NULL,
    created_at TEXT NOT NULL, modified_at TEXT NOT NULL, deleted_at TEXT NOT NULL,
    PRIMARY KEY (obj, id));
CREATE TABLE IF NOT EXISTS attachments (
    id TEXT PRIMARY KEY, obj TEXT NOT NULL, record_id TEXT NOT NULL, file_name TEXT NOT NULL,
    size INTEGER NOT NULL, sha256 TEXT NOT NULL, key TEXT, created_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS attachments_parent ON attachments (obj, record_id);
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY, email TEXT NOT NULL, name TEXT NOT NULL, active INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


def real_clock() -> datetime:
    """Wall-clock time (UTC)."""
    return datetime.now(UTC)


class CounterClock:
    """A deterministic clock: ``start + n * step`` for the n-th call."""

    def __init__(self, start: datetime = _EPOCH, step: timedelta = timedelta(seconds=1)) -> None:
        self._now = start
        self._step = step
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            self._now += self._step
            return self._now


class _Reject(Exception):
    """One record's validation failure."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, (list, tuple)) and not value)


def _ts(value: datetime | str) -> str:
    """A timestamp in one sortable text form (UTC, microseconds)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


class SandboxStore:
    """A schema-enforcing SQLite destination. See the module docstring for the rules."""

    def __init__(
        self,
        schema: SystemSchema,
        path: str | Path = ":memory:",
        *,
        capabilities: DestinationCapabilities | None = None,
        faults: FaultPlan | None = None,
        users: list[User] | None = None,
        clock: Callable[[], datetime] | None = None,
        id_factory: Callable[[str], str] | None = None,
        allow_audit_fields: bool = False,
    ) -> None:
        self._schema = schema
        self._objects: dict[str, ObjectSchema] = {o.api_name: o for o in schema.objects}
        self._fields: dict[str, dict[str, FieldSchema]] = {
            o.api_name: {f.api_name: f for f in o.fields} for o in schema.objects
        }
        self._required: dict[str, list[str]] = {
            o.api_name: [f.api_name for f in o.fields
                         if f.required and not f.read_only and f.type != FieldType.id]
            for o in schema.objects
        }
        self._uniques: dict[str, list[str]] = {
            o.api_name: [f.api_name for f in o.fields if f.unique or f.external_id]
            for o in schema.objects
        }
        self.capabilities = capabilities or DestinationCapabilities(name=f"sandbox:{schema.system}")
        self.faults = faults
        self.allow_audit_fields = allow_audit_fields
        self.stats = CallStats()
        self.path = str(path)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA_SQL)
        self._clock = clock
        self._id_factory = id_factory
        with self._lock, self._tx():
            if users is not None:
                for u in users:
                    self._put_user(u)
            elif self._db.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 0:
                self._put_user(User(id="user-000001", email="admin@sandbox.example",
                                    name="Sandbox Admin"))

    # ------------------------------------------------------------------ plumbing

    def _tx(self):
        db = self._db

        class _Tx:
            def __enter__(self_inner):
                db.execute("BEGIN IMMEDIATE")

            def __exit__(self_inner, exc_type, exc, tb):
                db.execute("ROLLBACK" if exc_type else "COMMIT")
                return False

        return _Tx()

    def _next_counter(self, name: str) -> int:
        row = self._db.execute("SELECT value FROM counters WHERE name=?", (name,)).fetchone()
        value = (row[0] if row else 0) + 1
        self._db.execute("INSERT INTO counters(name, value) VALUES (?, ?) ON CONFLICT(name) "
                         "DO UPDATE SET value=excluded.value", (name, value))
        return value

    def _now(self) -> str:
        if self._clock is not None:
            return _ts(self._clock())
        tick = self._next_counter("$clock")
        return _ts(_EPOCH + timedelta(seconds=tick))

    def _new_id(self, obj: str) -> str:
        if self._id_factory is not None:
            return str(self._id_factory(obj))
        return f"{obj.lower()}-{self._next_counter('id:' + obj):06d}"

    def _put_user(self, u: User) -> None:
        self._db.execute("INSERT INTO users(id, email, name, active) VALUES (?,?,?,?) "
                         "ON CONFLICT(id) DO UPDATE SET email=excluded.email, name=excluded.name, "
                         "active=excluded.active", (u.id, u.email, u.name, int(u.active)))

    def _object_for_read(self, obj: str) -> ObjectSchema:
        o = self._objects.get(obj)
        if o is None:
            raise FatalError(f"unknown object {obj!r} (not in the {self._schema.system} schema)")
        return o

    def _fault(self, op: str, *, read: bool = False) -> CallFault | None:
        if self.faults is None:
            return None
        decision = self.faults.decide(op, read=read)
        if decision.kind == "throttle":
            self.stats.throttled += 1
        decision.raise_before_write()
        return decision

    def _check_batch(self, keys: Sequence[str]) -> None:
        if len(keys) > self.capabilities.batch_size:
            raise ValueError(f"{len(keys)} items in one call; batch_size is "
                             f"{self.capabilities.batch_size}")
        if len(set(keys)) != len(keys):
            raise ValueError("item keys must be unique within a call")

    def _write_call(self, op: str, obj: str, keys: Sequence[str],
                    one: Callable[[int], WriteResult]) -> list[WriteResult]:
        """Run one faultable write call: batch checks, the call-level fault, one transaction with
        each item validated and written independently (a savepoint each), then a lost response."""
        self._check_batch(keys)
        with self._lock:
            self.stats.count_call(op)
            decision = self._fault(op)
            results: list[WriteResult] = []
            with self._tx():
                for i, key in enumerate(keys):
                    if decision is not None and self.faults.record_fails(decision, i):
                        results.append(WriteResult(key=key, ok=False, code=INJECTED,
                                                   error="injected record error", retryable=True))
                        continue
                    if obj not in self._objects and op != "delete_attachments":
                        results.append(WriteResult(key=key, ok=False, code="INVALID_MODULE",
                                                   error=f"unknown object {obj!r}"))
                        continue
                    self._db.execute("SAVEPOINT item")
                    try:
                        result = one(i)
                    except _Reject as r:
                        self._db.execute("ROLLBACK TO item")
                        result = WriteResult(key=key, ok=False, code=r.code, error=r.message,
                                             field=r.field)
                    except BaseException:
                        self._db.execute("ROLLBACK TO item")
                        raise
                    self._db.execute("RELEASE item")
                    results.append(result)
            self.stats.records_written += sum(1 for r in results if r.ok)
            if decision is not None:
                decision.raise_after_write()
            return results

    # ------------------------------------------------------------------ validation

    def _check_value(self, obj: str, f: FieldSchema, value: Any) -> Any:
        """Validate one non-empty value; return its canonical stored form."""
        t = f.type
        name = f.api_name

        def bad(what: str) -> _Reject:
            return _Reject("INVALID_TYPE", f"{obj}.{name}: expected {what}", name)

        if t in TEXT_TYPES:
            if not isinstance(value, str):
                raise bad(f"{t.value} (a string)")
            if t == FieldType.email and not _EMAIL_RE.match(value):
                raise bad("a valid email address")
            if t == FieldType.picklist and f.picklist_values and value not in f.picklist_values:
                raise _Reject("INVALID_PICKLIST", f"{obj}.{name}: value not in the picklist", name)
            if f.max_length is not None and len(value) > f.max_length:
                raise _Reject("STRING_TOO_LONG",
                              f"{obj}.{name}: {len(value)} characters, max {f.max_length}", name)
            return value
        if t == FieldType.integer:
            if isinstance(value, bool) or not isinstance(value, int):
                raise bad("an integer")
            return value
        if t in (FieldType.decimal, FieldType.currency, FieldType.percent):
            if isinstance(value, bool):
                raise bad("a number")
            try:
                if isinstance(value, float):
                    if not math.isfinite(value):
                        raise bad("a finite number")
                    d = Decimal(repr(value))
                elif isinstance(value, (int, Decimal)):
                    d = Decimal(value)
                elif isinstance(value, str):
                    d = Decimal(value.strip())
                else:
                    raise bad("a number")
            except InvalidOperation:
                raise bad("a number") from None
            if not d.is_finite():
                raise bad("a finite number")
            return str(d)
        if t == FieldType.boolean:
            if not isinstance(value, bool):
                raise bad("a boolean")
            return value
        if t == FieldType.date:
            if isinstance(value, datetime):
                raise bad("a date (not a datetime)")
            if isinstance(value, date):
                return value.isoformat()
            if not isinstance(value, str) or not _DATE_RE.match(value):
                raise bad("a date YYYY-MM-DD")
            try:
                return date.fromisoformat(value).isoformat()
            except ValueError:
                raise bad("a valid date YYYY-MM-DD") from None
        if t == FieldType.datetime:
            if isinstance(value, str):
                try:
                    value = datetime.fromisoformat(value)
                except ValueError:
                    raise bad("an ISO 8601 datetime with offset") from None
            if not isinstance(value, datetime):
                raise bad("a datetime")
            if value.tzinfo is None or value.utcoffset() is None:
                raise bad("a datetime with a UTC offset")
            return value.isoformat()
        if t == FieldType.multipicklist:
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                raise bad("a list of strings")
            if f.picklist_values:
                for v in value:
                    if v not in f.picklist_values:
                        raise _Reject("INVALID_PICKLIST",
                                      f"{obj}.{name}: a value is not in the picklist", name)
            return list(value)
        if t in (FieldType.lookup, FieldType.owner):
            if not isinstance(value, str):
                raise _Reject("INVALID_REFERENCE", f"{obj}.{name}: expected a record id", name)
            targets = list(f.lookup_targets) or (["Users"] if t == FieldType.owner else [])
            if t == FieldType.owner or any(x in _USER_OBJECTS for x in targets):
                row = self._db.execute("SELECT active FROM users WHERE id=?", (value,)).fetchone()
                if row is not None and row[0]:
                    return value
                if t == FieldType.owner:
                    raise _Reject("INVALID_REFERENCE",
                                  f"{obj}.{name}: no active user with that id", name)
            record_targets = [x for x in targets if x not in _USER_OBJECTS]
            if record_targets:
                marks = ",".join("?" * len(record_targets))
                row = self._db.execute(
                    f"SELECT 1 FROM records WHERE id=? AND obj IN ({marks})",
                    (value, *record_targets)).fetchone()
                if row is not None:
                    return value
            raise _Reject("INVALID_REFERENCE",
                          f"{obj}.{name}: no live {'/'.join(targets) or 'record'} with that id",
                          name)
        # file, unknown, array, object: no checks beyond being JSON-serialisable
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            raise bad("a JSON-serialisable value") from None
        return value

    def _validate(self, obj: str, record: dict[str, Any], *, creating: bool,
                  current: dict[str, Any] | None = None) -> tuple[dict[str, Any], set[str]]:
        """Validate ``record``; return (canonical values to set, fields to clear)."""
        fields = self._fields[obj]
        for name in record:
            if name not in fields:
                raise _Reject("INVALID_FIELD", f"{obj} has no field {name!r}", name)
        for name in record:
            f = fields[name]
            if f.audit:
                if not (self.allow_audit_fields and creating):
                    raise _Reject("READ_ONLY_FIELD", f"{obj}.{name} is an audit field "
                                  + ("(settable on create only)" if self.allow_audit_fields
                                     else "(read-only)"), name)
                continue
            if f.read_only or f.type == FieldType.id:
                raise _Reject("READ_ONLY_FIELD", f"{obj}.{name} is read-only", name)
            if f.create_only and not creating:
                raise _Reject("READ_ONLY_FIELD", f"{obj}.{name} is create-only (not updatable)",
                              name)
        values: dict[str, Any] = {}
        clear: set[str] = set()
        for name, value in record.items():
            if _is_empty(value):
                clear.add(name)
            else:
                values[name] = self._check_value(obj, fields[name], value)
        required = self._required[obj]
        if creating:
            missing = [n for n in required if n not in values]
        else:
            missing = [n for n in required if n in clear]
        if missing:
            raise _Reject("REQUIRED_FIELD_MISSING",
                          f"{obj}: required fields are missing: [{', '.join(missing)}]", missing[0])
        return values, clear

    def _unique_fields(self, obj: str) -> list[str]:
        return self._uniques[obj]

    def _check_unique(self, obj: str, values: dict[str, Any], external_id: str | None,
                      self_id: str | None) -> None:
        if external_id is not None:
            row = self._db.execute("SELECT id FROM records WHERE obj=? AND external_id=?",
                                   (obj, external_id)).fetchone()
            if row is not None and row[0] != self_id:
                raise _Reject("DUPLICATE_VALUE", f"{obj}: external id already used by record "
                              f"{row[0]}", EXTERNAL_ID_KEY)
        for name in self._unique_fields(obj):
            if name in values:
                row = self._db.execute("SELECT id FROM uniques WHERE obj=? AND field=? AND value=?",
                                       (obj, name, json.dumps(values[name]))).fetchone()
                if row is not None and row[0] != self_id:
                    raise _Reject("DUPLICATE_VALUE",
                                  f"{obj}.{name}: value already used by record {row[0]}", name)

    def _index_uniques(self, obj: str, rid: str, data: dict[str, Any]) -> None:
        if not self._uniques[obj]:
            return
        self._db.execute("DELETE FROM uniques WHERE obj=? AND id=?", (obj, rid))
        for name in self._unique_fields(obj):
            if name in data:
                self._db.execute("INSERT INTO uniques(obj, field, value, id) VALUES (?,?,?,?)",
                                 (obj, name, json.dumps(data[name]), rid))

    def _allowed(self, obj: str, what: str) -> None:
        caps = self._objects[obj].capabilities
        if not getattr(caps, what):
            raise _Reject("OPERATION_NOT_ALLOWED", f"{obj} is not {what}")

    # ------------------------------------------------------------------ single-record operations

    def _create_one(self, obj: str, item: WriteItem) -> WriteResult:
        self._allowed(obj, "createable")
        values, _ = self._validate(obj, item.record, creating=True)
        self._check_unique(obj, values, item.external_id, None)
        rid = self._new_id(obj)
        now = self._now()
        self._db.execute(
            "INSERT INTO records(obj, id, external_id, data, created_at, modified_at, seq) "
            "VALUES (?,?,?,?,?,?,?)",
            (obj, rid, item.external_id, json.dumps(values, sort_keys=True), now, now,
             self._next_counter("$seq")))
        self._index_uniques(obj, rid, values)
        return WriteResult(key=item.key, ok=True, dest_id=rid, created=True)

    def _update_one(self, obj: str, item: WriteItem, rid: str, *, created: bool | None = None
                    ) -> WriteResult:
        self._allowed(obj, "updateable")
        row = self._db.execute("SELECT data, external_id FROM records WHERE obj=? AND id=?",
                               (obj, rid)).fetchone()
        if row is None:
            binned = self._db.execute("SELECT 1 FROM recycle_bin WHERE obj=? AND id=?",
                                      (obj, rid)).fetchone()
            if binned:
                raise _Reject("ENTITY_IS_DELETED", f"{obj} record {rid} is in the recycle bin")
            raise _Reject("NOT_FOUND", f"no {obj} record {rid}")
        data = json.loads(row[0])
        values, clear = self._validate(obj, item.record, creating=False, current=data)
        external_id = item.external_id if item.external_id is not None else row[1]
        self._check_unique(obj, values, external_id, rid)
        for name in clear:
            data.pop(name, None)
        data.update(values)
        self._db.execute(
            "UPDATE records SET data=?, external_id=?, modified_at=?, seq=? WHERE obj=? AND id=?",
            (json.dumps(data, sort_keys=True), external_id, self._now(),
             self._next_counter("$seq"), obj, rid))
        self._index_uniques(obj, rid, data)
        return WriteResult(key=item.key, ok=True, dest_id=rid, created=created)

    # ------------------------------------------------------------------ Destination: writes

    def schema(self) -> SystemSchema:
        return self._schema

    def create(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        return self._write_call("create", obj, [i.key for i in items],
                                lambda n: self._create_one(obj, items[n]))

    def update(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        def one(n: int) -> WriteResult:
            item = items[n]
            if not item.dest_id:
                raise _Reject("NOT_FOUND", "update without a destination id")
            return self._update_one(obj, item, item.dest_id)

        return self._write_call("update", obj, [i.key for i in items], one)

    def upsert(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        if not self.capabilities.native_upsert:
            raise NotImplementedError(
                f"{self.capabilities.name} has no native upsert; use find_by_external_id + "
                "create/update")

        def one(n: int) -> WriteResult:
            item = items[n]
            if item.external_id is None or item.external_id == "":
                raise _Reject("EXTERNAL_ID_MISSING", "upsert needs an external id",
                              EXTERNAL_ID_KEY)
            row = self._db.execute("SELECT id FROM records WHERE obj=? AND external_id=?",
                                   (obj, item.external_id)).fetchone()
            if row is None:
                return self._create_one(obj, item)
            return self._update_one(obj, item, row[0], created=False)

        return self._write_call("upsert", obj, [i.key for i in items], one)

    def delete(self, obj: str, ids: Sequence[str]) -> list[WriteResult]:
        def one(n: int) -> WriteResult:
            rid = ids[n]
            self._allowed(obj, "deletable")
            row = self._db.execute(
                "SELECT external_id, data, created_at, modified_at FROM records "
                "WHERE obj=? AND id=?", (obj, rid)).fetchone()
            if row is None:
                binned = self._db.execute("SELECT 1 FROM recycle_bin WHERE obj=? AND id=?",
                                          (obj, rid)).fetchone()
                if binned:
                    raise _Reject("ENTITY_IS_DELETED", f"{obj} record {rid} is already deleted")
                raise _Reject("NOT_FOUND", f"no {obj} record {rid}")
            self._db.execute(
                "INSERT OR REPLACE INTO recycle_bin(obj, id, external_id, data, created_at, "
                "modified_at, deleted_at) VALUES (?,?,?,?,?,?,?)",
                (obj, rid, row[0], row[1], row[2], row[3], self._now()))
            self._db.execute("DELETE FROM records WHERE obj=? AND id=?", (obj, rid))
            self._db.execute("DELETE FROM uniques WHERE obj=? AND id=?", (obj, rid))
            return WriteResult(key=rid, ok=True, dest_id=rid)

        return self._write_call("delete", obj, list(ids), one)

    def restore(self, obj: str, ids: Sequence[str]) -> list[WriteResult]:
        """Bring records back from the recycle bin (not faulted). Keyed by id."""
        def one(n: int) -> WriteResult:
            rid = ids[n]
            row = self._db.execute(
                "SELECT external_id, data, created_at FROM recycle_bin WHERE obj=? AND id=?",
                (obj, rid)).fetchone()
            if row is None:
                raise _Reject("NOT_FOUND", f"no {obj} record {rid} in the recycle bin")
            data = json.loads(row[1])
            self._check_unique(obj, data, row[0], rid)
            self._db.execute(
                "INSERT INTO records(obj, id, external_id, data, created_at, modified_at, seq) "
                "VALUES (?,?,?,?,?,?,?)",
                (obj, rid, row[0], row[1], row[2], self._now(), self._next_counter("$seq")))
            self._db.execute("DELETE FROM recycle_bin WHERE obj=? AND id=?", (obj, rid))
            self._index_uniques(obj, rid, data)
            return WriteResult(key=rid, ok=True, dest_id=rid)

        with self._lock:
            faults, self.faults = self.faults, None
            try:
                return self._write_call("restore", obj, list(ids), one)
            finally:
                self.faults = faults

    def upload_attachment(self, obj: str, record_id: str, file_name: str, path: Path,
                          key: str) -> WriteResult:
        def one(_: int) -> WriteResult:
            o = self._objects[obj]
            if not o.capabilities.attachments:
                raise _Reject("OPERATION_NOT_ALLOWED", f"{obj} records take no attachments")
            if self._db.execute("SELECT 1 FROM records WHERE obj=? AND id=?",
                                (obj, record_id)).fetchone() is None:
                raise _Reject("NOT_FOUND", f"no {obj} record {record_id}")
            p = Path(path)
            limit = self.capabilities.attachment_limit_bytes
            try:
                size = p.stat().st_size
                if limit is not None and size > limit:
                    raise _Reject("FILE_TOO_LARGE", f"file is {size} bytes; limit {limit}")
                digest = hashlib.sha256()
                size = 0
                with p.open("rb") as fh:
                    while chunk := fh.read(_CHUNK):
                        size += len(chunk)
                        if limit is not None and size > limit:
                            raise _Reject("FILE_TOO_LARGE", f"file exceeds the {limit}-byte limit")
                        digest.update(chunk)
            except FileNotFoundError:
                raise _Reject("FILE_NOT_FOUND", "attachment file not found") from None
            same = self._db.execute(
                "SELECT id FROM attachments WHERE obj=? AND record_id=? AND key=?",
                (obj, record_id, key)).fetchone()
            if same is not None:  # a retry after a lost response: the upload is idempotent
                return WriteResult(key=key, ok=True, dest_id=same[0], created=False)
            aid = self._new_id("Attachments")
            self._db.execute(
                "INSERT INTO attachments(id, obj, record_id, file_name, size, sha256, key, "
                "created_at) VALUES (?,?,?,?,?,?,?,?)",
                (aid, obj, record_id, file_name, size, digest.hexdigest(), key, self._now()))
            return WriteResult(key=key, ok=True, dest_id=aid, created=True)

        return self._write_call("upload_attachment", obj, [key], one)[0]

    def delete_attachments(self, ids: Sequence[str]) -> list[WriteResult]:
        """Remove uploaded files (rollback of attachment uploads); results keyed by id."""
        def one(i: int) -> WriteResult:
            aid = ids[i]
            cur = self._db.execute("DELETE FROM attachments WHERE id=?", (aid,))
            if cur.rowcount == 0:
                raise _Reject("NOT_FOUND", f"no attachment {aid}")
            return WriteResult(key=aid, ok=True, dest_id=aid)

        return self._write_call("delete_attachments", "Attachments", list(ids), one)

    # ------------------------------------------------------------------ Destination: reads

    def _read_call(self, op: str) -> None:
        self.stats.count_call(op)
        self._fault(op, read=True)

    @staticmethod
    def _row_record(rid: str, ext: str | None, data: str, created: str, modified: str
                    ) -> dict[str, Any]:
        rec = json.loads(data)
        rec["id"] = rid
        rec[EXTERNAL_ID_KEY] = ext
        rec["$created_at"] = created
        rec["$modified_at"] = modified
        return rec

    def get(self, obj: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        with self._lock:
            self._object_for_read(obj)
            self._read_call("get")
            out: dict[str, dict[str, Any]] = {}
            for rid in ids:
                row = self._db.execute(
                    "SELECT id, external_id, data, created_at, modified_at FROM records "
                    "WHERE obj=? AND id=?", (obj, rid)).fetchone()
                if row is not None:
                    out[rid] = self._row_record(*row)
            return out

    def find_by_external_id(self, obj: str, external_ids: Sequence[str]) -> dict[str, str]:
        with self._lock:
            self._object_for_read(obj)
            self._read_call("find_by_external_id")
            out: dict[str, str] = {}
            for ext in external_ids:
                row = self._db.execute("SELECT id FROM records WHERE obj=? AND external_id=?",
                                       (obj, ext)).fetchone()
                if row is not None:
                    out[ext] = row[0]
            return out

    def list_users(self) -> list[User]:
        with self._lock:
            self._read_call("list_users")
            return [User(id=r[0], email=r[1], name=r[2], active=bool(r[3])) for r in
                    self._db.execute("SELECT id, email, name, active FROM users ORDER BY id")]

    def add_user(self, user: User) -> None:
        """Add or replace a user (sandbox setup; not a Destination method)."""
        with self._lock, self._tx():
            self._put_user(user)

    def count(self, obj: str) -> int:
        with self._lock:
            self._object_for_read(obj)
            self._read_call("count")
            return self._db.execute("SELECT COUNT(*) FROM records WHERE obj=?", (obj,)).fetchone()[0]

    def list_records(self, obj: str, *, modified_since: str | None = None
                     ) -> Iterable[dict[str, Any]]:
        """Every live record (ordered by id), materialised under the lock so concurrent writers
        cannot interleave with the iteration. ``modified_since`` is inclusive."""
        with self._lock:
            self._object_for_read(obj)
            self._read_call("list_records")
            sql = ("SELECT id, external_id, data, created_at, modified_at FROM records "
                   "WHERE obj=?")
            args: list[Any] = [obj]
            if modified_since is not None:
                sql += " AND modified_at >= ?"
                args.append(_ts(modified_since))
            sql += " ORDER BY id"
            return [self._row_record(*row) for row in self._db.execute(sql, args)]

    def recycle_bin(self, obj: str) -> list[dict[str, Any]]:
        """Deleted records of an object (with ``id``, ``$external_id``, ``$deleted_at``)."""
        with self._lock:
            self._object_for_read(obj)
            out = []
            for rid, ext, data, deleted_at in self._db.execute(
                    "SELECT id, external_id, data, deleted_at FROM recycle_bin WHERE obj=? "
                    "ORDER BY id", (obj,)):
                rec = json.loads(data)
                rec.update({"id": rid, EXTERNAL_ID_KEY: ext, "$deleted_at": deleted_at})
                out.append(rec)
            return out

    def attachments(self, obj: str, record_id: str) -> list[dict[str, Any]]:
        """Attachments of one record: id, name, size, sha256, key."""
        with self._lock:
            return [
                {"id": r[0], "name": r[1], "size": r[2], "sha256": r[3], "key": r[4]}
                for r in self._db.execute(
                    "SELECT id, file_name, size, sha256, key FROM attachments "
                    "WHERE obj=? AND record_id=? ORDER BY id", (obj, record_id))
            ]

    def snapshot(self, *, by: str = "id") -> dict[str, Any]:
        """Every live record of every object: ``{"system", "objects": {obj: {id: {"id",
        "external_id", "fields", "attachments": [{"name", "size", "sha256"}...]}}}}``.

        Timestamps, attachment ids and the recycle bin are left out so a crash-and-resume run can
        equal a crash-free one. Objects without records are omitted. Plain JSON types only, so
        ``==`` and ``json.dumps`` work.

        ``by="external_id"`` makes the snapshot independent of the order records were created in
        (a retried item gets a later id than in a crash-free run): records are keyed by external
        id (``"id:<id>"`` when they have none), their ``id`` is dropped, and lookup values that
        point at a record with an external id become ``"<Object>:<external id>"``.
        """
        if by not in ("id", "external_id"):
            raise ValueError("by must be 'id' or 'external_id'")
        with self._lock:
            atts: dict[tuple[str, str], list[dict[str, Any]]] = {}
            for obj, rid, name, size, digest in self._db.execute(
                    "SELECT a.obj, a.record_id, a.file_name, a.size, a.sha256 FROM attachments a "
                    "JOIN records r ON r.obj=a.obj AND r.id=a.record_id"):
                atts.setdefault((obj, rid), []).append(
                    {"name": name, "size": size, "sha256": digest})
            rows = self._db.execute(
                "SELECT obj, id, external_id, data FROM records ORDER BY obj, id").fetchall()
            stable = {rid: f"{obj}:{ext}" for obj, rid, ext, _ in rows if ext is not None}
            objects: dict[str, dict[str, Any]] = {}
            for obj, rid, ext, data in rows:
                fields = json.loads(data)
                entry: dict[str, Any] = {"id": rid, "external_id": ext}
                key = rid
                if by == "external_id":
                    del entry["id"]
                    key = ext if ext is not None else f"id:{rid}"
                    schema_fields = self._fields.get(obj, {})
                    for name, value in fields.items():
                        f = schema_fields.get(name)
                        if f is not None and f.type == FieldType.lookup and value in stable:
                            fields[name] = stable[value]
                entry["fields"] = fields
                entry["attachments"] = sorted(atts.get((obj, rid), []),
                                              key=lambda a: (a["name"], a["sha256"], a["size"]))
                objects.setdefault(obj, {})[key] = entry
            return {"system": self._schema.system, "objects": objects}

    def iter_objects(self) -> Iterator[str]:
        return iter(self._objects)

    def close(self) -> None:
        with self._lock:
            try:
                self._db.close()
            except sqlite3.ProgrammingError:
                pass

    def __enter__(self) -> SandboxStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
