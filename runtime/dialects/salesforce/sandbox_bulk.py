"""Bulk API 2.0 ingest jobs in the Salesforce sandbox (API_NOTES.md 2.2, "Bulk API 2.0").

``POST /jobs/ingest`` (object, operation insert|update|upsert|delete, externalIdFieldName,
contentType CSV, lineEnding LF|CRLF) -> ``Open``; one ``PUT /jobs/ingest/{id}/batches`` (CSV, at
most ``max_upload_bytes``; a second upload is refused as the API does) -> ``PATCH {"state":
"UploadComplete"}`` -> ``GET /jobs/ingest/{id}`` answers ``InProgress`` on the first poll(s) and
then ``JobComplete`` (or ``Failed`` when part of the job could not be processed), with
``numberRecordsProcessed`` / ``numberRecordsFailed``.

Results, **shuffled** (the API does not keep input order, so a client must match rows by key):
``successfulResults/`` (``sf__Id``, ``sf__Created``, the uploaded columns), ``failedResults/``
(``sf__Id``, ``sf__Error`` = ``CODE:message:fields --``, the uploaded columns) and
``unprocessedrecords/`` (the uploaded columns). CSV cells: empty = leave the field unchanged,
``#N/A`` = set it to null.

Records go through the same store calls as the REST API (200 at a time), so its validation and
injected faults apply: a chunk the store fails transiently is retried internally (as Salesforce
retries batches) and, when that keeps failing, it and every later row are left unprocessed and
the job ends ``Failed``. ``fail_after`` (tests) stops processing after that many rows the same
way.

Jobs live in the sandbox's SQLite file, beside the store's tables (``sf_bulk_jobs``: the job info
as answered, its poll count and creation time; ``sf_bulk_data``: the upload until it is processed,
then the three result files as served), because Salesforce keeps a job and its results for days:
a restarted ``fmap sandbox serve``, or a resumed run opening the same ``db=`` file, must answer
for the jobs the previous process created, or a client polling a job it closed gets a 404 for
records that were written. Only the job being processed is held in memory. Jobs older than 7 days
are deleted whatever their state (the documented lifespan; timed on the sandbox's ``clock``, else
its store's, else the wall clock) and then answer 404 like any unknown job.
"""

from __future__ import annotations

import csv
import io
import json
import random
import sqlite3
import threading
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from runtime.destinations.base import TransientError, WriteItem, WriteResult
from runtime.dialects._asgi import Response
from runtime.schema.model import FieldType

if TYPE_CHECKING:
    from runtime.destinations.sandbox_store import SandboxStore
    from runtime.dialects.salesforce.sandbox import SalesforceSandbox

__all__ = ["BulkJobs", "MAX_UPLOAD_BYTES", "NULL", "RETENTION"]

# Bulk API 2.0 limits: characters in one field
MAX_FIELD_CHARS = 131_072

MAX_UPLOAD_BYTES = 150 * 1024 * 1024  # per upload (the documented file size limit)
NULL = "#N/A"
_CHUNK = 200
_INTERNAL_RETRIES = 3
_OPERATIONS = ("insert", "update", "upsert", "delete")
RETENTION = timedelta(days=7)
_RESULTS = ("successfulResults", "failedResults", "unprocessedrecords")
_UPLOAD = "upload"
# created idempotently on every open: a file written before jobs were kept gains the tables, and
# one that has them keeps its jobs
_SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS sf_bulk_jobs (
    id TEXT PRIMARY KEY, seq INTEGER NOT NULL, created_at TEXT NOT NULL, info TEXT NOT NULL,
    polls INTEGER NOT NULL DEFAULT 0, has_data INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS sf_bulk_jobs_created ON sf_bulk_jobs (created_at);
CREATE TABLE IF NOT EXISTS sf_bulk_data (
    job_id TEXT NOT NULL, kind TEXT NOT NULL, body BLOB NOT NULL, PRIMARY KEY (job_id, kind));
"""


class _BulkError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _json(status: int, body: Any) -> Response:
    return status, {"content-type": "application/json;charset=UTF-8"}, \
        json.dumps(body, separators=(",", ":")).encode()


def _csv_body(header: list[str], rows: list[list[str]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode("utf-8")


def _csv_response(header: list[str], rows: list[list[str]]) -> Response:
    return 200, {"content-type": "text/csv"}, _csv_body(header, rows)


class BulkJobs:
    """The ingest jobs of one sandbox, kept in its SQLite file (see the module docstring)."""

    def __init__(self, sandbox: SalesforceSandbox, *, seed: int = 0) -> None:
        self.sb = sandbox
        self.rng = random.Random(seed)
        self.max_upload_bytes = MAX_UPLOAD_BYTES
        self.polls_in_progress = 1  # polls answered InProgress before the job completes
        self.fail_after: int | None = None
        self.uploads: deque[int] = deque(maxlen=10_000)  # bytes of the latest uploads (tests)
        # one request at a time: two polls of one job must not both process it
        self._lock = threading.RLock()
        self._ready: SandboxStore | None = None  # the store whose file has our tables
        self._db()

    # ------------------------------------------------------------------ storage
    def _db(self) -> sqlite3.Connection:
        """The store's connection (a deploy reopens the store: the tables are made sure of on
        each new one). Callers hold the store's lock."""
        store = self.sb.store
        db = store._db  # noqa: SLF001 (the jobs share the store's file and transactions)
        if self._ready is not store:
            with store._lock:  # noqa: SLF001
                db.executescript(_SCHEMA_SQL)
            self._ready = store
        return db

    def _now(self) -> datetime:
        sb = self.sb
        clock = sb.clock or sb._store_clock  # noqa: SLF001
        return clock() if clock is not None else datetime.now(UTC)

    def _expire(self) -> None:
        """Delete the jobs older than :data:`RETENTION`, whatever their state."""
        from runtime.dialects.salesforce.sandbox import _store_ts  # it imports this module

        cutoff = _store_ts((self._now() - RETENTION).isoformat())
        db, store = self._db(), self.sb.store
        with store._lock:  # noqa: SLF001 (a read first: no write lock taken per request)
            if not db.execute("SELECT 1 FROM sf_bulk_jobs WHERE created_at < ? LIMIT 1",
                              (cutoff,)).fetchone():
                return
        with store._lock, store._tx():  # noqa: SLF001
            db.execute("DELETE FROM sf_bulk_data WHERE job_id IN (SELECT id FROM sf_bulk_jobs "
                       "WHERE created_at < ?)", (cutoff,))
            db.execute("DELETE FROM sf_bulk_jobs WHERE created_at < ?", (cutoff,))

    def _load(self, jid: str) -> dict[str, Any] | None:
        db = self._db()
        with self.sb.store._lock:  # noqa: SLF001
            row = db.execute("SELECT info, polls, has_data FROM sf_bulk_jobs WHERE id = ?",
                             (jid,)).fetchone()
        if row is None:
            return None
        return {"info": json.loads(row[0]), "polls": row[1], "has_data": bool(row[2])}

    def _save(self, job: dict[str, Any], data: dict[str, bytes | None] | None = None) -> None:
        """Write the job back, and ``data`` by kind (None deletes that kind), in one transaction."""
        db, store = self._db(), self.sb.store
        jid = job["info"]["id"]
        with store._lock, store._tx():  # noqa: SLF001
            db.execute("UPDATE sf_bulk_jobs SET info = ?, polls = ?, has_data = ? WHERE id = ?",
                       (json.dumps(job["info"]), job["polls"], int(job["has_data"]), jid))
            for kind, body in (data or {}).items():
                if body is None:
                    db.execute("DELETE FROM sf_bulk_data WHERE job_id = ? AND kind = ?",
                               (jid, kind))
                else:
                    db.execute("INSERT OR REPLACE INTO sf_bulk_data (job_id, kind, body) "
                               "VALUES (?, ?, ?)", (jid, kind, body))

    def _data(self, jid: str, kind: str) -> bytes | None:
        db = self._db()
        with self.sb.store._lock:  # noqa: SLF001
            row = db.execute("SELECT body FROM sf_bulk_data WHERE job_id = ? AND kind = ?",
                             (jid, kind)).fetchone()
        return bytes(row[0]) if row is not None else None

    def job_ids(self) -> list[str]:
        """The kept jobs' ids, oldest first (tests and benchmarks)."""
        db = self._db()
        with self.sb.store._lock:  # noqa: SLF001
            return [r[0] for r in db.execute("SELECT id FROM sf_bulk_jobs ORDER BY seq")]

    # ------------------------------------------------------------------ routing
    def route(self, method: str, rest: list[str], body: bytes) -> Response:
        try:
            with self._lock:
                self._expire()
                if not rest and method == "POST":
                    return self._create(body)
                if not rest:
                    raise _BulkError(404, "NOT_FOUND", "The requested resource does not exist")
                job = self._load(rest[0])
                if job is None:
                    raise _BulkError(404, "NOT_FOUND", "The requested resource does not exist")
                sub = rest[1:]
                if not sub and method == "GET":
                    return self._poll(job)
                if not sub and method == "PATCH":
                    return self._set_state(job, body)
                if not sub and method == "DELETE":
                    self._delete(rest[0])
                    return 204, {}, b""
                if sub == ["batches"] and method == "PUT":
                    return self._upload(job, body)
                if len(sub) == 1 and method == "GET" and sub[0] in _RESULTS:
                    return self._results(job, sub[0])
                raise _BulkError(404, "NOT_FOUND", "The requested resource does not exist")
        except _BulkError as e:
            return _json(e.status, [{"errorCode": e.code, "message": e.message}])

    def _delete(self, jid: str) -> None:
        db, store = self._db(), self.sb.store
        with store._lock, store._tx():  # noqa: SLF001
            db.execute("DELETE FROM sf_bulk_data WHERE job_id = ?", (jid,))
            db.execute("DELETE FROM sf_bulk_jobs WHERE id = ?", (jid,))

    def _create(self, body: bytes) -> Response:
        try:
            data = json.loads(body or b"null")
        except ValueError:
            raise _BulkError(400, "JSON_PARSER_ERROR", "The request body is not JSON") from None
        if not isinstance(data, dict):
            raise _BulkError(400, "JSON_PARSER_ERROR", "expected a job definition object")
        obj, op = data.get("object"), data.get("operation")
        if op not in _OPERATIONS:
            raise _BulkError(400, "INVALIDJOB", f"InvalidJob : Invalid operation: {op}")
        if not isinstance(obj, str) or obj not in self.sb._objects:  # noqa: SLF001
            raise _BulkError(400, "INVALIDJOB", f"InvalidJob : Invalid object: {obj}")
        if data.get("contentType", "CSV") != "CSV":
            raise _BulkError(400, "INVALIDJOB", "InvalidJob : only CSV content is supported")
        line_ending = data.get("lineEnding", "LF")
        if line_ending not in ("LF", "CRLF"):
            raise _BulkError(400, "INVALIDJOB", f"InvalidJob : Invalid lineEnding: {line_ending}")
        ext = data.get("externalIdFieldName")
        if op == "upsert":
            if not ext:
                raise _BulkError(400, "INVALIDJOB", "InvalidJob : External ID was blank for "
                                 f"{obj}. An External ID must be specified for upsert.")
            if ext != self.sb._ext.get(obj):  # noqa: SLF001
                raise _BulkError(400, "INVALIDJOB", f"InvalidJob : Field name provided, {ext} "
                                 f"is not an External ID or indexed field for {obj}")
        from runtime.dialects.salesforce.sandbox import _store_ts, sf_id, sf_time

        created = self._now()
        now = sf_time(created.isoformat())
        user = next(iter(self.sb.store.list_users()), None)
        db, store = self._db(), self.sb.store
        with store._lock, store._tx():  # noqa: SLF001
            # a counter in the file, not this process's job count: a second sandbox over the
            # file (or one after a delete) must not hand out an id a kept job has
            seq = store._next_counter("salesforce:bulk_job")  # noqa: SLF001
            jid = sf_id("750", seq + self.rng.randrange(1000) * 1000)
            while db.execute("SELECT 1 FROM sf_bulk_jobs WHERE id = ?", (jid,)).fetchone():
                jid = sf_id("750", seq + self.rng.randrange(1000, 10 ** 9) * 1000)
            info = {"id": jid, "operation": op, "object": obj,
                    "createdById": user.id if user else None, "createdDate": now,
                    "systemModstamp": now, "state": "Open",
                    "externalIdFieldName": ext if op == "upsert" else None,
                    "concurrencyMode": "Parallel", "contentType": "CSV",
                    "apiVersion": float(self.sb.version), "jobType": "V2Ingest",
                    "contentUrl": f"services/data/v{self.sb.version}/jobs/ingest/{jid}/batches",
                    "lineEnding": line_ending, "columnDelimiter": "COMMA",
                    "numberRecordsProcessed": 0, "numberRecordsFailed": 0, "retries": 0,
                    "totalProcessingTime": 0}
            db.execute("INSERT INTO sf_bulk_jobs (id, seq, created_at, info) VALUES (?,?,?,?)",
                       (jid, seq, _store_ts(created.isoformat()), json.dumps(info)))
        return _json(200, info)

    def _upload(self, job: dict[str, Any], body: bytes) -> Response:
        info = job["info"]
        if info["state"] != "Open":
            raise _BulkError(409, "INVALIDJOBSTATE", "Job is not open for uploads")
        if job["has_data"]:
            raise _BulkError(400, "BULK_API_ERROR", f"Found multiple contents for job: "
                             f"<{info['id']}>, please 'Close' / 'Abort' / 'Delete' the current "
                             "Job then create a new Job and make sure you only do 'PUT' once "
                             "on a given Job.")
        if len(body) > self.max_upload_bytes:
            raise _BulkError(400, "LIMIT_EXCEEDED", f"Upload exceeds the maximum file size "
                             f"({self.max_upload_bytes} bytes)")
        if not body:
            raise _BulkError(400, "INVALIDBATCH", "InvalidBatch : The upload is empty")
        job["has_data"] = True
        self._save(job, {_UPLOAD: body})
        self.uploads.append(len(body))
        return 201, {}, b""

    def _set_state(self, job: dict[str, Any], body: bytes) -> Response:
        info = job["info"]
        try:
            state = (json.loads(body or b"null") or {}).get("state")
        except (ValueError, AttributeError):
            raise _BulkError(400, "JSON_PARSER_ERROR", "expected {\"state\": ...}") from None
        if state == "UploadComplete":
            if info["state"] != "Open":
                raise _BulkError(409, "INVALIDJOBSTATE", f"Job is {info['state']}")
            if not job["has_data"]:
                info["state"] = "Failed"
                info["errorMessage"] = "InvalidBatch : no data was uploaded"
            else:
                info["state"] = "UploadComplete"
        elif state == "Aborted":
            if info["state"] in ("JobComplete", "Failed"):
                raise _BulkError(409, "INVALIDJOBSTATE", f"Job is {info['state']}")
            info["state"] = "Aborted"
        else:
            raise _BulkError(400, "INVALIDJOBSTATE", f"Invalid state: {state}")
        self._save(job)
        return _json(200, info)

    def _poll(self, job: dict[str, Any]) -> Response:
        info = job["info"]
        if info["state"] in ("UploadComplete", "InProgress"):
            if job["polls"] < self.polls_in_progress:
                job["polls"] += 1
                info["state"] = "InProgress"
                self._save(job)
            else:
                self._process(job)
        return _json(200, info)

    # ------------------------------------------------------------------ processing
    def _value(self, obj: str, name: str, raw: str) -> Any:
        if raw == NULL:
            return None
        f = self.sb._objects[obj].field(name)  # noqa: SLF001
        t = f.type if f is not None else FieldType.text
        try:
            if t == FieldType.boolean:
                low = raw.lower()
                return True if low in ("true", "1") else False if low in ("false", "0") else raw
            if t == FieldType.integer:
                return int(raw)
            if t in (FieldType.decimal, FieldType.currency, FieldType.percent):
                return float(raw)
        except ValueError:
            return raw
        if t == FieldType.multipicklist:
            return [x for x in raw.split(";") if x]
        return raw

    def _process(self, job: dict[str, Any]) -> None:
        """Run the job and keep its three result files as they will be served (shuffled once);
        the upload is dropped, as nothing reads it after this."""
        sb = self.sb
        info = job["info"]
        obj, op = info["object"], info["operation"]
        raw = self._data(info["id"], _UPLOAD) or b""
        try:
            rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
            # Bulk API 2.0's documented limit per field; checked here, not left to the csv
            # module's field_size_limit, which is process-wide (a CSV source raises it)
            if any(len(cell) > MAX_FIELD_CHARS for row in rows for cell in row):
                raise csv.Error(f"a field is longer than {MAX_FIELD_CHARS:,} characters")
        except (UnicodeDecodeError, csv.Error) as exc:
            reason = "not UTF-8" if isinstance(exc, UnicodeDecodeError) else f"not valid CSV: {exc}"
            info["state"] = "Failed"
            info["errorMessage"] = f"InvalidBatch : the upload is {reason}"
            self._finish(job, [], [], [], [])
            return
        del raw
        header, rows = (rows[0], rows[1:]) if rows else ([], [])
        o = sb._objects[obj]  # noqa: SLF001
        ext = info["externalIdFieldName"]
        bad = [c for c in header if c != "Id" and o.field(c) is None]
        missing = ("Id" if op in ("update", "delete") else ext if op == "upsert" else None)
        if bad or (missing and missing not in header):
            info["state"] = "Failed"
            info["errorMessage"] = (f"InvalidBatch : Field name not found : {bad[0]}" if bad else
                                    f"InvalidBatch : Field name not found : {missing}")
            self._finish(job, header, [], [], rows)
            return
        ok: list[list[str]] = []
        failed: list[list[str]] = []
        unprocessed: list[list[str]] = []
        done = 0
        stop = False
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start:start + _CHUNK]
            if self.fail_after is not None and done + len(chunk) > self.fail_after:
                stop = True
            if stop:
                unprocessed.extend(rows[start:])
                break
            items: list[WriteItem] = []
            for i, row in enumerate(chunk):
                cells = dict(zip(header, row, strict=False))
                values = {c: self._value(obj, c, v) for c, v in cells.items()
                          if c not in ("Id", ext) and v != ""}
                items.append(WriteItem(key=str(i), external_id=cells.get(ext) or None
                                       if ext else None, record=values,
                                       dest_id=cells.get("Id") or None))
            results = self._write(obj, op, items)
            if results is None:  # kept failing: leave the rest unprocessed
                unprocessed.extend(rows[start:])
                info["state"] = "Failed"
                info["errorMessage"] = "InternalServerError : batch processing failed"
                break
            by_key = {r.key: r for r in results}
            for i, row in enumerate(chunk):
                r = by_key.get(str(i)) or WriteResult(key=str(i), ok=False,
                                                      code="UNKNOWN_EXCEPTION", error="no result")
                if r.ok:
                    created = op == "insert" or (op == "upsert" and r.created is not False)
                    ok.append([str(r.dest_id), "true" if created else "false", *row])
                else:
                    e = sb._result(obj, "upsert" if op == "upsert" else "create", r)  # noqa: SLF001
                    err = e["errors"][0]
                    fields = ",".join(err.get("fields") or [])
                    rid = dict(zip(header, row, strict=False)).get("Id", "")
                    failed.append([rid, f"{err['statusCode']}:{err['message']}:{fields} --", *row])
            done += len(chunk)
        else:
            info["state"] = "JobComplete"
        if unprocessed and info["state"] != "Failed":
            info["state"] = "Failed"
            info["errorMessage"] = "InternalServerError : the job stopped before all records " \
                                   "were processed"
        self.rng.shuffle(ok)
        self.rng.shuffle(failed)
        self.rng.shuffle(unprocessed)
        info["numberRecordsProcessed"] = len(ok) + len(failed)
        info["numberRecordsFailed"] = len(failed)
        self._finish(job, header, ok, failed, unprocessed)

    def _finish(self, job: dict[str, Any], header: list[str], ok: list[list[str]],
                failed: list[list[str]], unprocessed: list[list[str]]) -> None:
        job["has_data"] = False
        self._save(job, {_UPLOAD: None,
                         "successfulResults": _csv_body(["sf__Id", "sf__Created", *header], ok),
                         "failedResults": _csv_body(["sf__Id", "sf__Error", *header], failed),
                         "unprocessedrecords": _csv_body(header, unprocessed)})

    def _write(self, obj: str, op: str, items: list[WriteItem]) -> list[WriteResult] | None:
        sb = self.sb
        store = sb.store
        for _ in range(_INTERNAL_RETRIES):
            try:
                with sb._lock:  # noqa: SLF001
                    if op == "insert":
                        return store.create(obj, items)
                    if op == "upsert":
                        return store.upsert(obj, items)
                    if op == "update":
                        pre = sb._misaddressed(obj, items)  # noqa: SLF001
                        bad = {r.key for r in pre}
                        send = [it for it in items if it.key not in bad]
                        return [*pre, *(store.update(obj, send) if send else [])]
                    ids = [str(it.dest_id or "") for it in items]
                    res = store.delete(obj, [i for i in ids if i])
                    by_id = {r.key: r for r in res}
                    return [WriteResult(key=it.key, ok=by_id[i].ok, dest_id=i,
                                        code=by_id[i].code, error=by_id[i].error)
                            if i in by_id else WriteResult(key=it.key, ok=False,
                                                           code="MALFORMED_ID", field="Id",
                                                           error="bad id")
                            for it, i in zip(items, ids, strict=True)]
            except TransientError:
                continue
        return None

    def _results(self, job: dict[str, Any], kind: str) -> Response:
        info = job["info"]
        if info["state"] not in ("JobComplete", "Failed", "Aborted"):
            raise _BulkError(409, "INVALIDJOBSTATE", f"Job is {info['state']}: results are "
                             "available once it is complete")
        body = self._data(info["id"], kind)
        if body is not None:  # processed
            return 200, {"content-type": "text/csv"}, body
        if kind == "successfulResults":
            return _csv_response(["sf__Id", "sf__Created"], [])
        if kind == "failedResults":
            return _csv_response(["sf__Id", "sf__Error"], [])
        raw = self._data(info["id"], _UPLOAD) if info["state"] == "Aborted" else None
        if raw is not None:  # aborted before it ran: every uploaded row is unprocessed
            try:
                rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
            except (UnicodeDecodeError, csv.Error):
                rows = []
            return _csv_response(rows[0] if rows else [], rows[1:])
        return _csv_response([], [])
