"""A local Pipedrive emulator: Pipedrive's HTTP API (v2 + the v1 endpoints v2 lacks) in front of
the generic :class:`SandboxStore`.

A plain ASGI application, spoken to in process through the shared
:class:`~runtime.dialects._asgi.SyncASGITransport` (an app that raises
:class:`DroppedConnection` surfaces as ``httpx.RemoteProtocolError``, as a closed socket would).

What it reproduces (API_NOTES.md sections 4 and 6):

- ``/api/v2/{persons,organizations,deals,activities,products}``: POST, PATCH ``/{id}``, DELETE
  ``/{id}`` (soft delete), GET ``/{id}``, GET ``?ids=&updated_since=&cursor=`` (cursor
  pagination, ``additional_data.next_cursor``); ``/{entity}/search`` (``exact_match`` is
  case-insensitive) and ``/itemSearch/field`` (``match=exact`` is case-sensitive);
  ``/{entity}Fields`` with 40-character hash ``field_code`` for custom fields and option ids;
- ``/api/v1/notes`` (POST, PUT, DELETE, GET, list with ``start``/``limit`` pagination),
  ``/api/v1/files`` (multipart POST, list, DELETE), ``/api/v1/users``;
- envelopes ``{"success", "data", "additional_data"}`` and ``{"success": false, "error",
  "error_info", "data": null, "additional_data": null}``; integer ids; RFC 3339 times in v2 and
  ``YYYY-MM-DD HH:MM:SS`` in v1; **no uniqueness** (the same email, even the same external id,
  on two persons is accepted); enum/set values as option ids (``[]`` for a set is a validation
  error; ``null`` clears); monetary ``{"value", "currency"}``; "Name must be given.";
  "Invalid field(s) in the payload: x"; unknown custom-field hashes;
- auth (``x-api-token`` or ``Authorization: Bearer``; a 401 otherwise) and rate limits: a daily
  token ledger (30,000 x plan multiplier x seats; per-endpoint cost from ``x-token-cost``), a
  rolling 2 s burst window per token and a separate 10-per-2-s search bucket; ``x-ratelimit-limit``
  / ``-remaining`` / ``-reset`` and ``x-daily-ratelimit-token-*`` on every response; 429 when
  exhausted, and a 403 HTML page (Cloudflare-like) for ``lockout_seconds`` after ``lockout_after``
  429s in a row;
- the store's injectable faults (a :class:`FaultPlan`): throttles -> 429, batch failures -> 500,
  timeouts and lost responses -> a dropped connection (a lost response after the write commits).

Leads, projects and the remaining v1 endpoints are not emulated (404).
"""

from __future__ import annotations

import base64
import hashlib
import math
import secrets
import tempfile
import threading
import time
import uuid
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
from runtime.destinations.sandbox_store import SandboxStore, real_clock
from runtime.dialects._asgi import (  # DroppedConnection, SyncASGITransport: re-exported
    ASGIEmulator,
    DroppedConnection,
    Response,
    SyncASGITransport,
)
from runtime.dialects._bodies import BadBody, json_object, json_response, multipart_form
from runtime.dialects.pipedrive.client import (
    BURST_WINDOW_S,
    ENTITIES,
    SEARCH_BURST,
    BurstWindow,
    plan_limits,
    token_cost,
)
from runtime.schema.model import FieldSchema, FieldType, SystemSchema

__all__ = ["PipedriveSandbox", "SyncASGITransport", "DroppedConnection", "field_code",
           "LOCKOUT_HTML"]

_V2 = {seg: obj for obj, (ver, seg, _) in ENTITIES.items() if ver == "v2"}
_FIELDS = {fseg: obj for obj, (ver, _, fseg) in ENTITIES.items() if fseg}
_SEARCHABLE = {"persons", "organizations", "deals", "products"}
_SEARCH_TYPES = {"varchar", "varchar_auto", "text", "double", "monetary", "phone", "address"}
# ``POST /api/v2/{entity}Fields`` field_type values (openapi-v2.yaml addPersonField)
CREATABLE_FIELD_TYPES = ("varchar", "text", "double", "phone", "date", "daterange", "time",
                         "timerange", "set", "enum", "varchar_auto", "address", "monetary",
                         "org", "people", "user")
_FILE_LINKS = {"person_id": "Person", "org_id": "Organization", "deal_id": "Deal",
               "product_id": "Product", "activity_id": "Activity"}
_NOTE_LINKS = ("deal_id", "person_id", "org_id", "lead_id", "project_id")
_ERROR_INFO = "Please check developers.pipedrive.com for more information about Pipedrive API."
LOCKOUT_HTML = (b"<!DOCTYPE html><html><head><title>Attention Required! | Cloudflare</title>"
                b"</head><body><h1>Sorry, you have been blocked</h1></body></html>")
_TYPE_OF = {
    FieldType.text: "varchar", FieldType.textarea: "text", FieldType.email: "varchar",
    FieldType.phone: "phone", FieldType.url: "varchar", FieldType.integer: "double",
    FieldType.decimal: "double", FieldType.currency: "monetary", FieldType.percent: "double",
    FieldType.boolean: "boolean", FieldType.date: "date", FieldType.datetime: "varchar",
    FieldType.picklist: "enum", FieldType.multipicklist: "set", FieldType.lookup: "org",
    FieldType.owner: "user",
}


def field_code(obj: str, name: str) -> str:
    """A stable 40-character hash key for a custom field (Pipedrive's are random per account)."""
    return hashlib.sha1(f"fmap-sandbox:{obj}:{name}".encode()).hexdigest()


class _Err(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"success": False, "error": message, "error_info": _ERROR_INFO,
                     "data": None, "additional_data": None, **extra}


_json = partial(json_response, content_type="application/json")


def _rfc3339(ts: str | None) -> str | None:
    if not ts:
        return None
    return datetime.fromisoformat(ts).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _v1time(ts: str | None) -> str | None:
    if not ts:
        return None
    return datetime.fromisoformat(ts).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


class _Ledger:
    """Daily tokens (reset at midnight UTC of the injected clock's day) and per-token windows."""

    def __init__(self, budget: int, burst: int, clock: Callable[[], float],
                 day_seconds: float = 86_400.0) -> None:
        self.budget = budget
        self._spent = 0
        self.clock = clock
        self.day_seconds = day_seconds  # scaled down by benchmarks on a fake clock
        self._day: int | None = None
        self.burst_limit = burst
        self._windows: dict[str, tuple[BurstWindow, BurstWindow]] = {}
        self.consecutive_429: dict[str, int] = {}
        self.locked_until: dict[str, float] = {}

    def windows(self, token: str) -> tuple[BurstWindow, BurstWindow]:
        if token not in self._windows:
            self._windows[token] = (BurstWindow(self.burst_limit, BURST_WINDOW_S, self.clock),
                                    BurstWindow(SEARCH_BURST, BURST_WINDOW_S, self.clock))
        return self._windows[token]

    def _roll(self) -> None:
        day = int(self.clock() // self.day_seconds)
        if day != self._day:  # a new day: the budget is back
            self._day = day
            self._spent = 0

    @property
    def spent(self) -> int:
        """Tokens spent today."""
        self._roll()
        return self._spent

    @spent.setter
    def spent(self, value: int) -> None:
        self._roll()
        self._spent = value

    @property
    def remaining(self) -> int:
        return max(0, self.budget - self.spent)


class PipedriveSandbox(ASGIEmulator):
    """The emulator. ``handle`` is the synchronous core; calling the instance is the ASGI app."""

    def __init__(
        self,
        schema: SystemSchema,
        path: str | Path,
        *,
        users: list[User] | None = None,
        token: str | None = None,
        plan: str = "growth",
        seats: int | None = None,
        daily_budget: int | None = None,
        burst: int | None = None,
        lockout_after: int = 6,
        lockout_seconds: float = 60.0,
        day_seconds: float = 86_400.0,
        faults: FaultPlan | None = None,
        clock: Callable[[], float] = time.monotonic,
        store_clock: Callable[[], datetime] | None = real_clock,
    ) -> None:
        self.path = Path(path)
        self.token = token or secrets.token_urlsafe(24)
        self.clock = clock
        per_day, plan_burst = plan_limits(plan)
        users = _int_users(users)
        n_seats = seats or max(1, len(users or []))
        self.ledger = _Ledger(daily_budget if daily_budget is not None else per_day * n_seats,
                              burst or plan_burst, clock, day_seconds)
        self.lockout_after = lockout_after
        self.lockout_seconds = lockout_seconds
        self.faults = faults
        self._lock = threading.RLock()
        self.requests = 0
        self.throttled = 0
        self._users = users
        self._store_clock = store_clock
        self.store = self._open_store(self._with_saved_fields(_pipedrive_schema(schema)))

    def _open_store(self, schema: SystemSchema) -> SandboxStore:
        self._schema = schema
        self._objects = {o.api_name: o for o in schema.objects}
        caps = DestinationCapabilities(name="sandbox:pipedrive", batch_size=1,
                                       native_upsert=False, rate_limit=RateLimit())
        return SandboxStore(schema, self.path, capabilities=caps, faults=self.faults,
                            users=self._users, id_factory=self._new_id, clock=self._store_clock)

    # ------------------------------------------------------------------ custom fields
    @property
    def _fields_file(self) -> Path:
        """Fields created through ``POST /{entity}Fields``, kept so a served org keeps them
        across a restart (the store's file only holds records)."""
        return self.path.with_name(self.path.name + ".pipedrive-fields.json")

    def _with_saved_fields(self, schema: SystemSchema) -> SystemSchema:
        f = self._fields_file
        if str(self.path) == ":memory:" or not f.is_file():
            return schema
        return schema.merged(SystemSchema.model_validate_json(f.read_text("utf-8")))

    def add_fields(self, obj: str, fields: list[FieldSchema]) -> None:
        """Add custom fields to ``obj`` (an admin's settings change, or the fields API): the
        store is reopened over the same file with the new schema."""
        with self._lock:
            overlay = SystemSchema(system=self._schema.system, objects=[
                self._objects[obj].model_copy(update={"fields": fields})])
            self.store.close()
            self.store = self._open_store(self._schema.merged(overlay))
            if str(self.path) != ":memory:":
                f = self._fields_file
                saved = (SystemSchema.model_validate_json(f.read_text("utf-8")) if f.is_file()
                         else SystemSchema(system=self._schema.system))
                f.write_text(saved.merged(overlay).model_dump_json(indent=1), "utf-8")

    def _create_field(self, obj: str, data: dict[str, Any]) -> Response:
        """``POST /api/v2/{entity}Fields`` (``field_name``, ``field_type``, ``options`` for
        enum/set): a new custom field with a 40-character hash ``field_code``."""
        from runtime.dialects._loader import api_safe_name
        from runtime.dialects.pipedrive.metadata import PIPEDRIVE_TYPES

        name = data.get("field_name")
        ptype = data.get("field_type")
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise _Err(400, "field_name must be given.")
        if ptype not in CREATABLE_FIELD_TYPES:
            raise _Err(400, f"Invalid field_type: {ptype!r}")
        opts = data.get("options")
        labels: list[str] = []
        if ptype in ("enum", "set"):
            if not isinstance(opts, list) or not opts or not all(
                    isinstance(o, dict) and isinstance(o.get("label"), str) and o["label"]
                    for o in opts):
                raise _Err(400, "options must be given for enum and set fields.")
            labels = [o["label"] for o in opts]
        api = api_safe_name(name)
        if not api or any(f.api_name.lower() == api.lower() for f in self._objects[obj].fields):
            raise _Err(400, f"A field named {name!r} already exists.")
        code = field_code(obj, api)
        ftype = PIPEDRIVE_TYPES[ptype]
        f = FieldSchema(api_name=api, label=name, type=ftype, custom=True,
                        max_length={"varchar": 255, "varchar_auto": 255, "phone": 255,
                                    "address": 255, "text": 65_535}.get(ptype),
                        picklist_values=labels,
                        lookup_targets={"org": ["Organization"], "people": ["Person"],
                                        "user": ["Users"]}.get(ptype, []),
                        vendor={"key": code, "field_type": ptype, "field_name": name})
        if labels:
            base = int(code[:4], 16) * 100
            f.vendor["options"] = {v: base + i + 1 for i, v in enumerate(labels)}
        self.add_fields(obj, [f])
        return _json(200, {"success": True, "data": self._field_out(f),
                           "additional_data": None})

    def _new_id(self, obj: str) -> str:
        return str(self.store._next_counter(f"pipedrive:{obj}"))  # noqa: SLF001 (in the store's tx)

    def schema(self) -> SystemSchema:
        return self._schema

    def close(self) -> None:
        self.store.close()

    # ------------------------------------------------------------------ dispatch
    def _token(self, headers: dict[str, str]) -> str | None:
        tok = headers.get("x-api-token")
        if not tok:
            scheme, _, rest = headers.get("authorization", "").partition(" ")
            tok = rest.strip() if scheme.lower() == "bearer" else None
        if tok and secrets.compare_digest(tok, self.token):
            return tok
        return None

    def _limit_headers(self, token: str) -> dict[str, str]:
        general, _ = self.ledger.windows(token)
        return {"x-ratelimit-limit": str(general.limit),
                "x-ratelimit-remaining": str(general.remaining),
                "x-ratelimit-reset": str(math.ceil(general.wait()) if general.remaining == 0
                                         else int(BURST_WINDOW_S)),
                "x-daily-ratelimit-token-limit": str(self.ledger.budget),
                "x-daily-ratelimit-token-remaining": str(self.ledger.remaining)}

    def _throttle(self, token: str, search: bool, cost: int) -> Response | None:
        """Book one request; a 429 (or the 403 lockout page) when a limit is exhausted."""
        led = self.ledger
        now = self.clock()
        if led.locked_until.get(token, 0.0) > now:
            return 403, {"content-type": "text/html; charset=UTF-8"}, LOCKOUT_HTML
        general, searches = led.windows(token)
        wait = general.wait()
        if search:
            wait = max(wait, searches.wait())
        exhausted = cost > led.remaining
        if wait > 0 or exhausted:
            self.throttled += 1
            n = led.consecutive_429.get(token, 0) + 1
            led.consecutive_429[token] = n
            if n > self.lockout_after:
                led.locked_until[token] = now + self.lockout_seconds
                led.consecutive_429[token] = 0
                return 403, {"content-type": "text/html; charset=UTF-8"}, LOCKOUT_HTML
            reset = 24 * 3600 if exhausted else max(1, math.ceil(wait))
            h = self._limit_headers(token)
            h["x-ratelimit-reset"] = str(reset)
            h["x-ratelimit-remaining"] = "0"
            return _json(429, {"success": False, "error": "Rate limit exceeded",
                               "errorCode": 429, "error_info": _ERROR_INFO, "data": None,
                               "additional_data": None}, h)
        led.consecutive_429[token] = 0
        general.take()
        if search:
            searches.take()
        led.spent += cost
        return None

    def handle(self, method: str, path: str, query: dict[str, list[str]],
               headers: dict[str, str], body: bytes) -> Response:
        """One request -> (status, headers, body). Raises :class:`DroppedConnection`."""
        self.requests += 1
        with self._lock:
            token = self._token(headers)
            if token is None:
                return _json(401, {"success": False, "error": "unauthorized access",
                                   "errorCode": 401, "error_info": _ERROR_INFO})
            parts = [p for p in path.split("/") if p]
            if len(parts) < 3 or parts[0] != "api" or parts[1] not in ("v1", "v2"):
                return _json(404, {"success": False, "error": "Unknown method .",
                                   "error_info": _ERROR_INFO, "data": None,
                                   "additional_data": None}, self._limit_headers(token))
            version, rest = parts[1], parts[2:]
            search = rest[-1] == "search" or rest[0] == "itemSearch"
            throttled = self._throttle(token, search, token_cost(version, method,
                                                                "/" + "/".join(rest)))
            if throttled is not None:
                return throttled
            q = {k: v[-1] for k, v in query.items()}
            try:
                status, h, out = (self._v2 if version == "v2" else self._v1)(
                    method, rest, q, headers, body)
            except _Err as e:
                status, h, out = _json(e.status, e.body)
            except TransientError as e:  # the store's injected faults
                if e.maybe_committed:
                    raise DroppedConnection(str(e)) from None
                if isinstance(e, InjectedThrottle):
                    self.throttled += 1
                    h = self._limit_headers(token)
                    # the plan's throttle_retry_after when it sets one (a fast loopback test)
                    reset = e.retry_after if e.retry_after is not None else 1
                    h.update({"x-ratelimit-remaining": "0", "x-ratelimit-reset": f"{reset:g}"})
                    return _json(429, {"success": False, "error": "Rate limit exceeded",
                                       "errorCode": 429, "error_info": _ERROR_INFO,
                                       "data": None, "additional_data": None}, h)
                status, h, out = _json(500, {"success": False, "error": "Internal server error",
                                             "error_info": _ERROR_INFO, "data": None,
                                             "additional_data": None})
            except FatalError:
                self.ledger.spent = self.ledger.budget
                status, h, out = _json(429, {"success": False, "error": "Rate limit exceeded",
                                             "errorCode": 429, "error_info": _ERROR_INFO,
                                             "data": None, "additional_data": None})
            h.update(self._limit_headers(token))
            if method == "POST" or method == "PUT":
                h["x-daily-requests-left"] = str(self.ledger.remaining // 5)
            return status, h, out

    # ------------------------------------------------------------------ v2
    def _v2(self, method: str, rest: list[str], q: dict[str, str], headers: dict[str, str],
            body: bytes) -> Response:
        seg = rest[0]
        if seg in _FIELDS and method == "GET" and len(rest) == 1:
            return self._fields(_FIELDS[seg])
        if seg in _FIELDS and method == "POST" and len(rest) == 1:
            if seg == "activityFields":  # not in the API (v1 or v2): Settings > Data fields
                raise _Err(404, "Unknown method .")
            return self._create_field(_FIELDS[seg], self._body(body))
        if seg == "itemSearch" and rest[1:] == ["field"] and method == "GET":
            return self._item_search(q)
        obj = _V2.get(seg)
        if obj is None or obj not in self._objects:
            raise _Err(404, "Unknown method .")
        n = len(rest)
        if n == 2 and rest[1] == "search" and method == "GET" and seg in _SEARCHABLE:
            return self._search(obj, q)
        if n == 1 and method == "POST":
            return self._write(obj, None, self._body(body), "v2")
        if n == 1 and method == "GET":
            return self._list(obj, q)
        if n == 2 and rest[1].isdigit():
            rid = rest[1]
            if method == "PATCH":
                return self._write(obj, rid, self._body(body), "v2")
            if method == "GET":
                rec = self.store.get(obj, [rid]).get(rid)
                if rec is None:
                    raise _Err(404, f"{obj} not found")
                return _json(200, {"success": True, "data": self._out(obj, rec, "v2"),
                                   "additional_data": None})
            if method == "DELETE":
                return self._delete(obj, rid)
        raise _Err(404, "Unknown method .")

    @staticmethod
    def _body(body: bytes) -> dict[str, Any]:
        try:
            return json_object(body)
        except BadBody as e:
            raise _Err(400, "Request body is not valid JSON" if e.not_json
                       else "Request body must be a JSON object") from None

    def _custom_fields(self, obj: str) -> dict[str, FieldSchema]:
        return {f.vendor["key"]: f for f in self._objects[obj].fields
                if f.custom and f.vendor.get("key")}

    def _in(self, obj: str, data: dict[str, Any], version: str) -> dict[str, Any]:
        """A request body -> store values (api names, labels, string ids)."""
        o = self._objects[obj]
        std = {f.api_name: f for f in o.fields if not f.custom}
        customs = self._custom_fields(obj)
        values: dict[str, Any] = {}
        bad = [k for k in data if k not in std and k != "custom_fields"
               and not (version == "v1" and k in customs)]
        if bad:
            raise _Err(400, f"Invalid field(s) in the payload: {', '.join(bad)}")
        cf = data.get("custom_fields") or {}
        if not isinstance(cf, dict):
            raise _Err(400, "custom_fields must be an object")
        if version == "v1":
            cf = {**cf, **{k: v for k, v in data.items() if k in customs}}
        for h, v in cf.items():
            f = customs.get(h)
            if f is None:
                raise _Err(400, f"Custom field with field_code {h} does not exist",
                           field_code=h)
            values[f.api_name] = self._custom_in(f, v)
        for k, v in data.items():
            if k == "custom_fields" or k in customs:
                continue
            f = std[k]
            if f.read_only:
                raise _Err(400, f"Field {k} is read-only")
            if k in ("emails", "phones") and isinstance(v, list):
                prim = next((x for x in v if isinstance(x, dict) and x.get("primary")),
                            v[0] if v else None)
                v = prim.get("value") if isinstance(prim, dict) else prim
            elif k in ("postal_address", "address") and isinstance(v, dict):
                v = v.get("value")
            elif f.type in (FieldType.lookup, FieldType.owner) and v is not None:
                if version == "v2" and not isinstance(v, int) and k != "lead_id":
                    raise _Err(400, f"{k} must be an integer")
                v = str(v)
            elif k == "visible_to" and v is not None:
                v = str(v)
            values[k] = v
        return values

    def _custom_in(self, f: FieldSchema, v: Any) -> Any:
        ptype = f.vendor.get("field_type")
        labels = {i: lab for lab, i in (f.vendor.get("options") or {}).items()}
        if v is None:
            return None
        if ptype == "enum":
            if v not in labels:
                raise _Err(400, f"Option id {v!r} is not valid for field {f.vendor['key']}",
                           field_code=f.vendor["key"])
            return labels[v]
        if ptype == "set":
            if not isinstance(v, list) or not v:
                raise _Err(400, f"Field {f.vendor['key']} of type set takes a non-empty array "
                           "of option ids (null clears it)", field_code=f.vendor["key"])
            if any(x not in labels for x in v):
                raise _Err(400, f"Option id is not valid for field {f.vendor['key']}",
                           field_code=f.vendor["key"])
            return [labels[x] for x in v]
        if ptype == "monetary":
            if not isinstance(v, dict) or "value" not in v:
                raise _Err(400, f"Field {f.vendor['key']} of type monetary takes "
                           '{"value", "currency"}', field_code=f.vendor["key"])
            return v["value"]
        return v

    def _result_error(self, obj: str, r: WriteResult) -> _Err:
        code = r.code or ""
        if code == "REQUIRED_FIELD_MISSING":
            name = r.field or "name"
            return _Err(400, "Name must be given." if name == "name"
                        else f"{name.capitalize()} must be given.")
        if code in ("NOT_FOUND", "ENTITY_IS_DELETED"):
            return _Err(404, f"{obj} not found")
        if code == "INJECTED":
            return _Err(409, "Conflict: the record is being modified; try again", code="conflict")
        if code == "INVALID_REFERENCE":
            return _Err(400, f"Invalid {r.field}: the linked item was not found")
        field = r.field
        f = self._objects[obj].field(field) if field else None
        shown = f.vendor.get("key", field) if f is not None and f.custom else field
        extra = {"field_code": shown} if f is not None and f.custom else {}
        return _Err(400, f"Validation failed: {shown}: {r.error or code}", **extra)

    def _write(self, obj: str, rid: str | None, data: dict[str, Any], version: str) -> Response:
        values = self._in(obj, data, version)
        if obj == "Note" and rid is None and not any(data.get(k) for k in _NOTE_LINKS):
            raise _Err(400, "Note must be attached to a deal, person, organization, lead or "
                       "project")
        if obj == "Note" and rid is None and not data.get("content"):
            raise _Err(400, "Content must be given.")
        item = WriteItem(key="0", external_id=None, record=values, dest_id=rid)
        if rid is None:
            r = self.store.create(obj, [item])[0]
        else:
            r = self.store.update(obj, [item])[0]
        if not r.ok:
            raise self._result_error(obj, r)
        rec = self.store.get(obj, [r.dest_id]).get(r.dest_id or "", {"id": r.dest_id})
        created = rid is None and obj == "Product"  # the spec answers 201 only here
        return _json(201 if created else 200,
                     {"success": True, "data": self._out(obj, rec, version),
                      "additional_data": None})

    def _delete(self, obj: str, rid: str) -> Response:
        r = self.store.delete(obj, [rid])[0]
        if not r.ok:
            raise _Err(404, f"{obj} not found")
        return _json(200, {"success": True, "data": {"id": int(rid)}, "additional_data": None})

    def _out(self, obj: str, rec: dict[str, Any], version: str) -> dict[str, Any]:
        """A store record -> Pipedrive's shape (integer ids, option ids, custom_fields)."""
        o = self._objects[obj]
        out: dict[str, Any] = {"id": int(rec["id"])}
        custom: dict[str, Any] = {}
        for f in o.fields:
            if f.api_name in ("id", "add_time", "update_time") or f.type == FieldType.file:
                continue
            v = rec.get(f.api_name)
            if v is None and not f.custom:
                continue  # unset: left out (the specs type most fields as non-nullable)
            v = _number(f, v)
            if f.custom:
                custom[f.vendor["key"]] = self._custom_out(f, v)
                continue
            if v is not None and f.type in (FieldType.lookup, FieldType.owner) and \
                    str(v).isdigit():
                v = int(v)
            elif f.api_name in ("emails", "phones"):
                v = [{"value": v, "primary": True, "label": "work"}] if v else []
            elif f.api_name in ("postal_address", "address") and version == "v2":
                v = {"value": v} if v else None
            elif f.api_name == "visible_to" and v is not None and str(v).isdigit():
                v = int(v)
            out[f.api_name] = v
        stamp = _rfc3339 if version == "v2" else _v1time
        out["add_time"] = stamp(rec.get("$created_at"))
        out["update_time"] = stamp(rec.get("$modified_at"))
        if version == "v2":
            out["is_deleted"] = False
            out["custom_fields"] = custom
        else:
            out["active_flag"] = True
            out.update(custom)  # v1: custom fields at the top level
        return out

    @staticmethod
    def _custom_out(f: FieldSchema, v: Any) -> Any:
        opts = f.vendor.get("options") or {}
        if v is None:
            return None
        if f.vendor.get("field_type") == "enum":
            return opts.get(v, v)
        if f.vendor.get("field_type") == "set":
            return [opts.get(x, x) for x in v]
        if f.vendor.get("field_type") == "monetary":
            return {"value": v, "currency": f.vendor.get("currency", "USD")}
        return v

    def _list(self, obj: str, q: dict[str, str]) -> Response:
        try:
            limit = min(int(q.get("limit") or 100), 500)
            start = int(base64.urlsafe_b64decode(q["cursor"].encode()).decode()) \
                if q.get("cursor") else 0
        except ValueError:
            raise _Err(400, "Invalid cursor or limit") from None
        if q.get("ids"):
            ids = [i for i in q["ids"].split(",") if i]
            if len(ids) > 100:
                raise _Err(400, "ids: at most 100 ids")
            found = self.store.get(obj, ids)
            rows = [found[i] for i in ids if i in found]
        else:
            try:
                rows = list(self.store.list_records(obj, modified_since=q.get("updated_since")
                                                    or None))
            except ValueError:
                raise _Err(400, "updated_since must be an RFC 3339 date-time") from None
            rows.sort(key=lambda r: int(r["id"]))
        for k in ("owner_id", "org_id", "person_id", "deal_id"):
            if q.get(k):
                rows = [r for r in rows if str(r.get(k)) == q[k]]
        page = rows[start:start + limit]
        nxt = base64.urlsafe_b64encode(str(start + limit).encode()).decode() \
            if start + limit < len(rows) else None
        return _json(200, {"success": True, "data": [self._out(obj, r, "v2") for r in page],
                           "additional_data": {"next_cursor": nxt}})

    def _search(self, obj: str, q: dict[str, str]) -> Response:
        term = q.get("term")
        if not term or len(term) < (1 if q.get("exact_match") == "true" else 2):
            raise _Err(400, "term: the search term must be at least 2 characters long")
        fields = [x for x in (q.get("fields") or "custom_fields,email,phone,name,notes").split(",")]
        exact = q.get("exact_match") in ("true", "1")
        folded = term.casefold()
        o = self._objects[obj]
        searchable = [f.api_name for f in o.fields if f.custom
                      and f.vendor.get("field_type") in _SEARCH_TYPES] \
            if "custom_fields" in fields else []
        std = [n for n, k in (("emails", "email"), ("phones", "phone"), ("name", "name"),
                              ("title", "name"), ("notes", "notes"), ("code", "code"))
               if k in fields]
        items = []
        for r in sorted(self.store.list_records(obj), key=lambda r: int(r["id"])):
            values = [r.get(n) for n in searchable + std]
            hit = any(isinstance(v, (str, int, float)) and
                      (str(v).casefold() == folded if exact else folded in str(v).casefold())
                      for v in values)
            if hit:
                item: dict[str, Any] = {"id": int(r["id"]), "type": obj.lower(),
                                        "name": r.get("name") or r.get("title"),
                                        "custom_fields": [str(r[n]) for n in searchable
                                                          if r.get(n) is not None]}
                if obj == "Person":
                    item.update({"emails": [r["emails"]] if r.get("emails") else [],
                                 "phones": [r["phones"]] if r.get("phones") else [],
                                 "notes": []})
                if r.get("owner_id") and str(r["owner_id"]).isdigit():
                    item["owner"] = {"id": int(r["owner_id"])}
                items.append({"result_score": 1.0 if exact else 0.5, "item": item})
        limit = min(int(q.get("limit") or 100), 500)
        return _json(200, {"success": True, "data": {"items": items[:limit]},
                           "additional_data": {"next_cursor": None}})

    def _item_search(self, q: dict[str, str]) -> Response:
        entity = {"person": "Person", "organization": "Organization", "deal": "Deal",
                  "product": "Product"}.get(q.get("entity_type", ""))
        if entity is None or not q.get("field") or "term" not in q:
            raise _Err(400, "entity_type, field and term are required")
        o = self._objects[entity]
        f = next((x for x in o.fields if x.vendor.get("key") == q["field"]
                  or (not x.custom and x.api_name == q["field"])), None)
        if f is None:
            raise _Err(400, f"Field {q['field']} not found")
        term, match = q["term"], q.get("match", "exact")
        out = []
        for r in sorted(self.store.list_records(entity), key=lambda r: int(r["id"])):
            v = r.get(f.api_name)
            if v is None:
                continue
            s = str(v)  # case sensitive, unlike /persons/search
            if (match == "exact" and s == term) or (match == "beginning" and s.startswith(term)) \
                    or (match == "middle" and term in s):
                out.append({"id": int(r["id"]), "name": r.get("name") or r.get("title")})
        return _json(200, {"success": True, "data": out, "additional_data": {"next_cursor": None}})

    def _fields(self, obj: str) -> Response:
        out = [self._field_out(f) for f in self._objects[obj].fields if f.type != FieldType.file]
        return _json(200, {"success": True, "data": out, "additional_data": {"next_cursor": None}})

    @staticmethod
    def _field_out(f: FieldSchema) -> dict[str, Any]:
        """One field as ``GET /api/v2/{entity}Fields`` answers. A custom field's name is the one
        it was created with (``vendor['field_name']``); fields set up from a mapping's schema
        changes answer their API name, which the loader maps back to itself."""
        item: dict[str, Any] = {
            "field_code": f.vendor.get("key", f.api_name) if f.custom else f.api_name,
            "field_name": (f.vendor.get("field_name") or f.api_name) if f.custom
            else (f.label or f.api_name),
            "field_type": f.vendor.get("field_type") or _TYPE_OF.get(f.type, "varchar"),
            "is_custom_field": f.custom, "is_optional_response_field": False,
            "required_fields": {"enabled": f.required},
        }
        if f.vendor.get("options"):
            item["options"] = [{"id": i, "label": lab} for lab, i in f.vendor["options"].items()]
        return item

    # ------------------------------------------------------------------ v1
    def _v1(self, method: str, rest: list[str], q: dict[str, str], headers: dict[str, str],
            body: bytes) -> Response:
        seg, n = rest[0], len(rest)
        if seg == "users" and n == 1 and method == "GET":
            users = [{"id": int(u.id) if u.id.isdigit() else u.id, "name": u.name,
                      "email": u.email, "active_flag": u.active, "is_admin": i == 0}
                     for i, u in enumerate(self.store.list_users())]
            return _json(200, {"success": True, "data": users, "additional_data": None})
        if seg == "files":
            if n == 1 and method == "POST":
                return self._upload(headers, body)
            if n == 1 and method == "GET":
                return self._files(q)
            if n == 2 and method == "DELETE":
                r = self.store.delete_attachments([rest[1]])[0]
                if not r.ok:
                    raise _Err(404, "File not found")
                return _json(200, {"success": True, "data": {"id": int(rest[1])}})
        if seg == "notes" and "Note" in self._objects:
            if n == 1 and method == "POST":
                data = self._body(body)
                for k in _NOTE_LINKS:
                    if isinstance(data.get(k), str) and data[k].isdigit():
                        data[k] = int(data[k])
                return self._write("Note", None, data, "v1")
            if n == 1 and method == "GET":
                return self._notes(q)
            if n == 2 and rest[1].isdigit():
                if method == "PUT":
                    return self._write("Note", rest[1], self._body(body), "v1")
                if method == "DELETE":
                    r = self.store.delete("Note", [rest[1]])[0]
                    if not r.ok:
                        raise _Err(404, "Note not found")
                    return _json(200, {"success": True, "data": int(rest[1])})
                if method == "GET":
                    rec = self.store.get("Note", [rest[1]]).get(rest[1])
                    if rec is None:
                        raise _Err(404, "Note not found")
                    return _json(200, {"success": True, "data": self._out("Note", rec, "v1")})
        raise _Err(404, "Unknown method .")

    @staticmethod
    def _page(q: dict[str, str], rows: list[Any]) -> tuple[list[Any], dict[str, Any]]:
        try:
            start = int(q.get("start") or 0)
            limit = min(int(q.get("limit") or 100), 500)
        except ValueError:
            raise _Err(400, "start and limit must be integers") from None
        more = start + limit < len(rows)
        pag: dict[str, Any] = {"start": start, "limit": limit, "more_items_in_collection": more}
        if more:
            pag["next_start"] = start + limit
        return rows[start:start + limit], {"pagination": pag}

    def _notes(self, q: dict[str, str]) -> Response:
        rows = list(self.store.list_records("Note", modified_since=q.get("updated_since")
                                            or None))
        for k in _NOTE_LINKS + ("user_id",):
            if q.get(k):
                rows = [r for r in rows if str(r.get(k)) == q[k]]
        rows.sort(key=lambda r: int(r["id"]), reverse=q.get("sort", "").endswith("DESC"))
        page, extra = self._page(q, rows)
        return _json(200, {"success": True, "data": [self._out("Note", r, "v1") for r in page],
                           "additional_data": extra})

    def _upload(self, headers: dict[str, str], body: bytes) -> Response:
        ctype = headers.get("content-type", "")
        if not ctype.startswith("multipart/form-data"):
            raise _Err(415, "Content-Type must be multipart/form-data")
        upload = multipart_form(ctype, body)
        form = upload.texts() if upload is not None else {}
        if upload is None or not upload.has_file:
            raise _Err(400, "File must be given.")
        links = [(k, v) for k, v in form.items() if k in _FILE_LINKS and v]
        if not links:
            raise _Err(400, "Item ID must be given (deal_id, person_id, org_id, product_id, "
                       "activity_id, lead_id or project_id)")
        link, rid = links[0]
        obj = _FILE_LINKS[link]
        name = upload.filename or "file"
        content = upload.content or b""
        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp) / "upload.bin"
            p.write_bytes(content)
            # no deduplication: every upload is a new file (a unique store key)
            r = self.store.upload_attachment(obj, rid, name, p, key=uuid.uuid4().hex)
        if not r.ok:
            if r.code == "NOT_FOUND":
                raise _Err(404, f"{obj} not found")
            if r.code == "INJECTED":
                raise _Err(409, "Conflict: try again", code="conflict")
            raise _Err(400, r.error or "File rejected")
        return _json(200, {"success": True, "data": self._file_out(self._file_rows(r.dest_id)[0])})

    def _file_rows(self, fid: str | None = None) -> list[tuple]:
        sql = "SELECT id, obj, record_id, file_name, size, created_at FROM attachments"
        args: tuple = ()
        if fid is not None:
            sql += " WHERE id=?"
            args = (fid,)
        with self.store._lock:  # noqa: SLF001 (the store has no listing of every attachment)
            return list(self.store._db.execute(sql, args))  # noqa: SLF001

    @staticmethod
    def _file_out(row: tuple) -> dict[str, Any]:
        fid, obj, rid, name, size, created = row
        link = {v: k for k, v in _FILE_LINKS.items()}.get(obj, "person_id")
        out: dict[str, Any] = {"id": int(fid) if str(fid).isdigit() else fid, "name": name,
                               "file_name": name, "file_size": size,
                               "add_time": _v1time(created), "update_time": _v1time(created),
                               "active_flag": True, "inline_flag": False,
                               "remote_location": "s3", "file_type": name.rsplit(".", 1)[-1]}
        out[link] = int(rid) if str(rid).isdigit() else rid
        return out

    def _files(self, q: dict[str, str]) -> Response:
        rows = sorted(self._file_rows(), key=lambda r: int(r[0]) if str(r[0]).isdigit() else 0,
                      reverse=q.get("sort", "").endswith("DESC"))
        page, extra = self._page(q, rows)
        return _json(200, {"success": True, "data": [self._file_out(r) for r in page],
                           "additional_data": extra})


def _number(f: FieldSchema, v: Any) -> Any:
    """The store keeps decimals as strings; Pipedrive answers numbers."""
    if isinstance(v, str) and f.type in (FieldType.currency, FieldType.decimal,
                                         FieldType.percent, FieldType.integer):
        try:
            n = float(v)
        except ValueError:
            return v
        return int(n) if f.type == FieldType.integer or n.is_integer() and "." not in v else n
    return v


def _int_users(users: list[User] | None) -> list[User] | None:
    """Pipedrive user ids are integers: keep numeric ids, number the others."""
    if users is None:
        return None
    return [u if u.id.isdigit() else User(str(1_000_001 + i), u.email, u.name, u.active)
            for i, u in enumerate(users)]


def _pipedrive_schema(schema: SystemSchema) -> SystemSchema:
    """Pipedrive has no unique fields and no external-id column: strip those flags; give every
    custom field a 40-character hash key, its Pipedrive type and option ids."""
    schema = schema.model_copy(deep=True)
    for o in schema.objects:
        for f in o.fields:
            f.unique = False
            f.external_id = False
            if not f.custom:
                continue
            f.vendor.setdefault("key", field_code(o.api_name, f.api_name))
            f.vendor.setdefault("field_type", _TYPE_OF.get(f.type, "varchar"))
            if f.picklist_values and "options" not in f.vendor:
                base = int(f.vendor["key"][:4], 16) * 100
                f.vendor["options"] = {v: base + i + 1 for i, v in enumerate(f.picklist_values)}
    return schema
