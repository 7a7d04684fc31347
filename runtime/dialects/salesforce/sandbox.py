"""A local Salesforce emulator: the REST API (sObject Collections, SOQL, ContentVersion) in front of
the generic :class:`SandboxStore`, as a plain ASGI app (no framework). In process it is spoken to
through :class:`~runtime.dialects._asgi.SyncASGITransport`.

What it reproduces (API_NOTES.md sections 2 and 6):

- ``/services/data/vXX.X/...``; ``Authorization: Bearer <token>``, else 401
  ``[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]``.
- collections create / update / upsert (``PATCH /composite/sobjects/{SObject}/{Field}``, results
  with ``created``) / delete / retrieve: **HTTP 200** with one ``{"id","success","errors":
  [{"statusCode","message","fields"}]}`` per record in request order (error items have no id);
  at most 200 records; ``allOrNone=true`` rolls good creates back and reports them
  ``ALL_OR_NONE_OPERATION_ROLLED_BACK`` (keeping their id, as the documented example); an unknown
  field fails the whole request with 400 ``INVALID_FIELD``; request-level errors are a top-level
  array with ``errorCode``.
- per-record codes: ``REQUIRED_FIELD_MISSING`` "Required fields are missing: [Name]",
  ``INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST``, ``STRING_TOO_LONG``, ``DUPLICATE_VALUE``
  "duplicate value found: <field> duplicates value on record with id: <id>",
  ``INVALID_CROSS_REFERENCE_KEY``, ``INVALID_FIELD_FOR_INSERT_UPDATE``, ``ENTITY_IS_DELETED``,
  ``UNABLE_TO_LOCK_ROW`` (the fault plan's record errors). Messages leave field values out.
- 18-character ids with key prefixes (``001`` Account, ``003`` Contact, ``00Q`` Lead, ``006``
  Opportunity, ``00U`` Event, ``00T`` Task, ``002`` Note, ``068``/``069`` ContentVersion /
  ContentDocument, a custom object its own ``aXX`` prefix) and the case-safe 3-character suffix;
  times like ``2013-05-07T22:07:19.000+0000``.
- SOQL over ``GET /query`` (a subset: ``SELECT f, ... | COUNT() FROM X [WHERE c AND ...]
  [ORDER BY f] [LIMIT n] [OFFSET m]`` with ``=``, ``!=``, ``<``, ``<=``, ``>``, ``>=`` and ``IN``)
  and ``{totalSize, done, nextRecordsUrl, records}`` pages (2,000 rows).
- files: ``POST /sobjects/ContentVersion`` with base64 ``VersionData`` and
  ``FirstPublishLocationId``; deleting the ContentDocument (``069``) removes the file.
- the daily API allocation: ``Sforce-Limit-Info: api-usage=x/y`` on every response, 403
  ``REQUEST_LIMIT_EXCEEDED`` "TotalRequests Limit exceeded." once it is used (no Retry-After).
  ``api_used`` presets what the org's other integrations already spent (with ``api_window``:
  spent at construction, leaving the window one window later).
- the store's injected faults: throttles become 403 ``REQUEST_LIMIT_EXCEEDED``
  "ConcurrentPerOrgLongTxn Limit exceeded.", batch failures 503 ``SERVER_UNAVAILABLE``, timeouts
  and lost responses a dropped connection, a fatal fault the daily limit.

The executor's external id lives in ``Fmap_External_ID__c`` (a Text(255) External ID + Unique
field the migration's org setup adds to every object it loads; the sandbox adds it to every
createable object). The mapping's own fields (``Source_System_ID__c``) stay ordinary values: the
executor's external id is not always their value (``Treatment__c:700528``, ``<note>#<part>``).
The store keeps the external id in its external-id column.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import tempfile
import threading
import time
import zlib
from collections import Counter, deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from runtime.destinations.base import (
    DestinationCapabilities,
    FatalError,
    RateLimit,
    TransientError,
    User,
    WriteItem,
    WriteResult,
)
from runtime.destinations.faults import FaultPlan, InjectedThrottle
from runtime.destinations.sandbox_store import EXTERNAL_ID_KEY, SandboxStore
from runtime.dialects._asgi import (  # DroppedConnection, SyncASGITransport: re-exported
    ASGIEmulator,
    DroppedConnection,
    Response,
    SyncASGITransport,
)
from runtime.dialects._bodies import json_response, multipart_form
from runtime.dialects.salesforce.client import DEFAULT_EXTERNAL_ID_FIELD  # the org setup's
from runtime.dialects.salesforce.sandbox_bulk import BulkJobs
from runtime.schema.model import FieldSchema, FieldType, ObjectSchema, SystemSchema

__all__ = ["SalesforceSandbox", "SyncASGITransport", "DroppedConnection", "KEY_PREFIXES",
           "DEFAULT_EXTERNAL_ID_FIELD", "sf_id", "sf_time"]

MAX_BATCH = 200
PAGE_SIZE = 2000
KEY_PREFIXES = {"Account": "001", "Contact": "003", "Lead": "00Q", "Opportunity": "006",
                "Event": "00U", "Task": "00T", "Note": "002", "Attachment": "00P",
                "ContentVersion": "068", "ContentDocument": "069", "ContentNote": "069",
                "User": "005", "Case": "500", "Campaign": "701"}
_FILES = "Attachments"  # the store's pseudo-object of attachment ids (ContentDocument)
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_SYSTEM_TIMES = ("CreatedDate", "LastModifiedDate", "SystemModstamp")


def _suffix(id15: str) -> str:
    out = ""
    for i in range(3):
        bits = sum(1 << j for j, ch in enumerate(id15[i * 5:i * 5 + 5]) if ch.isupper())
        out += _SUFFIX[bits]
    return out


def sf_id(prefix: str, n: int) -> str:
    """The 18-character id of the n-th record: prefix + pod + base-62 counter + suffix."""
    body = ""
    while n:
        n, r = divmod(n, 62)
        body = _B62[r] + body
    id15 = f"{prefix}Hb{body.rjust(10, '0')}"
    return id15 + _suffix(id15)


def _reprefix(rid: str, prefix: str) -> str:
    id15 = prefix + rid[3:15]
    return id15 + _suffix(id15)


def sf_time(ts: str | None) -> str | None:
    """The store's timestamps as Salesforce writes them: ``2013-05-07T22:07:19.000+0000``."""
    if not ts:
        return None
    dt = datetime.fromisoformat(ts).astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}+0000"


def _custom_prefix(name: str) -> str:
    n = zlib.crc32(name.encode()) % (62 * 62)
    return "a" + _B62[n // 62] + _B62[n % 62]


_ID_SEGMENT = re.compile(r"^(?=.*\d)[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")


def _endpoint(method: str, path: str) -> str:
    """``PATCH /jobs/ingest/{id}``: a request's route with ids and query locators elided."""
    parts = [p for p in re.sub(r"^/services/data/v[\d.]+", "", path).split("/") if p]
    if parts[:1] == ["query"]:
        parts = parts[:1]
    return f"{method} /" + "/".join("{id}" if _ID_SEGMENT.match(p) else p for p in parts)


def _store_ts(iso: str) -> str:
    """An ISO instant in the store's sortable text form (UTC, microseconds)."""
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def _multipart_file(content_type: str, body: bytes) -> bytes | None:
    """The ``file`` part of a multipart/form-data body, or None."""
    form = multipart_form(content_type, body)
    return form.content if form is not None else None


def _request_error(e: dict[str, Any]) -> list[dict[str, Any]]:
    """A collection result's error item as the body of a single-record call refused with it."""
    return [{"message": e["message"], "errorCode": e["statusCode"], "fields": e["fields"]}]


class _HTTPError(Exception):
    def __init__(self, status: int, code: str, message: str, fields: list[str] | None = None):
        super().__init__(message)
        self.status = status
        item: dict[str, Any] = {"message": message, "errorCode": code}
        if fields is not None:
            item["fields"] = fields
        self.body = [item]


def _json(status: int, body: Any) -> Response:
    return json_response(status, body, content_type="application/json;charset=UTF-8")


class SalesforceSandbox(ASGIEmulator):
    """The emulator. ``handle`` is the synchronous core; calling the instance is the ASGI app."""

    def __init__(self, schema: SystemSchema, path: str | Path, *, users: list[User] | None = None,
                 token: str | None = None, api_limit: int = 100_000,
                 faults: FaultPlan | None = None,
                 external_id_field: str = DEFAULT_EXTERNAL_ID_FIELD,
                 store_clock: Callable[[], datetime] | None = None,
                 page_size: int = PAGE_SIZE, clock: Callable[[], datetime] | None = None,
                 bulk_seed: int = 0, api_window: float | None = None,
                 api_clock: Callable[[], float] | None = None,
                 audit_fields: bool = False, api_used: int = 0) -> None:
        self.path = Path(path)
        self.token = token or secrets.token_urlsafe(24)
        self.api_limit = api_limit
        self.api_used = max(0, int(api_used))  # spent elsewhere before this sandbox's requests
        self.faults = faults
        self.external_id_field = external_id_field
        self.page_size = page_size
        self.version = "62.0"
        self.requests = 0
        self.limited = 0
        self._lock = threading.RLock()
        self._store_clock = store_clock
        # "Set Audit Fields upon Record Creation" granted: CreatedDate & co. settable on insert
        self.audit_fields = audit_fields
        # api_window (seconds) makes api_limit a rolling window on api_clock (the 24 h
        # allocation scaled down, for the ceiling benchmark); None: a count since start
        self.api_window = api_window
        self.api_clock = api_clock or time.monotonic
        self._ledger: deque[float] = deque()
        if api_window is not None and self.api_used:
            self._ledger.extend([self.api_clock()] * self.api_used)
        self.clock = clock
        self.calls: Counter[str] = Counter()  # requests by endpoint (tests, benchmarks)
        self._deploys: dict[str, dict[str, Any]] = {}  # deployRequest results by id
        self._set_schema(schema, users=users)
        self.bulk = BulkJobs(self, seed=bulk_seed)

    def _set_schema(self, schema: SystemSchema, *, users: list[User] | None = None) -> None:
        """(Re)open the store over ``self.path`` with ``schema`` (a deploy adds objects)."""
        self._schema = self._prepare(schema)
        self._objects = {o.api_name: o for o in self._schema.objects}
        self._prefix = {name: KEY_PREFIXES.get(name) or _custom_prefix(name)
                        for name in self._objects}
        self._prefix[_FILES] = KEY_PREFIXES["ContentDocument"]
        self._by_prefix = {p: n for n, p in self._prefix.items()
                           if n not in ("ContentNote", "ContentVersion")}
        self._ext = {o.api_name: self.external_id_field if o.field(self.external_id_field)
                     else None for o in self._schema.objects}
        caps = DestinationCapabilities(name="sandbox:salesforce", batch_size=MAX_BATCH,
                                       attachment_limit_bytes=2 * 1024 ** 3,
                                       rate_limit=RateLimit())
        old = getattr(self, "store", None)
        if old is not None:
            old.close()
        self.store = SandboxStore(self._schema, self.path, capabilities=caps, faults=self.faults,
                                  users=users, id_factory=self._new_id, clock=self._store_clock,
                                  allow_audit_fields=self.audit_fields)

    # ------------------------------------------------------------------ schema and ids
    def _prepare(self, schema: SystemSchema) -> SystemSchema:
        schema = schema.model_copy(deep=True)
        for o in schema.objects:
            if o.api_name == "User" or not o.capabilities.createable:
                continue
            o.capabilities.attachments = True  # Files attach to any record
            if o.field(self.external_id_field) is None:
                o.fields.append(FieldSchema(api_name=self.external_id_field, type=FieldType.text,
                                            max_length=255, custom=True, unique=True,
                                            external_id=True, label="fmap External ID"))
        return schema

    def _new_id(self, obj: str) -> str:
        n = self.store._next_counter("salesforce:id")  # noqa: SLF001 (inside the store's tx)
        return sf_id(self._prefix.get(obj) or _custom_prefix(obj), n)

    def schema(self) -> SystemSchema:
        return self._schema

    def object_of(self, rid: str) -> str | None:
        return self._by_prefix.get(rid[:3]) if isinstance(rid, str) and len(rid) in (15, 18) \
            else None

    def close(self) -> None:
        self.store.close()

    def handle(self, method: str, path: str, query: dict[str, list[str]],
               headers: dict[str, str], body: bytes) -> Response:
        """One request -> (status, headers, body). Raises :class:`DroppedConnection`."""
        self.requests += 1
        self.calls[_endpoint(method, path)] += 1
        status, h, out = self._handle(method, path, {k: v[-1] for k, v in query.items()},
                                      headers, body)
        h["Sforce-Limit-Info"] = f"api-usage={self.api_used}/{self.api_limit}"
        return status, h, out

    def _handle(self, method: str, path: str, q: dict[str, str], headers: dict[str, str],
                body: bytes) -> Response:
        try:
            auth = headers.get("authorization", "")
            scheme, _, token = auth.partition(" ")
            if scheme != "Bearer" or not secrets.compare_digest(token.strip(), self.token):
                raise _HTTPError(401, "INVALID_SESSION_ID", "Session expired or invalid")
            m = re.match(r"^/services/data/v(\d+\.\d)(/.*)?$", path)
            if not m:
                raise _HTTPError(404, "NOT_FOUND", "The requested resource does not exist")
            self.version = m.group(1)
            with self._lock:
                if self.api_window is not None:
                    now = self.api_clock()
                    while self._ledger and self._ledger[0] <= now - self.api_window:
                        self._ledger.popleft()
                    self.api_used = len(self._ledger)
                    if self.api_used < self.api_limit:
                        self._ledger.append(now)
                if self.api_used >= self.api_limit:
                    self.limited += 1
                    raise _HTTPError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
                self.api_used += 1
            parts = [p for p in (m.group(2) or "").split("/") if p]
            return self._route(method, parts, q, body, headers)
        except _HTTPError as e:
            return _json(e.status, e.body)
        except TransientError as e:  # the store's injected faults
            if e.maybe_committed:
                raise DroppedConnection(str(e)) from None
            if isinstance(e, InjectedThrottle):
                self.limited += 1
                return _json(403, [{"message": "ConcurrentPerOrgLongTxn Limit exceeded.",
                                    "errorCode": "REQUEST_LIMIT_EXCEEDED"}])
            return _json(503, [{"message": "Server temporarily unavailable",
                                "errorCode": "SERVER_UNAVAILABLE"}])
        except FatalError:
            return _json(403, [{"message": "TotalRequests Limit exceeded.",
                                "errorCode": "REQUEST_LIMIT_EXCEEDED"}])

    def _route(self, method: str, parts: list[str], q: dict[str, str], body: bytes,
               headers: dict[str, str] | None = None) -> Response:
        n = len(parts)
        if parts == ["limits"] and method == "GET":
            return _json(200, {"DailyApiRequests": {"Max": self.api_limit,
                                                    "Remaining": self.api_limit - self.api_used}})
        if parts[:1] == ["query"] and method == "GET":
            if n == 1:
                return self._query(q.get("q") or "", 0)
            token, _, offset = parts[1].rpartition("-")
            try:
                soql = base64.urlsafe_b64decode(token.encode()).decode()
                return self._query(soql, int(offset))
            except (ValueError, UnicodeDecodeError):
                raise _HTTPError(400, "INVALID_QUERY_LOCATOR", "invalid query locator") from None
        if parts[:2] == ["composite", "sobjects"]:
            if n == 2 and method == "POST":
                return self._collection("create", None, None, self._body(body))
            if n == 2 and method == "PATCH":
                return self._collection("update", None, None, self._body(body))
            if n == 4 and method == "PATCH":
                return self._collection("upsert", parts[2], parts[3], self._body(body))
            if n == 2 and method == "DELETE":
                return self._delete([i for i in q.get("ids", "").split(",") if i],
                                    q.get("allOrNone", "false").lower() == "true")
            if n == 3 and method == "GET":
                return self._retrieve(parts[2], q)
        if parts == ["sobjects"] and method == "GET":
            return _json(200, self._describe_global())
        if parts[:1] == ["sobjects"] and n == 3 and method == "GET" and \
                parts[2] in ("describe", "updated", "deleted"):
            if parts[2] == "describe":
                return _json(200, self._describe(self._object(parts[1])))
            return self._delta(parts[1], parts[2], q)
        if parts[:2] == ["metadata", "deployRequest"]:
            return self._deploy(method, parts[2:], headers or {}, body)
        if parts[:2] == ["jobs", "ingest"]:
            return self.bulk.route(method, parts[2:], body)
        if parts[:1] == ["sobjects"] and n >= 2:
            obj = parts[1]
            if n == 2 and method == "POST":
                if obj == "ContentVersion":
                    return self._content_version(self._body(body))
                return self._single_create(obj, self._body(body))
            if n == 3 and method == "GET":
                return self._retrieve(obj, {"ids": parts[2], "fields": q.get("fields", "")},
                                      single=True)
            if n == 3 and method == "DELETE":
                status, _, out = self._delete([parts[2]], False)
                res = json.loads(out)[0]
                if res["success"]:
                    return 204, {}, b""
                e = res["errors"][0]
                return _json(404, [{"message": e["message"], "errorCode": e["statusCode"]}])
            if n == 4 and method == "PATCH":
                return self._single_upsert(obj, parts[2], parts[3], self._body(body))
        raise _HTTPError(404, "NOT_FOUND", "The requested resource does not exist")

    @staticmethod
    def _body(body: bytes) -> Any:
        try:
            return json.loads(body or b"null")
        except ValueError:
            raise _HTTPError(400, "JSON_PARSER_ERROR", "The request body is not JSON") from None

    def _object(self, name: str) -> ObjectSchema:
        o = self._objects.get(name)
        if o is None:
            raise _HTTPError(404, "NOT_FOUND", "The requested resource does not exist")
        return o

    # ------------------------------------------------------------------ metadata
    _SF_TYPES = {FieldType.id: "id", FieldType.text: "string", FieldType.textarea: "textarea",
                 FieldType.email: "email", FieldType.phone: "phone", FieldType.url: "url",
                 FieldType.picklist: "picklist", FieldType.multipicklist: "multipicklist",
                 FieldType.boolean: "boolean", FieldType.currency: "currency",
                 FieldType.decimal: "double", FieldType.percent: "percent",
                 FieldType.integer: "int", FieldType.date: "date",
                 FieldType.datetime: "datetime", FieldType.lookup: "reference",
                 FieldType.owner: "reference", FieldType.file: "base64"}

    def _urls(self, name: str) -> dict[str, str]:
        base = f"/services/data/v{self.version}/sobjects/{name}"
        return {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"}

    def _summary(self, o: ObjectSchema) -> dict[str, Any]:
        """An object as describeGlobal lists it and as its describe begins (no fields, no urls)."""
        name = o.api_name
        return {"name": name, "label": o.label or name,
                "labelPlural": o.plural_label or (o.label or name) + "s",
                "keyPrefix": self._prefix.get(name), "custom": name.endswith("__c"),
                "createable": o.capabilities.createable, "updateable": o.capabilities.updateable,
                "deletable": o.capabilities.deletable, "queryable": True, "searchable": True,
                "layoutable": True}

    def _describe_global(self) -> dict[str, Any]:
        """``GET /sobjects`` (describeGlobal): every object, without fields."""
        out = [{**self._summary(self._objects[name]), "urls": self._urls(name)}
               for name in sorted(self._objects)]
        return {"encoding": "UTF-8", "maxBatchSize": MAX_BATCH, "sobjects": out}

    def _field_describe(self, o: ObjectSchema, f: FieldSchema) -> dict[str, Any]:
        sf_type = str(f.vendor.get("type") or self._SF_TYPES.get(f.type, "string"))
        if f.type == FieldType.id:
            sf_type = "id"
        createable = not f.read_only and f.type != FieldType.id
        updateable = createable and not f.create_only
        nillable = not f.required and f.type not in (FieldType.boolean, FieldType.id)
        refs = list(f.lookup_targets)
        if f.type == FieldType.owner:  # the org's users ("Users" is the generic spelling)
            refs = list(dict.fromkeys("User" if r == "Users" else r for r in refs)) or ["User"]
        rel = f.vendor.get("relationshipName")
        if rel is None and sf_type == "reference":
            rel = f.api_name[:-3] + "__r" if f.api_name.endswith("__c") else \
                f.api_name.removesuffix("Id")
        length = f.max_length or (18 if sf_type in ("id", "reference") else 0)
        return {
            "name": f.api_name, "label": f.label or f.api_name, "type": sf_type,
            "length": length, "byteLength": length * 3, "precision": f.precision or 0,
            "scale": f.scale or 0, "digits": 0, "nillable": nillable,
            "defaultedOnCreate": f.type in (FieldType.id, FieldType.boolean) or f.audit
            or f.api_name == "OwnerId",
            "createable": createable, "updateable": updateable,
            "calculated": bool(f.vendor.get("calculated")),
            "autoNumber": bool(f.vendor.get("autoNumber")),
            "custom": f.api_name.endswith("__c"), "externalId": f.external_id,
            "unique": f.unique, "caseSensitive": False,
            "idLookup": f.type == FieldType.id or f.external_id,
            "nameField": bool(f.vendor.get("nameField")) or f.api_name == "Name",
            "picklistValues": [{"value": v, "label": (f.vendor.get("labels") or {}).get(v, v),
                                "active": True,
                                "defaultValue": f.vendor.get("default_value") == v,
                                "validFor": None} for v in f.picklist_values],
            "restrictedPicklist": bool(f.vendor.get("restricted", bool(f.picklist_values))),
            "dependentPicklist": bool(f.vendor.get("controllerName")),
            "controllerName": f.vendor.get("controllerName"),
            "referenceTo": refs if sf_type == "reference" else [],
            "relationshipName": rel if sf_type == "reference" else None,
            "soapType": "tns:ID" if sf_type in ("id", "reference") else f"xsd:{sf_type}",
            "filterable": True, "sortable": True, "groupable": True,
        }

    def _describe(self, o: ObjectSchema) -> dict[str, Any]:
        """``GET /sobjects/{o}/describe``: the shape of the documented example (name, label,
        keyPrefix, flags, fields[], childRelationships[], urls), with the system fields every
        record has (Id, CreatedDate, LastModifiedDate, SystemModstamp, IsDeleted)."""
        fields = [self._field_describe(o, f) for f in o.fields]
        names = {f["name"] for f in fields}
        if "Id" not in names and "id" not in names:
            fields.insert(0, self._field_describe(o, FieldSchema(api_name="Id", type=FieldType.id,
                                                                 read_only=True)))
        for f in fields:
            if f["name"] == "id":
                f["name"] = "Id"
        for sys_name, ftype in (("CreatedDate", FieldType.datetime),
                                ("LastModifiedDate", FieldType.datetime),
                                ("SystemModstamp", FieldType.datetime),
                                ("IsDeleted", FieldType.boolean)):
            if sys_name not in names:
                fields.append(self._field_describe(o, FieldSchema(api_name=sys_name, type=ftype,
                                                                  read_only=True)))
        children = [{"childSObject": c, "field": fld, "relationshipName": rel,
                     "cascadeDelete": False, "deprecatedAndHidden": False}
                    for c, fld, rel in (("Attachment", "ParentId", "Attachments"),
                                        ("Note", "ParentId", "Notes"),
                                        ("ContentDocumentLink", "LinkedEntityId",
                                         "ContentDocumentLinks"))]
        for other in sorted(self._objects.values(), key=lambda x: x.api_name):
            for f in other.fields:
                if f.type == FieldType.lookup and o.api_name in f.lookup_targets:
                    children.append({"childSObject": other.api_name, "field": f.api_name,
                                     "relationshipName": None, "cascadeDelete": False,
                                     "deprecatedAndHidden": False})
        return {**self._summary(o), "fields": fields, "childRelationships": children,
                "recordTypeInfos": [], "urls": self._urls(o.api_name)}

    def _deploy(self, method: str, rest: list[str], headers: dict[str, str],
                body: bytes) -> Response:
        """The Metadata REST ``deployRequest``: ``POST`` multipart/form-data with a ``json`` part
        (deployOptions) and a ``file`` part (the package zip) deploys the package's objects and
        fields; ``GET deployRequest/{id}`` reads the result. Deploys finish at once here."""
        if method == "GET" and len(rest) == 1:
            result = self._deploys.get(rest[0])
            if result is None:
                raise _HTTPError(404, "NOT_FOUND", "The requested resource does not exist")
            return _json(200, result)
        if method != "POST" or rest:
            raise _HTTPError(404, "NOT_FOUND", "The requested resource does not exist")
        zipped = _multipart_file(headers.get("content-type", ""), body)
        if zipped is None:
            raise _HTTPError(400, "INVALID_MULTIPART_REQUEST", "a multipart/form-data body "
                             "with a 'file' part (the package zip) is required")
        import io
        import zipfile

        from runtime.dialects.salesforce.package import SchemaPackageError, read_package
        from runtime.schema.changes import apply_changes

        try:
            with zipfile.ZipFile(io.BytesIO(zipped)) as zf:
                files = {n: zf.read(n) for n in zf.namelist() if not n.endswith("/")}
            changes = read_package(files)
        except (zipfile.BadZipFile, SchemaPackageError) as exc:
            raise _HTTPError(400, "INVALID_PACKAGE", str(exc)[:300]) from None
        from runtime.dialects import get_dialect

        with self._lock:
            self._set_schema(apply_changes(self._schema, changes, get_dialect("salesforce")))
            did = sf_id("0Af", len(self._deploys) + 1)
            result = {"id": did, "deployResult": {
                "id": did, "status": "Succeeded", "done": True, "success": True,
                "numberComponentsDeployed": len(changes), "numberComponentErrors": 0,
                "numberComponentsTotal": len(changes), "details": {"componentFailures": []}}}
            self._deploys[did] = result
        return _json(201, result)

    def now(self) -> datetime:
        """The org's current time: ``clock`` if given, else the store's (wall clock when it has
        one, else the latest write time the store's counter clock reached)."""
        if self.clock is not None:
            return self.clock()
        if self._store_clock is not None:
            return self._store_clock()
        with self.store._lock:  # noqa: SLF001
            row = self.store._db.execute(  # noqa: SLF001
                "SELECT MAX(t) FROM (SELECT MAX(modified_at) t FROM records UNION ALL "
                "SELECT MAX(deleted_at) t FROM recycle_bin)").fetchone()
        return datetime.fromisoformat(row[0]) if row and row[0] else datetime.now(UTC)

    def _delta(self, obj_name: str, kind: str, q: dict[str, str]) -> Response:
        """``GET /sobjects/{o}/updated|deleted/?start=&end=``: seconds are truncated (the API
        works in whole minutes), start must be within the last 30 days and before end, and
        end may not be in the future (it is capped at now)."""
        self._object(obj_name)

        def parse(name: str) -> datetime:
            raw = q.get(name)
            if not raw:
                raise _HTTPError(400, "MISSING_ARGUMENT", f"{name} is required")
            try:
                dt = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "+"))
            except ValueError:
                raise _HTTPError(400, "INVALID_REPLICATION_DATE",
                                 f"{name}: invalid date format: {raw[:40]}") from None
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=UTC)
            return dt.astimezone(UTC).replace(second=0, microsecond=0)

        start, end = parse("start"), parse("end")
        now = self.now().astimezone(UTC)
        earliest = (now - timedelta(days=30)).replace(second=0, microsecond=0)
        if start < earliest:
            raise _HTTPError(400, "INVALID_REPLICATION_DATE",
                             "startDate cannot be more than 30 days ago")
        if end <= start:
            raise _HTTPError(400, "INVALID_REPLICATION_DATE", "endDate must chronologically "
                             "follow the startDate")
        end = min(end, now.replace(second=0, microsecond=0))
        lo, hi = start.isoformat(), end.isoformat()
        db = self.store._db  # noqa: SLF001
        with self.store._lock:  # noqa: SLF001
            if kind == "updated":
                rows = db.execute("SELECT id FROM records WHERE obj=? AND modified_at >= ? AND "
                                  "modified_at < ? ORDER BY id",
                                  (obj_name, _store_ts(lo), _store_ts(hi))).fetchall()
                return _json(200, {"ids": [r[0] for r in rows],
                                   "latestDateCovered": sf_time(hi)})
            rows = db.execute("SELECT id, deleted_at FROM recycle_bin WHERE obj=? AND "
                              "deleted_at >= ? AND deleted_at < ? ORDER BY deleted_at, id",
                              (obj_name, _store_ts(lo), _store_ts(hi))).fetchall()
        return _json(200, {"deletedRecords": [{"id": r, "deletedDate": sf_time(t)}
                                              for r, t in rows],
                           "earliestDateAvailable": sf_time(earliest.isoformat()),
                           "latestDateCovered": sf_time(hi)})

    # ------------------------------------------------------------------ writes
    def _to_item(self, obj: ObjectSchema, i: int, rec: dict[str, Any], op: str) -> WriteItem:
        ext_field = self._ext[obj.api_name]
        values: dict[str, Any] = {}
        ext = rid = None
        for k, v in rec.items():
            if k == "attributes":
                continue
            if k in ("id", "Id"):
                rid = v
                continue
            f = obj.field(k)
            if f is None:
                raise _HTTPError(400, "INVALID_FIELD",
                                 f"No such column '{k}' on sobject of type {obj.api_name}")
            if k == ext_field:
                ext = None if v in (None, "") else str(v)
                continue
            if f.type == FieldType.multipicklist and isinstance(v, str):
                v = [x for x in v.split(";") if x]
            values[k] = v
        return WriteItem(key=str(i), external_id=ext, record=values, dest_id=rid)

    def _collection(self, op: str, obj_name: str | None, ext_field: str | None,
                    data: Any) -> Response:
        if not isinstance(data, dict) or not isinstance(data.get("records"), list):
            raise _HTTPError(400, "JSON_PARSER_ERROR", "expected {allOrNone, records}")
        records = data["records"]
        all_or_none = data.get("allOrNone") is True
        if len(records) > MAX_BATCH:
            raise _HTTPError(400, "EXCEEDED_ID_LIMIT", f"record limit exceeded ({MAX_BATCH})")
        if obj_name is not None:
            self._object(obj_name)
            if ext_field != self._ext.get(obj_name):
                raise _HTTPError(404, "NOT_FOUND", "Provided external ID field does not exist or "
                                 f"is not accessible: {ext_field}")
        # chunks of consecutive records of one type
        groups: list[tuple[str, list[tuple[int, dict]]]] = []
        for i, rec in enumerate(records):
            if not isinstance(rec, dict):
                raise _HTTPError(400, "JSON_PARSER_ERROR", "a record is not an object")
            t = obj_name or (rec.get("attributes") or {}).get("type")
            if not isinstance(t, str) or t not in self._objects:
                raise _HTTPError(400, "INVALID_TYPE", f"sObject type '{t}' is not supported.")
            if groups and groups[-1][0] == t:
                groups[-1][1].append((i, rec))
            else:
                groups.append((t, [(i, rec)]))
        if len(groups) > 10:
            raise _HTTPError(400, "INVALID_BATCH_REQUEST", "too many chunks (at most 10)")
        if all_or_none and op != "create":
            raise _HTTPError(400, "INVALID_BATCH_REQUEST",
                             "allOrNone=true is only emulated for creates")
        prepared = [(t, [(i, self._to_item(self._objects[t], i, rec, op)) for i, rec in grp])
                    for t, grp in groups]
        out: dict[int, dict[str, Any]] = {}
        created: list[tuple[str, str]] = []
        with self._lock:
            for t, grp in prepared:
                items = [it for _, it in grp]
                pre = {r.key: r for r in self._misaddressed(t, items)} if op == "update" else {}
                send = [it for it in items if it.key not in pre]
                if op == "create":
                    results = self.store.create(t, send) if send else []
                elif op == "update":
                    results = self.store.update(t, send) if send else []
                else:
                    results = self.store.upsert(t, send) if send else []
                by_key = {r.key: r for r in [*results, *pre.values()]}
                for i, it in grp:
                    r = by_key[it.key]
                    out[i] = self._result(t, op, r)
                    if r.ok and op == "create":
                        created.append((t, str(r.dest_id)))
            if all_or_none and any(not x["success"] for x in out.values()):
                self._hard_delete(created)
                for x in out.values():
                    if x["success"]:
                        x["success"] = False
                        x["errors"] = [{"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                                        "message": "Record rolled back because not all records "
                                        "were valid and the request was using AllOrNone header",
                                        "fields": []}]
        return _json(200, [out[i] for i in range(len(records))])

    def _misaddressed(self, obj: str, items: list[WriteItem]) -> list[WriteResult]:
        """``MALFORMED_ID`` results for the updates among ``items`` whose id is missing or not an
        ``obj`` id, as Salesforce answers them (REST collections and Bulk jobs alike)."""
        return [WriteResult(key=it.key, ok=False, code="MALFORMED_ID", field="Id", error="bad id")
                for it in items if not it.dest_id or self.object_of(str(it.dest_id)) != obj]

    def _hard_delete(self, created: list[tuple[str, str]]) -> None:
        db = self.store._db  # noqa: SLF001 (allOrNone: undo this call's creates)
        with self.store._lock, self.store._tx():  # noqa: SLF001
            for obj, rid in created:
                db.execute("DELETE FROM records WHERE obj=? AND id=?", (obj, rid))
                db.execute("DELETE FROM uniques WHERE obj=? AND id=?", (obj, rid))

    def _result(self, obj: str, op: str, r: WriteResult) -> dict[str, Any]:
        if r.ok:
            item: dict[str, Any] = {"id": r.dest_id, "success": True, "errors": []}
            if op == "upsert":
                item["created"] = r.created is not False
            return item
        field = self._ext.get(obj) if r.field == EXTERNAL_ID_KEY else r.field
        o = self._objects.get(obj)
        f = o.field(field) if o is not None and field else None
        label = (f.label if f is not None and f.label else field) or ""
        code, message = r.code or "UNKNOWN_EXCEPTION", r.error or ""
        if code == "REQUIRED_FIELD_MISSING":
            missing = re.search(r"\[(.*)\]", message)
            names = missing.group(1).split(", ") if missing else [field or ""]
            return self._err("REQUIRED_FIELD_MISSING",
                             f"Required fields are missing: [{', '.join(names)}]", names)
        if code == "INVALID_PICKLIST":
            return self._err("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                             f"{label}: bad value for restricted picklist field", [field])
        if code == "STRING_TOO_LONG":
            return self._err("STRING_TOO_LONG", f"{label}: data value too large "
                             f"(max length={f.max_length if f else '?'})", [field])
        if code == "DUPLICATE_VALUE":
            m = re.search(r"record (\S+)", message)
            return self._err("DUPLICATE_VALUE", f"duplicate value found: {field} duplicates "
                             f"value on record with id: {m.group(1) if m else ''}", [field])
        if code == "INVALID_REFERENCE":
            return self._err("INVALID_CROSS_REFERENCE_KEY",
                             f"{label}: id value of incorrect type or not found", [field])
        if code == "INVALID_TYPE":
            if f is not None and f.type == FieldType.email:
                return self._err("INVALID_EMAIL_ADDRESS",
                                 f"{label}: invalid email address", [field])
            return self._err("INVALID_TYPE_ON_FIELD_IN_RECORD",
                             f"{label}: value not of required type", [field])
        if code == "READ_ONLY_FIELD":
            return self._err("INVALID_FIELD_FOR_INSERT_UPDATE", "Unable to create/update "
                             f"fields: {field}. Please check the security settings of this field "
                             "and verify that it is read/write for your profile or permission "
                             "set.", [field])
        if code in ("NOT_FOUND", "MALFORMED_ID"):
            return self._err("MALFORMED_ID" if code == "MALFORMED_ID" else
                             "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["Id"])
        if code == "ENTITY_IS_DELETED":
            return self._err("ENTITY_IS_DELETED", "entity is deleted", [])
        if code == "INJECTED":
            return self._err("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this "
                             "record or 1 records", [])
        if code == "EXTERNAL_ID_MISSING":
            return self._err("MISSING_ARGUMENT", "External ID value is missing", [field or ""])
        if code == "OPERATION_NOT_ALLOWED":
            return self._err("INSUFFICIENT_ACCESS_OR_READONLY", "insufficient access rights on "
                             "object id", [])
        if code == "INVALID_FIELD":
            return self._err("INVALID_FIELD", f"No such column '{field}' on sobject of type "
                             f"{obj}", [field])
        return self._err(code, message, [field] if field else [])

    @staticmethod
    def _err(code: str, message: str, fields: list) -> dict[str, Any]:
        return {"success": False, "errors": [{"statusCode": code, "message": message,
                                              "fields": [f for f in fields if f]}]}

    def _single_create(self, obj_name: str, data: Any) -> Response:
        self._object(obj_name)
        if not isinstance(data, dict):
            raise _HTTPError(400, "JSON_PARSER_ERROR", "expected an object")
        res = json.loads(self._collection("create", None, None, {"records": [
            {**data, "attributes": {"type": obj_name}}]})[2])[0]
        if res["success"]:
            return _json(201, res)
        return _json(400, _request_error(res["errors"][0]))

    def _single_upsert(self, obj_name: str, field: str, value: str, data: Any) -> Response:
        self._object(obj_name)
        if not isinstance(data, dict):
            raise _HTTPError(400, "JSON_PARSER_ERROR", "expected an object")
        res = json.loads(self._collection("upsert", obj_name, field, {"records": [
            {**data, field: value}]})[2])[0]
        if res["success"]:
            return _json(201 if res["created"] else 200,
                         {"id": res["id"], "success": True, "errors": [],
                          "created": res["created"]})
        return _json(400, _request_error(res["errors"][0]))

    def _delete(self, ids: list[str], all_or_none: bool) -> Response:
        if not ids:
            raise _HTTPError(400, "MISSING_ARGUMENT", "ids parameter is required")
        if len(ids) > MAX_BATCH:
            raise _HTTPError(400, "EXCEEDED_ID_LIMIT", f"record limit exceeded ({MAX_BATCH})")
        if all_or_none:
            raise _HTTPError(400, "INVALID_BATCH_REQUEST",
                             "allOrNone=true is only emulated for creates")
        by_obj: dict[str, list[str]] = {}
        for rid in dict.fromkeys(ids):
            obj = self.object_of(rid)
            if obj is not None:
                by_obj.setdefault(obj, []).append(rid)
        results: dict[str, WriteResult] = {}
        with self._lock:
            for obj, group in by_obj.items():
                rs = self.store.delete_attachments(group) if obj == _FILES else \
                    self.store.delete(obj, group)
                results.update({r.key: r for r in rs})
        out = []
        for rid in ids:
            r = results.get(rid)
            if r is None:
                out.append(self._err("MALFORMED_ID", f"malformed id {rid}", ["Id"]))
            elif r.ok:
                out.append({"id": rid, "success": True, "errors": []})
            else:
                out.append({"id": rid, **self._result(self.object_of(rid) or "", "delete", r)})
        return _json(200, out)

    # ------------------------------------------------------------------ files
    def _content_version(self, data: Any) -> Response:
        if not isinstance(data, dict):
            raise _HTTPError(400, "JSON_PARSER_ERROR", "expected an object")
        for name in ("Title", "PathOnClient", "VersionData"):
            if not data.get(name):
                raise _HTTPError(400, "REQUIRED_FIELD_MISSING",
                                 f"Required fields are missing: [{name}]", [name])
        parent = data.get("FirstPublishLocationId")
        obj = self.object_of(str(parent)) if parent else None
        if obj is None or obj == _FILES:
            raise _HTTPError(400, "FIELD_INTEGRITY_EXCEPTION", "First Publish Location ID: id "
                             "value of incorrect type", ["FirstPublishLocationId"])
        try:
            content = base64.b64decode(str(data["VersionData"]), validate=True)
        except ValueError:
            raise _HTTPError(400, "JSON_PARSER_ERROR", "VersionData is not base64") from None
        key = str(data.get("Description") or secrets.token_hex(8))
        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp) / "upload.bin"
            p.write_bytes(content)
            with self._lock:
                r = self.store.upload_attachment(obj, str(parent), str(data["Title"]), p, key=key)
        if not r.ok:
            e = self._result(obj, "create", r)["errors"][0]
            if r.code == "NOT_FOUND":
                e = {"statusCode": "FIELD_INTEGRITY_EXCEPTION", "message": "First Publish "
                     "Location ID: id value of incorrect type", "fields": ["FirstPublishLocationId"]}
            return _json(400, _request_error(e))
        return _json(201, {"id": _reprefix(str(r.dest_id), KEY_PREFIXES["ContentVersion"]),
                           "success": True, "errors": []})

    def _content_versions(self) -> list[dict[str, Any]]:
        with self.store._lock:  # noqa: SLF001
            rows = self.store._db.execute(  # noqa: SLF001
                "SELECT a.id, a.record_id, a.file_name, a.size, a.key, a.created_at "
                "FROM attachments a ORDER BY a.id").fetchall()
        return [{"Id": _reprefix(aid, KEY_PREFIXES["ContentVersion"]), "ContentDocumentId": aid,
                 "FirstPublishLocationId": rid, "Title": name, "PathOnClient": name,
                 "ContentSize": size, "Description": key, "CreatedDate": sf_time(created),
                 "SystemModstamp": sf_time(created)}
                for aid, rid, name, size, key, created in rows]

    # ------------------------------------------------------------------ reads
    def _render(self, obj: str, rec: dict[str, Any]) -> dict[str, Any]:
        o = self._objects[obj]
        out: dict[str, Any] = {"Id": rec["id"]}
        for f in o.fields:
            if f.type == FieldType.id:
                continue
            v = rec.get(f.api_name)
            if f.type == FieldType.multipicklist and isinstance(v, list):
                v = ";".join(v)
            out[f.api_name] = v
        ext = self._ext.get(obj)
        if ext:
            out[ext] = rec.get(EXTERNAL_ID_KEY)
        # audit fields set on insert (with the permission) win over the system's own times
        out["CreatedDate"] = sf_time(rec.get("CreatedDate") or rec.get("$created_at"))
        out["LastModifiedDate"] = sf_time(rec.get("LastModifiedDate") or rec.get("$modified_at"))
        out["SystemModstamp"] = sf_time(rec.get("$modified_at"))
        out["IsDeleted"] = False
        return out

    def _attrs(self, obj: str, rid: str) -> dict[str, str]:
        return {"type": obj, "url": f"/services/data/v{self.version}/sobjects/{obj}/{rid}"}

    def _retrieve(self, obj_name: str, q: dict[str, str], *, single: bool = False) -> Response:
        self._object(obj_name)
        ids = [i for i in q.get("ids", "").split(",") if i]
        fields = [f for f in q.get("fields", "").split(",") if f]
        if not ids or (not fields and not single):
            raise _HTTPError(400, "MISSING_ARGUMENT", "ids and fields are required")
        if len(ids) > 2000:
            raise _HTTPError(400, "EXCEEDED_ID_LIMIT", "too many ids")
        with self._lock:
            found = self.store.get(obj_name, ids)
        out: list[Any] = []
        for rid in ids:
            rec = found.get(rid)
            if rec is None:
                out.append(None)
                continue
            full = self._render(obj_name, rec)
            for f in fields:
                if f not in full:
                    raise _HTTPError(400, "INVALID_FIELD",
                                     f"No such column '{f}' on entity '{obj_name}'")
            row = {"attributes": self._attrs(obj_name, rid)}
            row.update({k: full[k] for k in (["Id", *fields] if fields else full)})
            out.append(row)
        if single:
            if out[0] is None:
                raise _HTTPError(404, "NOT_FOUND", "The requested resource does not exist")
            return _json(200, out[0])
        return _json(200, out)

    _SOQL = re.compile(r"^\s*SELECT\s+(?P<cols>.+?)\s+FROM\s+(?P<obj>\w+)"
                       r"(?:\s+WHERE\s+(?P<where>.+?))?"
                       r"(?:\s+ORDER\s+BY\s+(?P<order>\w+)(?:\s+(?P<dir>ASC|DESC))?)?"
                       r"(?:\s+LIMIT\s+(?P<limit>\d+))?(?:\s+OFFSET\s+(?P<off>\d+))?\s*$",
                       re.IGNORECASE | re.DOTALL)
    _STR = r"'(?:[^'\\]|\\.)*'"
    _COND = re.compile(rf"\s*(?P<f>\w+)\s*(?P<op>!=|>=|<=|=|<|>|\bIN\b)\s*"
                       rf"(?P<v>\(\s*{_STR}(?:\s*,\s*{_STR})*\s*\)|{_STR}|[\w:.+-]+)\s*",
                       re.IGNORECASE)

    @classmethod
    def _literal(cls, raw: str) -> Any:
        if raw.startswith("'"):
            return re.sub(r"\\(.)", r"\1", raw[1:-1])
        low = raw.lower()
        if low in ("true", "false"):
            return low == "true"
        if low == "null":
            return None
        return raw

    def _conditions(self, where: str | None) -> list[tuple[str, str, Any]]:
        conds: list[tuple[str, str, Any]] = []
        pos, text = 0, where or ""
        while pos < len(text):
            m = self._COND.match(text, pos)
            if not m:
                raise _HTTPError(400, "MALFORMED_QUERY", "unexpected token in WHERE (the "
                                 "sandbox supports AND-ed comparisons and IN lists)")
            v = m.group("v")
            if m.group("op").upper() == "IN":
                vals = [self._literal(s) for s in re.findall(self._STR, v)]
                conds.append((m.group("f"), "IN", vals))
            else:
                conds.append((m.group("f"), m.group("op"), self._literal(v)))
            pos = m.end()
            a = re.match(r"AND\b\s*", text[pos:], re.IGNORECASE)
            if a:
                pos += a.end()
            elif pos < len(text):
                raise _HTTPError(400, "MALFORMED_QUERY", "only AND is supported in WHERE")
        return conds

    @staticmethod
    def _match(value: Any, op: str, want: Any) -> bool:
        if op == "IN":
            return value in want
        if op == "=":
            return value == want
        if op == "!=":
            return value != want
        if value is None or want is None:
            return False
        try:
            a = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            b = datetime.fromisoformat(str(want).replace("Z", "+00:00"))
        except ValueError:
            a, b = value, want
        try:
            return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
        except TypeError:
            return False

    def _query(self, soql: str, offset: int) -> Response:
        m = self._SOQL.match(soql)
        if not m:
            raise _HTTPError(400, "MALFORMED_QUERY", "unexpected token: the sandbox supports "
                             "SELECT ... FROM ... [WHERE] [ORDER BY] [LIMIT] [OFFSET]")
        obj = m.group("obj")
        cols = [c.strip() for c in m.group("cols").split(",")]
        conds = self._conditions(m.group("where"))
        rows = self._rows(obj, conds)
        for f, _, _ in conds:
            if rows and f not in rows[0]:
                raise _HTTPError(400, "INVALID_FIELD", f"No such column '{f}' on entity '{obj}'")
        rows = [r for r in rows if all(self._match(r.get(f), op, v) for f, op, v in conds)]
        order = m.group("order") or "Id"
        rows.sort(key=lambda r: (r.get(order) is None, str(r.get(order) or "")),
                  reverse=(m.group("dir") or "").upper() == "DESC")
        rows = rows[int(m.group("off") or 0):]
        if m.group("limit"):
            rows = rows[:int(m.group("limit"))]
        if [c.upper() for c in cols] == ["COUNT()"]:
            return _json(200, {"totalSize": len(rows), "done": True, "records": []})
        if rows:
            for c in cols:
                if c not in rows[0]:
                    raise _HTTPError(400, "INVALID_FIELD",
                                     f"No such column '{c}' on entity '{obj}'")
        page = rows[offset:offset + self.page_size]
        out: dict[str, Any] = {"totalSize": len(rows),
                               "done": offset + self.page_size >= len(rows),
                               "records": [{"attributes": self._attrs(obj, r["Id"]),
                                            **{c: r.get(c) for c in cols}} for r in page]}
        if not out["done"]:
            token = base64.urlsafe_b64encode(soql.encode()).decode()
            out["nextRecordsUrl"] = (f"/services/data/v{self.version}/query/"
                                     f"{token}-{offset + self.page_size}")
        return _json(200, out)

    def _rows(self, obj: str, conds: list[tuple[str, str, Any]]) -> list[dict[str, Any]]:
        if obj == "User":
            return [{"Id": u.id, "Email": u.email, "Username": u.email, "Name": u.name,
                     "IsActive": u.active} for u in self.store.list_users()]
        if obj == "ContentVersion":
            return self._content_versions()
        if obj not in self._objects:
            raise _HTTPError(400, "INVALID_TYPE", f"sObject type '{obj}' is not supported. If "
                             "you are attempting to use a custom object, be sure to append the "
                             "'__c' after the entity name.")
        ext = self._ext.get(obj)
        with self._lock:
            in_ext = [v for f, op, v in conds if f == ext and op in ("IN", "=")]
            if in_ext:  # an indexed lookup, as Salesforce does for external ids
                vals = in_ext[0] if isinstance(in_ext[0], list) else [in_ext[0]]
                found = self.store.find_by_external_id(obj, [v for v in vals if isinstance(v, str)])
                recs = self.store.get(obj, list(found.values())).values()
            else:
                recs = self.store.list_records(obj)
            return [self._render(obj, r) for r in recs]
