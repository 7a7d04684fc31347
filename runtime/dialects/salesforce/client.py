"""The Salesforce connector: the :class:`~runtime.destinations.base.Destination` interface over an
injected ``httpx.Client`` (REST API, sObject Collections; API_NOTES.md section 2).

Calls (``{api}`` is ``{instance_url}/services/data/vXX.X``):

================ ==========================================================================
create           ``POST {api}/composite/sobjects`` ``{"allOrNone": false, "records": [...]}``
                 (each record has ``attributes.type``; at most 200 per call)
update           ``PATCH {api}/composite/sobjects`` (each record carries ``id``)
upsert           ``PATCH {api}/composite/sobjects/{SObject}/{ExternalIdField}`` (results carry
                 ``created``)
delete           ``DELETE {api}/composite/sobjects?ids=a,b&allOrNone=false``
get              ``GET {api}/composite/sobjects/{SObject}?ids=...&fields=...``
find by ext id   SOQL ``SELECT Id, F FROM X WHERE F IN (...)`` (``GET {api}/query?q=``,
                 following ``nextRecordsUrl``)
count            SOQL ``SELECT COUNT() FROM X`` (``totalSize``)
list_records     SOQL ``SELECT ... FROM X [WHERE SystemModstamp >= t] ORDER BY Id``
list_users       SOQL ``SELECT Id, Email, Name, IsActive FROM User``
files            ``POST {api}/sobjects/ContentVersion`` (``VersionData`` base64 in JSON,
                 ``FirstPublishLocationId`` = the record, ``Description`` = ``fmap:<key>``);
                 rollback deletes the ContentDocument
================ ==========================================================================

The executor's external id lives in ``external_id_field`` (``Fmap_External_ID__c`` by default: a
custom Text(255) External ID + Unique field the org setup adds to every loaded object, as the
sandbox does); it is read back as ``$external_id``, not as a field. The mapping's own
``Source_System_ID__c`` stays an ordinary mapped value.

Results come back in request order: the client pairs them by position within the call and returns
them keyed by item key. Errors: 403 ``REQUEST_LIMIT_EXCEEDED`` "TotalRequests" (the daily
allocation) -> ``FatalError`` (stop cleanly, resume tomorrow); the same code for the concurrent
long-running request limit -> ``TransientError``; 401 -> one token refresh, then
:class:`~runtime.dialects.salesforce.auth.SalesforceAuthError` naming the environment variables;
5xx, timeouts and dropped connections -> ``TransientError`` (``maybe_committed`` for writes); a
write call refused as a whole (400 ``INVALID_FIELD``, a bad external-id field, 300 Multiple
Choices on upsert) -> a failed ``WriteResult`` per item; other refused reads ->
:class:`SalesforceAPIError`; unreadable answers -> :class:`SalesforceProtocolError` (both
``FatalError``). ``Sforce-Limit-Info: api-usage=x/y`` is parsed into :attr:`api_usage`.

Pacing: every request (Bulk API 2.0's job calls and polls, describes, queries included) first
passes :attr:`SalesforceClient.pacer`; for the clients of ``open_client`` and ``open_sandbox`` a
:class:`~runtime.dialects.salesforce.ratelimit.RollingWindowPacer` over the org's allocation that
learns the org's usage from ``Sforce-Limit-Info`` (what other integrations spent), keeps
``api_reserve`` of it back, waits for the window to free up, and stops the run with a resumable
``FatalError`` (:class:`~runtime.dialects.salesforce.ratelimit.AllocationSpent`) when that wait
would exceed ``max_wait``, before the org's 403. ``pacer=None`` (the constructor's default, for
tests and benchmarks of the org's own enforcement) turns it off.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from runtime.destinations.base import (
    CallStats,
    DestinationCapabilities,
    FatalError,
    RateLimit,
    TransientError,
    User,
    WriteItem,
    WriteResult,
)
from runtime.dialects._http import (
    APIError,
    OwnedHTTP,
    chunks,
    local_file,
    parse_json,
    present,
    send,
)
from runtime.dialects.salesforce.auth import (
    REFRESH_HINT,
    SalesforceAuthError,
    SalesforceCredentials,
    TokenManager,
)
from runtime.dialects.salesforce.bulk import BulkSettings, UnsettledJob, bulk_delete, bulk_write
from runtime.dialects.salesforce.ratelimit import (
    DEFAULT_MAX_WAIT,
    DEFAULT_RESERVE,
    WINDOW_SECONDS,
    AllocationSpent,
    RollingWindowPacer,
)
from runtime.schema.model import FieldType, SystemSchema

__all__ = ["SalesforceClient", "SalesforceAPIError", "SalesforceProtocolError",
           "DEFAULT_API_VERSION", "DEFAULT_EXTERNAL_ID_FIELD", "MAX_BATCH", "JSON_FILE_LIMIT",
           "daily_api_limit", "parse_limit_info", "soql_str"]

DEFAULT_API_VERSION = "62.0"
DEFAULT_EXTERNAL_ID_FIELD = "Fmap_External_ID__c"
MAX_BATCH = 200
GET_IDS = 200  # ids per composite retrieve (URL length)
SOQL_IN = 200  # values per IN list
JSON_FILE_LIMIT = int(37.5 * 1024 * 1024)  # base64 in a non-multipart JSON body
EXTERNAL_ID_KEY = "$external_id"
FILE_MARKER = "fmap:"
RETRYABLE_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                             "SERVER_UNAVAILABLE", "REQUEST_RUNNING_TOO_LONG"})
_LIMIT_INFO = re.compile(r"api-usage=(\d+)/(\d+)")
_EDITIONS = {"developer": (15_000, 0), "professional": (100_000, 1_000),
             "enterprise": (100_000, 1_000), "unlimited": (100_000, 5_000),
             "performance": (100_000, 5_000), "full_sandbox": (5_000_000, 0)}


def daily_api_limit(edition: str = "enterprise", licences: int = 10) -> int:
    """The org's rolling-24 h API request allocation (API_NOTES.md 2.7)."""
    base, per_user = _EDITIONS.get(edition, _EDITIONS["enterprise"])
    return base + per_user * licences


def parse_limit_info(value: str | None) -> tuple[int, int] | None:
    """``api-usage=18/15000`` -> (18, 15000)."""
    m = _LIMIT_INFO.search(value or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def soql_str(v: str) -> str:
    return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _delta_time(value: datetime) -> str:
    """An aware instant as the delta resources take it (UTC, whole minutes)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).replace(second=0, microsecond=0).strftime(
        "%Y-%m-%dT%H:%M:%S+00:00")


def _soql_datetime(value: str) -> str:
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class SalesforceAPIError(APIError):
    """A whole request Salesforce refused (bad object, permission, query): retrying won't help."""


class SalesforceProtocolError(FatalError):
    """Salesforce answered something the connector cannot read (not JSON, wrong shape)."""


def _jsonable(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, (list, tuple)):
        if v and all(isinstance(x, str) for x in v):
            return ";".join(v)  # multi-select picklists are ";"-joined strings
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    return v


def _first_error(errors: Any) -> tuple[str, str, str | None]:
    """(code, message, field) of a result's or a response's first error."""
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        e = errors[0]
        code = str(e.get("statusCode") or e.get("errorCode") or "ERROR")
        fields = e.get("fields")
        field = fields[0] if isinstance(fields, list) and fields and isinstance(fields[0], str) \
            else None
        return code, str(e.get("message") or code), field
    return "ERROR", "rejected without an error", None


def _failed(key: str, errors: Any) -> WriteResult:
    """Item ``key``'s failed result from Salesforce ``errors`` (a result's, or those of a write
    call refused as a whole), retryable when the first code is one of :data:`RETRYABLE_CODES`."""
    code, message, field = _first_error(errors)
    return WriteResult(key=key, ok=False, code=code, error=message, field=field,
                       retryable=code in RETRYABLE_CODES)


class SalesforceClient(OwnedHTTP):
    """Salesforce destination. Give it an ``httpx.Client`` (its transport decides where requests
    go: the real API, a ``MockTransport`` or the sandbox) or let it build one (TLS verified)."""

    def __init__(
        self,
        *,
        credentials: SalesforceCredentials | None = None,
        instance_url: str | None = None,
        api_version: str = DEFAULT_API_VERSION,
        http: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        schema: SystemSchema | None = None,
        external_id_field: str = DEFAULT_EXTERNAL_ID_FIELD,
        daily_limit: int | None = None,
        name: str = "salesforce",
        timeout: float = 120.0,
        owns: Iterable[Any] = (),
        bulk: BulkSettings | None = None,
        pacer: Any = None,
        api_reserve: float = DEFAULT_RESERVE,
        max_wait: float = DEFAULT_MAX_WAIT,
        api_window: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``pacer``: called before every request. ``"default"`` (what ``open_client`` and
        ``open_sandbox`` pass): a :class:`RollingWindowPacer` over ``daily_limit`` per
        ``api_window`` seconds on ``clock``/``sleep``, keeping ``api_reserve`` back and stopping
        past ``max_wait``; ``None``: no pacing but the executor's (tests and benchmarks of the
        org's own enforcement)."""
        creds = credentials or SalesforceCredentials.discover()
        self._open_http(http, transport, timeout, owns)
        self.auth = TokenManager(creds, self._http)
        if instance_url:
            self.auth.instance_url = instance_url
        self.api_version = api_version.lstrip("v")
        self.external_id_field = external_id_field
        self._schema = schema
        # no schema given: the org's own describe of each object read (custom fields included)
        self._learn = schema is None
        self._described: set[str] = set()
        self.api_usage: tuple[int, int] | None = None
        limit = daily_limit or daily_api_limit()
        if isinstance(pacer, str) and pacer == "default":
            pacer = RollingWindowPacer(limit, api_window, reserve=api_reserve, max_wait=max_wait,
                                       clock=clock, sleep=sleep)
        # called before every request; told each answer's usage when it has ``observe``
        self.pacer: Any = pacer
        self.bulk = bulk or BulkSettings()
        on = self.bulk.threshold is not None
        self.capabilities = DestinationCapabilities(
            name=name, batch_size=MAX_BATCH, native_upsert=True, bulk=on,
            bulk_batch_size=max(self.bulk.batch_size, MAX_BATCH) if on else None,
            attachment_limit_bytes=JSON_FILE_LIMIT,
            rate_limit=RateLimit(kind="requests", per_window=limit, window_seconds=api_window,
                                 write_cost_per_call=1.0, read_cost_per_call=1.0,
                                 concurrency=25))
        self.stats = CallStats()
        # Bulk jobs closed without a known outcome, by job id: a re-send asks them first
        self.bulk_unsettled: dict[str, UnsettledJob] = {}

    def __repr__(self) -> str:
        return f"SalesforceClient(instance={self.auth.instance_url!r}, api=v{self.api_version})"

    # ------------------------------------------------------------------ transport
    @property
    def _prefix(self) -> str:
        return f"/services/data/v{self.api_version}"

    def _base(self) -> str:
        url = self.auth.instance_url
        if not url:
            raise SalesforceAuthError("no Salesforce instance URL: set SF_INSTANCE_URL (or use "
                                      "the refresh flow, whose token response names it)")
        return url.rstrip("/")

    def _request(self, method: str, path: str, *, op: str, params: dict | None = None,
                 json_body: Any = None, write: bool = False, n: int = 0,
                 content: bytes | None = None, content_type: str | None = None,
                 text: bool = False) -> tuple[int, Any]:
        """One API call -> (status, parsed JSON or None). ``path`` is relative to the versioned
        prefix, or absolute when it starts with ``/services/`` (``nextRecordsUrl``). ``content``
        sends raw bytes (Bulk CSV uploads, deploy zips); ``text`` returns a successful answer
        as text (Bulk result CSVs) instead of parsing it as JSON."""
        full = path if path.startswith("/services/") else self._prefix + path
        endpoint = f"{method} {full.split('?', 1)[0]}"
        refreshed = False
        while True:
            token = self.auth.token()
            url = self._base() + full
            if self.pacer is not None:
                try:
                    self.pacer()
                except AllocationSpent as e:
                    raise AllocationSpent(f"{endpoint}: {e}") from None
            self.stats.count_call(op, n)
            headers = {"Authorization": f"Bearer {token}",
                       "Accept": "text/csv" if text else "application/json"}
            if content_type:
                headers["Content-Type"] = content_type
            resp = send(self._http, method, url, endpoint=endpoint, write=write,
                        params=params, json=json_body, content=content, headers=headers)
            usage = parse_limit_info(resp.headers.get("sforce-limit-info"))
            if usage is not None:
                self.api_usage = usage
                observe = getattr(self.pacer, "observe", None)
                if observe is not None:
                    observe(*usage)
            status = resp.status_code
            if text and status < 300:
                return status, resp.text
            body = parse_json(resp, endpoint, SalesforceProtocolError) if resp.content else None
            code, message, _ = _first_error(body) if isinstance(body, list) else ("", "", None)
            if status == 401:
                if not refreshed and self.auth.can_refresh:
                    refreshed = True
                    self.auth.refresh(stale=token)
                    continue
                raise SalesforceAuthError(
                    f"{endpoint}: Salesforce rejected the access token "
                    f"({code or 'HTTP 401'}); {REFRESH_HINT}")
            if status == 403 and code == "REQUEST_LIMIT_EXCEEDED":
                self.stats.throttled += 1
                if "TotalRequests" in message or not message.startswith("Concurrent"):
                    used = f" ({self.api_usage[0]}/{self.api_usage[1]})" if self.api_usage else ""
                    raise FatalError(
                        f"{endpoint}: the org's daily API request allocation is used up{used}; "
                        "resume the run later with --resume")
                raise TransientError(f"{endpoint}: 403 REQUEST_LIMIT_EXCEEDED ({message})",
                                     maybe_committed=False)
            if status >= 500:
                raise TransientError(f"{endpoint}: HTTP {status} {code}".strip(),
                                     maybe_committed=write)
            return status, body

    def _fail(self, endpoint: str, status: int, body: Any) -> FatalError:
        if isinstance(body, list) and body and isinstance(body[0], dict):
            code, message, _ = _first_error(body)
            return SalesforceAPIError(endpoint, status, code, message)
        return SalesforceProtocolError(f"{endpoint}: HTTP {status} without a Salesforce error body")

    # ------------------------------------------------------------------ schema helpers
    def schema(self) -> SystemSchema:
        if self._schema is None:
            from runtime.dialects import get_dialect

            self._schema = get_dialect("salesforce").standard_schema()
        return self._schema

    def ext_field(self, obj: str) -> str:
        """The field holding the executor's external id of ``obj``'s records (one fmap field on
        every object: a mapped ``Source_System_ID__c`` does not always hold the same value)."""
        return self.external_id_field

    def _object(self, obj: str):
        """``obj``'s schema; against a real org, from its describe (once per object), so custom
        objects and fields an admin deployed are read back too."""
        if self._learn and obj not in self._described:
            self._described.add(obj)
            from runtime.dialects import get_dialect

            try:
                learnt = get_dialect("salesforce").load_metadata(
                    self.describe(obj), source_name=f"describe {obj}", object_name=obj)
            except FatalError:
                learnt = None  # not describable: the bundled standard schema has to do
            if learnt is not None:
                self._schema = self.schema().merged(learnt)
        return self.schema().object(obj)

    def _read_fields(self, obj: str) -> list[str]:
        o = self._object(obj)
        ext = self.ext_field(obj)
        names = [f.api_name for f in o.fields if f.type != FieldType.id and f.api_name != ext
                 ] if o is not None else []
        return ["Id", ext, *names]

    def _from_sf(self, obj: str, rec: dict[str, Any]) -> dict[str, Any]:
        ext = self.ext_field(obj)
        o = self._object(obj)
        multi = {f.api_name for f in o.fields if f.type == FieldType.multipicklist} \
            if o is not None else set()
        out: dict[str, Any] = {}
        for k, v in rec.items():
            if k == "attributes":
                continue
            if k in multi and isinstance(v, str):
                v = v.split(";")
            out["id" if k == "Id" else k] = v
        out[EXTERNAL_ID_KEY] = rec.get(ext)
        out.pop(ext, None)  # fmap's own bookkeeping field, not a mapped one
        return out

    # ------------------------------------------------------------------ writes
    def create(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        return self._write("create", obj, items)

    def update(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        return self._write("update", obj, items)

    def upsert(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        return self._write("upsert", obj, items)

    def _to_sf(self, op: str, obj: str, item: WriteItem) -> dict[str, Any]:
        rec: dict[str, Any] = {"attributes": {"type": obj}}
        for k, v in item.record.items():
            rec[k] = _jsonable(v)
        if item.external_id is not None and op != "update":
            rec[self.ext_field(obj)] = item.external_id
        if op == "update":
            rec["id"] = item.dest_id
        return rec

    def _write(self, op: str, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        if self.bulk.use_for(op, len(items)):
            return bulk_write(self, op, obj, items)
        return self._write_sync(op, obj, items)

    def _write_sync(self, op: str, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        out: list[WriteResult] = []
        for chunk in chunks(list(items), MAX_BATCH):
            out.extend(self._write_batch(op, obj, chunk))
        return out

    def _write_batch(self, op: str, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        out: list[WriteResult] = []
        send: list[WriteItem] = []
        for it in items:
            if op == "upsert" and not it.external_id:
                out.append(WriteResult(key=it.key, ok=False, code="EXTERNAL_ID_MISSING",
                                       error="upsert needs an external id"))
            elif op == "update" and not it.dest_id:
                out.append(WriteResult(key=it.key, ok=False, code="MISSING_ARGUMENT",
                                       error="update without a record id", field="Id"))
            else:
                send.append(it)
        if not send:
            return out
        path = "/composite/sobjects"
        method = "POST" if op == "create" else "PATCH"
        if op == "upsert":
            path += f"/{obj}/{self.ext_field(obj)}"
        body = {"allOrNone": False, "records": [self._to_sf(op, obj, it) for it in send]}
        status, resp = self._request(method, path, op=op, json_body=body, write=True,
                                     n=len(send))
        endpoint = f"{method} {self._prefix}{path}"
        if status == 300:  # more than one record has this external id
            n_match = len(resp) if isinstance(resp, list) else 0
            return out + [WriteResult(key=it.key, ok=False, code="MULTIPLE_CHOICES",
                                      error=f"the external id matches {n_match} records",
                                      field=self.ext_field(obj)) for it in send]
        if status >= 400:
            if isinstance(resp, list) and resp and isinstance(resp[0], dict):
                return out + [_failed(it.key, resp) for it in send]
            raise self._fail(endpoint, status, resp)
        if not isinstance(resp, list):
            raise SalesforceProtocolError(f"{endpoint}: HTTP {status} response is not a list")
        for it, res in zip(send, resp, strict=False):  # request order, within this call
            out.append(self._result(op, it.key, res))
        return out  # keys without a result: the executor treats their outcome as unknown

    def _result(self, op: str, key: str, res: Any) -> WriteResult:
        if not isinstance(res, dict):
            return WriteResult(key=key, ok=False, code="MALFORMED_RESULT",
                               error="Salesforce returned a result that is not an object")
        if res.get("success") is True:
            rid = res.get("id")
            if not isinstance(rid, str) or not rid:
                return WriteResult(key=key, ok=False, code="MALFORMED_RESULT",
                                   error="success without an id")
            created = True if op == "create" else (
                res.get("created") is not False if op == "upsert" else None)
            return WriteResult(key=key, ok=True, dest_id=rid, created=created)
        return _failed(key, res.get("errors"))

    def delete(self, obj: str, ids: Sequence[str]) -> list[WriteResult]:
        if self.bulk.use_for("delete", len(ids)):
            return bulk_delete(self, obj, ids)
        out: list[WriteResult] = []
        for chunk in chunks(list(dict.fromkeys(ids)), MAX_BATCH):
            out.extend(self._delete_ids(list(chunk), op="delete"))
        return out

    def _delete_ids(self, ids: list[str], *, op: str) -> list[WriteResult]:
        path = "/composite/sobjects"
        status, resp = self._request("DELETE", path, op=op, write=True, n=len(ids),
                                     params={"ids": ",".join(ids), "allOrNone": "false"})
        if status >= 400 or not isinstance(resp, list):
            if status >= 400 and isinstance(resp, list) and resp:
                code, message, field = _first_error(resp)
                return [WriteResult(key=i, ok=False, code=code, error=message, field=field)
                        for i in ids]
            raise self._fail(f"DELETE {self._prefix}{path}", status, resp)
        out = []
        for rid, res in zip(ids, resp, strict=False):
            r = self._result("delete", rid, res)
            if r.ok:
                r.dest_id = rid
            out.append(r)
        return out

    # ------------------------------------------------------------------ reads
    def query(self, soql: str, *, op: str = "query") -> Iterator[dict[str, Any]]:
        """Every row of a SOQL query, following ``nextRecordsUrl``."""
        path, params = "/query", {"q": soql}
        while True:
            status, resp = self._request("GET", path, op=op, params=params)
            if status >= 400:
                raise self._fail(f"GET {self._prefix}/query", status, resp)
            if not isinstance(resp, dict) or not isinstance(resp.get("records"), list):
                raise SalesforceProtocolError(f"GET {self._prefix}/query: no 'records' list")
            yield from (r for r in resp["records"] if isinstance(r, dict))
            if resp.get("done", True):
                return
            nxt = resp.get("nextRecordsUrl")
            if not isinstance(nxt, str):
                raise SalesforceProtocolError("query: done=false without nextRecordsUrl")
            path, params = urlsplit(nxt).path, None

    def get(self, obj: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        fields = ",".join(self._read_fields(obj))
        for chunk in chunks(list(dict.fromkeys(ids)), GET_IDS):
            path = f"/composite/sobjects/{obj}"
            status, resp = self._request("GET", path, op="get",
                                         params={"ids": ",".join(chunk), "fields": fields})
            if status >= 400 or not isinstance(resp, list):
                raise self._fail(f"GET {self._prefix}{path}", status, resp)
            for rec in resp:  # null for ids that do not exist
                if isinstance(rec, dict) and isinstance(rec.get("Id"), str):
                    out[rec["Id"]] = self._from_sf(obj, rec)
        return out

    def find_by_external_id(self, obj: str, external_ids: Sequence[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        ext = self.ext_field(obj)
        for chunk in chunks(list(dict.fromkeys(external_ids)), SOQL_IN):
            soql = (f"SELECT Id, {ext} FROM {obj} WHERE {ext} IN "
                    f"({', '.join(soql_str(v) for v in chunk)})")
            for rec in self.query(soql, op="find_by_external_id"):
                if isinstance(rec.get("Id"), str) and rec.get(ext) in chunk:
                    out[rec[ext]] = rec["Id"]
        return out

    def count(self, obj: str) -> int:
        status, resp = self._request("GET", "/query", op="count",
                                     params={"q": f"SELECT COUNT() FROM {obj}"})
        if status >= 400:
            raise self._fail(f"GET {self._prefix}/query", status, resp)
        n = resp.get("totalSize") if isinstance(resp, dict) else None
        if not isinstance(n, int):
            raise SalesforceProtocolError("SELECT COUNT(): response has no integer totalSize")
        return n

    def list_records(self, obj: str, *, modified_since: str | None = None
                     ) -> Iterable[dict[str, Any]]:
        soql = f"SELECT {', '.join(self._read_fields(obj))} FROM {obj}"
        if modified_since:
            soql += f" WHERE SystemModstamp >= {_soql_datetime(modified_since)}"
        soql += " ORDER BY Id"
        return [self._from_sf(obj, r) for r in self.query(soql, op="list_records")]

    def list_users(self) -> list[User]:
        users = []
        for u in self.query("SELECT Id, Email, Name, IsActive FROM User ORDER BY Id",
                            op="list_users"):
            if not isinstance(u.get("Id"), str):
                raise SalesforceProtocolError("User query: a row without an Id")
            users.append(User(id=u["Id"], email=str(u.get("Email") or ""),
                              name=str(u.get("Name") or ""), active=u.get("IsActive") is not False))
        return users

    # ------------------------------------------------------------------ metadata and schema
    def describe_global(self) -> list[dict[str, Any]]:
        """``GET /sobjects`` (describeGlobal): the org's objects, without their fields."""
        status, resp = self._request("GET", "/sobjects", op="describe_global")
        if status >= 400:
            raise self._fail(f"GET {self._prefix}/sobjects", status, resp)
        objs = resp.get("sobjects") if isinstance(resp, dict) else None
        if not isinstance(objs, list):
            raise SalesforceProtocolError(f"GET {self._prefix}/sobjects: no 'sobjects' list")
        return [o for o in objs if isinstance(o, dict) and isinstance(o.get("name"), str)]

    def describe(self, obj: str) -> dict[str, Any]:
        """``GET /sobjects/{obj}/describe``, verbatim."""
        path = f"/sobjects/{obj}/describe"
        status, resp = self._request("GET", path, op="describe")
        if status >= 400:
            raise self._fail(f"GET {self._prefix}{path}", status, resp)
        if not isinstance(resp, dict) or not isinstance(resp.get("fields"), list):
            raise SalesforceProtocolError(f"GET {self._prefix}{path}: no 'fields' list")
        return resp

    def metadata_bundle(self, objects: Iterable[str] | None = None) -> dict[str, Any]:
        """``{"objects": {name: describe}}`` (what ``load_metadata`` accepts); no ``objects``:
        every createable object describeGlobal lists. An object the org lacks (its describe is a
        404 ``NOT_FOUND``) is left out rather than failing the whole pull: ``schema apply`` asks
        for the custom objects it may have to create."""
        names = list(objects or [])
        if not names:
            names = [o["name"] for o in self.describe_global() if o.get("createable")]
        return {"objects": present(names, self.describe, SalesforceAPIError)}

    def apply_schema_changes(self, changes: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Salesforce objects and fields are created by a Metadata API deployment, which the
        REST API does not do: say how to get there instead of half-creating a schema."""
        from runtime.dialects.base import UnsupportedByDialect

        raise UnsupportedByDialect(
            "salesforce", "custom objects and fields cannot be created through the REST API; "
            "write a metadata package with `fmap schema apply --emit package DIR` and deploy it "
            "(Setup > Deployment, or `sf project deploy start --metadata-dir DIR`), then grant "
            "the migration user field access")

    def deploy_package(self, package_dir: str | Path) -> dict[str, Any]:
        """Deploy a package directory (``emit_schema_package``'s output) through the Metadata
        REST ``deployRequest`` (multipart: deployOptions JSON + the zip). Returns the answer."""
        import io
        import zipfile

        from runtime.dialects.salesforce.package import package_files

        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for rel, data in package_files(package_dir).items():
                zf.writestr(rel, data)
        boundary = "fmap-" + base64.urlsafe_b64encode(os.urandom(9)).decode()
        opts = json.dumps({"deployOptions": {"singlePackage": True, "rollbackOnError": True,
                                             "checkOnly": False}})
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"json\"\r\n"
                f"Content-Type: application/json\r\n\r\n{opts}\r\n"
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                f"filename=\"package.zip\"\r\nContent-Type: application/zip\r\n\r\n"
                ).encode() + buf.getvalue() + f"\r\n--{boundary}--\r\n".encode()
        path = "/metadata/deployRequest"
        status, resp = self._request("POST", path, op="deploy", content=body, write=True,
                                     content_type=f"multipart/form-data; boundary={boundary}")
        if status >= 400 or not isinstance(resp, dict):
            raise self._fail(f"POST {self._prefix}{path}", status, resp)
        return resp

    # ------------------------------------------------------------------ delta
    def _delta(self, obj: str, kind: str, start: datetime, end: datetime) -> dict[str, Any]:
        path = f"/sobjects/{obj}/{kind}/"
        status, resp = self._request("GET", path, op=f"get_{kind}", params={
            "start": _delta_time(start), "end": _delta_time(end)})
        if status >= 400:
            raise self._fail(f"GET {self._prefix}{path}", status, resp)
        if not isinstance(resp, dict):
            raise SalesforceProtocolError(f"GET {self._prefix}{path}: not an object")
        return resp

    def updated(self, obj: str, start: datetime, end: datetime) -> tuple[list[str], str | None]:
        """Ids of ``obj`` records changed in [start, end) and ``latestDateCovered``. Salesforce
        works in whole minutes (seconds are dropped) and keeps 30 days."""
        resp = self._delta(obj, "updated", start, end)
        ids = resp.get("ids")
        if not isinstance(ids, list):
            raise SalesforceProtocolError("updated: no 'ids' list")
        return [i for i in ids if isinstance(i, str)], resp.get("latestDateCovered")

    def deleted(self, obj: str, start: datetime, end: datetime
                ) -> tuple[list[dict[str, str]], str | None]:
        """``[{"id", "deletedDate"}]`` of ``obj`` records deleted in [start, end) and
        ``latestDateCovered`` (same granularity and 30-day window as :meth:`updated`)."""
        resp = self._delta(obj, "deleted", start, end)
        recs = resp.get("deletedRecords")
        if not isinstance(recs, list):
            raise SalesforceProtocolError("deleted: no 'deletedRecords' list")
        return [r for r in recs if isinstance(r, dict) and isinstance(r.get("id"), str)], \
            resp.get("latestDateCovered")

    # ------------------------------------------------------------------ files
    def upload_attachment(self, obj: str, record_id: str, file_name: str, path: Path,
                          key: str) -> WriteResult:
        """A ContentVersion published to ``record_id`` (``dest_id`` = the ContentVersion id).
        Idempotent by key: the record's versions titled ``file_name`` are read first and one whose
        ``Description`` is ``fmap:<key>`` is returned (``created=False``) instead of re-sent."""
        found = local_file(path, key)
        if isinstance(found, WriteResult):
            return found
        p, size = found
        if size > JSON_FILE_LIMIT:
            return WriteResult(key=key, ok=False, code="FILE_TOO_LARGE",
                               error=f"file is {size} bytes; a JSON upload takes at most "
                                     f"{JSON_FILE_LIMIT} (multipart uploads are not supported)")
        marker = f"{FILE_MARKER}{key}"
        existing = self._find_file(record_id, file_name, marker)
        if existing is not None:
            return WriteResult(key=key, ok=True, dest_id=existing, created=False)
        body = {"Title": file_name, "PathOnClient": file_name, "Description": marker,
                "FirstPublishLocationId": record_id,
                "VersionData": base64.b64encode(p.read_bytes()).decode("ascii")}
        status, resp = self._request("POST", "/sobjects/ContentVersion", op="upload_attachment",
                                     json_body=body, write=True, n=1)
        if isinstance(resp, dict):
            r = self._result("create", key, resp)
        elif status >= 400 and isinstance(resp, list) and resp:
            r = _failed(key, resp)
        else:
            raise self._fail(f"POST {self._prefix}/sobjects/ContentVersion", status, resp)
        if r.retryable:  # a locked row: the single-file call did not happen; retry it
            raise TransientError(f"POST {self._prefix}/sobjects/ContentVersion: {r.code}",
                                 maybe_committed=False)
        return r

    def _find_file(self, record_id: str, file_name: str, marker: str) -> str | None:
        soql = (f"SELECT Id, Description FROM ContentVersion WHERE FirstPublishLocationId = "
                f"{soql_str(record_id)} AND Title = {soql_str(file_name)}")
        for v in self.query(soql, op="find_attachment"):
            if v.get("Description") == marker and isinstance(v.get("Id"), str):
                return v["Id"]
        return None

    def list_files(self, record_id: str) -> list[dict[str, Any]]:
        """ContentVersions published to one record: Id, Title, ContentSize, ContentDocumentId."""
        return list(self.query(
            "SELECT Id, Title, ContentSize, ContentDocumentId, Description FROM ContentVersion "
            f"WHERE FirstPublishLocationId = {soql_str(record_id)}", op="list_files"))

    def delete_attachments(self, ids: Sequence[str]) -> list[WriteResult]:
        """Delete the ContentDocuments of uploaded ContentVersions (``068`` ids; ``069`` document
        ids are deleted as they are). Results keyed by the given id."""
        ids = list(dict.fromkeys(ids))
        doc_of: dict[str, str] = {i: i for i in ids if not i.startswith("068")}
        versions = [i for i in ids if i.startswith("068")]
        for chunk in chunks(versions, SOQL_IN):
            for v in self.query("SELECT Id, ContentDocumentId FROM ContentVersion WHERE Id IN "
                                f"({', '.join(soql_str(i) for i in chunk)})", op="get"):
                if isinstance(v.get("ContentDocumentId"), str):
                    doc_of[str(v.get("Id"))] = v["ContentDocumentId"]
                    if len(str(v.get("Id"))) == 18:
                        doc_of.update({i: v["ContentDocumentId"] for i in chunk
                                       if i[:15] == str(v["Id"])[:15]})
        out: dict[str, WriteResult] = {
            i: WriteResult(key=i, ok=False, code="NOT_FOUND", error=f"no file {i}")
            for i in ids if i not in doc_of}
        docs = list(dict.fromkeys(doc_of.values()))
        by_doc: dict[str, WriteResult] = {}
        for chunk in chunks(docs, MAX_BATCH):
            for r in self._delete_ids(list(chunk), op="delete_attachments"):
                by_doc[r.key] = r
        for i, d in doc_of.items():
            r = by_doc.get(d)
            if r is not None:
                out[i] = WriteResult(key=i, ok=r.ok, dest_id=i if r.ok else None, code=r.code,
                                     error=r.error, field=r.field)
        return [out[i] for i in ids if i in out]
