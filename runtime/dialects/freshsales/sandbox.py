"""A local Freshsales (Freshworks CRM) emulator: Freshsales' HTTP API in front of the generic
:class:`SandboxStore`, as a plain ASGI application. In process, the synchronous
:class:`~runtime.dialects.freshsales.client.FreshsalesClient` speaks to it through
:class:`~runtime.dialects._asgi.SyncASGITransport` (an app that raises
:class:`DroppedConnection` surfaces as ``httpx.RemoteProtocolError``).

What it reproduces (API_NOTES.md sections 3 and 6): ``Authorization: Token token=<key>`` (401
``{"errors": {"code": 401, "message": ["Invalid API key"]}}`` otherwise); singular envelopes
(``{"contact": {...}}`` in and out, lists as ``{"contacts": [...], "meta": {...}}``); integer ids;
``custom_field`` (singular) for ``cf_*`` fields, while ``custom_fields`` (plural), top-level ``cf_``
keys, read-only and unknown keys are **silently ignored**; dropdowns take numeric choice ids (a
label is a 400 "<Label> is invalid"); single calls fail as a whole with
``{"errors": {"code": 400, "message": ["Last name can't be blank"]}}`` / ``"... has already been
taken"``; ``POST /api/{e}/upsert`` with ``unique_identifier`` (201 created, 200 updated);
``POST /api/{e}/bulk_upsert`` (100 items) answering a job id whose ``GET /api/job_statuses/{id}``
is ``in_progress`` for ``job_polls`` polls and then ``completed`` with per-record failures in
``data.failures`` [unverified format]; ``POST /api/{e}/bulk_destroy`` ``{"selected_ids": [..]}``
(contacts, sales accounts, deals, custom modules: 202, a message only [unverified]);
``filtered_search`` (``is_in``, ``is``, ``is_after``) with
``meta.total_pages``/``meta.total``; ``selector/owners``; ``settings/{e}/fields``; documents
(multipart, 150 MB, targetable Contact/SalesAccount/Deal/Product; **no** deduplication: uploading
twice makes two documents); the hourly request limit (429 with ``Retry-After`` and
``X-RateLimit-Total``/``-Remaining``/``-Used-CurrentRequest``, all omitted with
``rate_headers=False``); and the store's injectable faults: throttles -> 429, batch failures ->
503, timeouts and lost responses -> a dropped connection (lost responses after the write
committed), record errors -> 500 on single calls and a 500 failure item in a bulk job.

Every writable entity gets the external-id field (``cf_fmap_external_id``: unique, custom), as
the migration's org setup adds. Custom dropdowns without choice ids get deterministic ones.

Settings (API_NOTES.md 3.4/3.5): ``GET settings/{e}/fields`` in the documented keys (``id``,
``name``, ``label``, ``type``, ``required``, ``visible``, ``default``, ``base_model``,
``choices[{id, value, position}]``); ``GET settings/{e}/forms``; ``POST settings/{e}/forms/{id}/
fields`` ``{"field_type", "label", "required"}`` (the field is named ``cf_`` + the label in snake
case; ``field_type`` numbers are this sandbox's own, :data:`SANDBOX_FIELD_TYPE_CODES`);
``POST``/``GET settings/module_customizations``. Custom fields take Freshsales' types (every
numeric field is a "number"). The org's schema is saved beside the SQLite file, so a served or
reopened sandbox keeps its customisation.
"""

from __future__ import annotations

import math
import secrets
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
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
from runtime.dialects._bodies import BadBody, json_object, json_response, multipart_form
from runtime.dialects.freshsales.capabilities import CUSTOM_NAME_MAX_LENGTH
from runtime.dialects.freshsales.client import (
    ATTACHMENT_LIMIT_BYTES,
    BULK_DESTROY_ENTITIES,
    DEFAULT_EXTERNAL_ID_FIELD,
    DOCUMENT_TARGETS,
    ENTITIES,
    FS_FIELD_TYPES,
    MAX_BULK,
    is_dropdown,
)
from runtime.dialects.freshsales.metadata import FRESHSALES_TYPES
from runtime.dialects.freshsales.naming import check_custom_name, custom_api_name
from runtime.schema.model import (
    FieldSchema,
    FieldType,
    ObjectCapabilities,
    ObjectSchema,
    SystemSchema,
)

__all__ = ["FreshsalesSandbox", "SyncASGITransport", "DroppedConnection", "ID_BASE",
           "choice_id", "SANDBOX_FIELD_TYPE_CODES"]

ID_BASE = 18_000_000_000  # integer ids, distinct from the seeded users' 16000000001...
_SINGULAR_ENTITY = {single: obj for obj, (_, single, _) in ENTITIES.items()}
_PLURAL_ENTITY = {plural: obj for obj, (plural, _, _) in ENTITIES.items()}
_FS_TYPES = FS_FIELD_TYPES
# The sandbox's own numbering of ``field_type`` in the create-field call. Freshsales publishes
# no such table; these numbers are this emulator's, handed to its clients through
# ``FRESHSALES_FIELD_TYPE_CODES`` (``serve_sandbox``) or ``open_sandbox``.
SANDBOX_FIELD_TYPE_CODES: dict[str, int] = {
    "text": 1, "textarea": 2, "number": 3, "dropdown": 4, "checkbox": 5, "date": 6,
    "datetime": 7, "email": 8, "phone_number": 9, "url": 10, "multi_select_dropdown": 11,
    "radio": 12,
}
_TYPE_OF_CODE = {code: name for name, code in SANDBOX_FIELD_TYPE_CODES.items()}


class _HTTPError(Exception):
    def __init__(self, status: int, messages: list[str],
                 headers: dict[str, str] | None = None) -> None:
        super().__init__("; ".join(messages))
        self.status = status
        self.body = {"errors": {"code": status, "message": messages}}
        self.headers = headers or {}


_json = partial(json_response, content_type="application/json; charset=utf-8")


def _iso(ts: str | None) -> str | None:
    if not ts:
        return None
    return datetime.fromisoformat(ts).astimezone(UTC).isoformat(timespec="seconds")


def choice_id(obj: str, field: str, index: int) -> int:
    """A deterministic large-integer choice id (Freshsales' look like ``17001007403``)."""
    return 17_000_000_000 + (zlib.crc32(f"{obj}.{field}".encode()) % 100_000) * 100 + index


def _label(f: FieldSchema) -> str:
    return f.label or f.api_name.removeprefix("cf_").replace("_", " ").capitalize()


class _HourlyLedger:
    """Requests per fixed clock hour (per account)."""

    def __init__(self, limit: float, clock: Callable[[], float], window: float = 3600.0) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self.bucket = -1
        self.used = 0
        self._lock = threading.Lock()

    def charge(self) -> float | None:
        """None when the request may go on, else the seconds until the window resets."""
        with self._lock:
            now = self.clock()
            b = int(now // self.window)
            if b != self.bucket:
                self.bucket, self.used = b, 0
            if self.used >= self.limit:
                return max((b + 1) * self.window - now, 1.0)
            self.used += 1
            return None

    @property
    def remaining(self) -> int:
        return 0 if math.isinf(self.limit) else int(max(self.limit - self.used, 0))


class _IdFactory:
    def __init__(self) -> None:
        self.store: SandboxStore | None = None

    def __call__(self, obj: str) -> str:
        assert self.store is not None
        return str(ID_BASE + self.store._next_counter("freshsales:id"))  # noqa: SLF001


class FreshsalesSandbox(ASGIEmulator):
    """The emulator. ``handle`` is the synchronous core; calling the instance is the ASGI app."""

    def __init__(
        self,
        schema: SystemSchema,
        path: str | Path,
        *,
        users: list[User] | None = None,
        api_key: str | None = None,
        limit: float = math.inf,
        clock: Callable[[], float] = time.monotonic,
        faults: FaultPlan | None = None,
        external_id_field: str = DEFAULT_EXTERNAL_ID_FIELD,
        store_clock: Callable[[], datetime] | None = None,
        job_polls: int = 1,
        rate_headers: bool = True,
        window: float = 3600.0,
        per_minute: float = math.inf,
    ) -> None:
        self.path = Path(path)
        self.api_key = api_key or secrets.token_urlsafe(24)
        self.external_id_field = external_id_field
        self.faults = faults
        self.ledger = _HourlyLedger(limit, clock, window)
        # legacy freshsales.io plans: 400 requests a minute on top of the hourly limit
        self.minute_ledger = _HourlyLedger(per_minute, clock, 60.0)
        self.job_polls = job_polls
        self.rate_headers = rate_headers
        self.requests = 0
        self.throttled = 0
        self.jobs: dict[str, dict[str, Any]] = {}
        self._lock = threading.RLock()
        self._store_clock = store_clock
        self._ids = _IdFactory()
        self.store = self._open_store(self._with_saved_schema(schema), users)
        self._save_schema()
        self._upload_seq = 0

    def _open_store(self, schema: SystemSchema, users: list[User] | None) -> SandboxStore:
        self._schema = self._prepare(schema)
        self._objects = {o.api_name: o for o in self._schema.objects}
        caps = DestinationCapabilities(name="sandbox:freshsales", batch_size=MAX_BULK,
                                       attachment_limit_bytes=ATTACHMENT_LIMIT_BYTES,
                                       rate_limit=RateLimit())
        store = SandboxStore(self._schema, self.path, capabilities=caps, faults=self.faults,
                             users=users, id_factory=self._ids, clock=self._store_clock)
        self._ids.store = store
        return store

    # An org keeps its customisation: the schema (custom modules and fields, choice ids) is
    # saved next to the SQLite file, so a sandbox reopened on it, or served from it by
    # ``fmap sandbox serve --db``, is the same org.
    @property
    def _schema_file(self) -> Path | None:
        if str(self.path) == ":memory:":
            return None
        return self.path.with_name(self.path.name + ".freshsales-schema.json")

    def _with_saved_schema(self, schema: SystemSchema) -> SystemSchema:
        f = self._schema_file
        if f is None or not f.is_file():
            return schema
        return schema.merged(SystemSchema.model_validate_json(f.read_text("utf-8")))

    def _save_schema(self) -> None:
        f = self._schema_file
        if f is not None:
            f.write_text(self._schema.model_dump_json(indent=1), "utf-8")

    def _change_schema(self, obj: ObjectSchema) -> None:
        """Add a module or fields (``obj`` holds only the new ones): reopen the store over the
        same file with the new schema, as an admin's change is live for the next request."""
        new = self._schema.merged(SystemSchema(system=self._schema.system, objects=[obj]))
        faults, self.store.faults = self.store.faults, None
        self.store.close()
        self.store = self._open_store(new, None)
        self.store.faults = faults
        self._save_schema()

    # ------------------------------------------------------------------ schema
    def _prepare(self, schema: SystemSchema) -> SystemSchema:
        schema = schema.model_copy(deep=True)
        for o in schema.objects:
            for f in o.fields:
                # an account's custom fields have Freshsales' types only: integer, currency
                # and percent fields are all "number" fields (read back as decimals)
                fs_type = FS_FIELD_TYPES.get(f.type)
                if f.custom and fs_type and f.type not in (FieldType.lookup, FieldType.owner):
                    f.type = FRESHSALES_TYPES[fs_type]
                if f.type in (FieldType.picklist, FieldType.multipicklist) and f.picklist_values \
                        and is_dropdown(f) and not f.vendor.get("choices"):
                    f.vendor["choices"] = {v: choice_id(o.api_name, f.api_name, i + 1)
                                           for i, v in enumerate(f.picklist_values)}
            if o.api_name in ("User", "Document") or not o.capabilities.createable:
                continue
            if o.field(self.external_id_field) is None:
                o.fields.append(FieldSchema(
                    api_name=self.external_id_field, type=FieldType.text, max_length=255,
                    custom=True, unique=True, external_id=True, label="fmap External ID",
                    vendor={"custom_field": True}))
        return schema

    def schema(self) -> SystemSchema:
        return self._schema

    def close(self) -> None:
        self.store.close()

    # ------------------------------------------------------------------ dispatch
    def _limit_headers(self) -> dict[str, str]:
        if not self.rate_headers or math.isinf(self.ledger.limit):
            return {}
        return {"X-RateLimit-Total": str(int(self.ledger.limit)),
                "X-RateLimit-Remaining": str(self.ledger.remaining),
                "X-RateLimit-Used-CurrentRequest": "1"}

    def _too_many(self, retry_after: float | None) -> Response:
        self.throttled += 1
        h = self._limit_headers()
        if self.rate_headers and retry_after is not None:
            h["Retry-After"] = str(max(math.ceil(retry_after), 0))
        return _json(429, {"errors": {"code": 429, "message": [
            "You have exceeded the limit of requests per hour"]}}, h)

    def handle(self, method: str, path: str, query: dict[str, list[str]],
               headers: dict[str, str], body: bytes) -> Response:
        """One request -> (status, headers, body). Raises :class:`DroppedConnection`."""
        self.requests += 1
        try:
            scheme, _, token = headers.get("authorization", "").partition("token=")
            if scheme.strip() != "Token" or not secrets.compare_digest(token.strip(),
                                                                      self.api_key):
                raise _HTTPError(401, ["Invalid API key"])
            wait = self.minute_ledger.charge()
            if wait is None:
                wait = self.ledger.charge()
            if wait is not None:
                return self._too_many(wait)
            _, sep, rest = path.partition("/api/")
            if not sep:
                raise _HTTPError(404, ["The requested URL was not found"])
            parts = [p for p in rest.split("/") if p]
            q = {k: v[-1] for k, v in query.items()}
            with self._lock:
                status, h, out = self._route(method, parts, q, headers, body)
            h.update(self._limit_headers())
            return status, h, out
        except _HTTPError as e:
            return _json(e.status, e.body, {**e.headers, **self._limit_headers()})
        except TransientError as e:  # the store's injected faults
            if e.maybe_committed:
                raise DroppedConnection(str(e)) from None
            if isinstance(e, InjectedThrottle):
                return self._too_many(e.retry_after)
            return _json(503, {"errors": {"code": 503, "message": [
                "Service temporarily unavailable"]}})
        except FatalError:
            return self._too_many(3600.0)

    def _route(self, method: str, parts: list[str], q: dict[str, str],
               headers: dict[str, str], body: bytes) -> Response:
        if not parts:
            raise _HTTPError(404, ["The requested URL was not found"])
        head = parts[0]
        if head == "job_statuses" and len(parts) == 2 and method == "GET":
            return self._job(parts[1])
        if head == "selector" and parts[1:] == ["owners"] and method == "GET":
            return self._owners()
        if head == "filtered_search" and len(parts) == 2 and method == "POST":
            obj = _SINGULAR_ENTITY.get(parts[1]) or self._custom(parts[1])
            return self._filtered_search(obj, self._body(body))
        if head == "settings":
            return self._settings(method, parts[1:], body)
        if head == "documents":
            if len(parts) == 1 and method == "POST":
                return self._upload(headers, body)
            if len(parts) == 2 and method == "DELETE":
                return self._delete_document(parts[1])
            raise _HTTPError(404, ["The requested URL was not found"])
        if head == "custom_module":
            if len(parts) < 2:
                raise _HTTPError(404, ["The requested URL was not found"])
            obj, rest = self._custom(parts[1]), parts[2:]
            single = plural = obj
        else:
            obj, rest = self._entity(head), parts[1:]
            _, single, _ = ENTITIES[obj]
            plural = head
        if not rest and method == "POST":
            return self._write(obj, "create", single, self._body(body))
        if rest == ["upsert"] and method == "POST":
            return self._write(obj, "upsert", single, self._body(body))
        if rest == ["bulk_upsert"] and method == "POST":
            return self._bulk_upsert(obj, plural, self._body(body))
        if rest == ["bulk_destroy"] and method == "POST" and (
                head == "custom_module" or head in BULK_DESTROY_ENTITIES):
            return self._bulk_destroy(obj, plural, self._body(body))
        if len(rest) == 1:
            rid = rest[0]
            if method == "GET":
                return self._get(obj, single, rid)
            if method == "PUT":
                return self._write(obj, "update", single, self._body(body), rid)
            if method == "DELETE":
                return self._delete(obj, rid)
        if len(rest) == 2 and rest[1] == "document_associations" and method == "GET":
            return self._documents(obj, rest[0])
        raise _HTTPError(404, ["The requested URL was not found"])

    def _entity(self, plural: str) -> str:
        obj = _PLURAL_ENTITY.get(plural)
        if obj is None or obj not in self._objects:
            if plural in self._objects and plural not in ENTITIES:  # settings of a custom module
                return plural
            raise _HTTPError(404, ["The requested URL was not found"])
        return obj

    def _custom(self, name: str) -> str:
        if name not in self._objects or name in ENTITIES:
            raise _HTTPError(404, [f"The type for {name} is invalid."])
        return name

    @staticmethod
    def _body(body: bytes) -> dict[str, Any]:
        try:
            return json_object(body)
        except BadBody as e:
            raise _HTTPError(400, ["Request body is not valid JSON" if e.not_json
                                   else "Request body must be a JSON object"]) from None

    # ------------------------------------------------------------------ records in
    def _to_store(self, obj: str, rec: Any) -> tuple[dict[str, Any], str | None]:
        """A vendor record -> (store values, external id). Unknown, read-only and plural
        ``custom_fields`` keys are ignored, as Freshsales does; bad choice ids raise 400."""
        if not isinstance(rec, dict):
            raise _HTTPError(400, ["Request body is invalid"])
        o = self._objects[obj]
        values: dict[str, Any] = {}
        ext: str | None = None
        pairs = [(k, v, False) for k, v in rec.items() if k not in ("custom_field",
                                                                     "custom_fields")]
        if isinstance(rec.get("custom_field"), dict):
            pairs += [(k, v, True) for k, v in rec["custom_field"].items()]
        errors: list[str] = []
        for k, v, in_custom in pairs:
            f = o.field(k)
            if f is None or f.read_only or f.type == FieldType.id or f.audit:
                continue  # silently ignored
            if k.startswith("cf_") != in_custom:
                continue  # custom fields are only read from custom_field (and vice versa)
            if k == self.external_id_field:
                ext = None if v in (None, "") else str(v)
                continue
            try:
                values[k] = self._value_in(obj, f, v)
            except ValueError:
                errors.append(f"{_label(f)} is invalid")
        if errors:
            raise _HTTPError(400, errors)
        return values, ext

    def _value_in(self, obj: str, f: FieldSchema, v: Any) -> Any:
        if v is None or v == "":
            return v
        choices = f.vendor.get("choices")
        if choices and is_dropdown(f):
            labels = {str(i): label for label, i in choices.items()}

            def one(x: Any) -> str:
                if isinstance(x, bool) or not (isinstance(x, int) or
                                               (isinstance(x, str) and x.isdigit())):
                    raise ValueError("a dropdown takes a choice id")
                if str(x) not in labels:
                    raise ValueError("unknown choice id")
                return labels[str(x)]

            return [one(x) for x in v] if isinstance(v, list) else one(v)
        if is_dropdown(f) and isinstance(v, int) and not isinstance(v, bool):
            return str(v)
        if f.type in (FieldType.lookup, FieldType.owner):
            if isinstance(v, list):
                if len(v) != 1:
                    raise ValueError("one id expected")
                v = v[0]
            if isinstance(v, bool) or not isinstance(v, (int, str)):
                raise ValueError("an id expected")
            return str(v)
        return v

    # ------------------------------------------------------------------ records out
    def _out(self, obj: str, rec: dict[str, Any]) -> dict[str, Any]:
        o = self._objects[obj]
        out: dict[str, Any] = {"id": int(rec["id"])}
        custom: dict[str, Any] = {}
        for k, v in rec.items():
            if k.startswith("$") or k == "id":
                continue
            f = o.field(k)
            if f is not None:
                choices = f.vendor.get("choices")
                if choices and is_dropdown(f):
                    v = [choices.get(x, x) for x in v] if isinstance(v, list) \
                        else choices.get(v, v)
                elif f.type in (FieldType.lookup, FieldType.owner) and isinstance(v, str) \
                        and v.isdigit():
                    v = [int(v)] if f.vendor.get("multi") else int(v)
            if k.startswith("cf_"):
                custom[k] = v
            else:
                out[k] = v
        if o.field(self.external_id_field) is not None:
            custom[self.external_id_field] = rec.get(EXTERNAL_ID_KEY)
        for f in o.fields:  # every custom field is present, null when empty
            if f.api_name.startswith("cf_"):
                custom.setdefault(f.api_name, None)
        out["custom_field"] = custom
        out["created_at"] = _iso(rec.get("$created_at"))
        out["updated_at"] = _iso(rec.get("$modified_at"))
        return out

    def _error_messages(self, obj: str, r: WriteResult) -> tuple[int, list[str]]:
        o = self._objects.get(obj)
        name = self.external_id_field if r.field == EXTERNAL_ID_KEY else r.field
        f = o.field(name) if o is not None and name else None
        label = _label(f) if f is not None else (name or "Record").replace("_", " ").capitalize()
        code = r.code or ""
        if code == "REQUIRED_FIELD_MISSING":
            return 400, [f"{label} can't be blank"]
        if code == "DUPLICATE_VALUE":
            return 400, [f"{label} has already been taken"]
        if code in ("NOT_FOUND", "ENTITY_IS_DELETED"):
            return 404, ["Record not found"]
        if code == "INJECTED":
            return 500, ["Something went wrong. Please try again"]
        if code == "STRING_TOO_LONG" and f is not None and f.max_length:
            return 400, [f"{label} is too long (maximum is {f.max_length} characters)"]
        if code == "OPERATION_NOT_ALLOWED":
            return 403, ["You are not authorized to perform this action"]
        return 400, [f"{label} is invalid"]

    # ------------------------------------------------------------------ writes
    def _write(self, obj: str, op: str, single: str, data: dict[str, Any],
               rid: str | None = None) -> Response:
        if single not in data:
            raise _HTTPError(400, [f"{single} is missing in the request body"])
        values, ext = self._to_store(obj, data[single])
        if op == "update":
            r = self.store.update(obj, [WriteItem("0", None, values, rid)])[0]  # keeps the ext id
        elif op == "create":
            r = self.store.create(obj, [WriteItem("0", ext, values)])[0]
        else:
            ident = data.get("unique_identifier")
            if not isinstance(ident, dict) or len(ident) != 1:
                raise _HTTPError(400, ["unique_identifier is invalid"])
            (key, value), = ident.items()
            r = self._upsert_by(obj, key, value, values, ext)
        if not r.ok:
            status, messages = self._error_messages(obj, r)
            if status == 500:
                return _json(500, {"errors": {"code": 500, "message": messages}})
            raise _HTTPError(status, messages)
        rec = self.store.get(obj, [r.dest_id])[r.dest_id]
        status = 201 if (op == "create" or (op == "upsert" and r.created)) else 200
        return _json(status, {single: self._out(obj, rec)})

    def _upsert_by(self, obj: str, key: str, value: Any, values: dict[str, Any],
                   ext: str | None) -> WriteResult:
        if key == self.external_id_field:
            if value in (None, ""):
                raise _HTTPError(400, ["unique_identifier is invalid"])
            return self.store.upsert(obj, [WriteItem("0", str(value), values)])[0]
        f = self._objects[obj].field(key)
        if f is None:
            raise _HTTPError(400, ["unique_identifier is invalid"])
        match = next((r for r in self.store.list_records(obj) if r.get(key) == value), None)
        if match is None:
            return self.store.create(obj, [WriteItem("0", ext, {**values, key: value})])[0]
        return self.store.update(obj, [WriteItem("0", None, values, match["id"])])[0]

    def _bulk_upsert(self, obj: str, plural: str, data: dict[str, Any]) -> Response:
        items = data.get(plural)
        if not isinstance(items, list) or not items:
            raise _HTTPError(400, [f"{plural} is missing in the request body"])
        if len(items) > MAX_BULK:
            raise _HTTPError(400, [f"A maximum of {MAX_BULK} records can be upserted at once"])
        failures: list[dict[str, Any]] = []
        batch: list[WriteItem] = []
        index_of: dict[str, int] = {}
        for i, item in enumerate(items):
            ident = {k: v for k, v in item.items() if k != "data"} \
                if isinstance(item, dict) else {}
            value = ident.get(self.external_id_field)
            try:
                if len(ident) != 1 or value in (None, ""):
                    raise _HTTPError(400, ["unique_identifier is invalid"])
                values, _ = self._to_store(obj, item.get("data"))
            except _HTTPError as e:
                failures.append({"index": i, "unique_identifier": ident,
                                 "errors": e.body["errors"]})
                continue
            if str(value) in index_of:
                failures.append({"index": i, "unique_identifier": ident, "errors": {
                    "code": 400, "message": ["unique_identifier is repeated in the request"]}})
                continue
            index_of[str(value)] = i
            batch.append(WriteItem(str(value), str(value), values))
        job_id = str(ID_BASE // 1000 + len(self.jobs) + 1)
        job = {"id": int(job_id), "job_type_name": "bulk_upsert", "status": "in_progress",
               "progress": 0, "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
               "status_updated_at": None, "data": {}, "_polls": 0}
        results = self.store.upsert(obj, batch) if batch else []  # faults raise here
        for r in results:
            if not r.ok:
                status, messages = self._error_messages(obj, r)
                failures.append({"index": index_of[r.key],
                                 "unique_identifier": {self.external_id_field: r.key},
                                 "errors": {"code": status, "message": messages}})
        failures.sort(key=lambda f: f["index"])
        job["data"] = {"total": len(items), "success": len(items) - len(failures),
                       "failed": len(failures), "failures": failures}
        self.jobs[job_id] = job
        return _json(202, {"job_id": int(job_id)})

    def _job(self, job_id: str) -> Response:
        job = self.jobs.get(job_id)
        if job is None:
            raise _HTTPError(404, ["Record not found"])
        job["_polls"] += 1
        if job["status"] == "in_progress" and job["_polls"] > self.job_polls:
            job["status"], job["progress"] = "completed", 100
            job["status_updated_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        return _json(200, {"job_status": {k: v for k, v in job.items() if not
                                          k.startswith("_")}})

    def _bulk_destroy(self, obj: str, plural: str, data: dict[str, Any]) -> Response:
        """``POST /api/{e}/bulk_destroy`` ``{"selected_ids": [...]}`` (API_NOTES.md 3.3 [3p];
        202 in the unofficial endpoint index, bulkDestroyContacts). Neither gives the response
        body or a limit: this answers 202 with a message only, having deleted what it could;
        unknown ids and records the store refuses (injected record errors) are left as they
        are, without a word, so a client must read the ids back to know."""
        ids = data.get("selected_ids")
        if not isinstance(ids, list) or not ids or not all(
                isinstance(i, (int, str)) and not isinstance(i, bool) and str(i).strip()
                for i in ids):
            raise _HTTPError(400, ["selected_ids is invalid"])
        self.store.delete(obj, list(dict.fromkeys(str(i) for i in ids)))  # faults raise here
        return _json(202, {"message": f"Your {plural.replace('_', ' ')} are being deleted."})

    def _delete(self, obj: str, rid: str) -> Response:
        r = self.store.delete(obj, [rid])[0]
        if not r.ok:
            status, messages = self._error_messages(obj, r)
            raise _HTTPError(status, messages)
        return _json(200, {"success": True})

    # ------------------------------------------------------------------ reads
    def _get(self, obj: str, single: str, rid: str) -> Response:
        found = self.store.get(obj, [rid])
        if rid not in found:
            raise _HTTPError(404, ["Record not found"])
        return _json(200, {single: self._out(obj, found[rid])})

    def _filtered_search(self, obj: str, data: dict[str, Any]) -> Response:
        rules = data.get("filter_rule") or []
        if not isinstance(rules, list):
            raise _HTTPError(400, ["filter_rule is invalid"])
        try:
            page = max(int(data.get("page") or 1), 1)
            per_page = int(data.get("per_page") or 25)
        except (TypeError, ValueError):
            raise _HTTPError(400, ["page is invalid"]) from None
        if not 1 <= per_page <= 100:
            raise _HTTPError(400, ["per_page should be between 1 and 100"])
        if obj == "Document":  # documents are files: list the uploaded ones
            return self._search_documents(page, per_page)
        rows: list[dict[str, Any]] | None = None
        conds = []
        for rule in rules:
            if not isinstance(rule, dict) or rule.get("operator") not in ("is_in", "is",
                                                                          "is_after"):
                raise _HTTPError(400, ["filter_rule is invalid"])
            attr, op, value = rule.get("attribute"), rule["operator"], rule.get("value")
            if attr == self.external_id_field and op == "is_in" and isinstance(value, list):
                found = self.store.find_by_external_id(obj, [str(v) for v in value])
                rows = list(self.store.get(obj, sorted(set(found.values()))).values())
            elif attr == "id" and op == "is_in" and isinstance(value, list) and rows is None:
                rows = list(self.store.get(obj, sorted({str(v) for v in value})).values())
            else:
                conds.append((attr, op, value))
        if rows is None:
            rows = list(self.store.list_records(obj))
        out = [self._out(obj, r) for r in rows]
        for attr, op, value in conds:
            out = [r for r in out if _matches(r, str(attr), op, value)]
        out.sort(key=lambda r: (r.get("created_at") or "", r["id"]))
        total = len(out)
        chunk = out[(page - 1) * per_page: page * per_page]
        plural = ENTITIES[obj][0] if obj in ENTITIES else obj
        return _json(200, {plural: chunk, "meta": {"total_pages": max(math.ceil(total / per_page),
                                                                     1),
                                                   "total": total}})

    def _search_documents(self, page: int, per_page: int) -> Response:
        rows = self.store._db.execute(  # noqa: SLF001 (the sandbox owns its store)
            "SELECT id, obj, record_id, file_name, size FROM attachments ORDER BY created_at, id"
        ).fetchall()
        docs = [{"id": int(i), "name": n, "file_name": n, "content_file_size": size,
                 "targetable_type": o, "targetable_id": int(r) if r.isdigit() else r}
                for i, o, r, n, size in rows]
        chunk = docs[(page - 1) * per_page: page * per_page]
        return _json(200, {"documents": chunk, "meta": {
            "total_pages": max(math.ceil(len(docs) / per_page), 1), "total": len(docs)}})

    def _owners(self) -> Response:
        return _json(200, {"users": [{"id": int(u.id) if u.id.isdigit() else u.id,
                                      "display_name": u.name, "email": u.email,
                                      "is_active": u.active}
                                     for u in self.store.list_users()]})

    # ------------------------------------------------------------------ settings
    def _settings(self, method: str, rest: list[str], body: bytes) -> Response:
        """``settings/{e}/fields``, ``settings/{e}/forms``, ``settings/{e}/forms/{id}/fields``
        and ``settings/module_customizations`` (API_NOTES.md 3.4/3.5)."""
        if rest == ["module_customizations"]:
            if method == "POST":
                return self._create_module(self._body(body))
            if method == "GET":
                mods = [self._module_meta(o) for o in self._schema.objects if o.custom]
                return _json(200, {"module_customizations": mods})
        if len(rest) == 2 and rest[0] == "module_customizations" and method == "GET":
            o = next((o for o in self._schema.objects if o.custom and
                      str(_module_id(o.api_name)) == rest[1]), None)
            if o is None:
                raise _HTTPError(404, ["Record not found"])
            return _json(200, {"module_customization": self._module_meta(o)})
        if len(rest) == 2 and rest[1] == "fields" and method == "GET":
            return self._fields(self._entity(rest[0]))
        if len(rest) == 2 and rest[1] == "forms" and method == "GET":
            o = self._objects[self._entity(rest[0])]
            return _json(200, {"forms": [{
                "id": _form_id(o.api_name), "name": "DefaultForm", "active": True,
                "field_class": o.api_name, "fields": [self._field_meta(o, f) for f in o.fields
                                                      if f.api_name != "id"]}]})
        if len(rest) == 4 and rest[1] == "forms" and rest[3] == "fields" and method == "POST":
            obj = self._entity(rest[0])
            if rest[2] != str(_form_id(obj)):
                raise _HTTPError(404, ["Record not found"])
            return self._create_field(obj, self._body(body))
        raise _HTTPError(404, ["The requested URL was not found"])

    def _module_meta(self, o: ObjectSchema) -> dict[str, Any]:
        return {"id": _module_id(o.api_name), "entity_name": o.api_name,
                "singular_name": o.label or o.api_name,
                "plural_name": o.plural_label or o.label or o.api_name, "custom": True,
                "icon": o.vendor.get("icon"), "description": o.vendor.get("description")}

    def _create_module(self, data: dict[str, Any]) -> Response:
        mod = data.get("module_customization")
        if not isinstance(mod, dict):
            raise _HTTPError(400, ["module_customization is missing in the request body"])
        missing = [k for k in ("entity_name", "singular_name", "plural_name", "icon")
                   if not isinstance(mod.get(k), str) or not mod[k].strip()]
        if missing:
            raise _HTTPError(400, [f"{k.replace('_', ' ').capitalize()} can't be blank"
                                   for k in missing])
        name = mod["entity_name"].strip()
        if check_custom_name("module", name):
            raise _HTTPError(400, ["Entity name is invalid"])
        if name in self._objects or name in _PLURAL_ENTITY:
            raise _HTTPError(400, ["Entity name has already been taken"])
        obj = ObjectSchema(
            api_name=name, label=mod["singular_name"], plural_label=mod["plural_name"],
            custom=True, vendor={"icon": mod["icon"], "description": mod.get("description")},
            capabilities=ObjectCapabilities(upsert=True, attachments=True, notes=True),
            fields=[FieldSchema(api_name="id", type=FieldType.id, read_only=True),
                    FieldSchema(api_name="name", type=FieldType.text,
                                max_length=CUSTOM_NAME_MAX_LENGTH,
                                label="Name", required=True),
                    FieldSchema(api_name="owner_id", type=FieldType.owner, label="Owner",
                                lookup_targets=["User"])])
        self._change_schema(obj)
        return _json(200, {"module_customization": self._module_meta(self._objects[name])})

    def _create_field(self, obj: str, data: dict[str, Any]) -> Response:
        label = data.get("label")
        code = data.get("field_type")
        if not isinstance(label, str) or not label.strip():
            raise _HTTPError(400, ["Label can't be blank"])
        if isinstance(code, bool) or not isinstance(code, int) or code not in _TYPE_OF_CODE:
            raise _HTTPError(400, ["Field type is invalid"])
        name = custom_api_name(label.strip(), "field")
        if self._objects[obj].field(name) is not None:
            raise _HTTPError(400, ["Label has already been taken"])
        fs_type = _TYPE_OF_CODE[code]
        f = FieldSchema(api_name=name, label=label.strip(), type=FRESHSALES_TYPES[fs_type],
                        required=bool(data.get("required")), custom=True,
                        max_length=255 if fs_type in ("text", "email", "url", "phone_number")
                        else None, vendor={"type": fs_type, "custom_field": True})
        self._change_schema(self._objects[obj].model_copy(update={"fields": [f]}))
        o = self._objects[obj]
        meta = {**self._field_meta(o, o.field(name)), "form_id": _form_id(obj), "custom": True,
                "editable": True, "visible": True}
        return _json(200, {"field": meta})

    def _fields(self, obj: str) -> Response:
        o = self._objects[obj]
        return _json(200, {"fields": [self._field_meta(o, f) for f in o.fields]})

    @staticmethod
    def _field_meta(o: ObjectSchema, f: FieldSchema) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "id": zlib.crc32(f"{o.api_name}.{f.api_name}".encode()), "name": f.api_name,
            "label": _label(f), "type": f.vendor.get("type") or _FS_TYPES.get(f.type, "text"),
            "required": f.required, "default": not f.api_name.startswith("cf_"),
            "base_model": o.api_name, "visible": True,
        }
        choices = f.vendor.get("choices")
        if choices:
            meta["choices"] = [{"id": i, "value": v, "position": n + 1}
                               for n, (v, i) in enumerate(choices.items())]
        return meta

    # ------------------------------------------------------------------ documents
    def _upload(self, headers: dict[str, str], body: bytes) -> Response:
        ctype = headers.get("content-type", "")
        if not ctype.startswith("multipart/form-data"):
            raise _HTTPError(400, ["File can't be blank"])
        if len(body) > ATTACHMENT_LIMIT_BYTES + 64 * 1024:
            raise _HTTPError(400, ["File size should be less than 150 MB"])
        upload = multipart_form(ctype, body)
        form = upload.texts() if upload is not None else {}
        if upload is None or not upload.has_file:
            raise _HTTPError(400, ["File can't be blank"])
        ttype, tid = form.get("targetable_type", ""), form.get("targetable_id", "")
        if ttype not in DOCUMENT_TARGETS or ttype not in self._objects:
            raise _HTTPError(400, ["The type for targetable is invalid."])
        name = form.get("file_name") or upload.filename or "file"
        content = upload.content or b""
        self._upload_seq += 1
        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp) / "upload.bin"
            p.write_bytes(content)
            # a fresh key per request: Freshsales does not deduplicate uploads
            r = self.store.upload_attachment(ttype, tid, name, p,
                                             key=f"upload-{secrets.token_hex(8)}")
        if not r.ok:
            if r.code == "FILE_TOO_LARGE":
                raise _HTTPError(400, ["File size should be less than 150 MB"])
            if r.code == "INJECTED":
                return _json(500, {"errors": {"code": 500, "message": [
                    "Something went wrong. Please try again"]}})
            raise _HTTPError(400, ["Targetable is invalid"])
        return _json(200, {"document": {
            "id": int(r.dest_id or 0), "name": name, "content_file_size": len(content),
            "targetable_type": ttype, "targetable_id": int(tid) if tid.isdigit() else tid,
            "is_shared": form.get("is_shared", "false") == "true",
            "created_at": datetime.now(UTC).isoformat(timespec="seconds")}})

    def _documents(self, obj: str, rid: str) -> Response:
        if not self.store.get(obj, [rid]):
            raise _HTTPError(404, ["Record not found"])
        docs = [{"id": int(a["id"]), "name": a["name"], "content_file_size": a["size"],
                 "targetable_type": obj, "targetable_id": int(rid) if rid.isdigit() else rid}
                for a in self.store.attachments(obj, rid)]
        return _json(200, {"documents": docs, "meta": {"total": len(docs)}})

    def _delete_document(self, doc_id: str) -> Response:
        r = self.store.delete_attachments([doc_id])[0]
        if not r.ok:
            raise _HTTPError(404, ["Record not found"])
        return _json(200, {"success": True})


def _form_id(obj: str) -> int:
    return 40_000_000 + zlib.crc32(f"form:{obj}".encode()) % 1_000_000


def _module_id(obj: str) -> int:
    return 50_000_000 + zlib.crc32(f"module:{obj}".encode()) % 1_000_000


def _matches(rec: dict[str, Any], attr: str, op: str, value: Any) -> bool:
    got = rec.get(attr)
    if got is None and isinstance(rec.get("custom_field"), dict):
        got = rec["custom_field"].get(attr)
    if op == "is_in":
        vals = value if isinstance(value, list) else [value]
        return got is not None and str(got) in {str(v) for v in vals}
    if op == "is":
        return got is not None and str(got) == str(value)
    if op == "is_after":
        return got is not None and str(got) >= str(value)
    return False
