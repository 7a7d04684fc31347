"""The Zoho CRM v8 connector: the :class:`~runtime.destinations.base.Destination` interface over
an injected ``httpx.Client``.

Calls (API_NOTES.md section 1; ``{api}`` is the data centre's API domain):

================ ==========================================================================
create           ``POST {api}/crm/v8/{module}`` ``{"data": [...], "trigger": []}``
update           ``PUT {api}/crm/v8/{module}`` (every record carries ``id``)
upsert           ``POST {api}/crm/v8/{module}/upsert`` + ``duplicate_check_fields`` = the
                 external-id field
delete           ``DELETE {api}/crm/v8/{module}?ids=a,b`` (recycle bin)
get              ``GET {api}/crm/v8/{module}?ids=...&fields=...``
find by ext id   ``POST {api}/crm/v8/coql`` with ``in`` lists of at most 50 values
count            ``GET {api}/crm/v8/{module}/actions/count``
list_records     ``GET {api}/crm/v8/{module}?fields=&per_page=200`` + ``If-Modified-Since``,
                 following ``info.next_page_token``
list_users       ``GET {api}/crm/v8/users?type=ActiveUsers``
attachments      ``POST {api}/crm/v8/{module}/{id}/Attachments`` (multipart ``file``) after
                 ``GET`` of the same path (Zoho does not deduplicate: same name and size =
                 already uploaded); ids are ``{module}/{record id}/{attachment id}``;
                 ``DELETE .../Attachments/{id}`` removes one (rollback)
schema changes   ``POST /crm/v8/settings/fields?module=``, ``POST /crm/v8/settings/modules``
metadata         ``GET /crm/v8/settings/modules|fields|layouts``
================ ==========================================================================

Batches hold at most 100 records and pass ``trigger: []`` (no workflows during a migration).
Zoho answers a batch with one result per record **in request order**; the client pairs them by
position within the call and returns them keyed by item key. The external id is written to a
field (``Source_System_ID`` unless ``external_id_field`` says otherwise).

Errors: 429 ``TOO_MANY_REQUESTS`` -> ``TransientError(retry_after=details.retry_after)`` (a wait
longer than ``max_wait`` means the day's credits are spent -> ``FatalError``); 5xx and dropped
connections -> ``TransientError`` (``maybe_committed`` for writes); 401 ``INVALID_TOKEN`` /
``AUTHENTICATION_FAILURE`` -> one token refresh, then ``ZohoAuthError`` naming the environment
variables; a non-JSON body or missing keys -> :class:`ZohoProtocolError` naming the endpoint;
other whole-request errors -> :class:`ZohoAPIError` (both ``FatalError``). Per-record codes map to
``WriteResult``: ``INVALID_DATA`` / ``MANDATORY_NOT_FOUND`` / ``DUPLICATE_DATA`` keep the field
from ``details.api_name`` (or ``json_path``); ``RECORD_LOCKED`` is retryable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import httpx

from runtime.destinations.base import (
    CallStats,
    DestinationCapabilities,
    FatalError,
    TransientError,
    User,
    WriteItem,
    WriteResult,
)
from runtime.dialects._http import (
    APIError,
    OwnedHTTP,
    chunks,
    header_float,
    jsonable,
    local_file,
    parse_json,
    send,
)
from runtime.dialects.zoho.auth import REFRESH_HINT, TokenManager, ZohoAuthError, ZohoCredentials
from runtime.dialects.zoho.capabilities import ATTACHMENT_LIMIT_BYTES
from runtime.dialects.zoho.capabilities import BATCH_SIZE as MAX_BATCH
from runtime.dialects.zoho.ratelimit import (
    CreditGauge,
    Tier,
    destination_rate_limit,
    write_cost,
)
from runtime.schema.model import FieldType, SystemSchema

__all__ = ["ZohoClient", "ZohoAPIError", "ZohoProtocolError", "DEFAULT_EXTERNAL_ID_FIELD",
           "MAX_BATCH", "COQL_IN_LIMIT", "ATTACHMENT_LIMIT_BYTES", "zoho_field_spec"]

DEFAULT_EXTERNAL_ID_FIELD = "Source_System_ID"
COQL_IN_LIMIT = 50
MAX_FIELDS = 50  # `fields` parameter and COQL select columns
EXTERNAL_ID_KEY = "$external_id"
_CREDITS_PER_10 = {"create", "update", "upsert"}  # 1 credit per 10 records; other calls 1
_RETRYABLE_CODES = {"RECORD_LOCKED", "INTERNAL_ERROR", "RECORD_IN_BLUEPRINT"}
_AUTH_CODES = {"INVALID_TOKEN", "AUTHENTICATION_FAILURE"}
_PATH_FIELD = re.compile(r"^\$\.data\[\d+\]\.([^.\[]+)")


class ZohoAPIError(APIError):
    """A whole request Zoho refused (bad module, permission, scope, limits): retrying won't help."""


class ZohoProtocolError(FatalError):
    """Zoho answered something the connector cannot read (not JSON, keys missing)."""


def _attachment_id(module: str, record_id: str, attachment_id: str) -> str:
    return f"{module}/{record_id}/{attachment_id}"


def _coql_str(v: str) -> str:
    return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"


class ZohoClient(OwnedHTTP):
    """Zoho CRM v8 destination. Give it an ``httpx.Client`` (its transport decides where requests
    go: the real API, a ``MockTransport``, or the sandbox) or let it build one."""

    def __init__(
        self,
        *,
        api_domain: str = "https://www.zohoapis.com",
        accounts_domain: str = "https://accounts.zoho.com",
        credentials: ZohoCredentials | None = None,
        http: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        tier: Tier | None = None,
        schema: SystemSchema | None = None,
        external_id_field: str = DEFAULT_EXTERNAL_ID_FIELD,
        name: str = "zoho",
        timeout: float = 60.0,
        max_wait: float = 900.0,
        owns: Iterable[Any] = (),
        clock: Any = None,
    ) -> None:
        self.api_domain = api_domain.rstrip("/")
        self.external_id_field = external_id_field
        self.tier = tier or Tier()
        self.max_wait = max_wait
        self._schema = schema
        self._open_http(http, transport, timeout, owns)
        self.auth = TokenManager(credentials or ZohoCredentials.discover(), accounts_domain,
                                 self._http)
        self.capabilities = DestinationCapabilities(
            name=name, batch_size=MAX_BATCH, native_upsert=True, bulk=False,
            attachment_limit_bytes=ATTACHMENT_LIMIT_BYTES,
            rate_limit=destination_rate_limit(self.tier))
        self.stats = CallStats()
        import time

        self.credits = CreditGauge(self.tier, clock=clock or time.monotonic)
        self.paced = 0  # calls held back because the org's credits were estimated short
        self._module_of: dict[str, str] = {}  # record id -> module (Notes' Parent_Id)
        self._unknown_modules: set[str] = set()
        self._module_ids: dict[str, str] | None = None

    def __repr__(self) -> str:
        return f"ZohoClient(api={self.api_domain!r}, tier={self.tier.edition!r})"

    # ------------------------------------------------------------------ transport
    def _request(self, method: str, path: str, *, op: str, params: dict | None = None,
                 json_body: Any = None, headers: dict[str, str] | None = None,
                 files: Any = None, write: bool = False, n: int = 0,
                 cost: float | None = None) -> tuple[int, Any]:
        """One API call -> (status, parsed JSON or None for an empty body). ``cost``: its
        credits, when not the usual (``ceil(n / 10)`` for record writes, else 1)."""
        endpoint = f"{method} /crm/v8{path}"
        url = f"{self.api_domain}/crm/v8{path}"
        if cost is None:
            cost = write_cost(n) if op in _CREDITS_PER_10 else 1
        self._pace(endpoint, cost)
        refreshed = False
        while True:
            token = self.auth.token()
            h = {"Authorization": f"Zoho-oauthtoken {token}", **(headers or {})}
            self.stats.count_call(op, n)
            resp = send(self._http, method, url, endpoint=endpoint, write=write,
                        params=params, json=json_body, headers=h, files=files)
            status = resp.status_code
            if status not in (401, 429):
                self.credits.spend(cost)
            self.credits.observe(resp.headers.get("x-api-credits-remaining"))
            body = parse_json(resp, endpoint, ZohoProtocolError) if resp.content else None
            if status == 401 and (not isinstance(body, dict) or body.get("code") in _AUTH_CODES
                                  or "code" not in body):
                if not refreshed and self.auth.can_refresh:
                    refreshed = True
                    self.auth.refresh(stale=token)
                    continue
                code = body.get("code") if isinstance(body, dict) else None
                raise ZohoAuthError(f"{endpoint}: Zoho rejected the access token "
                                    f"({code or 'HTTP 401'}); {REFRESH_HINT}")
            if status == 429:
                self.stats.throttled += 1
                retry_after = self._retry_after(resp, body)
                if retry_after is None:  # Zoho may not say; the credits header still does
                    retry_after = self.credits.wait_for(cost) or None
                if retry_after is not None and retry_after > self.max_wait:
                    raise FatalError(
                        f"{endpoint}: Zoho API credits for the rolling 24 h window are spent "
                        f"(retry after {retry_after:.0f} s); resume the run later with --resume")
                raise TransientError(f"{endpoint}: 429 TOO_MANY_REQUESTS",
                                     retry_after=retry_after, maybe_committed=False)
            if status >= 500:
                raise TransientError(f"{endpoint}: HTTP {status}", maybe_committed=write)
            if body is not None and not isinstance(body, dict):
                raise ZohoProtocolError(f"{endpoint}: expected a JSON object, got "
                                        f"{type(body).__name__}")
            return status, body

    def _pace(self, endpoint: str, cost: float) -> None:
        """Hold a call back while the org's credits are estimated short (see
        :class:`CreditGauge`), as a :class:`TransientError` with ``retry_after``: the executor
        already sleeps on those (with its own, injectable clock), and nothing was sent."""
        wait = self.credits.wait_for(cost)
        if wait <= 0:
            return
        self.paced += 1
        left = self.credits.estimate() or 0.0
        if wait > self.max_wait:
            raise FatalError(
                f"{endpoint}: Zoho API credits for the rolling 24 h window are nearly spent "
                f"(about {left:.0f} left, {wait:.0f} s until this call's {cost:g}); resume the "
                "run later with --resume")
        raise TransientError(f"{endpoint}: waiting {wait:.1f} s for API credits (about "
                             f"{left:.1f} left in the 24 h window)", retry_after=wait,
                             maybe_committed=False)

    @staticmethod
    def _retry_after(resp: httpx.Response, body: Any) -> float | None:
        details = body.get("details") if isinstance(body, dict) else None
        if isinstance(details, dict) and isinstance(details.get("retry_after"), (int, float)):
            return float(details["retry_after"])
        return header_float(resp, "retry-after")

    def _fail(self, endpoint: str, status: int, body: Any) -> FatalError:
        if isinstance(body, dict) and "code" in body:
            return ZohoAPIError(endpoint, status, str(body.get("code")),
                                str(body.get("message", "")))
        return ZohoProtocolError(f"{endpoint}: HTTP {status} without a Zoho error body")

    def _data(self, endpoint: str, status: int, body: Any, key: str = "data") -> list[Any]:
        """The ``key`` list of a read response (empty for 204/304), else a connector error."""
        if status in (204, 304) or body is None:
            return []
        if status >= 400:
            raise self._fail(endpoint, status, body)
        items = body.get(key)
        if not isinstance(items, list):
            raise ZohoProtocolError(f"{endpoint}: response has no {key!r} list")
        return items

    # ------------------------------------------------------------------ schema helpers
    def schema(self) -> SystemSchema:
        if self._schema is None:
            from runtime.dialects import get_dialect

            self._schema = get_dialect("zoho").standard_schema()
        return self._schema

    def _field_types(self, module: str) -> dict[str, FieldType]:
        o = self.schema().object(module) or self._learn_module(module)
        return {f.api_name: f.type for f in o.fields} if o is not None else {}

    def _learn_module(self, module: str):
        """A module the bundled schema lacks (a custom module): read its fields from the org."""
        if module in self._unknown_modules:
            return None
        self._unknown_modules.add(module)
        from runtime.dialects.zoho.metadata import load_zoho_metadata
        from runtime.schema.io import SchemaLoadError

        try:
            learned = load_zoho_metadata(self.metadata(module), source_name=f"{module} (org)",
                                         object_name=module)
        except (FatalError, SchemaLoadError):
            return None
        self._schema = self.schema().merged(learned)
        return self._schema.object(module)

    def _read_fields(self, module: str) -> list[str] | None:
        o = self.schema().object(module)
        if o is None:
            return None
        names = [f.api_name for f in o.fields if f.type not in (FieldType.id, FieldType.array)
                 and not f.audit and f.api_name != self.external_id_field]
        return [self.external_id_field, *names][:MAX_FIELDS]

    # ------------------------------------------------------------------ record conversion
    def _to_zoho(self, module: str, types: dict[str, FieldType], item: WriteItem, *,
                 with_id: bool) -> dict[str, Any]:
        """``item`` as a Zoho record; ``types``: the module's field types (read once a batch)."""
        rec: dict[str, Any] = {}
        for k, v in item.record.items():
            t = types.get(k)
            if t in (FieldType.lookup, FieldType.owner) and isinstance(v, str) and v:
                ref: dict[str, Any] = {"id": v}
                if module == "Notes" and k == "Parent_Id":
                    parent = self._parent_module(module, v)
                    if parent is not None:
                        ref["module"] = self._module_ref(parent)
                v = ref
            rec[k] = jsonable(v)
        if item.external_id is not None:
            rec[self.external_id_field] = item.external_id
        if with_id:
            rec["id"] = item.dest_id
        return rec

    _PARENT_ORDER = ("Contacts", "Leads", "Accounts", "Deals")

    def _module_ref(self, api_name: str) -> dict[str, str]:
        """``{"api_name", "id"}`` (the spec's Minified_Module); module ids are read once."""
        if self._module_ids is None:
            self._module_ids = {}
            try:
                for m in self.modules().get("modules", []):
                    if isinstance(m, dict) and isinstance(m.get("api_name"), str) \
                            and isinstance(m.get("id"), str):
                        self._module_ids[m["api_name"]] = m["id"]
            except FatalError:
                pass  # without ids Zoho still resolves the module by api_name
        ref = {"api_name": api_name}
        if api_name in self._module_ids:
            ref["id"] = self._module_ids[api_name]
        return ref

    def _parent_module(self, module: str, rid: str) -> str | None:
        """The module of record ``rid`` (a Notes/Attachments parent): from the ids this client
        wrote or found, else by asking each possible parent module (a resumed run)."""
        if rid in self._module_of:
            return self._module_of[rid]
        o = self.schema().object(module)
        f = o.field("Parent_Id") if o is not None else None
        targets = list(f.lookup_targets) if f is not None else []
        targets.sort(key=lambda t: (self._PARENT_ORDER.index(t) if t in self._PARENT_ORDER
                                    else len(self._PARENT_ORDER)))
        for t in targets:
            status, resp = self._request("GET", f"/{t}/{rid}", op="get",
                                         params={"fields": "id"})
            if status == 200 and isinstance(resp, dict) and resp.get("data"):
                self._module_of[rid] = t
                return t
        return None

    def _from_zoho(self, rec: dict[str, Any]) -> dict[str, Any]:
        """A Zoho record as the executor sees it: lookups and owners as ids, the external-id
        field as ``$external_id`` (it is bookkeeping, not a value the mapping wrote)."""
        out: dict[str, Any] = {}
        for k, v in rec.items():
            if k == self.external_id_field:
                continue
            if isinstance(v, dict) and "id" in v:
                v = v["id"]
            out[k] = v
        out[EXTERNAL_ID_KEY] = rec.get(self.external_id_field)
        return out

    # ------------------------------------------------------------------ writes
    def create(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        return self._write("create", obj, items)

    def update(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        return self._write("update", obj, items)

    def upsert(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        return self._write("upsert", obj, items)

    def _write(self, op: str, module: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        out: list[WriteResult] = []
        for chunk in chunks(list(items), MAX_BATCH):
            out.extend(self._write_batch(op, module, chunk))
        return out

    def _write_batch(self, op: str, module: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        types = self._field_types(module)
        body: dict[str, Any] = {
            "data": [self._to_zoho(module, types, it, with_id=op == "update") for it in items],
            "trigger": [],
        }
        path = f"/{module}"
        method = "POST"
        if op == "upsert":
            path += "/upsert"
            body["duplicate_check_fields"] = [self.external_id_field]
        elif op == "update":
            method = "PUT"
        endpoint = f"{method} /crm/v8{path}"
        status, resp = self._request(method, path, op=op, json_body=body, write=True,
                                     n=len(items))
        results = resp.get("data") if isinstance(resp, dict) else None
        if not isinstance(results, list):
            if status >= 400:
                raise self._fail(endpoint, status, resp)
            raise ZohoProtocolError(f"{endpoint}: HTTP {status} response has no 'data' list")
        out: list[WriteResult] = []
        for item, res in zip(items, results, strict=False):  # request order, within this call
            out.append(self._result(op, module, item.key, res))
        return out  # keys without a result: the executor treats their outcome as unknown

    def _result(self, op: str, module: str, key: str, res: Any) -> WriteResult:
        if not isinstance(res, dict):
            return WriteResult(key=key, ok=False, code="MALFORMED_RESULT",
                               error="Zoho returned a result that is not an object")
        code = str(res.get("code") or "")
        details = res.get("details") if isinstance(res.get("details"), dict) else {}
        if res.get("status") == "success" or code == "SUCCESS":
            rid = details.get("id")
            if not isinstance(rid, str) or not rid:
                return WriteResult(key=key, ok=False, code="MALFORMED_RESULT",
                                   error="success without details.id")
            self._module_of[rid] = module
            created = True if op == "create" else (res.get("action") != "update"
                                                   if op == "upsert" else False)
            return WriteResult(key=key, ok=True, dest_id=rid, created=created)
        field = details.get("api_name") if isinstance(details.get("api_name"), str) else None
        if field is None and isinstance(details.get("json_path"), str):
            m = _PATH_FIELD.match(details["json_path"])
            field = m.group(1) if m else None
        message = str(res.get("message") or code.lower() or "rejected")
        if code == "DUPLICATE_DATA":
            dup = details.get("duplicate_record")
            dup_id = dup.get("id") if isinstance(dup, dict) else details.get("id")
            if dup_id:
                message = f"{message} (existing record {dup_id})"
        if code == "INVALID_DATA":
            if details.get("expected_data_type"):
                message += f" (expected {details['expected_data_type']})"
            if details.get("maximum_length"):
                message += f" (maximum length {details['maximum_length']})"
        return WriteResult(key=key, ok=False, code=code or "ERROR", error=message, field=field,
                           retryable=code in _RETRYABLE_CODES)

    def delete(self, obj: str, ids: Sequence[str]) -> list[WriteResult]:
        out: list[WriteResult] = []
        for chunk in chunks(list(ids), MAX_BATCH):
            path = f"/{obj}"
            status, resp = self._request("DELETE", path, op="delete",
                                         params={"ids": ",".join(chunk), "wf_trigger": "false"},
                                         write=True, n=len(chunk))
            results = resp.get("data") if isinstance(resp, dict) else None
            if not isinstance(results, list):
                if status >= 400:
                    raise self._fail(f"DELETE /crm/v8{path}", status, resp)
                raise ZohoProtocolError(f"DELETE /crm/v8{path}: response has no 'data' list")
            for rid, res in zip(chunk, results, strict=False):
                r = self._result("delete", obj, rid, res)
                if r.ok:
                    r.created = None
                out.append(r)
        return out

    # ------------------------------------------------------------------ reads
    def get(self, obj: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        if obj == "Attachments":  # uploaded files, by the ids upload_attachment returned
            return self._get_attachments(ids)
        out: dict[str, dict[str, Any]] = {}
        fields = self._read_fields(obj)
        for chunk in chunks(list(dict.fromkeys(ids)), MAX_BATCH):
            params = {"ids": ",".join(chunk)}
            if fields:
                params["fields"] = ",".join(fields)
            status, resp = self._request("GET", f"/{obj}", op="get", params=params)
            for rec in self._data(f"GET /crm/v8/{obj}", status, resp):
                if isinstance(rec, dict) and isinstance(rec.get("id"), str):
                    out[rec["id"]] = self._from_zoho(rec)
        return out

    def find_by_external_id(self, obj: str, external_ids: Sequence[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        ext = self.external_id_field
        for chunk in chunks(list(dict.fromkeys(external_ids)), COQL_IN_LIMIT):
            query = (f"select id, {ext} from {obj} where {ext} in "
                     f"({', '.join(_coql_str(v) for v in chunk)}) limit 200")
            status, resp = self._request("POST", "/coql", op="find_by_external_id",
                                         json_body={"select_query": query})
            for rec in self._data("POST /crm/v8/coql", status, resp):
                if isinstance(rec, dict) and isinstance(rec.get("id"), str) \
                        and rec.get(ext) in chunk:
                    out[rec[ext]] = rec["id"]
                    self._module_of[rec["id"]] = obj
        return out

    def count(self, obj: str) -> int:
        endpoint = f"GET /crm/v8/{obj}/actions/count"
        status, resp = self._request("GET", f"/{obj}/actions/count", op="count")
        if status >= 400:
            raise self._fail(endpoint, status, resp)
        n = resp.get("count") if isinstance(resp, dict) else None
        if not isinstance(n, int):
            raise ZohoProtocolError(f"{endpoint}: response has no integer 'count'")
        return n

    def list_records(self, obj: str, *, modified_since: str | None = None
                     ) -> Iterable[dict[str, Any]]:
        fields = self._read_fields(obj)
        headers = {"If-Modified-Since": modified_since} if modified_since else None
        token: str | None = None
        out: list[dict[str, Any]] = []
        while True:
            params: dict[str, Any] = {"per_page": 200, "sort_by": "id", "sort_order": "asc"}
            if fields:
                params["fields"] = ",".join(fields)
            if token:
                params["page_token"] = token
            status, resp = self._request("GET", f"/{obj}", op="list_records", params=params,
                                         headers=headers)
            out.extend(self._from_zoho(r) for r in self._data(f"GET /crm/v8/{obj}", status, resp)
                       if isinstance(r, dict))
            info = resp.get("info") if isinstance(resp, dict) else None
            if not isinstance(info, dict) or not info.get("more_records"):
                return out
            token = info.get("next_page_token")
            if not isinstance(token, str):
                raise ZohoProtocolError(f"GET /crm/v8/{obj}: more_records without next_page_token")

    def list_users(self) -> list[User]:
        users: list[User] = []
        page = 1
        while True:
            status, resp = self._request("GET", "/users", op="list_users",
                                         params={"type": "ActiveUsers", "page": page,
                                                 "per_page": 200})
            for u in self._data("GET /crm/v8/users", status, resp, key="users"):
                if not isinstance(u, dict) or not isinstance(u.get("id"), str):
                    raise ZohoProtocolError("GET /crm/v8/users: a user without an id")
                users.append(User(id=u["id"], email=str(u.get("email") or ""),
                                  name=str(u.get("full_name") or ""),
                                  active=u.get("status", "active") == "active"))
            info = resp.get("info") if isinstance(resp, dict) else None
            if not isinstance(info, dict) or not info.get("more_records"):
                return users
            page += 1

    # ------------------------------------------------------------------ attachments
    def upload_attachment(self, obj: str, record_id: str, file_name: str, path: Path,
                          key: str) -> WriteResult:
        found = local_file(path, key)
        if isinstance(found, WriteResult):
            return found
        p, size = found
        if size > ATTACHMENT_LIMIT_BYTES:
            return WriteResult(key=key, ok=False, code="FILE_SIZE_MORE_THAN_ALLOWED_SIZE",
                               error=f"file is {size} bytes; Zoho allows "
                                     f"{ATTACHMENT_LIMIT_BYTES} bytes")
        if file_name.lower().endswith(".exe"):
            return WriteResult(key=key, ok=False, code="INVALID_DATA",
                               error="Zoho does not accept .exe attachments")
        path_s = f"/{obj}/{record_id}/Attachments"
        # the look-up and the upload cost a credit each: wait for both, or when credits are
        # scarce every retry's look-up would eat the credit the upload was waiting for
        self._pace(f"POST /crm/v8{path_s}", 2)
        # Zoho does not deduplicate uploads: look first, so a retry after a lost response (or a
        # resumed run) does not attach the file twice (same name and size = already there)
        existing = self._find_attachment(obj, record_id, file_name, size)
        if existing is not None:
            return WriteResult(key=key, ok=True, dest_id=_attachment_id(obj, record_id, existing),
                               created=False)
        with p.open("rb") as fh:
            status, resp = self._request("POST", path_s, op="upload_attachment",
                                         files={"file": (file_name, fh)}, write=True, n=1)
        results = resp.get("data") if isinstance(resp, dict) else None
        if isinstance(results, list) and results:
            r = self._result("create", obj, key, results[0])
            if r.ok and r.dest_id:
                r.dest_id = _attachment_id(obj, record_id, r.dest_id)
            return r
        if status >= 400 and isinstance(resp, dict) and "code" in resp:
            code = str(resp["code"])
            return WriteResult(key=key, ok=False, code=code, error=str(resp.get("message", "")),
                               retryable=code in _RETRYABLE_CODES)
        raise ZohoProtocolError(f"POST /crm/v8{path_s}: response has no 'data' list")

    def list_attachments(self, obj: str, record_id: str) -> list[dict[str, Any]]:
        """Attachments of one record: ``{"id", "File_Name", "Size"}`` items."""
        status, resp = self._request("GET", f"/{obj}/{record_id}/Attachments", op="get",
                                     params={"fields": "id,File_Name,Size"})
        return [a for a in self._data(f"GET /crm/v8/{obj}/{record_id}/Attachments", status, resp)
                if isinstance(a, dict)]

    def attachments(self, obj: str, record_id: str) -> list[dict[str, Any]]:
        """A record's files as reconciliation reads them: ``{"id", "name", "size"}``. For the
        ``Attachments`` pseudo-module the "record" is the file itself."""
        if obj == "Attachments":
            return [{"id": k, "name": v["File_Name"], "size": v["Size"]}
                    for k, v in self._get_attachments([record_id]).items()]
        return [{"id": _attachment_id(obj, record_id, str(a.get("id"))),
                 "name": a.get("File_Name"), "size": int(a.get("Size") or 0)}
                for a in self.list_attachments(obj, record_id)]

    def _get_attachments(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        parents: dict[tuple[str, str], list[str]] = {}
        for aid in ids:
            parts = aid.split("/")
            if len(parts) == 3 and all(parts):
                parents.setdefault((parts[0], parts[1]), []).append(aid)
        out: dict[str, dict[str, Any]] = {}
        for (module, record_id), wanted in parents.items():
            for a in self.attachments(module, record_id):
                if a["id"] in wanted:
                    out[a["id"]] = {"id": a["id"], "File_Name": a["name"], "Size": a["size"],
                                    "Parent_Id": record_id, EXTERNAL_ID_KEY: None}
        return out

    def delete_attachments(self, ids: Sequence[str]) -> list[WriteResult]:
        """Remove uploaded files (rollback). Ids are the ones :meth:`upload_attachment` returned,
        ``{module}/{record id}/{attachment id}``: Zoho deletes an attachment through its parent
        (``DELETE /crm/v8/{module}/{record_id}/Attachments/{id}``)."""
        out: list[WriteResult] = []
        for aid in ids:
            parts = aid.split("/")
            if len(parts) != 3 or not all(parts):
                out.append(WriteResult(key=aid, ok=False, code="INVALID_DATA",
                                       error="not an attachment id this connector returned "
                                             "({module}/{record id}/{attachment id})"))
                continue
            module, record_id, att = parts
            path = f"/{module}/{record_id}/Attachments/{att}"
            status, resp = self._request("DELETE", path, op="delete_attachments", write=True,
                                         n=1)
            results = resp.get("data") if isinstance(resp, dict) else None
            if isinstance(results, list) and results:
                r = self._result("delete", module, aid, results[0])
                if r.ok:
                    r.dest_id, r.created = aid, None
                out.append(r)
            elif status >= 400 and isinstance(resp, dict) and "code" in resp:
                out.append(WriteResult(key=aid, ok=False, code=str(resp["code"]),
                                       error=str(resp.get("message", ""))))
            else:
                raise ZohoProtocolError(f"DELETE /crm/v8{path}: response has no 'data' list")
        return out

    def _find_attachment(self, obj: str, record_id: str, file_name: str, size: int
                         ) -> str | None:
        for a in self.list_attachments(obj, record_id):
            if a.get("File_Name") == file_name and str(a.get("Size")) == str(size) \
                    and isinstance(a.get("id"), str):
                return a["id"]
        return None

    # ------------------------------------------------------------------ settings
    def metadata(self, module: str) -> dict[str, Any]:
        """One module bundle for the dialect's metadata loader: fields + layouts."""
        out: dict[str, Any] = {}
        for what in ("fields", "layouts"):
            endpoint = f"GET /crm/v8/settings/{what}"
            status, resp = self._request("GET", f"/settings/{what}", op="metadata",
                                         params={"module": module})
            if status >= 400 or resp is None:
                raise self._fail(endpoint, status, resp)
            out[what] = resp
        return out

    def modules(self) -> dict[str, Any]:
        status, resp = self._request("GET", "/settings/modules", op="metadata")
        if status >= 400 or not isinstance(resp, dict) or "modules" not in resp:
            raise self._fail("GET /crm/v8/settings/modules", status, resp)
        return resp

    def create_module(self, api_name: str, label: str | None = None,
                      fields: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        body = {"modules": [{"api_name": api_name, "plural_label": label or api_name,
                             "singular_label": label or api_name,
                             **({"fields": fields} if fields else {})}]}
        return self._settings_write("/settings/modules", body, "modules", None, cost=500)

    def create_fields(self, module: str, fields: list[dict[str, Any]]) -> dict[str, Any]:
        return self._settings_write("/settings/fields", {"fields": fields}, "fields",
                                    {"module": module})

    def _settings_write(self, path: str, body: dict, key: str, params: dict | None,
                        cost: float = 1) -> dict[str, Any]:
        endpoint = f"POST /crm/v8{path}"
        status, resp = self._request("POST", path, op="schema", json_body=body, params=params,
                                     write=True, cost=cost)
        if not isinstance(resp, dict) or not isinstance(resp.get(key), list):
            raise self._fail(endpoint, status, resp)
        return resp

    # ------------------------------------------------------------------ fmap schema
    def metadata_bundle(self, objects: Iterable[str]) -> dict[str, Any]:
        """``{"modules", "objects": {name: {"fields", "layouts"}}}`` for ``fmap schema``. A module
        the org lacks is left out of ``objects`` rather than failing the whole pull: ``schema
        apply`` asks for the modules it may have to create, and the modules list already says
        which exist."""
        mods = self.modules()
        have = {m.get("api_name") for m in mods.get("modules", []) if isinstance(m, dict)}
        return {"modules": mods,
                "objects": {o: self.metadata(o) for o in dict.fromkeys(objects) if o in have}}

    def apply_schema_changes(self, changes: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Create modules (``POST /settings/modules``), then fields per module (``POST
        /settings/fields``); one result per change, in order. A request Zoho refuses as a whole
        fails only the changes it carried, so one bad module does not hide the others' outcome;
        transport and credential errors still raise (nothing more can be done then)."""
        from runtime.schema.changes import field_from_change

        results: dict[int, dict[str, Any]] = {}

        def result(i: int, status: str, message: str = "") -> None:
            c = changes[i]
            results[i] = {"object": c["object"], "field": c.get("field"), "status": status,
                          "message": message}

        failed_modules: dict[str, str] = {}
        for i, c in enumerate(changes):
            if c["action"] != "create_module":
                continue
            label = (c.get("details") or {}).get("label")
            try:
                resp = self.create_module(c["object"], label)
            except ZohoAPIError as exc:
                failed_modules[c["object"]] = str(exc)
                result(i, "failed", str(exc))
                continue
            r = next((x for x in resp["modules"] if isinstance(x, dict)), {})
            if r.get("status") == "success":
                result(i, "created")
            else:
                failed_modules[c["object"]] = f"{r.get('code')} {r.get('message')}"
                result(i, "failed", failed_modules[c["object"]])
        by_obj: dict[str, list[int]] = {}
        for i, c in enumerate(changes):
            if c["action"] != "create_field":
                continue
            if c["object"] in failed_modules:
                result(i, "failed", f"module {c['object']} was not created")
            else:
                by_obj.setdefault(c["object"], []).append(i)
        created = {c["object"] for c in changes if c["action"] == "create_module"}
        for obj, idx in by_obj.items():
            if obj in created:  # a new module comes with fields of its own (Name, Owner)
                fields = self.metadata(obj)["fields"].get("fields", [])
                own = {f.get("api_name") for f in fields if isinstance(f, dict)}
                for i in [i for i in idx if changes[i]["field"] in own]:
                    result(i, "created", "comes with the new module")
                idx = [i for i in idx if i not in results]
            if not idx:
                continue
            specs = [zoho_field_spec(field_from_change(changes[i])) for i in idx]
            try:
                resp = self.create_fields(obj, specs)
            except ZohoAPIError as exc:
                for i in idx:
                    result(i, "failed", str(exc))
                continue
            answers = [r for r in resp["fields"] if isinstance(r, dict)]
            for k, i in enumerate(idx):
                r = answers[k] if k < len(answers) else {}
                if r.get("status") == "success":
                    result(i, "created")
                else:
                    result(i, "failed", f"{r.get('code') or 'NO_ANSWER'} "
                                        f"{r.get('message') or 'Zoho did not answer this field'}")
        for i, c in enumerate(changes):
            if i not in results:  # an action this connector does not know
                result(i, "failed", f"unknown schema change {c.get('action')!r}")
        return [results[i] for i in range(len(changes))]


def zoho_field_spec(field: Any) -> dict[str, Any]:
    """A ``.fmap`` schema change's field (a :class:`FieldSchema`) as a field-create item."""
    from runtime.dialects.zoho.metadata import DATA_TYPES

    spec: dict[str, Any] = {"field_label": field.label or field.api_name.replace("_", " "),
                            "api_name": field.api_name,
                            "data_type": DATA_TYPES.get(field.type, "text")}
    if field.max_length:
        spec["length"] = field.max_length
    if field.picklist_values:
        spec["pick_list_values"] = [{"display_value": v, "actual_value": v}
                                    for v in field.picklist_values]
    if field.type == FieldType.lookup and field.lookup_targets:
        spec["lookup"] = {"module": {"api_name": field.lookup_targets[0]}}
    if field.unique:
        spec["unique"] = {"casesensitive": False}
    if field.external_id:
        spec["external"] = {"show": True, "type": "user"}
    if field.required:
        spec["system_mandatory"] = True
    return spec

