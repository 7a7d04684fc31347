"""A local Pipedrive emulator: Pipedrive's HTTP API (v2 + the v1 endpoints v2 lacks) in front of
the generic :class:`SandboxStore`.

A plain ASGI application, spoken to in process through the shared
:class:`~runtime.dialects._asgi.SyncASGITransport` (an app that raises
:class:`DroppedConnection` surfaces as ``httpx.RemoteProtocolError``, as a closed socket would).

What it reproduces (API_NOTES.md sections 4 and 6):

- ``/api/v2/{persons,organizations,deals,activities,products}``: POST, PATCH ``/{id}``, DELETE
  ``/{id}`` (soft delete), GET ``/{id}``, GET ``?ids=&updated_since=&cursor=`` (cursor
  pagination, ``additional_data.next_cursor``) in ``sort_by``/``sort_direction`` order (each
  endpoint's documented values, default ``id``/``asc``; others are a 400); ``/{entity}/search`` (``exact_match`` is
  case-insensitive) and ``/itemSearch/field`` (``match=exact`` is case-sensitive);
  ``/{entity}Fields`` with 40-character hash ``field_code`` for custom fields and option ids;
- ``/api/v1/notes`` (POST, PUT, DELETE, GET, list with ``start``/``limit`` pagination),
  ``/api/v1/files`` (multipart POST, list, DELETE), ``/api/v1/users``;
- ``/api/v1/leadFields`` (the lead's standard fields and the deal's custom fields, which leads
  share) and ``/api/v1/noteFields`` in v1's field shape (``key``, ``name``, ``field_type``,
  ``edit_flag``, ``mandatory_flag``, ``options``), ``start``/``limit`` pagination as their
  examples show it (``additional_data.pagination`` without ``next_start``);
- ``/api/v1/leads`` (POST, PATCH, DELETE, GET ``/{id}``, list): UUID ids, ISO 8601 times with
  milliseconds, ``value`` as ``{"amount", "currency"}``, a person or an organization required,
  the deal's custom fields by hash key at the top level, archived leads left out of the list,
  ``person_id``/``organization_id``/``owner_id``/``updated_since`` filters, ``sort``
  (``add_time DESC``...; oldest first by default) and ``start``/``limit`` pagination whose
  details sit directly in ``additional_data`` (openapi-v1.yaml ``getLeads``);
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

Projects, lead labels, archived-lead listing, saved filters and the remaining v1 endpoints are
not emulated (404, or a 400 naming the parameter).
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
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
_FIELDS = {fseg: obj for obj, (ver, _, fseg) in ENTITIES.items() if fseg and ver == "v2"}
_V1_FIELDS = {fseg: obj for obj, (ver, _, fseg) in ENTITIES.items() if fseg and ver == "v1"}
_SEARCHABLE = {"persons", "organizations", "deals", "products"}
_SEARCH_TYPES = {"varchar", "varchar_auto", "text", "double", "monetary", "phone", "address"}
# ``POST /api/v2/{entity}Fields`` field_type values (openapi-v2.yaml addPersonField)
CREATABLE_FIELD_TYPES = ("varchar", "text", "double", "phone", "date", "daterange", "time",
                         "timerange", "set", "enum", "varchar_auto", "address", "monetary",
                         "org", "people", "user")
_FILE_LINKS = {"person_id": "Person", "org_id": "Organization", "deal_id": "Deal",
               "product_id": "Product", "activity_id": "Activity", "lead_id": "Lead"}
_NOTE_LINKS = ("deal_id", "person_id", "org_id", "lead_id", "project_id")
_ERROR_INFO = "Please check developers.pipedrive.com for more information about Pipedrive API."
# ``sort_by`` values of each v2 listing (openapi-v2.yaml getPersons, getDeals, ...); the default
# of every one is ``id``, ``sort_direction`` ``asc``
_V2_SORT_BY = {"Activity": ("id", "update_time", "add_time", "due_date"),
               "Product": ("id", "name", "add_time", "update_time")}
_V2_SORT_BY_DEFAULT = ("id", "update_time", "add_time")
# openapi-v1.yaml: addLeadRequest's properties (updateLeadRequest adds is_archived) and the
# ``sort`` fields of getLeads
_LEAD_CREATE = ("title", "owner_id", "label_ids", "person_id", "organization_id", "value",
                "expected_close_date", "visible_to", "was_seen", "origin_id", "channel",
                "channel_id")
_LEAD_UPDATE = (*_LEAD_CREATE, "is_archived")
_LEAD_SORT = ("id", "title", "owner_id", "creator_id", "was_seen", "expected_close_date",
              "next_activity_id", "add_time", "update_time")
_LEAD_LINKS = ("person_id", "organization_id")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_DATE = re.compile(r"^\d{4}-\d\d-\d\d$")
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

# a standard link's field_type by its target (PIPEDRIVE_TYPES read back), so a note's deal_id is
# not answered as an organization link
_LOOKUP_TYPES = {"Organization": "org", "Person": "people", "Deal": "deal", "Lead": "lead",
                 "Activity": "activity", "Stage": "stage", "Project": "project"}


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


def _iso_ms(ts: str | None) -> str | None:
    """Leads answer ISO 8601 with milliseconds (``2020-10-14T11:30:36.551Z``), unlike the
    rest of v1."""
    if not ts:
        return None
    d = datetime.fromisoformat(ts).astimezone(UTC)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"


def _lead_uuid(n: int) -> str:
    """The ``n``-th lead's id: a version-4 UUID whose first 32 bits are ``n``, so creation order
    survives in the id (ties between equal ``add_time``s sort as Pipedrive's insertion order
    would) and a sandbox file gives the same ids on every run."""
    tail = hashlib.sha1(f"fmap-sandbox:lead:{n}".encode()).digest()[:12]
    return str(uuid.UUID(bytes=(n % 2**32).to_bytes(4, "big") + tail, version=4))


def _lead_seq(rid: str) -> int:
    try:
        return int(rid[:8], 16)
    except ValueError:
        return 0


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
        schema = _leads_inherit_deal_fields(schema)
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
        n = self.store._next_counter(f"pipedrive:{obj}")  # noqa: SLF001 (in the store's tx)
        return _lead_uuid(n) if obj == "Lead" else str(n)

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
        self._v2_sort(obj, rows, q)
        for k in ("owner_id", "org_id", "person_id", "deal_id"):
            if q.get(k):
                rows = [r for r in rows if str(r.get(k)) == q[k]]
        page = rows[start:start + limit]
        nxt = base64.urlsafe_b64encode(str(start + limit).encode()).decode() \
            if start + limit < len(rows) else None
        return _json(200, {"success": True, "data": [self._out(obj, r, "v2") for r in page],
                           "additional_data": {"next_cursor": nxt}})

    @staticmethod
    def _v2_sort(obj: str, rows: list[dict[str, Any]], q: dict[str, str]) -> None:
        """Order a v2 listing by ``sort_by``/``sort_direction``, refusing values the endpoint
        does not document (the spec's enums) as the API's validation does. Times tie-break by
        id, so a page boundary never splits records with one timestamp differently twice."""
        allowed = _V2_SORT_BY.get(obj, _V2_SORT_BY_DEFAULT)
        by = q.get("sort_by", "id")
        direction = q.get("sort_direction", "asc")
        if by not in allowed:
            raise _Err(400, f"sort_by must be one of: {', '.join(allowed)}")
        if direction not in ("asc", "desc"):
            raise _Err(400, "sort_direction must be one of: asc, desc")
        rows.sort(key=_sort_key(by), reverse=direction == "desc")

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

    def _v1_fields(self, obj: str, q: dict[str, str]) -> Response:
        """``GET /api/v1/{lead|note}Fields`` (getLeadFields, getNoteFields). Field ids and
        ``order_nr`` are positions (the emulator keeps no field ids of its own)."""
        fields = [f for f in self._objects[obj].fields if f.type != FieldType.file]
        page, extra = self._page(q, list(enumerate(fields, 1)), next_start=False)
        return _json(200, {"success": True, "data": [self._field_out(f, n) for n, f in page],
                           "additional_data": extra})

    @staticmethod
    def _field_out(f: FieldSchema, v1_id: int | None = None) -> dict[str, Any]:
        """One field as ``GET /api/v2/{entity}Fields`` answers, or with ``v1_id`` as the v1
        ``*Fields`` do (``edit_flag`` set on custom fields, as in the specs' examples). A custom
        field's name is the one it was created with (``vendor['field_name']``); fields set up
        from a mapping's schema changes answer their API name, which the loader maps back to
        itself."""
        code = f.vendor.get("key", f.api_name) if f.custom else f.api_name
        name = (f.vendor.get("field_name") or f.api_name) if f.custom else (f.label or f.api_name)
        ptype = f.vendor.get("field_type") or (
            _LOOKUP_TYPES.get((f.lookup_targets or [""])[0], "org")
            if f.type == FieldType.lookup else _TYPE_OF.get(f.type, "varchar"))
        if v1_id is not None:
            item: dict[str, Any] = {
                "id": v1_id, "key": code, "name": name, "order_nr": v1_id, "field_type": ptype,
                "active_flag": True, "edit_flag": f.custom, "bulk_edit_allowed": True,
                "mandatory_flag": f.required}
        else:
            item = {"field_code": code, "field_name": name, "field_type": ptype,
                    "is_custom_field": f.custom, "is_optional_response_field": False,
                    "required_fields": {"enabled": f.required}}
        if f.vendor.get("options"):
            item["options"] = [{"id": i, "label": lab} for lab, i in f.vendor["options"].items()]
        return item

    # ------------------------------------------------------------------ v1
    def _v1(self, method: str, rest: list[str], q: dict[str, str], headers: dict[str, str],
            body: bytes) -> Response:
        seg, n = rest[0], len(rest)
        if seg in _V1_FIELDS and n == 1 and method == "GET" and _V1_FIELDS[seg] in self._objects:
            return self._v1_fields(_V1_FIELDS[seg], q)
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
        if seg == "leads" and "Lead" in self._objects:
            return self._leads(method, rest[1:], q, headers, body)
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
    def _page(q: dict[str, str], rows: list[Any], *, flat: bool = False,
              next_start: bool = True) -> tuple[list[Any], dict[str, Any]]:
        """One ``start``/``limit`` page and its ``additional_data``: notes and files nest the
        details in ``pagination`` with a ``next_start``; leads (``flat``) put ``start``,
        ``limit`` and ``more_items_in_collection`` directly in ``additional_data`` and send no
        ``next_start`` (openapi-v1.yaml ``getLeads``); the v1 ``*Fields`` nest them and send no
        ``next_start`` either (``next_start=False``; the getLeadFields example)."""
        try:
            start = int(q.get("start") or 0)
            limit = min(int(q.get("limit") or 100), 500)
        except ValueError:
            raise _Err(400, "start and limit must be integers") from None
        if start < 0 or limit < 1:
            raise _Err(400, "start must be 0 or more and limit 1 or more")
        more = start + limit < len(rows)
        pag: dict[str, Any] = {"start": start, "limit": limit, "more_items_in_collection": more}
        if flat:
            return rows[start:start + limit], pag
        if more and next_start:
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


    # ------------------------------------------------------------------ v1 leads
    def _leads(self, method: str, rest: list[str], q: dict[str, str], headers: dict[str, str],
               body: bytes) -> Response:
        """``/api/v1/leads`` (openapi-v1.yaml addLead, getLeads, getLead, updateLead,
        deleteLead). The spec documents no 400 bodies for leads: the messages for bad input
        follow the leads service's (``"title" length must be less than or equal to 255
        characters long``; ``One of the "person_id" or "organization_id" must be set.``) in
        Pipedrive's usual error envelope, and the v1 "Invalid field(s) in the payload" for keys
        the request schema lacks."""
        if not rest:
            if method == "GET":
                return self._list_leads(q)
            if method == "POST":
                return self._write_lead(None, self._lead_body(headers, body))
            raise _Err(405, "Method not allowed")
        rid = rest[0]
        if len(rest) != 1 or not _UUID.match(rid):
            raise _lead_not_found()
        if method == "GET":
            rec = self.store.get("Lead", [rid]).get(rid)
            if rec is None:
                raise _lead_not_found()
            return _json(200, {"success": True, "data": self._lead_out(rec)})
        if method == "PATCH":
            return self._write_lead(rid, self._lead_body(headers, body))
        if method == "DELETE":
            if not self.store.delete("Lead", [rid])[0].ok:
                raise _lead_not_found()
            return _json(200, {"success": True, "data": {"id": rid}})
        raise _Err(405, "Method not allowed")

    def _lead_body(self, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        # "POST and PATCH requests made to the Leads endpoints must be done using
        # content-type: application/json" (the Leads API changelog, 2020-07-23)
        if "json" not in headers.get("content-type", ""):
            raise _Err(415, "Content-Type must be application/json")
        return self._body(body)

    def _lead_in(self, data: dict[str, Any], *, creating: bool) -> dict[str, Any]:
        """A lead body -> store values, each property checked against its documented type."""
        customs = self._custom_fields("Lead")
        allowed = _LEAD_CREATE if creating else _LEAD_UPDATE
        bad = [k for k in data if k not in allowed and k not in customs]
        if bad:
            raise _Err(400, f"Invalid field(s) in the payload: {', '.join(bad)}")
        if creating and not data.get("title"):
            raise _Err(400, '"title" is required')
        values: dict[str, Any] = {}
        for k, v in data.items():
            if k in customs:
                values[customs[k].api_name] = self._custom_in(customs[k], v)
            elif k == "value":
                values.update(_lead_value(v))
            else:
                values[k] = _lead_property(k, v)
        return values

    def _write_lead(self, rid: str | None, data: dict[str, Any]) -> Response:
        values = self._lead_in(data, creating=rid is None)
        current: dict[str, Any] = {}
        if rid is not None:
            current = self.store.get("Lead", [rid]).get(rid) or {}
            if not current:
                raise _lead_not_found()
        if not any((values[k] if k in values else current.get(k)) is not None
                   for k in _LEAD_LINKS):
            raise _Err(400, 'One of the "person_id" or "organization_id" must be set.')
        if rid is None and "owner_id" not in values:
            # "If not provided, the user making the request will be used."
            me = next((u.id for u in self.store.list_users() if u.id.isdigit() and u.active),
                      None)
            if me is not None:
                values["owner_id"] = me
        item = WriteItem(key="0", external_id=None, record=values, dest_id=rid)
        r = (self.store.create if rid is None else self.store.update)("Lead", [item])[0]
        if not r.ok:
            if r.code in ("NOT_FOUND", "ENTITY_IS_DELETED"):
                raise _lead_not_found()
            raise self._result_error("Lead", r)
        rec = self.store.get("Lead", [r.dest_id or ""]).get(r.dest_id or "", {"id": r.dest_id})
        return _json(201 if rid is None else 200, {"success": True, "data": self._lead_out(rec)})

    def _lead_out(self, rec: dict[str, Any]) -> dict[str, Any]:
        """A stored lead in getLead's shape; a custom field appears only when it has a value."""
        def num(k: str) -> int | None:
            v = rec.get(k)
            return int(v) if v is not None and str(v).isdigit() else None

        amount = rec.get("value")
        value = None
        if amount is not None:
            n = float(amount)
            value = {"amount": int(n) if n.is_integer() else n,
                     "currency": rec.get("currency") or "USD"}
        owner = num("owner_id")
        out: dict[str, Any] = {
            "id": rec["id"], "title": rec.get("title"), "owner_id": owner, "creator_id": owner,
            "label_ids": rec.get("label_ids") or [], "person_id": num("person_id"),
            "organization_id": num("organization_id"), "source_name": "API", "origin": "API",
            "origin_id": rec.get("origin_id"), "channel": rec.get("channel"),
            "channel_id": rec.get("channel_id"), "source_deal_id": None,
            "is_archived": bool(rec.get("is_archived")), "was_seen": bool(rec.get("was_seen")),
            "value": value, "expected_close_date": rec.get("expected_close_date"),
            "next_activity_id": None, "add_time": _iso_ms(rec.get("$created_at")),
            "update_time": _iso_ms(rec.get("$modified_at")),
            "visible_to": rec.get("visible_to") or "3",
            "cc_email": f"sandbox+lead{_lead_seq(rec['id'])}@sandbox.pipedrivemail.example",
        }
        for f in self._custom_fields("Lead").values():
            if rec.get(f.api_name) is not None:
                out[f.vendor["key"]] = self._custom_out(f, _number(f, rec[f.api_name]))
        return out

    def _list_leads(self, q: dict[str, str]) -> Response:
        """getLeads: the leads not archived, oldest first unless ``sort`` says otherwise."""
        if q.get("filter_id"):
            raise _Err(400, "filter_id: saved filters are not emulated by the sandbox")
        try:
            rows = [r for r in self.store.list_records(
                "Lead", modified_since=q.get("updated_since") or None)
                if not r.get("is_archived")]
        except ValueError:
            raise _Err(400, '"updated_since" must be in ISO 8601 date format') from None
        for k in ("owner_id", *_LEAD_LINKS):
            if q.get(k):
                if not q[k].isdigit():
                    raise _Err(400, f'"{k}" must be a number')
                rows = [r for r in rows if str(r.get(k)) == q[k]]
        for by, desc in reversed(_lead_sort(q.get("sort") or "add_time ASC")):
            rows.sort(key=_lead_sort_key(by), reverse=desc)
        page, extra = self._page(q, rows, flat=True)
        return _json(200, {"success": True, "data": [self._lead_out(r) for r in page],
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


def _sort_key(by: str) -> Callable[[dict[str, Any]], Any]:
    """A v2 listing's sort key: times (and names, due dates) tie-broken by the integer id."""
    column = {"add_time": "$created_at", "update_time": "$modified_at"}.get(by, by)
    if by == "id":
        return lambda r: int(r["id"])
    if column.startswith("$"):
        return lambda r: (datetime.fromisoformat(r[column]), int(r["id"]))
    return lambda r: (r.get(column) is None, str(r.get(column) or ""), int(r["id"]))


def _lead_sort(text: str) -> list[tuple[str, bool]]:
    """getLeads ``sort``: ``field [ASC|DESC]`` items separated by commas, fields from the
    spec's list; anything else is refused."""
    out = []
    for item in text.split(","):
        field, _, mode = item.strip().partition(" ")
        mode = mode.strip().upper() or "ASC"
        if field not in _LEAD_SORT or mode not in ("ASC", "DESC"):
            raise _Err(400, f'"sort" must be one of [{", ".join(_LEAD_SORT)}], each followed '
                       "by ASC or DESC")
        out.append((field, mode == "DESC"))
    return out


def _lead_sort_key(by: str) -> Callable[[dict[str, Any]], Any]:
    """Times tie-break by creation order (:func:`_lead_uuid`); other fields keep the order the
    previous sort left (Python's sort is stable), with empty values last."""
    if by in ("add_time", "update_time"):
        column = "$created_at" if by == "add_time" else "$modified_at"
        return lambda r: (datetime.fromisoformat(r[column]), _lead_seq(r["id"]))
    if by == "id":
        return lambda r: r["id"]
    column = "owner_id" if by == "creator_id" else by
    return lambda r: (r.get(column) is None,
                      _number_or_text(r.get(column)) if r.get(column) is not None else (0, ""))


def _number_or_text(v: Any) -> tuple[int, Any]:
    if isinstance(v, bool):
        return (0, int(v))
    try:
        return (0, float(v))
    except (TypeError, ValueError):
        return (1, str(v))


def _lead_not_found() -> _Err:
    """getLead / updateLead / deleteLead's documented 404 (LeadNotFoundResponse)."""
    err = _Err(404, "requested lead not found")
    err.body["error_info"] = "Object was not found."
    return err


def _lead_value(v: Any) -> dict[str, Any]:
    """``value``: ``{"amount": number, "currency": string}`` (both required) or null."""
    if v is None:
        return {"value": None, "currency": None}
    if not isinstance(v, dict):
        raise _Err(400, '"value" must be of type object')
    amount, currency = v.get("amount"), v.get("currency")
    if amount is None or currency is None:
        raise _Err(400, f'"value.{"amount" if amount is None else "currency"}" is required')
    if isinstance(amount, bool) or not isinstance(amount, (int, float)):
        raise _Err(400, '"value.amount" must be a number')
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
        raise _Err(400, '"value.currency" must be a 3-letter currency code')
    bad = [k for k in v if k not in ("amount", "currency")]
    if bad:
        raise _Err(400, f'"value.{bad[0]}" is not allowed')
    return {"value": amount, "currency": currency}


def _lead_property(k: str, v: Any) -> Any:
    """One standard lead property checked against openapi-v1.yaml's type -> the store's form
    (ids as strings, the others as sent)."""
    if k == "title":
        if not isinstance(v, str) or not v:
            raise _Err(400, '"title" must be a non-empty string')
        if len(v) > 255:
            raise _Err(400, '"title" length must be less than or equal to 255 characters long')
        return v
    if k in ("owner_id", "person_id", "organization_id", "channel"):
        if v is None and k != "owner_id":
            return None
        if isinstance(v, bool) or not isinstance(v, int):
            raise _Err(400, f'"{k}" must be a number')
        return v if k == "channel" else str(v)
    if k == "label_ids":
        if not isinstance(v, list) or not all(isinstance(x, str) and _UUID.match(x) for x in v):
            raise _Err(400, '"label_ids" must be an array of lead label ids (UUIDs)')
        return v
    if k == "expected_close_date":
        if v is not None and not (isinstance(v, str) and _DATE.match(v)):
            raise _Err(400, '"expected_close_date" must be a date in YYYY-MM-DD format')
        return v
    if k == "visible_to":
        if v not in ("1", "3", "5", "7"):
            raise _Err(400, '"visible_to" must be one of ["1", "3", "5", "7"]')
        return v
    if k in ("was_seen", "is_archived"):
        if not isinstance(v, bool):
            raise _Err(400, f'"{k}" must be a boolean')
        return v
    if v is not None and not isinstance(v, str):  # origin_id, channel_id
        raise _Err(400, f'"{k}" must be a string')
    return v


def _leads_inherit_deal_fields(schema: SystemSchema) -> SystemSchema:
    """Leads have no custom fields of their own: they "inherit the custom fields' structure
    from deals" (openapi-v1.yaml getLeads), keyed by the deal fields' hashes. The Lead object
    the store enforces gets the Deal's custom fields (whatever it held before is replaced)."""
    schema = schema.model_copy(deep=True)
    lead, deal = schema.object("Lead"), schema.object("Deal")
    if lead is None:
        return schema
    lead.fields = [f for f in lead.fields if not f.custom] + (
        [f.model_copy(deep=True) for f in deal.fields if f.custom] if deal is not None else [])
    return schema
