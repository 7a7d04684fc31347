"""Bulk API 2.0 ingest for :class:`~runtime.dialects.salesforce.client.SalesforceClient`.

Salesforce recommends Bulk 2.0 above about 2,000 records (API_NOTES.md 2.2): one job costs a
handful of requests (create, upload, close, polls, three result files) however many records it
carries, where sObject Collections cost one request per 200. The client sends a batch of
``threshold`` or more upserts/updates/deletes of one object as jobs; smaller batches, creates and
records Bulk cannot carry (a cell over 32,000 characters, a row over 400,000) go through
collections.

Matching: result files are not in input order, so every row is matched to its item **by key**:
the external-id column for upserts, ``Id`` for updates and deletes (a batch holding one key twice
sends the repeats through collections). Rows in ``unprocessedrecords/`` come back retryable;
items no result file mentions are left out, which the executor treats as an unknown outcome and
re-sends.

Safety: until the job is closed nothing can have been written (errors are plain transient ones);
after ``UploadComplete`` the job may run whatever happens to this process, so a close whose answer
was lost, a poll that times out or results that cannot be read raise
``TransientError(maybe_committed=True)``: the executor looks the records up by external id and
re-sends the rest; an upsert by external id (or an update by id) re-sent is harmless. The client
remembers such a job (:class:`UnsettledJob`, the latest :data:`KEEP_UNSETTLED`), and when items it
carried come back it asks the job first: rows it wrote with exactly the cells that would be sent
now are answered from its results (so a job still running is waited for rather than raced, a
record it created is reported created, and a delete it did is not re-sent into
``ENTITY_IS_DELETED``); a job that is gone (404: deleted, or past Salesforce's 7 days) or that
never closed is dropped, and those rows go into a new job. The memory is the process's: a new
process knows no job and settles by external id alone. Jobs are split so that no upload exceeds
``max_upload_bytes`` (150 MB is the documented file limit, counted base64-encoded, so 100 MB of
CSV) or ``max_upload_chars``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from runtime.destinations.base import TransientError, WriteItem, WriteResult

if TYPE_CHECKING:
    from runtime.dialects.salesforce.client import SalesforceClient

__all__ = ["BulkSettings", "UnsettledJob", "JobGone", "bulk_write", "bulk_delete", "csv_value",
           "parse_error", "NULL", "KEEP_UNSETTLED"]

NULL = "#N/A"
KEEP_UNSETTLED = 32  # jobs of unknown outcome a client remembers (the oldest are forgotten)
_DONE = ("JobComplete", "Failed", "Aborted")
MAX_FIELD_CHARS = 32_000
MAX_RECORD_CHARS = 400_000
_FIELDS_RE = re.compile(r"^[A-Za-z0-9_,]*$")
_OPS = {"upsert": "upsert", "update": "update", "delete": "delete"}


@dataclass
class BulkSettings:
    """When and how the client uses Bulk API 2.0. ``threshold`` None turns Bulk off."""

    threshold: int | None = 2_000
    batch_size: int = 10_000  # records the executor hands over per batch when Bulk is on
    poll_interval: float = 2.0
    poll_timeout: float = 600.0
    max_upload_bytes: int = 100 * 1024 * 1024
    max_upload_chars: int = 100_000_000
    sleep: Callable[[float], None] = field(default=time.sleep)
    clock: Callable[[], float] = field(default=time.monotonic)

    def use_for(self, op: str, n: int) -> bool:
        return self.threshold is not None and op in _OPS and n >= self.threshold


@dataclass(frozen=True)
class UnsettledJob:
    """A closed job whose outcome this client never learnt, and the key-column values it
    carried (what lets a re-send find it)."""

    op: str
    obj: str
    keys: frozenset[str]


class JobGone(TransientError):
    """The org answered 404 for a job: deleted, expired, or never known to it."""

    def __init__(self, message: str) -> None:
        super().__init__(message, maybe_committed=True)


def csv_value(v: Any) -> str:
    """One CSV cell: ``#N/A`` clears a field (an empty cell would leave it unchanged)."""
    if v is None or v == "":
        return NULL
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return NULL
        text = repr(v)
        return format(Decimal(text), "f") if "e" in text or "E" in text else text
    if isinstance(v, (Decimal, int)):
        return str(v)
    if isinstance(v, (list, tuple)):
        return ";".join(str(x) for x in v) if v else NULL
    if isinstance(v, dict):
        return json.dumps(v, sort_keys=True)
    return str(v)


def parse_error(text: str) -> tuple[str, str, str | None]:
    """``sf__Error`` ``CODE:message:Field1,Field2 --`` -> (code, message, first field)."""
    text = text.strip().removesuffix("--").strip()
    code, _, rest = text.partition(":")
    message, sep, fields = rest.rpartition(":")
    if not sep or not _FIELDS_RE.match(fields.strip()):
        message, fields = rest, ""
    first = fields.strip().split(",")[0] or None
    return (code.strip() or "ERROR"), (message.strip() or code.strip()), first


def _fits(values: dict[str, str]) -> bool:
    return all(len(v) <= MAX_FIELD_CHARS for v in values.values()) and \
        sum(len(v) for v in values.values()) <= MAX_RECORD_CHARS


def _to_csv(header: list[str], rows: list[list[str]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _uploads(header: list[str], rows: list[tuple[str, list[str]]], max_bytes: int,
             max_chars: int) -> list[list[tuple[str, list[str]]]]:
    """Rows grouped so that each upload's CSV stays within both limits."""
    head = len(_to_csv(header, []).encode())
    groups: list[list[tuple[str, list[str]]]] = []
    cur: list[tuple[str, list[str]]] = []
    size = chars = head
    for key, row in rows:
        line = _to_csv([], [row])
        b, c = len(line.encode()), len(line)
        if cur and (size + b > max_bytes or chars + c > max_chars):
            groups.append(cur)
            cur, size, chars = [], head, head
        cur.append((key, row))
        size += b
        chars += c
    if cur:
        groups.append(cur)
    return groups


def bulk_write(client: SalesforceClient, op: str, obj: str,
               items: Sequence[WriteItem]) -> list[WriteResult]:
    """Upsert/update ``items`` through Bulk 2.0 jobs (collections for what Bulk cannot carry)."""
    key_col = client.ext_field(obj) if op == "upsert" else "Id"
    out: list[WriteResult] = []
    rest: list[WriteItem] = []
    bulk_items: list[tuple[WriteItem, dict[str, str], str]] = []
    seen: set[str] = set()
    for it in items:
        key_value = it.external_id if op == "upsert" else it.dest_id
        if not key_value:
            rest.append(it)  # collections report the missing key per item
            continue
        cells = {k: csv_value(v) for k, v in it.record.items()
                 if k not in (key_col, "Id", "id")}
        if key_value in seen or not _fits(cells):
            rest.append(it)
            continue
        seen.add(key_value)
        bulk_items.append((it, cells, key_value))
    columns = sorted({c for _, cells, _ in bulk_items for c in cells})
    header = [key_col, *columns]
    rows = [(kv, [kv, *(cells.get(c, "") for c in columns)]) for _, cells, kv in bulk_items]
    item_of = {kv: it.key for it, _, kv in bulk_items}
    s = client.bulk
    for group in _uploads(header, rows, s.max_upload_bytes, s.max_upload_chars):
        out.extend(_run_job(client, op, obj, header, group, item_of))
    if rest:
        out.extend(client._write_sync(op, obj, rest))  # noqa: SLF001
    return out


def bulk_delete(client: SalesforceClient, obj: str, ids: Sequence[str]) -> list[WriteResult]:
    """Delete ``ids`` (results keyed by id) through Bulk 2.0 ``delete`` jobs."""
    unique = list(dict.fromkeys(ids))
    rows = [(i, [i]) for i in unique]
    out: list[WriteResult] = []
    s = client.bulk
    for group in _uploads(["Id"], rows, s.max_upload_bytes, s.max_upload_chars):
        for r in _run_job(client, "delete", obj, ["Id"], group, {i: i for i in unique}):
            if r.ok:
                r.dest_id = r.key
            out.append(r)
    return out


def _run_job(client: SalesforceClient, op: str, obj: str, header: list[str],
             group: list[tuple[str, list[str]]], item_of: dict[str, str]) -> list[WriteResult]:
    settled, group = _ask_earlier_jobs(client, op, obj, header, group, item_of)
    if not group:
        return settled
    prefix = "/jobs/ingest"
    spec: dict[str, Any] = {"object": obj, "operation": op, "contentType": "CSV",
                            "lineEnding": "LF"}
    if op == "upsert":
        spec["externalIdFieldName"] = header[0]
    keys = [item_of[k] for k, _ in group]
    status, job = client._request("POST", prefix, op=f"bulk_{op}", json_body=spec)  # noqa: SLF001
    if status >= 400 or not isinstance(job, dict) or not isinstance(job.get("id"), str):
        return settled + _refused(client, f"POST {client._prefix}{prefix}", status, job, keys)  # noqa: SLF001
    jid = job["id"]
    data = _to_csv(header, [row for _, row in group]).encode("utf-8")
    status, body = client._request("PUT", f"{prefix}/{jid}/batches", op=f"bulk_{op}",  # noqa: SLF001
                                   content=data, content_type="text/csv", n=len(group))
    if status >= 400:
        _abort(client, jid)
        return settled + _refused(client, f"PUT {client._prefix}{prefix}/{{id}}/batches",  # noqa: SLF001
                                  status, body, keys)
    unsettled = UnsettledJob(op, obj, frozenset(k for k, _ in group))
    try:
        status, body = client._request("PATCH", f"{prefix}/{jid}", op=f"bulk_{op}",  # noqa: SLF001
                                       json_body={"state": "UploadComplete"}, write=True)
    except TransientError as exc:
        if exc.maybe_committed:  # the close may have reached the org: the job may run
            _remember(client, jid, unsettled)
        raise
    if status >= 400:
        return settled + _refused(client, f"PATCH {client._prefix}{prefix}/{{id}}", status,  # noqa: SLF001
                                  body, keys)
    # from here on the job may run whatever happens to this process
    try:
        info, results = _outcome(client, jid)
    except TransientError as exc:
        _remember(client, jid, unsettled)
        raise TransientError(f"Bulk job {jid}: outcome unknown ({exc}); re-sending by key is "
                             "safe", maybe_committed=True) from None
    return settled + _match(results, header[0], item_of, info)


def _outcome(client: SalesforceClient, jid: str
             ) -> tuple[dict[str, Any], dict[str, list[dict[str, str]]]]:
    """A closed job's final info and its three result files (polled until it ends)."""
    info = _poll(client, jid)
    return info, {kind: _read_csv(client, f"/jobs/ingest/{jid}/{kind}/")
                  for kind in ("successfulResults", "failedResults", "unprocessedrecords")}


def _remember(client: SalesforceClient, jid: str, job: UnsettledJob) -> None:
    jobs = client.bulk_unsettled
    jobs[jid] = job
    while len(jobs) > KEEP_UNSETTLED:
        del jobs[next(iter(jobs))]


def _ask_earlier_jobs(client: SalesforceClient, op: str, obj: str, header: list[str],
                      group: list[tuple[str, list[str]]], item_of: dict[str, str]
                      ) -> tuple[list[WriteResult], list[tuple[str, list[str]]]]:
    """Results, from remembered jobs of unknown outcome, for the rows of ``group`` they wrote
    with exactly these cells; and the rows still to send. A job still running is waited for (as
    long as a poll is); one that cannot be asked now stays remembered and the call raises
    ``maybe_committed``, as sending the rows again beside it would race it."""
    keys = {k for k, _ in group}
    earlier = [(jid, j) for jid, j in client.bulk_unsettled.items()
               if j.op == op and j.obj == obj and not j.keys.isdisjoint(keys)]
    if not earlier:
        return [], group
    row_of = dict(group)
    out: list[WriteResult] = []
    for jid, _ in earlier:
        try:
            info, results = _outcome(client, jid)
        except JobGone:
            info, results = {}, None
        except TransientError as exc:
            raise TransientError(f"Bulk job {jid}: outcome still unknown ({exc}); its rows are "
                                 "not sent again while it may run", maybe_committed=True) from None
        del client.bulk_unsettled[jid]
        if results is None or info.get("state") == "Open":
            if info.get("state") == "Open":
                _abort(client, jid)  # its close never arrived: it will not run
            continue
        for row in results["successfulResults"]:
            k = row.get(header[0], "")
            # an empty cell leaves the field as it is, so a column one side lacks is the same
            cells = {c: v for c, v in row.items() if v and not c.startswith("sf__")}
            if k in row_of and row.get("sf__Id") and \
                    cells == {c: v for c, v in zip(header, row_of[k], strict=True) if v}:
                out.append(WriteResult(key=item_of[k], ok=True, dest_id=row["sf__Id"],
                                       created=row.get("sf__Created", "").lower() == "true"))
                del row_of[k]
    return out, [(k, row) for k, row in group if k in row_of]


def _refused(client: SalesforceClient, endpoint: str, status: int, body: Any,
             keys: list[str]) -> list[WriteResult]:
    if isinstance(body, list) and body and isinstance(body[0], dict):
        code = str(body[0].get("errorCode") or "ERROR")
        message = str(body[0].get("message") or code)
        return [WriteResult(key=k, ok=False, code=code, error=message) for k in keys]
    raise client._fail(endpoint, status, body)  # noqa: SLF001


def _abort(client: SalesforceClient, jid: str) -> None:
    try:
        client._request("PATCH", f"/jobs/ingest/{jid}", op="bulk_abort",  # noqa: SLF001
                        json_body={"state": "Aborted"})
    except TransientError:
        pass  # an open job that never got data expires on its own


def _poll(client: SalesforceClient, jid: str) -> dict[str, Any]:
    """Poll until the job ends (or turns out never closed: ``Open``). Raises :class:`JobGone` on
    a 404, ``TransientError`` past ``poll_timeout``."""
    s = client.bulk
    deadline = s.clock() + s.poll_timeout
    errors = 0
    while True:
        try:
            status, info = client._request("GET", f"/jobs/ingest/{jid}",  # noqa: SLF001
                                           op="bulk_poll")
        except TransientError:
            errors += 1
            if errors > 5 or s.clock() >= deadline:
                raise
            s.sleep(s.poll_interval)
            continue
        if status == 404:
            raise JobGone(f"Bulk job {jid} is gone (HTTP 404)")
        if status >= 400 or not isinstance(info, dict):
            raise TransientError(f"poll answered HTTP {status}", maybe_committed=True)
        if info.get("state") in (*_DONE, "Open"):
            return info
        if s.clock() >= deadline:
            raise TransientError(f"still {info.get('state')} after {s.poll_timeout:.0f} s",
                                 maybe_committed=True)
        s.sleep(s.poll_interval)


def _read_csv(client: SalesforceClient, path: str) -> list[dict[str, str]]:
    for attempt in range(4):
        try:
            status, body = client._request("GET", path, op="bulk_results",  # noqa: SLF001
                                           text=True)
            break
        except TransientError:
            if attempt == 3:
                raise
            client.bulk.sleep(client.bulk.poll_interval)
    if status == 404:
        raise JobGone(f"results answered HTTP {status}")
    if status >= 400 or not isinstance(body, str):
        raise TransientError(f"results answered HTTP {status}", maybe_committed=True)
    return list(csv.DictReader(io.StringIO(body, newline="")))


def _match(results: dict[str, list[dict[str, str]]], key_col: str, item_of: dict[str, str],
           info: dict[str, Any]) -> list[WriteResult]:
    from runtime.dialects.salesforce.client import RETRYABLE_CODES  # client imports this module

    out: dict[str, WriteResult] = {}
    for row in results["successfulResults"]:
        key = item_of.get(row.get(key_col, ""))
        if key is None or not row.get("sf__Id"):
            continue
        out[key] = WriteResult(key=key, ok=True, dest_id=row["sf__Id"],
                               created=row.get("sf__Created", "").lower() == "true")
    for row in results["failedResults"]:
        key = item_of.get(row.get(key_col, ""))
        if key is None:
            continue
        code, message, fld = parse_error(row.get("sf__Error", ""))
        out[key] = WriteResult(key=key, ok=False, code=code, error=message, field=fld,
                               retryable=code in RETRYABLE_CODES)
    job_error = str(info.get("errorMessage") or "")
    invalid = job_error.startswith("InvalidBatch")
    for row in results["unprocessedrecords"]:
        key = item_of.get(row.get(key_col, ""))
        if key is None or key in out:
            continue
        out[key] = WriteResult(key=key, ok=False, code="INVALID_BATCH" if invalid else
                               "UNPROCESSED", error=job_error or "the job did not process it",
                               retryable=not invalid)
    return list(out.values())
