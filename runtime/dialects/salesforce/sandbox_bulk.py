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
"""

from __future__ import annotations

import csv
import io
import json
import random
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from runtime.destinations.base import TransientError, WriteItem, WriteResult
from runtime.dialects._asgi import Response
from runtime.schema.model import FieldType

if TYPE_CHECKING:
    from runtime.dialects.salesforce.sandbox import SalesforceSandbox

__all__ = ["BulkJobs", "MAX_UPLOAD_BYTES", "NULL"]

MAX_UPLOAD_BYTES = 150 * 1024 * 1024  # per upload (the documented file size limit)
NULL = "#N/A"
_CHUNK = 200
_INTERNAL_RETRIES = 3
_OPERATIONS = ("insert", "update", "upsert", "delete")


class _BulkError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _json(status: int, body: Any) -> Response:
    return status, {"content-type": "application/json;charset=UTF-8"}, \
        json.dumps(body, separators=(",", ":")).encode()


def _csv_response(header: list[str], rows: list[list[str]]) -> Response:
    buf = io.StringIO()
    w = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return 200, {"content-type": "text/csv"}, buf.getvalue().encode("utf-8")


class BulkJobs:
    """The ingest jobs of one sandbox (in memory: a restarted sandbox forgets its jobs, and a
    client whose job vanished re-sends, which upsert by external id makes harmless)."""

    def __init__(self, sandbox: SalesforceSandbox, *, seed: int = 0) -> None:
        self.sb = sandbox
        self.jobs: dict[str, dict[str, Any]] = {}
        self.rng = random.Random(seed)
        self.max_upload_bytes = MAX_UPLOAD_BYTES
        self.polls_in_progress = 1  # polls answered InProgress before the job completes
        self.fail_after: int | None = None
        self.uploads: list[int] = []  # bytes of every accepted upload (tests)

    # ------------------------------------------------------------------ routing
    def route(self, method: str, rest: list[str], body: bytes) -> Response:
        try:
            if not rest and method == "POST":
                return self._create(body)
            if not rest:
                raise _BulkError(404, "NOT_FOUND", "The requested resource does not exist")
            job = self.jobs.get(rest[0])
            if job is None:
                raise _BulkError(404, "NOT_FOUND", "The requested resource does not exist")
            sub = rest[1:]
            if not sub and method == "GET":
                return self._poll(job)
            if not sub and method == "PATCH":
                return self._set_state(job, body)
            if not sub and method == "DELETE":
                del self.jobs[rest[0]]
                return 204, {}, b""
            if sub == ["batches"] and method == "PUT":
                return self._upload(job, body)
            if len(sub) == 1 and method == "GET" and sub[0] in (
                    "successfulResults", "failedResults", "unprocessedrecords"):
                return self._results(job, sub[0])
            raise _BulkError(404, "NOT_FOUND", "The requested resource does not exist")
        except _BulkError as e:
            return _json(e.status, [{"errorCode": e.code, "message": e.message}])

    def _info(self, job: dict[str, Any]) -> dict[str, Any]:
        info = {k: v for k, v in job.items() if not k.startswith("_")}
        return info

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
        from runtime.dialects.salesforce.sandbox import sf_id, sf_time

        now = sf_time(datetime.now(UTC).isoformat())
        jid = sf_id("750", len(self.jobs) + 1 + self.rng.randrange(1000) * 1000)
        user = next(iter(self.sb.store.list_users()), None)
        job = {"id": jid, "operation": op, "object": obj,
               "createdById": user.id if user else None, "createdDate": now,
               "systemModstamp": now, "state": "Open",
               "externalIdFieldName": ext if op == "upsert" else None,
               "concurrencyMode": "Parallel", "contentType": "CSV",
               "apiVersion": float(self.sb.version), "jobType": "V2Ingest",
               "contentUrl": f"services/data/v{self.sb.version}/jobs/ingest/{jid}/batches",
               "lineEnding": line_ending, "columnDelimiter": "COMMA",
               "numberRecordsProcessed": 0, "numberRecordsFailed": 0, "retries": 0,
               "totalProcessingTime": 0,
               "_csv": None, "_polls": 0, "_ok": [], "_failed": [], "_unprocessed": [],
               "_header": []}
        self.jobs[jid] = job
        return _json(200, self._info(job))

    def _upload(self, job: dict[str, Any], body: bytes) -> Response:
        if job["state"] != "Open":
            raise _BulkError(409, "INVALIDJOBSTATE", "Job is not open for uploads")
        if job["_csv"] is not None:
            raise _BulkError(400, "BULK_API_ERROR", f"Found multiple contents for job: "
                             f"<{job['id']}>, please 'Close' / 'Abort' / 'Delete' the current "
                             "Job then create a new Job and make sure you only do 'PUT' once "
                             "on a given Job.")
        if len(body) > self.max_upload_bytes:
            raise _BulkError(400, "LIMIT_EXCEEDED", f"Upload exceeds the maximum file size "
                             f"({self.max_upload_bytes} bytes)")
        if not body:
            raise _BulkError(400, "INVALIDBATCH", "InvalidBatch : The upload is empty")
        job["_csv"] = body
        self.uploads.append(len(body))
        return 201, {}, b""

    def _set_state(self, job: dict[str, Any], body: bytes) -> Response:
        try:
            state = (json.loads(body or b"null") or {}).get("state")
        except (ValueError, AttributeError):
            raise _BulkError(400, "JSON_PARSER_ERROR", "expected {\"state\": ...}") from None
        if state == "UploadComplete":
            if job["state"] != "Open":
                raise _BulkError(409, "INVALIDJOBSTATE", f"Job is {job['state']}")
            if job["_csv"] is None:
                job["state"] = "Failed"
                job["errorMessage"] = "InvalidBatch : no data was uploaded"
            else:
                job["state"] = "UploadComplete"
        elif state == "Aborted":
            if job["state"] in ("JobComplete", "Failed"):
                raise _BulkError(409, "INVALIDJOBSTATE", f"Job is {job['state']}")
            job["state"] = "Aborted"
        else:
            raise _BulkError(400, "INVALIDJOBSTATE", f"Invalid state: {state}")
        return _json(200, self._info(job))

    def _poll(self, job: dict[str, Any]) -> Response:
        if job["state"] in ("UploadComplete", "InProgress"):
            if job["_polls"] < self.polls_in_progress:
                job["_polls"] += 1
                job["state"] = "InProgress"
            else:
                self._process(job)
        return _json(200, self._info(job))

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
        sb = self.sb
        obj, op = job["object"], job["operation"]
        text = job["_csv"].decode("utf-8-sig")
        rows = list(csv.reader(io.StringIO(text, newline="")))
        header, rows = (rows[0], rows[1:]) if rows else ([], [])
        job["_header"] = header
        o = sb._objects[obj]  # noqa: SLF001
        ext = job["externalIdFieldName"]
        bad = [c for c in header if c != "Id" and o.field(c) is None]
        missing = ("Id" if op in ("update", "delete") else ext if op == "upsert" else None)
        if bad or (missing and missing not in header):
            job["state"] = "Failed"
            job["errorMessage"] = (f"InvalidBatch : Field name not found : {bad[0]}" if bad else
                                   f"InvalidBatch : Field name not found : {missing}")
            job["_unprocessed"] = rows
            return
        ok: list[list[str]] = []
        failed: list[list[str]] = []
        done = 0
        stop = False
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start:start + _CHUNK]
            if self.fail_after is not None and done + len(chunk) > self.fail_after:
                stop = True
            if stop:
                job["_unprocessed"].extend(rows[start:])
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
                job["_unprocessed"].extend(rows[start:])
                job["state"] = "Failed"
                job["errorMessage"] = "InternalServerError : batch processing failed"
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
            job["state"] = "JobComplete"
        if job["_unprocessed"] and job["state"] != "Failed":
            job["state"] = "Failed"
            job["errorMessage"] = "InternalServerError : the job stopped before all records " \
                                  "were processed"
        self.rng.shuffle(ok)
        self.rng.shuffle(failed)
        self.rng.shuffle(job["_unprocessed"])
        job["_ok"], job["_failed"] = ok, failed
        job["numberRecordsProcessed"] = len(ok) + len(failed)
        job["numberRecordsFailed"] = len(failed)

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
        if job["state"] not in ("JobComplete", "Failed", "Aborted"):
            raise _BulkError(409, "INVALIDJOBSTATE", f"Job is {job['state']}: results are "
                             "available once it is complete")
        header = job["_header"]
        if kind == "successfulResults":
            return _csv_response(["sf__Id", "sf__Created", *header], job["_ok"])
        if kind == "failedResults":
            return _csv_response(["sf__Id", "sf__Error", *header], job["_failed"])
        if job["state"] == "Aborted" and job["_csv"] is not None and not job["_header"]:
            rows = list(csv.reader(io.StringIO(job["_csv"].decode("utf-8-sig"), newline="")))
            return _csv_response(rows[0] if rows else [], rows[1:])
        return _csv_response(header, job["_unprocessed"])
