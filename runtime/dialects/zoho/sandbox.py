"""A local Zoho CRM v8 emulator: Zoho's HTTP API in front of the generic :class:`SandboxStore`.

It is a plain ASGI application (no framework, the shared plumbing of
:mod:`runtime.dialects._asgi`), served two ways:

- **in process**: :class:`SyncASGITransport` lets the synchronous :class:`ZohoClient` speak to it
  (an app that raises :class:`DroppedConnection`, how the sandbox emulates a dropped connection,
  surfaces as ``httpx.RemoteProtocolError``, as a real server closing the socket would).
- **on loopback**: ``fmap sandbox serve --dialect zoho`` runs the same app under uvicorn on
  127.0.0.1 (the dropped connection becomes uvicorn's bare non-JSON 500).

What it reproduces (API_NOTES.md sections 1 and 6): ``{"data": [...]}`` envelopes with one result
per record in request order, HTTP 201 / 207 (mixed) / 400 (all failed); ``INVALID_DATA`` with
``details.api_name`` + ``json_path`` (``expected_data_type``, ``maximum_length`` when they apply),
``MANDATORY_NOT_FOUND``, ``DUPLICATE_DATA`` with ``duplicate_record``; whole-request errors as a
top-level object (``INVALID_MODULE``, ``LIMIT_EXCEEDED``, ``INVALID_TOKEN`` with 401); 19-digit
string ids; ISO timestamps with an offset; the recycle bin; users; notes (``Parent_Id`` with its
module); attachments (multipart, 100 MB, no ``.exe``); COQL (a subset: ``select ... from M where
F in (...) / F = '...' [and ...] [limit n [offset m]]``); custom modules and fields through the
settings APIs (kept in ``<db>.zoho-schema.json`` so a served org survives a restart); credits on a
rolling window and concurrency per edition (429 ``TOO_MANY_REQUESTS`` with ``details.retry_after``
and ``X-API-CREDITS-REMAINING``); and the store's injectable faults (a :class:`FaultPlan`):
throttles become 429s, batch failures 500 ``INTERNAL_ERROR``, timeouts and lost responses a
dropped connection, injected record errors ``RECORD_LOCKED``.

The external id lives in a field (``Source_System_ID`` by default): the sandbox keeps it in the
store's external-id column, so upsert with ``duplicate_check_fields=[that field]`` matches on it.
Messages come from the v8 spec's ``API_Exception.message`` enum where the spec has one.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from runtime.destinations.base import FatalError, TransientError, User, WriteItem, WriteResult
from runtime.destinations.faults import FaultPlan, InjectedThrottle
from runtime.destinations.sandbox_store import EXTERNAL_ID_KEY, SandboxStore
from runtime.dialects._asgi import (  # DroppedConnection, SyncASGITransport: re-exported
    ASGIEmulator,
    DroppedConnection,
    Response,
    SyncASGITransport,
)
from runtime.dialects._bodies import BadBody, json_object, json_response, multipart_form
from runtime.dialects.zoho.capabilities import ATTACHMENT_LIMIT_BYTES as ATTACHMENT_LIMIT
from runtime.dialects.zoho.capabilities import BATCH_SIZE as MAX_BATCH
from runtime.dialects.zoho.capabilities import CUSTOM_NAME_MAX_LENGTH
from runtime.dialects.zoho.metadata import DATA_TYPES as _ZOHO_DATA_TYPES
from runtime.dialects.zoho.ratelimit import CreditLedger, Tier, coql_cost, write_cost
from runtime.schema.changes import field_from_change
from runtime.schema.model import (
    FieldSchema,
    FieldType,
    ObjectCapabilities,
    ObjectSchema,
    SystemSchema,
)

__all__ = ["ZohoSandbox", "SyncASGITransport", "DEFAULT_EXTERNAL_ID_FIELD", "ORG_ID_PREFIX",
           "DroppedConnection"]

_log = logging.getLogger(__name__)
DEFAULT_EXTERNAL_ID_FIELD = "Source_System_ID"
ORG_ID_PREFIX = "5725767000000"  # 13 digits + a 6-digit sequence = 19-digit ids, as Zoho's
_API = "/crm/v8"
_FROM_ZOHO_TYPES = {v: k for k, v in _ZOHO_DATA_TYPES.items() if k != FieldType.id}
_FROM_ZOHO_TYPES.update({"bigint": FieldType.integer, "ownerlookup": FieldType.owner})


class _HTTPError(Exception):
    def __init__(self, status: int, code: str, message: str, details: dict | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"code": code, "details": details or {}, "message": message,
                     "status": "error"}
        self.headers = headers or {}


_json = partial(json_response, content_type="application/json;charset=UTF-8")


def _iso(ts: str | None) -> str | None:
    """The store's UTC timestamps as Zoho writes them: seconds precision, with an offset."""
    if not ts:
        return None
    return datetime.fromisoformat(ts).astimezone(UTC).isoformat(timespec="seconds")


class _IdFactory:
    """Zoho-like 19-digit ids, unique across modules, persisted in the store's database."""

    def __init__(self) -> None:
        self.store: SandboxStore | None = None
        self._fallback = 0

    def __call__(self, obj: str) -> str:
        if self.store is not None:
            n = self.store._next_counter("zoho:id")  # noqa: SLF001 (runs inside the store's tx)
        else:
            self._fallback += 1
            n = self._fallback
        return f"{ORG_ID_PREFIX}{524000 + n:06d}" if n < 476000 else f"{ORG_ID_PREFIX}{n:07d}"


def _zoho_users(users: list[User] | None) -> list[User] | None:
    """Give users Zoho-like numeric ids (keeping ids that already are)."""
    if users is None:
        return None
    out = []
    for i, u in enumerate(users):
        uid = u.id if u.id.isdigit() else f"{ORG_ID_PREFIX}{411001 + i:06d}"
        out.append(User(uid, u.email, u.name, u.active))
    return out


class ZohoSandbox(ASGIEmulator):
    """The emulator. ``handle`` is the synchronous core; calling the instance is the ASGI app."""

    def __init__(
        self,
        schema: SystemSchema,
        path: str | Path,
        *,
        users: list[User] | None = None,
        token: str | None = None,
        tier: Tier | None = None,
        faults: FaultPlan | None = None,
        clock: Callable[[], float] = time.monotonic,
        external_id_field: str = DEFAULT_EXTERNAL_ID_FIELD,
        store_clock: Callable[[], datetime] | None = None,
        strict_picklists: bool = True,
        send_retry_after: bool = True,
    ) -> None:
        self.path = Path(path)
        # Zoho's docs show details.retry_after on a 429 but third-party notes say none is sent;
        # False answers like the latter, so a client is tested without relying on it
        self.send_retry_after = send_retry_after
        self.token = token or secrets.token_urlsafe(24)
        self.tier = tier or Tier()
        self.ledger = CreditLedger(self.tier.credit_limit, self.tier.window_seconds, clock=clock)
        self.external_id_field = external_id_field
        self.faults = faults
        self.strict_picklists = strict_picklists
        self._store_clock = store_clock
        self._lock = threading.RLock()
        self._inflight = 0
        self._inflight_lock = threading.Lock()
        self.requests = 0
        self.throttled = 0
        self._modules_of: dict[str, str] = {}  # record id -> module (Parent_Id answers)
        schema = self._with_saved_changes(schema)
        self._ids = _IdFactory()
        self.store = self._open_store(schema, _zoho_users(users))
        self._users_cache: dict[str, User] | None = None

    # ------------------------------------------------------------------ store and schema
    def _open_store(self, schema: SystemSchema, users: list[User] | None) -> SandboxStore:
        schema = self._with_external_id_fields(schema)
        if not self.strict_picklists:
            schema = schema.model_copy(deep=True)
            for o in schema.objects:
                for f in o.fields:
                    f.picklist_values = []
        from runtime.destinations.base import DestinationCapabilities, RateLimit

        caps = DestinationCapabilities(name="sandbox:zoho", batch_size=MAX_BATCH,
                                       attachment_limit_bytes=ATTACHMENT_LIMIT,
                                       rate_limit=RateLimit())
        store = SandboxStore(schema, self.path, capabilities=caps, faults=self.faults,
                             users=users, id_factory=self._ids, clock=self._store_clock)
        self._ids.store = store
        self._schema = schema
        self._objects = {o.api_name: o for o in schema.objects}
        return store

    def _with_external_id_fields(self, schema: SystemSchema) -> SystemSchema:
        """Every writable module gets the external-id field (as the migration's org setup adds)."""
        schema = schema.model_copy(deep=True)
        for o in schema.objects:
            if o.api_name == "Users" or not o.capabilities.createable:
                continue
            if o.field(self.external_id_field) is None:
                o.fields.append(FieldSchema(api_name=self.external_id_field, type=FieldType.text,
                                            max_length=255, custom=True, unique=True,
                                            external_id=True, label="Source System ID"))
        return schema

    @property
    def _changes_file(self) -> Path:
        return self.path.with_name(self.path.name + ".zoho-schema.json")

    def _with_saved_changes(self, schema: SystemSchema) -> SystemSchema:
        f = self._changes_file
        if str(self.path) == ":memory:" or not f.is_file():
            return schema
        saved = SystemSchema.model_validate_json(f.read_text("utf-8"))
        return schema.merged(saved)

    def _save_custom(self, obj: ObjectSchema, fields: list[FieldSchema]) -> None:
        f = self._changes_file
        saved = (SystemSchema.model_validate_json(f.read_text("utf-8")) if f.is_file()
                 else SystemSchema(system="zoho"))
        overlay = SystemSchema(system="zoho", objects=[obj.model_copy(update={"fields": fields})])
        f.write_text(saved.merged(overlay).model_dump_json(indent=1), "utf-8")

    def _change_schema(self, obj: ObjectSchema, fields: list[FieldSchema]) -> None:
        """Add a module and/or fields: reopen the store over the same file with the new schema."""
        with self._lock:
            new = self._schema.merged(SystemSchema(
                system="zoho", objects=[obj.model_copy(update={"fields": fields})]))
            self.store.close()
            self.store = self._open_store(new, None)
            if str(self.path) != ":memory:":
                self._save_custom(obj, fields)

    def schema(self) -> SystemSchema:
        return self._schema

    def close(self) -> None:
        self.store.close()

    # ------------------------------------------------------------------ ASGI
    async def respond(self, method: str, path: str, query: dict[str, list[str]],
                      headers: dict[str, str], body: bytes) -> Response:
        """Zoho's per-edition concurrency limit in front of :meth:`handle`: a request beyond it
        is a 429 without reaching the store."""
        with self._gate() as admitted:
            if not admitted:
                return self._too_many("concurrency", 1.0)
            return await super().respond(method, path, query, headers, body)

    def respond_sync(self, method: str, path: str, query: dict[str, list[str]],
                     headers: dict[str, str], body: bytes) -> Response:
        """:meth:`respond` for the in-process transport: the same gate, counting the requests
        of the caller threads that are inside :meth:`handle`."""
        with self._gate() as admitted:
            if not admitted:
                return self._too_many("concurrency", 1.0)
            return self.handle(method, path, query, headers, body)

    @contextmanager
    def _gate(self) -> Iterator[bool]:
        """One request in flight while the block runs; yields whether it is within the limit."""
        with self._inflight_lock:
            self._inflight += 1
            inflight = self._inflight
        try:
            yield inflight <= self.tier.concurrency_limit
        finally:
            with self._inflight_lock:
                self._inflight -= 1

    # ------------------------------------------------------------------ dispatch
    def _too_many(self, why: str, retry_after: float) -> Response:
        self.throttled += 1
        msg = ("the concurrency limit of the user for the app is exceeded" if why == "concurrency"
               else "Number of API requests for the 24 hour period is exceeded")
        details: dict[str, Any] = {"limit": self.ledger.limit, "window": self.ledger.window}
        if self.send_retry_after:
            details["retry_after"] = math.ceil(retry_after * 1000) / 1000
        return _json(429, {"code": "TOO_MANY_REQUESTS", "details": details, "message": msg,
                           "status": "error"},
            {"X-API-CREDITS-REMAINING": str(int(self.ledger.remaining))})

    def _check_auth(self, headers: dict[str, str]) -> None:
        auth = headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme != "Zoho-oauthtoken" or not token:
            raise _HTTPError(401, "AUTHENTICATION_FAILURE", "Authentication failed")
        if not secrets.compare_digest(token.strip(), self.token):
            raise _HTTPError(401, "INVALID_TOKEN", "invalid oauth token")

    def _charge(self, cost: float) -> Response | None:
        wait = self.ledger.charge(cost)
        if wait is not None:
            return self._too_many("credits", wait)
        return None

    def _credit_headers(self) -> dict[str, str]:
        if self.ledger.used >= self.ledger.limit / 2:
            return {"X-API-CREDITS-REMAINING": str(int(self.ledger.remaining))}
        return {}

    def handle(self, method: str, path: str, query: dict[str, list[str]],
               headers: dict[str, str], body: bytes) -> Response:
        """One request -> (status, headers, body). Raises :class:`DroppedConnection`."""
        self.requests += 1
        try:
            self._check_auth(headers)
            if not path.startswith(_API + "/"):
                raise _HTTPError(404, "INVALID_URL_PATTERN",
                                 "Please check if the URL trying to access is a correct one")
            parts = [p for p in path[len(_API):].split("/") if p]
            q = {k: v[-1] for k, v in query.items()}
            status, h, out = self._route(method, parts, q, headers, body)
            h.update(self._credit_headers())
            return status, h, out
        except _HTTPError as e:
            return _json(e.status, e.body, e.headers)
        except TransientError as e:  # the store's injected faults
            if e.maybe_committed:
                raise DroppedConnection(str(e)) from None
            if isinstance(e, InjectedThrottle):
                return self._too_many("credits", e.retry_after or 1.0)
            return _json(500, {"code": "INTERNAL_ERROR", "details": {},
                               "message": "Internal server error occurred.", "status": "error"})
        except FatalError:
            return self._too_many("credits", self.ledger.window)
        except (ValueError, TypeError, KeyError, AttributeError):
            # a request the emulator cannot digest: answer as Zoho does for its own bugs
            _log.exception("zoho sandbox: %s %s failed", method, path)
            return _json(500, {"code": "INTERNAL_ERROR", "details": {},
                               "message": "Internal server error occurred.", "status": "error"})

    def _route(self, method: str, parts: list[str], q: dict[str, str], headers: dict[str, str],
               body: bytes) -> Response:
        n = len(parts)
        if parts == ["coql"] and method == "POST":
            return self._coql(self._body(body))
        if parts[0] == "users" and method == "GET" and n == 1:
            return self._charge(1) or self._users(q)
        if parts[0] == "settings" and n >= 2:
            return self._settings(method, parts[1:], q, body)
        module = parts[0]
        if n == 1:
            if method == "GET":
                return self._charge(1) or self._list(module, q, headers)
            if method in ("POST", "PUT"):
                return self._write(module, "create" if method == "POST" else "update",
                                   self._body(body))
            if method == "DELETE":
                return self._delete(module, [i for i in q.get("ids", "").split(",") if i])
        if n == 2 and parts[1] == "upsert" and method == "POST":
            return self._write(module, "upsert", self._body(body))
        if n == 3 and parts[1:] == ["actions", "count"] and method == "GET":
            return self._charge(1) or self._count(module)
        if n == 2 and method == "GET":
            return self._charge(1) or self._list(module, {"ids": parts[1]}, headers)
        if n == 2 and method == "PUT":
            data = self._body(body)
            for rec in data.get("data") or []:
                if isinstance(rec, dict):
                    rec["id"] = parts[1]
            return self._write(module, "update", data)
        if n == 2 and method == "DELETE":
            return self._delete(module, [parts[1]])
        if n == 4 and parts[2] == "Attachments" and method == "DELETE":
            return self._charge(1) or self._delete_attachment(module, parts[1], parts[3])
        if n == 3 and parts[2] == "Attachments":
            if method == "POST":
                return self._charge(1) or self._attach(module, parts[1], headers, body)
            if method == "GET":
                return self._charge(1) or self._list_attachments(module, parts[1])
        raise _HTTPError(400, "INVALID_URL_PATTERN",
                         "Please check if the URL trying to access is a correct one")

    @staticmethod
    def _body(body: bytes) -> dict[str, Any]:
        try:
            return json_object(body)
        except BadBody as e:
            raise _HTTPError(400, "INVALID_DATA", "body", {"reason": str(e)}) from None

    def _module(self, module: str) -> ObjectSchema:
        o = self._objects.get(module)
        if o is None or module == "Users":
            raise _HTTPError(400, "INVALID_MODULE", "The module name given seems to be invalid",
                             {"resource_path_index": 0})
        return o

    # ------------------------------------------------------------------ records: writes
    def _to_store(self, obj: ObjectSchema, rec: dict[str, Any]) -> tuple[dict, str | None, str | None]:
        values: dict[str, Any] = {}
        ext = None
        rid = None
        for k, v in rec.items():
            if k == "id":
                rid = str(v) if v is not None else None
            elif k.startswith("$"):
                continue
            elif k == self.external_id_field:
                ext = None if v in (None, "") else str(v)
            else:
                f = obj.field(k)
                if f is not None and f.type in (FieldType.lookup, FieldType.owner) \
                        and isinstance(v, dict):
                    v = v.get("id")
                values[k] = v
        return values, ext, rid

    def _write(self, module: str, op: str, data: dict[str, Any]) -> Response:
        obj = self._module(module)
        records = data.get("data")
        if not isinstance(records, list) or not records:
            raise _HTTPError(400, "MANDATORY_NOT_FOUND", "mandatory param missing",
                             {"api_name": "data", "json_path": "$.data"})
        if len(records) > MAX_BATCH:
            raise _HTTPError(400, "LIMIT_EXCEEDED", "Record count exceeded",
                             {"limit": MAX_BATCH, "api_name": "data", "json_path": "$.data"})
        if (throttled := self._charge(write_cost(len(records)))) is not None:
            return throttled
        items: list[WriteItem] = []
        pre: dict[int, dict] = {}
        for i, rec in enumerate(records):
            if not isinstance(rec, dict):
                pre[i] = self._item_error("INVALID_DATA", "invalid data", i, None)
                continue
            values, ext, rid = self._to_store(obj, rec)
            if op == "update" and not rid:
                pre[i] = self._item_error("MANDATORY_NOT_FOUND", "required field not found", i, "id")
                continue
            items.append(WriteItem(key=str(i), external_id=ext, record=values, dest_id=rid))
        with self._lock:
            store = self.store
            if op == "upsert":
                dup = data.get("duplicate_check_fields") or [self.external_id_field]
                with_ext = [it for it in items if it.external_id is not None]
                without = [it for it in items if it.external_id is None]
                if self.external_id_field not in dup:
                    with_ext, without = [], items  # only the external-id field is matched here
                results = (store.upsert(module, with_ext) if with_ext else []) + \
                          (store.create(module, without) if without else [])
            elif op == "create":
                results = store.create(module, items)
            else:
                results = store.update(module, items)
        by_key = {r.key: r for r in results}
        ok_ids = [r.dest_id for r in results if r.ok and r.dest_id]
        stamps = self._stamps(module, ok_ids)
        out: list[dict[str, Any]] = []
        for i in range(len(records)):
            if i in pre:
                out.append(pre[i])
                continue
            r = by_key[str(i)]
            out.append(self._result_item(module, op, r, i, stamps))
        n_ok = sum(1 for x in out if x["status"] == "success")
        status = 201 if op != "update" and n_ok == len(out) else 200 if n_ok == len(out) \
            else 207 if n_ok else 400
        return _json(status, {"data": out})

    def _stamps(self, module: str, ids: list[str]) -> dict[str, dict[str, Any]]:
        for rid in ids:
            self._modules_of[rid] = module
        if not ids:
            return {}
        try:
            return self.store.get(module, ids)
        except (TransientError, FatalError):
            return {}

    def _user_ref(self, uid: str | None) -> dict[str, Any]:
        users = self._users_map()
        u = users.get(uid or "") or next(iter(users.values()), None)
        if u is None:
            return {"name": "", "id": uid or ""}
        return {"name": u.name, "id": u.id, "email": u.email}

    def _users_map(self) -> dict[str, User]:
        if self._users_cache is None:
            self._users_cache = {u.id: u for u in self.store.list_users()}
        return self._users_cache

    def _item_error(self, code: str, message: str, i: int, field: str | None,
                    **extra: Any) -> dict[str, Any]:
        details: dict[str, Any] = {}
        if field is not None:
            details["api_name"] = field
            details["json_path"] = f"$.data[{i}].{field}"
        details.update(extra)
        return {"code": code, "details": details, "message": message, "status": "error"}

    def _result_item(self, module: str, op: str, r: WriteResult, i: int,
                     stamps: dict[str, dict[str, Any]]) -> dict[str, Any]:
        if r.ok:
            rec = stamps.get(r.dest_id or "", {})
            owner = self._user_ref(rec.get("Owner"))
            details = {"Modified_Time": _iso(rec.get("$modified_at")) or _now_iso(),
                       "Modified_By": {"name": owner["name"], "id": owner["id"]},
                       "Created_Time": _iso(rec.get("$created_at")) or _now_iso(),
                       "id": r.dest_id,
                       "Created_By": {"name": owner["name"], "id": owner["id"]}}
            created = op == "create" or (op == "upsert" and r.created is not False)
            item: dict[str, Any] = {"code": "SUCCESS", "details": details,
                                    "message": "record added" if created else "record updated",
                                    "status": "success"}
            if op == "upsert":
                item["action"] = "insert" if created else "update"
                if not created:
                    item["duplicate_field"] = self.external_id_field
            return item
        field = self.external_id_field if r.field == EXTERNAL_ID_KEY else r.field
        code = r.code or ""
        if code == "REQUIRED_FIELD_MISSING":
            return self._item_error("MANDATORY_NOT_FOUND", "required field not found", i, field)
        if code == "DUPLICATE_VALUE":
            m = re.search(r"record (\S+)", r.error or "")
            dup_id = m.group(1) if m else ""
            return self._item_error("DUPLICATE_DATA", "duplicate data", i, field, id=dup_id,
                                    duplicate_record={"id": dup_id, "module": {
                                        "api_name": module, "id": _field_id("module", module)}},
                                    more_records=False)
        if code in ("NOT_FOUND", "ENTITY_IS_DELETED"):
            return self._item_error("INVALID_DATA", "the id given seems to be invalid", i, "id")
        if code == "INJECTED":
            return self._item_error("RECORD_LOCKED", "The record under merge is locked", i, None)
        if code == "OPERATION_NOT_ALLOWED":
            return self._item_error("NOT_ALLOWED", "permission denied", i, None)
        if code == "INVALID_MODULE":
            return self._item_error("INVALID_MODULE", "The module name given seems to be invalid",
                                    i, None)
        extra: dict[str, Any] = {}
        f = self._objects[module].field(field) if field else None
        if code == "INVALID_TYPE" and f is not None:
            extra["expected_data_type"] = _ZOHO_DATA_TYPES.get(f.type, "text")
        if code == "STRING_TOO_LONG" and f is not None and f.max_length:
            # record.json types it as a string, notes.json as an integer
            extra["maximum_length"] = f.max_length if module == "Notes" else str(f.max_length)
        if code == "INVALID_REFERENCE":
            return self._item_error("INVALID_DATA", "the id given seems to be invalid", i, field,
                                    **extra)
        return self._item_error("INVALID_DATA", "invalid data", i, field, **extra)

    def _delete(self, module: str, ids: list[str]) -> Response:
        self._module(module)
        if not ids:
            raise _HTTPError(400, "REQUIRED_PARAM_MISSING", "mandatory param missing",
                             {"param": "ids"})
        if len(ids) > MAX_BATCH:
            raise _HTTPError(400, "LIMIT_EXCEEDED", "Record count exceeded", {"limit": MAX_BATCH})
        if (throttled := self._charge(1)) is not None:
            return throttled
        uniq = list(dict.fromkeys(ids))
        with self._lock:
            results = {r.key: r for r in self.store.delete(module, uniq)}
        out = []
        for rid in ids:
            r = results[rid]
            if r.ok:
                out.append({"code": "SUCCESS", "details": {"id": rid}, "message": "record deleted",
                            "status": "success"})
            else:
                out.append({"code": "INVALID_DATA", "details": {"id": rid},
                            "message": "the id given seems to be invalid", "status": "error"})
        n_ok = sum(1 for x in out if x["status"] == "success")
        return _json(200 if n_ok == len(out) else 207 if n_ok else 400, {"data": out})

    # ------------------------------------------------------------------ records: reads
    def _to_zoho(self, module: str, rec: dict[str, Any], fields: set[str] | None) -> dict[str, Any]:
        obj = self._objects[module]
        out: dict[str, Any] = {"id": rec["id"]}
        for k, v in rec.items():
            if k.startswith("$") or k == "id" or (fields is not None and k not in fields):
                continue
            f = obj.field(k)
            if f is not None and f.type == FieldType.owner:
                v = self._user_ref(v)
            elif f is not None and f.type == FieldType.lookup and isinstance(v, str):
                ref: dict[str, Any] = {"id": v}
                if k == "Parent_Id" or len(f.lookup_targets) > 1:
                    target = self._module_of(v, f.lookup_targets)
                    if target:
                        ref["module"] = {"api_name": target, "id": _field_id("module", target)}
                v = ref
            out[k] = v
        if fields is None or self.external_id_field in fields:
            out[self.external_id_field] = rec.get(EXTERNAL_ID_KEY)
        if fields is None or "Created_Time" in fields:
            out["Created_Time"] = _iso(rec.get("$created_at"))
        if fields is None or "Modified_Time" in fields:
            out["Modified_Time"] = _iso(rec.get("$modified_at"))
        return out

    def _module_of(self, rid: str, candidates: list[str]) -> str | None:
        if rid in self._modules_of:
            return self._modules_of[rid]
        for m in candidates:
            if m in self._objects and self.store.get(m, [rid]):
                self._modules_of[rid] = m
                return m
        return None

    def _list(self, module: str, q: dict[str, str], headers: dict[str, str]) -> Response:
        self._module(module)
        fields = set(q["fields"].split(",")) if q.get("fields") else None
        if q.get("ids"):
            ids = [i for i in q["ids"].split(",") if i]
            if len(ids) > MAX_BATCH:
                raise _HTTPError(400, "LIMIT_EXCEEDED", "Record count exceeded",
                                 {"limit": MAX_BATCH})
            found = self.store.get(module, ids)
            data = [self._to_zoho(module, found[i], fields) for i in ids if i in found]
            if not data:
                return 204, {}, b""
            return _json(200, {"data": data, "info": {"per_page": len(data), "count": len(data),
                                                      "page": 1, "more_records": False}})
        since = headers.get("if-modified-since")
        try:
            per_page = min(int(q.get("per_page") or 200), 200)
            if q.get("page_token"):
                start = int(base64.urlsafe_b64decode(q["page_token"].encode()).decode())
                page = start // per_page + 1
            else:
                page = max(int(q.get("page") or 1), 1)
                start = (page - 1) * per_page
        except ValueError:
            raise _HTTPError(400, "INVALID_DATA", "invalid data", {"param_name": "page"}) from None
        try:
            rows = list(self.store.list_records(module, modified_since=since or None))
        except ValueError:
            raise _HTTPError(400, "INVALID_DATA", "invalid data",
                             {"param_name": "If-Modified-Since"}) from None
        if since and not rows:
            return 304, {}, b""
        chunk = rows[start:start + per_page]
        if not chunk:
            return 204, {}, b""
        more = start + per_page < len(rows)
        info: dict[str, Any] = {"per_page": per_page, "count": len(chunk), "page": page,
                                "more_records": more, "sort_by": "id", "sort_order": "asc"}
        if more:
            info["next_page_token"] = base64.urlsafe_b64encode(
                str(start + per_page).encode()).decode()
        return _json(200, {"data": [self._to_zoho(module, r, fields) for r in chunk],
                           "info": info})

    def _count(self, module: str) -> Response:
        self._module(module)
        return _json(200, {"count": self.store.count(module)})

    def _users(self, q: dict[str, str]) -> Response:
        kind = q.get("type", "AllUsers")
        users = list(self.store.list_users())
        self._users_cache = {u.id: u for u in users}
        if kind in ("ActiveUsers", "ActiveConfirmedUsers"):
            users = [u for u in users if u.active]
        elif kind == "DeactiveUsers":
            users = [u for u in users if not u.active]
        per_page = min(int(q.get("per_page") or 200), 200)
        page = max(int(q.get("page") or 1), 1)
        chunk = users[(page - 1) * per_page: page * per_page]
        if not chunk:
            return 204, {}, b""
        out = []
        for u in chunk:
            first, _, last = u.name.partition(" ")
            out.append({"id": u.id, "email": u.email, "full_name": u.name,
                        "first_name": first or None, "last_name": last or first or u.email,
                        "status": "active" if u.active else "disabled",
                        "confirm": True})
        return _json(200, {"users": out, "info": {
            "per_page": per_page, "count": len(chunk), "page": page,
            "more_records": page * per_page < len(users)}})

    # ------------------------------------------------------------------ COQL
    _COQL = re.compile(r"^\s*select\s+(?P<cols>.+?)\s+from\s+(?P<mod>\w+)"
                       r"(?:\s+where\s+(?P<where>.+?))?"
                       r"(?:\s+order\s+by\s+\w+(?:\s+(?:asc|desc))?)?"
                       r"(?:\s+limit\s+(?P<limit>\d+)(?:\s*,\s*(?P<lim2>\d+)|\s+offset\s+(?P<off>\d+))?)?"
                       r"\s*;?\s*$", re.IGNORECASE | re.DOTALL)
    _COND = re.compile(r"^\s*(?P<f>\w+)\s+(?:(?P<in>in)\s*\((?P<vals>.*)\)|(?P<op>=)\s*(?P<val>'(?:[^'\\]|\\.)*'))\s*$",
                       re.IGNORECASE | re.DOTALL)
    _STR = re.compile(r"'((?:[^'\\]|\\.)*)'")

    def _coql(self, data: dict[str, Any]) -> Response:
        query = data.get("select_query")
        if not isinstance(query, str):
            raise _HTTPError(400, "REQUIRED_PARAM_MISSING", "One of the expected parameter is missing",
                             {"param": "select_query"})
        m = self._COQL.match(query)
        if not m:
            raise _HTTPError(400, "SYNTAX_ERROR", "error occurred while parsing the query",
                             {"clause": "select"})
        module = m.group("mod")
        if module not in self._objects:
            raise _HTTPError(400, "INVALID_QUERY", "invalid query formed",
                             {"reason": "invalid module", "module": module})
        limit = int(m.group("limit") or 200)
        offset = int(m.group("off") or 0)
        if m.group("lim2"):
            offset, limit = limit, int(m.group("lim2"))
        if limit > 2000:
            raise _HTTPError(400, "LIMIT_EXCEEDED", "limit exceeded", {"limit": 2000})
        if (throttled := self._charge(coql_cost(limit))) is not None:
            return throttled
        conds: list[tuple[str, set[str]]] = []
        if m.group("where"):
            for part in re.split(r"\s+and\s+", m.group("where").strip(), flags=re.I):
                part = part.strip()
                c = self._COND.match(part)
                while c is None and part.startswith("(") and part.endswith(")"):
                    part = part[1:-1].strip()
                    c = self._COND.match(part)
                if not c:
                    raise _HTTPError(400, "INVALID_QUERY", "invalid query formed",
                                     {"reason": "unsupported criteria in the emulator"})
                raw = c.group("vals") if c.group("in") else c.group("val")
                vals = {v.replace("\\'", "'").replace("\\\\", "\\") for v in self._STR.findall(raw)}
                if c.group("in") and len(vals) > 50:
                    raise _HTTPError(400, "LIMIT_EXCEEDED", "limit exceeded",
                                     {"limit": 50, "operator": "in"})
                conds.append((c.group("f"), vals))
        cols = [c.strip() for c in m.group("cols").split(",")]
        ext_cond = [v for f, v in conds if f == self.external_id_field]
        if ext_cond and len(conds) == 1:
            found = self.store.find_by_external_id(module, sorted(ext_cond[0]))
            rows = list(self.store.get(module, sorted(set(found.values()))).values())
        else:
            rows = list(self.store.list_records(module))
        out = []
        for r in rows:
            z = self._to_zoho(module, r, None)
            if all(_coql_value(z.get(f)) in vals for f, vals in conds):
                out.append({c: z.get(c) for c in cols if c in z or c == "id"} | {"id": z["id"]})
        out.sort(key=lambda x: x["id"])
        page = out[offset:offset + limit]
        if not page:
            return 204, {}, b""
        return _json(200, {"data": page, "info": {"count": len(page),
                                                  "more_records": offset + limit < len(out)}})

    # ------------------------------------------------------------------ attachments
    def _attach(self, module: str, record_id: str, headers: dict[str, str], body: bytes) -> Response:
        self._module(module)
        ctype = headers.get("content-type", "")
        if not ctype.startswith("multipart/form-data"):
            raise _HTTPError(400, "INVALID_DATA", "invalid data", {"param_name": "file"})
        if len(body) > ATTACHMENT_LIMIT + 64 * 1024:
            raise _HTTPError(400, "FILE_SIZE_MORE_THAN_ALLOWED_SIZE", "invalid data",
                             {"allowed_size": ATTACHMENT_LIMIT})
        form = multipart_form(ctype, body)
        if form is None or not form.has_file:
            raise _HTTPError(400, "REQUIRED_PARAM_MISSING", "mandatory param missing",
                             {"param": "file"})
        name = form.filename or "file"
        if name.lower().endswith(".exe"):
            raise _HTTPError(400, "INVALID_DATA", "invalid data", {"param_name": "file"})
        content = form.content or b""
        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp) / "upload.bin"
            p.write_bytes(content)
            with self._lock:
                # a fresh key per upload: Zoho itself never deduplicates attachments
                r = self.store.upload_attachment(module, record_id, name, p,
                                                 key=secrets.token_hex(8))
        if not r.ok:
            if r.code == "FILE_TOO_LARGE":
                raise _HTTPError(400, "FILE_SIZE_MORE_THAN_ALLOWED_SIZE", "invalid data",
                                 {"allowed_size": ATTACHMENT_LIMIT})
            if r.code == "INJECTED":
                return _json(400, {"data": [self._item_error(
                    "RECORD_LOCKED", "The record under merge is locked", 0, None)]})
            raise _HTTPError(400, "INVALID_DATA", "the id given seems to be invalid",
                             {"id": record_id})
        now = _now_iso()
        admin = self._user_ref(None)
        return _json(200, {"data": [{"code": "SUCCESS", "details": {
            "Modified_Time": now, "Modified_By": {"name": admin["name"], "id": admin["id"]},
            "Created_Time": now, "id": r.dest_id,
            "Created_By": {"name": admin["name"], "id": admin["id"]}},
            "message": "attachment is added", "status": "success"}]})

    def _delete_attachment(self, module: str, record_id: str, aid: str) -> Response:
        self._module(module)
        if not any(a["id"] == aid for a in self.store.attachments(module, record_id)):
            return _json(400, {"data": [{"code": "INVALID_DATA", "details": {"id": aid},
                                         "message": "the id given seems to be invalid",
                                         "status": "error"}]})
        with self._lock:
            (r,) = self.store.delete_attachments([aid])
        if not r.ok:
            raise _HTTPError(400, "INVALID_DATA", "the id given seems to be invalid", {"id": aid})
        return _json(200, {"data": [{"code": "SUCCESS", "details": {"id": aid},
                                     "message": "record deleted", "status": "success"}]})

    def _list_attachments(self, module: str, record_id: str) -> Response:
        self._module(module)
        rows = self.store.attachments(module, record_id)
        if not rows:
            return 204, {}, b""
        admin = self._user_ref(None)
        user = {"name": admin["name"], "id": admin["id"]}
        now = _now_iso()
        return _json(200, {"data": [{"id": a["id"], "File_Name": a["name"], "Size": str(a["size"]),
                                     "Parent_Id": {"id": record_id, "name": ""},
                                     "$se_module": module, "Owner": user, "Created_By": user,
                                     "Modified_By": user, "Created_Time": now,
                                     "Modified_Time": now, "$editable": True,
                                     "$file_id": a["sha256"], "$type": "Attachment",
                                     "$state": "save", "$link_url": None}
                                    for a in rows],
                           "info": {"per_page": len(rows), "count": len(rows), "page": 1,
                                    "more_records": False}})

    # ------------------------------------------------------------------ settings
    def _settings(self, method: str, parts: list[str], q: dict[str, str], body: bytes) -> Response:
        what = parts[0]
        if what == "modules" and method == "GET":
            if (t := self._charge(1)) is not None:
                return t
            mods = [self._module_meta(o) for o in self._schema.objects]
            if len(parts) > 1:
                mods = [m for m in mods if m["api_name"] == parts[1]]
                if not mods:
                    self._module(parts[1])
            return _json(200, {"modules": mods})
        if what == "modules" and method == "POST":
            if (t := self._charge(500)) is not None:
                return t
            return self._create_modules(self._body(body))
        if what in ("fields", "layouts"):
            module = q.get("module") or ""
            obj = self._module(module) if module != "Users" else None
            if obj is None:
                raise _HTTPError(400, "INVALID_MODULE", "The module name given seems to be invalid")
            if (t := self._charge(1)) is not None:
                return t
            if method == "POST" and what == "fields":
                return self._create_fields(obj, self._body(body))
            if method == "GET" and what == "fields":
                return _json(200, {"fields": [self._field_meta(f) for f in obj.fields]})
            if method == "GET":
                return _json(200, {"layouts": [{"id": f"{ORG_ID_PREFIX}091055", "name": "Standard",
                                                "status": "active", "sections": [{
                                                    "api_name": "Record Information",
                                                    "fields": [{"api_name": f.api_name,
                                                                "required": f.required}
                                                               for f in obj.fields]}]}]})
        if what == "recycle_bin" and method == "GET":
            if (t := self._charge(1)) is not None:
                return t
            out = []
            for o in self._schema.objects:
                if o.api_name == "Users" or (q.get("module") and q["module"] != o.api_name):
                    continue
                for r in self.store.recycle_bin(o.api_name):
                    out.append({"id": r["id"], "display_name": str(r.get(EXTERNAL_ID_KEY) or r["id"]),
                                "module": {"api_name": o.api_name},
                                "deleted_time": _iso(r.get("$deleted_at"))})
            if not out:
                return 204, {}, b""
            return _json(200, {"recycle_bin": out, "info": {"count": len(out), "page": 1,
                                                            "per_page": len(out),
                                                            "more_records": False}})
        raise _HTTPError(400, "INVALID_URL_PATTERN",
                         "Please check if the URL trying to access is a correct one")

    def _module_meta(self, o: ObjectSchema) -> dict[str, Any]:
        return {"api_name": o.api_name, "module_name": o.api_name,
                "id": o.vendor.get("id") or _field_id("module", o.api_name),
                "singular_label": o.label or o.api_name,
                "plural_label": o.plural_label or o.api_name,
                "generated_type": "custom" if o.custom else "default",
                "creatable": o.capabilities.createable, "editable": o.capabilities.updateable,
                "deletable": o.capabilities.deletable, "api_supported": True}

    def _field_meta(self, f: FieldSchema) -> dict[str, Any]:
        data_type = f.vendor.get("data_type") or _ZOHO_DATA_TYPES.get(f.type, "text")
        meta: dict[str, Any] = {
            "api_name": f.api_name, "field_label": f.label or f.api_name.replace("_", " "),
            "display_label": f.label or f.api_name.replace("_", " "), "data_type": data_type,
            "custom_field": f.custom, "read_only": f.read_only, "system_mandatory": f.required,
            "operation_type": {"api_create": not f.read_only,
                               "api_update": not f.read_only and not f.create_only},
            "unique": {"casesensitive": "false"} if f.unique else {},
            "external": {"show": True, "type": "user", "allow_multiple_config": False}
            if f.external_id else None,
        }
        if f.max_length:
            meta["length"] = f.max_length
        elif f.precision:
            meta["length"] = f.precision
        if f.scale is not None:
            meta["decimal_place"] = f.scale
        if f.picklist_values:
            meta["pick_list_values"] = [{"display_value": v, "actual_value": v, "type": "used",
                                         "sequence_number": i + 1}
                                        for i, v in enumerate(f.picklist_values)]
        if f.type == FieldType.lookup and f.lookup_targets:
            meta["lookup"] = {"module": {"api_name": f.lookup_targets[0]}}
        return meta

    def _create_fields(self, obj: ObjectSchema, data: dict[str, Any]) -> Response:
        items = data.get("fields")
        if not isinstance(items, list) or not items:
            raise _HTTPError(400, "REQUIRED_PARAM_MISSING", "mandatory param missing",
                             {"param": "fields"})
        new: list[FieldSchema] = []
        out = []
        for i, raw in enumerate(items):
            try:
                f = _field_from_zoho(raw)
            except (KeyError, TypeError, ValueError):
                out.append(self._item_error("INVALID_DATA", "invalid data", i, "data_type"))
                continue
            if obj.field(f.api_name) is not None or any(n.api_name == f.api_name for n in new):
                out.append({"code": "DUPLICATE_DATA", "details": {"api_name": f.api_name},
                            "message": "duplicate data", "status": "error"})
                continue
            new.append(f)
            out.append({"code": "SUCCESS", "details": {"id": _field_id(obj.api_name, f.api_name),
                                                        "api_name": f.api_name},
                        "message": "field created", "status": "success"})
        if new:
            self._change_schema(obj.model_copy(update={"fields": []}), new)
        n_ok = len(new)
        return _json(201 if n_ok == len(out) else 207 if n_ok else 400, {"fields": out})

    def _create_modules(self, data: dict[str, Any]) -> Response:
        items = data.get("modules")
        if not isinstance(items, list) or not items:
            raise _HTTPError(400, "REQUIRED_PARAM_MISSING", "mandatory param missing",
                             {"param": "modules"})
        out = []
        for raw in items:
            api = raw.get("api_name") or re.sub(r"\W+", "_", str(raw.get("plural_label", ""))).strip("_")
            if not api:
                out.append({"code": "MANDATORY_NOT_FOUND", "details": {"api_name": "plural_label"},
                            "message": "required field not found", "status": "error"})
                continue
            if api in self._objects:
                out.append({"code": "DUPLICATE_DATA", "details": {"api_name": api},
                            "message": "duplicate data", "status": "error"})
                continue
            obj = ObjectSchema(api_name=api, label=raw.get("singular_label"),
                               plural_label=raw.get("plural_label"), custom=True,
                               capabilities=ObjectCapabilities(upsert=True, attachments=True,
                                                               notes=True))
            fields = [FieldSchema(api_name="id", type=FieldType.id, read_only=True),
                      FieldSchema(api_name="Name", max_length=CUSTOM_NAME_MAX_LENGTH,
                                  label="Name"),
                      FieldSchema(api_name="Owner", type=FieldType.owner,
                                  lookup_targets=["Users"])]
            fields += [_field_from_zoho(f) for f in raw.get("fields") or []]
            self._change_schema(obj, fields)
            out.append({"code": "SUCCESS", "details": {"id": _field_id("module", api),
                                                        "api_name": api},
                        "message": "module created", "status": "success"})
        n_ok = sum(1 for o in out if o["status"] == "success")
        return _json(201 if n_ok == len(out) else 207 if n_ok else 400, {"modules": out})


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _field_id(module: str, name: str) -> str:
    import zlib

    return f"{ORG_ID_PREFIX}{zlib.crc32(f'{module}.{name}'.encode()) % 1_000_000:06d}"


def _coql_value(v: Any) -> Any:
    if isinstance(v, dict):
        return v.get("id")
    return v if isinstance(v, str) else json.dumps(v)


def _field_from_zoho(raw: dict[str, Any]) -> FieldSchema:
    """A field-create request item -> FieldSchema (api_name from the label, as Zoho does)."""
    label = raw["field_label"]
    api = raw.get("api_name") or re.sub(r"\W+", "_", str(label)).strip("_")
    dtype = raw.get("data_type", "text")
    if dtype not in _FROM_ZOHO_TYPES:
        raise ValueError(dtype)
    ftype = _FROM_ZOHO_TYPES[dtype]
    change: dict[str, Any] = {"field": api, "type": ftype.value, "details": {"label": label}}
    f = field_from_change(change)
    upd: dict[str, Any] = {"type": ftype}
    if raw.get("length") and ftype in (FieldType.text, FieldType.textarea, FieldType.email,
                                       FieldType.phone, FieldType.url, FieldType.picklist):
        upd["max_length"] = int(raw["length"])
    if raw.get("pick_list_values"):
        upd["picklist_values"] = [str(v.get("display_value")) for v in raw["pick_list_values"]]
    lk = raw.get("lookup")
    if isinstance(lk, dict) and isinstance(lk.get("module"), dict):
        upd["lookup_targets"] = [lk["module"].get("api_name")]
    upd["unique"] = bool(raw.get("unique"))
    upd["external_id"] = bool(raw.get("external"))
    upd["required"] = bool(raw.get("system_mandatory") or raw.get("required"))
    return f.model_copy(update=upd)
