"""The Freshsales (Freshworks CRM) connector: the :class:`~runtime.destinations.base.Destination`
interface over an injected ``httpx.Client``.

Calls (API_NOTES.md section 3; ``{api}`` is ``https://<bundle>.myfreshworks.com/crm/sales``,
``{e}`` the entity path: ``contacts``, ``leads``, ``sales_accounts``, ``deals``, ``tasks``,
``appointments``, ``notes``, ``products``, or ``custom_module/<name>``):

================ ==========================================================================
create           ``POST {api}/api/{e}`` ``{"contact": {...}}`` (one record a call)
update           ``PUT {api}/api/{e}/{id}``
upsert (one)     ``POST {api}/api/{e}/upsert`` ``{"unique_identifier": {cf_ext: v}, "contact": {}}``
upsert (many)    ``POST {api}/api/{e}/bulk_upsert`` ``{"contacts": [{cf_ext: v, "data": {}}]}``
                 (100 a call, asynchronous): poll ``GET {api}/api/job_statuses/{id}`` to a final
                 status, then read the records back by the unique identifier
upsert elsewhere entities without an upsert endpoint (leads, tasks, appointments, notes, products,
                 custom modules): find by external id, then create or update
delete           ``POST {api}/api/{e}/bulk_destroy`` ``{"selected_ids": [...]}`` (contacts,
                 sales accounts, deals, custom modules; 100 a call), then the ids read back
                 (``filtered_search`` ``id`` ``is_in``): one ``DELETE {api}/api/{e}/{id}`` for
                 each still there; other entities ``DELETE {api}/api/{e}/{id}`` only
get              ``GET {api}/api/{e}/{id}``
find by ext id   ``POST {api}/api/filtered_search/{entity}`` ``filter_rule`` ``is_in`` (100 values)
count, list      ``POST {api}/api/filtered_search/{entity}`` (``meta.total``, pages of 100)
list_users       ``GET {api}/api/selector/owners``
files            ``POST {api}/api/documents`` (multipart, 150 MB), ``GET {api}/api/{e}/{id}/
                 document_associations``, ``DELETE {api}/api/documents/{id}``
metadata         ``GET {api}/api/settings/{e}/fields`` (``{e}`` is a custom module's own entity name)
custom module    ``POST {api}/api/settings/module_customizations`` ``{"module_customization": {..}}``
custom field     ``GET {api}/api/settings/{e}/forms``, then ``POST {api}/api/settings/{e}/forms/
                 {form_id}/fields`` ``{"field_type": <number>, "label", "required"}``
================ ==========================================================================

The two settings calls are the official reference's "Create Custom Module" and "Create Custom
Module Field" (developers.freshworks.com/crm/api/ anchors ``#create_custom_modules`` and
``#create_custom_field``; that page is not readable in full here, so paths and body keys come from
a third-party endpoint index linking each operation to those anchors, and API_NOTES.md 3.5 [3p]).

Records: standard fields at the top level, custom fields (``cf_*``) under ``custom_field``
(singular: the vendor silently ignores ``custom_fields``, so this client never sends that key).
Dropdowns are written as numeric **choice ids** resolved from the field metadata
(``FieldSchema.vendor['choices']``: label -> id; learned from ``settings/{e}/fields`` when the
schema lacks them); a label that is not a choice fails that record only (``INVALID_CHOICE``), no
request is sent for it. Lookups and owners are integer ids. The external id is written to a
unique custom field (``cf_fmap_external_id`` unless ``external_id_field`` says otherwise), which
the org must have (the sandbox adds it to every entity).

Errors: ``{"errors": {"code": 400, "message": ["Last name can't be blank"]}}`` fails the record
(``REQUIRED_FIELD_MISSING`` for "can't be blank/empty", ``DUPLICATE_VALUE`` for "has already been
taken", ``INVALID_VALUE`` for "is invalid", ``NOT_FOUND`` for 404, else ``REJECTED``; the field is
found from the label the message starts with). 429 -> ``TransientError`` (``Retry-After`` when
sent; a wait beyond ``max_wait`` -> ``FatalError``); 5xx and dropped connections ->
``TransientError`` (``maybe_committed`` for writes); 401 -> :class:`FreshsalesAuthError` naming
``FRESHSALES_API_KEY``; 403 and unreadable answers -> ``FatalError``.

ASSUMPTIONS [unverified]: the bulk job's response (``job_id``/``id``) and per-record failure
format (``data.failures``), custom modules' envelope key (the module name), filtered search on
every entity and its ``meta.total``, and ``document_associations`` listing ``documents``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

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
    header_float,
    jsonable,
    local_file,
    parse_json,
    present,
    send,
)
from runtime.dialects.freshsales.auth import ENV_VAR, FreshsalesAuthError, FreshsalesCredentials
from runtime.schema.model import FieldSchema, FieldType, ObjectSchema, SystemSchema

__all__ = [
    "FreshsalesClient", "FreshsalesAPIError", "FreshsalesProtocolError", "ENTITIES",
    "DEFAULT_EXTERNAL_ID_FIELD", "MAX_BULK", "ATTACHMENT_LIMIT_BYTES", "DOCUMENT_TARGETS",
    "entity_of", "per_hour", "FS_FIELD_TYPES", "FIELD_TYPE_CODES_ENV", "parse_field_type_codes",
    "settings_entity",
]

DEFAULT_EXTERNAL_ID_FIELD = "cf_fmap_external_id"
MAX_BULK = 100
ATTACHMENT_LIMIT_BYTES = 150 * 1024 * 1024
EXTERNAL_ID_KEY = "$external_id"
# our object -> (entity path, singular envelope key, filtered_search entity)
ENTITIES: dict[str, tuple[str, str, str]] = {
    "Contact": ("contacts", "contact", "contact"),
    "Lead": ("leads", "lead", "lead"),
    "SalesAccount": ("sales_accounts", "sales_account", "sales_account"),
    "Deal": ("deals", "deal", "deal"),
    "Task": ("tasks", "task", "task"),
    "Appointment": ("appointments", "appointment", "appointment"),
    "Note": ("notes", "note", "note"),
    "Product": ("products", "product", "product"),
    "Document": ("documents", "document", "document"),
}
UPSERT_ENTITIES = frozenset({"contacts", "sales_accounts", "deals"})
# API_NOTES.md 3.3 [3p]: "Bulk: POST /api/contacts/bulk_destroy with {"selected_ids":[...]}. The
# same applies to sales_accounts, deals and custom modules." The unofficial endpoint index
# (../shared/crm/specs/freshsales/openapi/freshsales-contacts-api-openapi.yml,
# bulkDestroyContacts) answers 202. Neither documents a per-call limit, the response body or
# whether the deletion is a background job: 100 ids a call (as bulk_upsert), and the outcome of
# each id is read back, never taken from the response.
BULK_DESTROY_ENTITIES = frozenset({"contacts", "sales_accounts", "deals"})
MAX_BULK_DESTROY = 100
DOCUMENT_TARGETS = frozenset({"Contact", "SalesAccount", "Deal", "Product"})
_TERMINAL = {"completed", "complete", "done", "success", "succeeded", "partially_completed",
             "failed", "error"}


def entity_of(obj: str) -> tuple[str, str, str, str]:
    """(entity path, singular key, list key, filtered_search entity) of an object; a custom
    module ``x`` is ``custom_module/x`` with ``x`` as every key [unverified]."""
    if obj in ENTITIES:
        path, single, search = ENTITIES[obj]
        return path, single, path, search
    return f"custom_module/{obj}", obj, obj, obj


# our field type -> the Freshsales field type name (``type`` in ``settings/{e}/fields``)
FS_FIELD_TYPES: dict[FieldType, str] = {
    FieldType.text: "text", FieldType.textarea: "textarea", FieldType.integer: "number",
    FieldType.decimal: "number", FieldType.currency: "number", FieldType.percent: "number",
    FieldType.picklist: "dropdown", FieldType.multipicklist: "multi_select_dropdown",
    FieldType.boolean: "checkbox", FieldType.date: "date", FieldType.datetime: "datetime",
    FieldType.email: "email", FieldType.phone: "phone_number", FieldType.url: "url",
    FieldType.lookup: "lookup", FieldType.owner: "dropdown",
}
FIELD_TYPE_CODES_ENV = "FRESHSALES_FIELD_TYPE_CODES"


def parse_field_type_codes(spec: Any) -> dict[str, int]:
    """``"text=1,number=3"`` (or a mapping) -> ``{"text": 1, "number": 3}``. The numbers the
    create-field call takes per type are not in the public documentation, so they are given
    (from the account's admin or the vendor) rather than guessed; a bad entry raises
    :class:`ValueError` naming it."""
    if not spec:
        return {}
    items = spec.items() if isinstance(spec, dict) else (
        part.partition("=")[::2] for part in str(spec).split(",") if part.strip())
    out: dict[str, int] = {}
    for k, v in items:
        try:
            out[str(k).strip()] = int(str(v).strip())
        except ValueError:
            raise ValueError(f"field_type_codes entry {str(k).strip()}={str(v).strip()!r} is "
                             "not a number") from None
    return out


def settings_entity(obj: str) -> str:
    """The ``{entity}`` of ``/api/settings/{entity}/...``: ``contacts``... or a custom
    module's own entity name."""
    return ENTITIES[obj][0] if obj in ENTITIES else obj


def _label_for(name: str) -> str:
    """A label Freshsales turns back into ``name`` (``cf_invoice_no`` -> ``Invoice no``)."""
    return name.removeprefix("cf_").replace("_", " ").strip().capitalize() or name


def per_hour(plan: str) -> int:
    from runtime.dialects.freshsales.capabilities import RATE_LIMIT

    p = RATE_LIMIT.plans.get(plan.lower())
    if p is None:
        raise ValueError(f"unknown Freshsales plan {plan!r}; one of {', '.join(RATE_LIMIT.plans)}")
    return int(p.per_hour or 0)


class FreshsalesAPIError(APIError):
    """A whole request Freshsales refused (permission, bad entity): retrying won't help. An
    :class:`APIError` like every dialect's, so code that handles "the CRM refused" catches it
    too; Freshsales' errors carry no code, only messages (each kept in ``messages``)."""

    def __init__(self, endpoint: str, status: int, messages: list[str]) -> None:
        super().__init__(endpoint, status, None, "; ".join(messages))
        self.messages = messages


class FreshsalesProtocolError(FatalError):
    """Freshsales answered something the connector cannot read (not JSON, keys missing)."""


class _RecordError(Exception):
    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.field = code, message, field


def _int_id(v: Any) -> Any:
    if isinstance(v, str) and v.isdigit():
        return int(v)
    return v


def _job_id(resp: Any) -> Any:
    """The background job a bulk call answered with: ``job_id`` or ``id``, at the top level or
    under ``job_status`` [unverified]; None when the answer names none."""
    if not isinstance(resp, dict):
        return None
    job = resp.get("job_status") if isinstance(resp.get("job_status"), dict) else resp
    return job.get("job_id", job.get("id"))


def _gone(rid: str) -> WriteResult:
    """The result of deleting an id that is not there, as its ``DELETE`` answers (404)."""
    return WriteResult(key=rid, ok=False, code="NOT_FOUND", error="Record not found")


def _errors(body: Any) -> list[str]:
    err = body.get("errors") if isinstance(body, dict) else None
    if isinstance(err, dict):
        msg = err.get("message")
        if isinstance(msg, list):
            return [str(m) for m in msg]
        if msg is not None:
            return [str(msg)]
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return [body["message"]]
    return []


def _code_of(message: str, status: int) -> str:
    m = message.lower()
    if status == 404:
        return "NOT_FOUND"
    if "can't be blank" in m or "can't be empty" in m or "cannot be blank" in m:
        return "REQUIRED_FIELD_MISSING"
    if "already been taken" in m:
        return "DUPLICATE_VALUE"
    if "is invalid" in m or "invalid value" in m:
        return "INVALID_VALUE"
    if "too long" in m:
        return "STRING_TOO_LONG"
    return "REJECTED"


def is_dropdown(f: FieldSchema) -> bool:
    """Written as a choice id: a dropdown with known choices, a standard ``*_id`` selector field,
    or a custom dropdown (its choices come from the account's metadata)."""
    if f.type not in (FieldType.picklist, FieldType.multipicklist):
        return False
    return bool(f.vendor.get("choices")) or f.vendor.get("write_as") == "id" or \
        f.api_name.startswith("cf_")


class FreshsalesClient(OwnedHTTP):
    """Freshsales destination. Give it an ``httpx.Client`` (its transport decides where requests
    go: the real API, a ``MockTransport``, or the sandbox) or let it build one (TLS verified)."""

    def __init__(
        self,
        *,
        base_url: str,
        credentials: FreshsalesCredentials | None = None,
        http: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        plan: str = "growth",
        limit: int | None = None,
        schema: SystemSchema | None = None,
        external_id_field: str = DEFAULT_EXTERNAL_ID_FIELD,
        name: str = "freshsales",
        timeout: float = 60.0,
        max_wait: float = 3600.0,
        poll_interval: float = 1.0,
        max_polls: int = 600,
        sleep: Callable[[float], None] = time.sleep,
        owns: Iterable[Any] = (),
        field_type_codes: dict[str, int] | None = None,
        module_icon: str = "default",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.field_type_codes = dict(field_type_codes or {})
        self.module_icon = module_icon  # the documented body requires one; its names are not listed
        self.credentials = credentials or FreshsalesCredentials.discover()
        self.external_id_field = external_id_field
        self.plan = plan
        self.max_wait = max_wait
        self.poll_interval = poll_interval
        self.max_polls = max_polls
        self._sleep = sleep
        self._schema = schema
        self._org_schema = schema is None  # learn each object's fields from the account
        self._org_read: set[str] = set()
        self._open_http(http, transport, timeout, owns)
        hourly = per_hour(plan) if limit is None else int(limit)
        self.capabilities = DestinationCapabilities(
            name=name, batch_size=MAX_BULK, native_upsert=True, bulk=True,
            attachment_limit_bytes=ATTACHMENT_LIMIT_BYTES,
            rate_limit=RateLimit(kind="requests", per_window=hourly, window_seconds=3600.0,
                                 write_cost_per_call=1.0, read_cost_per_call=1.0,
                                 concurrency=1))
        self.stats = CallStats()
        self._learned: set[str] = set()
        # obj -> the account's own fields of it (None: refused, absent or unreadable), shared by
        # every overlay (_refresh_schema, _learn_choices) so one settings call serves them all
        self._account: dict[str, ObjectSchema | None] = {}
        self._unsettled_uploads: set[str] = set()

    def __repr__(self) -> str:
        return f"FreshsalesClient(base_url={self.base_url!r}, plan={self.plan!r})"

    # ------------------------------------------------------------------ transport
    def _request(self, method: str, path: str, *, op: str, json_body: Any = None,
                 params: dict | None = None, data: dict | None = None, files: Any = None,
                 write: bool = False, n: int = 0) -> tuple[int, Any]:
        """One API call -> (status, parsed JSON or None for an empty body)."""
        endpoint = f"{method} /api/{path}"
        headers = {**self.credentials.header(), "Accept": "application/json"}
        self.stats.count_call(op, n)
        resp = send(self._http, method, f"{self.base_url}/api/{path}", endpoint=endpoint,
                    write=write, json=json_body, params=params, data=data, files=files,
                    headers=headers)
        status = resp.status_code
        if status == 401:
            raise FreshsalesAuthError(f"{endpoint}: Freshsales rejected the API key (HTTP 401); "
                                      f"set {ENV_VAR} to a valid key for this bundle")
        if status == 429:
            self.stats.throttled += 1
            retry_after = self._retry_after(resp)
            if retry_after is not None and retry_after > self.max_wait:
                raise FatalError(f"{endpoint}: the hourly Freshsales API limit is spent (retry "
                                 f"after {retry_after:.0f} s); resume the run later with --resume")
            raise TransientError(f"{endpoint}: 429 Too Many Requests (hourly API limit)",
                                 retry_after=retry_after, maybe_committed=False)
        if status >= 500:
            raise TransientError(f"{endpoint}: HTTP {status}", maybe_committed=write)
        body = parse_json(resp, endpoint, FreshsalesProtocolError) if resp.content else None
        if status == 403:
            raise FreshsalesAPIError(endpoint, status, _errors(body) or ["forbidden"])
        return status, body

    @staticmethod
    def _retry_after(resp: httpx.Response) -> float | None:
        seconds = header_float(resp, "retry-after")
        return None if seconds is None else max(seconds, 0.0)

    def _expect(self, endpoint: str, status: int, body: Any, key: str) -> Any:
        if status >= 400:
            raise FreshsalesAPIError(endpoint, status, _errors(body) or ["request refused"])
        if not isinstance(body, dict) or key not in body:
            raise FreshsalesProtocolError(f"{endpoint}: response has no {key!r}")
        return body[key]

    # ------------------------------------------------------------------ schema helpers
    def schema(self) -> SystemSchema:
        if self._schema is None:
            from runtime.dialects import get_dialect

            self._schema = get_dialect("freshsales").standard_schema()
        return self._schema

    def _fields(self, obj: str) -> dict[str, FieldSchema]:
        if self._org_schema and obj not in self._org_read:
            # no schema was given (a real account): learn the org's fields of this object once,
            # so custom fields are known and dropdowns are written as the account's choice ids
            self._org_read.add(obj)
            self._refresh_schema([obj])
        o = self.schema().object(obj)
        return {f.api_name: f for f in o.fields} if o is not None else {}

    def metadata(self, obj: str) -> dict[str, Any]:
        """``GET /api/settings/{entity}/fields`` (the dialect's metadata loader reads it)."""
        path = f"settings/{settings_entity(obj)}/fields"
        status, body = self._request("GET", path, op="metadata")
        self._expect(f"GET /api/{path}", status, body, "fields")
        return body

    def metadata_bundle(self, objects: Sequence[str]) -> dict[str, Any]:
        """``{"objects": {obj: <GET /api/settings/{entity}/fields response>}}``, verbatim per
        object: what ``fmap schema pull`` saves and the dialect's ``load_metadata`` reads back
        (the object name is the bundle key, since a fields response does not always name it).
        An object the account lacks (its fields call is a 404) is left out rather than failing
        the whole pull: ``schema apply`` asks for the custom modules it may have to create."""
        return {"objects": present(objects, self.metadata, FreshsalesAPIError)}

    # ------------------------------------------------------------------ schema changes
    def apply_schema_changes(self, changes: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Create custom modules and custom fields through the two documented settings calls
        (developers.freshworks.com/crm/api, anchors ``#create_custom_modules`` and
        ``#create_custom_field``; API_NOTES.md 3.5):

        - ``POST /api/settings/module_customizations`` ``{"module_customization":
          {"entity_name", "singular_name", "plural_name", "icon", "description"}}``;
        - ``GET /api/settings/{entity}/forms`` for the form id (anchor
          ``#list_of_all_fields_in_your_custom_module``), then
          ``POST /api/settings/{entity}/forms/{form_id}/fields`` ``{"field_type": <number>,
          "label", "required"}``. Freshsales names the field ``cf_`` + the label in snake case,
          so the label sent is one that yields the mapping's field name.

        The documented field body has no choices, no uniqueness and no lookup target, and the
        numbers ``field_type`` takes are not published: such fields, and every field when no
        ``field_type_codes`` were given, are checked before anything is sent and raise
        :class:`UnsupportedByDialect` with the admin steps, so a run never leaves half an org.
        """
        from runtime.dialects.base import UnsupportedByDialect

        changes = [dict(c) for c in changes]
        problems = [p for c in changes for p in [self._unsupported(c)] if p]
        if problems:  # every step, not the first few: the admin works through the list
            raise UnsupportedByDialect(
                "freshsales", f"{len(problems)} schema change(s) cannot be made through the "
                "Freshsales API; make them in the admin settings (creating a custom module "
                "there first where one is new), then run again:\n  " + "\n  ".join(problems))
        out: list[dict[str, Any]] = []
        order = [c for c in changes if c["action"] == "create_module"] + \
            [c for c in changes if c["action"] == "create_field"]
        forms: dict[str, Any] = {}
        for c in order:
            obj, fld = c["object"], c.get("field")
            try:
                if c["action"] == "create_module":
                    self._create_module(c)
                    status, message = "created", "module created"
                else:
                    if obj not in forms:
                        forms[obj] = self._form_id(obj)
                    message = self._create_field(c, forms[obj])
                    status = "created"
            except FreshsalesAPIError as exc:
                status, message = "failed", "; ".join(exc.messages) or str(exc)
            out.append({"object": obj, "field": fld, "status": status, "message": message})
        changed = [r["object"] for r in out if r["status"] == "created"]
        for obj in changed:  # what was read of them before the changes is stale now
            self._account.pop(obj, None)
            self._learned.discard(obj)
        self._refresh_schema(changed)
        return out

    def _account_object(self, obj: str) -> ObjectSchema | None:
        """The account's own fields of ``obj`` from ``settings/{e}/fields``, read once: the
        schemaless overlay (:meth:`_fields`) and the choice ids a dropdown lacks
        (:meth:`_choice_id`) both need them, and each settings call spends the hourly limit.
        A refusal, a 404 or an answer that does not load is kept as None (asking again would be
        refused again); a transient failure is not kept, so a later overlay asks again."""
        if obj not in self._account:
            from runtime.dialects.freshsales.metadata import load_freshsales_metadata
            from runtime.schema.io import SchemaLoadError

            try:
                learned = load_freshsales_metadata(self.metadata(obj),
                                                   source_name=f"{obj} (account)",
                                                   object_name=obj)
            except (FatalError, SchemaLoadError):
                learned = None
            self._account[obj] = None if learned is None else (
                learned.object(obj) or (learned.objects[0] if learned.objects else None))
        return self._account[obj]

    def _refresh_schema(self, objects: Sequence[str]) -> None:
        """Overlay the account's fields of ``objects`` on the schema (the bundled schema's
        fields keep their definitions and take the account's choice ids; the account's other
        fields are added), so records written next, and read back, know custom fields and the
        fields just created."""
        for obj in dict.fromkeys(objects):
            try:
                o = self._account_object(obj)
            except TransientError:
                continue  # the changes are made; the next run reads the metadata again
            if o is None:
                continue
            base = self.schema().object(o.api_name)
            if base is not None:
                o = base.model_copy(update={"fields": self._with_choices(base, o) + [
                    f for f in o.fields if base.field(f.api_name) is None]})
            self._schema = self.schema().merged(SystemSchema(system="freshsales", objects=[o]))

    @staticmethod
    def _with_choices(base: ObjectSchema, account: ObjectSchema) -> list[FieldSchema]:
        """Copies of ``base``'s fields, each dropdown taking the account's choice ids."""
        fields = [f.model_copy(deep=True) for f in base.fields]
        for f in fields:
            lf = account.field(f.api_name)
            if lf is not None and lf.vendor.get("choices"):
                f.vendor["choices"] = dict(lf.vendor["choices"])
        return fields

    def _unsupported(self, c: dict[str, Any]) -> str | None:
        from runtime.schema.changes import field_from_change

        obj = c.get("object") or ""
        if c.get("action") == "create_module":
            return None
        if c.get("action") != "create_field":
            return f"{obj}: unknown change {c.get('action')!r}"
        f = field_from_change(c)
        fs_type = FS_FIELD_TYPES.get(f.type)
        label = f.label or _label_for(f.api_name)
        why: list[str] = []
        if f.type in (FieldType.picklist, FieldType.multipicklist) and f.picklist_values:
            why.append("choices " + ", ".join(f.picklist_values))
        if f.unique or f.external_id:
            why.append("property Unique")
        if f.type == FieldType.lookup:
            why.append(f"lookup to {', '.join(f.lookup_targets) or '?'}")
        if fs_type is None:
            why.append(f"a field type for {f.type.value}")
        elif not why and fs_type not in self.field_type_codes:
            why.append("(field_type_codes do not say which number the API takes for "
                       f"{fs_type!r})")
        if not why:
            return None
        return (f"{obj}.{f.api_name}: Admin Settings > Module customization > {obj} > Fields > "
                f"Add field ({fs_type or f.type.value}, label {label!r}, "
                f"{', '.join(why)})")

    def _create_module(self, c: dict[str, Any]) -> None:
        name = c["object"]
        label = (c.get("details") or {}).get("label") or _label_for(name)
        body = {"module_customization": {
            "entity_name": name, "singular_name": label.rstrip("s") or label,
            "plural_name": label, "icon": self.module_icon,
            "description": "created by fmap schema apply"}}
        status, resp = self._request("POST", "settings/module_customizations",
                                     op="schema", json_body=body, write=True)
        self._expect("POST /api/settings/module_customizations", status, resp,
                     "module_customization")

    def _form_id(self, obj: str) -> Any:
        path = f"settings/{settings_entity(obj)}/forms"
        status, resp = self._request("GET", path, op="schema")
        forms = self._expect(f"GET /api/{path}", status, resp, "forms")
        ids = [f.get("id") for f in forms if isinstance(f, dict) and f.get("id") is not None
               and f.get("active", True)] if isinstance(forms, list) else []
        if not ids:
            raise FreshsalesProtocolError(f"GET /api/{path}: no active form to add fields to")
        return ids[0]

    def _create_field(self, c: dict[str, Any], form_id: Any) -> str:
        from runtime.dialects.freshsales.naming import custom_api_name
        from runtime.schema.changes import field_from_change

        f = field_from_change(c)
        label = f.label if f.label and custom_api_name(f.label, "field") == f.api_name \
            else _label_for(f.api_name)
        path = f"settings/{settings_entity(c['object'])}/forms/{form_id}/fields"
        body = {"field_type": self.field_type_codes[FS_FIELD_TYPES[f.type]], "label": label,
                "required": bool(f.required)}
        status, resp = self._request("POST", path, op="schema", json_body=body, write=True)
        made = self._expect(f"POST /api/{path}", status, resp, "field")
        name = made.get("name") if isinstance(made, dict) else None
        if name != f.api_name:
            raise FreshsalesAPIError(f"POST /api/{path}", status, [
                f"Freshsales named the field {name!r}, not {f.api_name!r}"])
        return "field created" + ("" if label == f.label else
                                  f" with label {label!r} (rename it in the admin settings)")

    def _learn_choices(self, obj: str) -> None:
        """Give the schema's dropdowns of ``obj`` the account's choice ids (once per object);
        unlike :meth:`_refresh_schema` it adds no fields: a given schema says which fields
        exist. The account's metadata is the one :meth:`_refresh_schema` read, if it did."""
        if obj in self._learned:
            return
        account = self._account_object(obj)  # a transient failure: learned on a retry
        self._learned.add(obj)
        base = self.schema().object(obj)
        if base is None or account is None:
            return
        self._schema = self.schema().merged(SystemSchema(system="freshsales", objects=[
            base.model_copy(update={"fields": self._with_choices(base, account)})]))

    def _choice_id(self, obj: str, f: FieldSchema, value: Any) -> Any:
        if isinstance(value, list):
            return [self._choice_id(obj, f, v) for v in value]
        choices = f.vendor.get("choices")
        if not choices and f.api_name.startswith("cf_"):
            self._learn_choices(obj)
            f = self._fields(obj).get(f.api_name, f)
            choices = f.vendor.get("choices")
        if not choices:
            if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
                return int(value)
            raise _RecordError("UNKNOWN_CHOICES", "no choice ids are known for this dropdown; "
                               "load the account's field metadata", f.api_name)
        ids = {str(v): v for v in choices.values()}
        if str(value) in ids and not isinstance(value, bool):
            return _int_id(ids[str(value)])
        if isinstance(value, str):
            if value in choices:
                return _int_id(choices[value])
            folded = {k.casefold(): v for k, v in choices.items()}
            if value.casefold() in folded:
                return _int_id(folded[value.casefold()])
        raise _RecordError("INVALID_CHOICE", "the value is not one of the dropdown's choices",
                           f.api_name)

    # ------------------------------------------------------------------ record conversion
    def _to_vendor(self, obj: str, record: dict[str, Any], external_id: str | None
                   ) -> dict[str, Any]:
        fields = self._fields(obj)
        out: dict[str, Any] = {}
        custom: dict[str, Any] = {}
        for k, v in record.items():
            if k in ("id", "custom_field", "custom_fields") or k.startswith("$"):
                continue
            f = fields.get(k)
            v = jsonable(v)
            if f is not None and v not in (None, "", []):
                if is_dropdown(f):
                    v = self._choice_id(obj, f, v)
                elif f.type in (FieldType.lookup, FieldType.owner):
                    v = [_int_id(x) for x in v] if isinstance(v, list) else _int_id(v)
                    if f.vendor.get("multi") and not isinstance(v, list):
                        v = [v]
            if k.startswith("cf_") or (f is not None and f.custom):
                custom[k] = v
            else:
                out[k] = v
        if external_id is not None:
            custom[self.external_id_field] = external_id
        if custom:
            out["custom_field"] = custom  # singular: "custom_fields" is silently ignored
        return out

    def _from_vendor(self, obj: str, rec: dict[str, Any]) -> dict[str, Any]:
        """A vendor record in the store's shape: ``id`` as text, custom fields flattened,
        choice ids as labels, lookups/owners as text ids, the external id as ``$external_id``,
        ``created_at``/``updated_at`` as ``$created_at``/``$modified_at``; empty values, audit
        fields and keys the schema does not know are left out."""
        fields = self._fields(obj)
        flat: dict[str, Any] = {}
        for k, v in rec.items():
            if k == "custom_field" and isinstance(v, dict):
                flat.update(v)
            else:
                flat[k] = v
        out: dict[str, Any] = {}
        for k, v in flat.items():
            f = fields.get(k)
            if k == "id" and v is not None:
                out["id"] = str(v)
                continue
            if f is None or f.audit or k == self.external_id_field or v in (None, "", []):
                continue
            choices = f.vendor.get("choices")
            if choices and is_dropdown(f):
                labels = {str(i): label for label, i in choices.items()}
                v = [labels.get(str(x), x) for x in v] if isinstance(v, list) \
                    else labels.get(str(v), v)
            elif f.type in (FieldType.lookup, FieldType.owner):
                if isinstance(v, list):
                    v = [str(x) for x in v]
                    if f.vendor.get("multi") and len(v) == 1:
                        v = v[0]
                elif isinstance(v, int) and not isinstance(v, bool):
                    v = str(v)
            out[k] = v
        out[EXTERNAL_ID_KEY] = flat.get(self.external_id_field)
        out["$created_at"] = flat.get("created_at")
        out["$modified_at"] = flat.get("updated_at")
        return out

    def _record_error(self, obj: str, key: str, status: int, body: Any) -> WriteResult:
        messages = _errors(body) or [f"HTTP {status}"]
        message = "; ".join(messages)
        code = _code_of(messages[0], status)
        field = None
        labels = sorted(((f.label or f.api_name.replace("_", " ").capitalize(), f.api_name)
                         for f in self._fields(obj).values()), key=lambda t: -len(t[0]))
        for label, api in labels:
            if messages[0].lower().startswith(label.lower() + " "):
                field = api
                break
        return WriteResult(key=key, ok=False, code=code, error=message, field=field,
                           retryable=status == 409)

    # ------------------------------------------------------------------ writes
    def create(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        return self._each(items, lambda it: self._single(obj, "create", it), safe=False)

    def update(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        return self._each(items, lambda it: self._single(obj, "update", it), safe=True)

    @staticmethod
    def _each(items: Sequence[WriteItem], one: Callable[[WriteItem], WriteResult], *,
              safe: bool) -> list[WriteResult]:
        """One call per record. A transient error after some records were written returns the
        results so far (the rest have no result: the executor retries them as "outcome
        unknown") instead of throwing the whole batch back; the error is raised when nothing
        was written yet, or when re-sending could duplicate (``safe`` False: a create whose
        outcome is unknown, which the executor must look up by external id first)."""
        out: list[WriteResult] = []
        for it in items:
            try:
                out.append(one(it))
            except TransientError as exc:
                if not out or (exc.maybe_committed and not safe):
                    raise
                return out
        return out

    def upsert(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        path = entity_of(obj)[0]
        missing = [WriteResult(key=it.key, ok=False, code="EXTERNAL_ID_MISSING",
                               error="upsert needs an external id", field=self.external_id_field)
                   for it in items if not it.external_id]
        items = [it for it in items if it.external_id]
        out: list[WriteResult] = list(missing)
        if not items:
            return out
        if path in UPSERT_ENTITIES:
            if len(items) == 1:
                return out + [self._single(obj, "upsert", items[0])]
            for chunk in chunks(list(items), MAX_BULK):
                out.extend(self._bulk_upsert(obj, chunk))
            return out
        # no upsert endpoint: look the external ids up, then create or update
        # (a re-sent record is looked up again, so partial results are always safe here)
        found = self.find_by_external_id(obj, [it.external_id for it in items])

        def one(it: WriteItem) -> WriteResult:
            rid = found.get(it.external_id or "")
            if rid is None:
                return self._single(obj, "create", it)
            r = self._single(obj, "update", WriteItem(it.key, it.external_id, it.record, rid))
            if r.ok:
                r.created = False
            return r

        return out + self._each(items, one, safe=True)

    def _single(self, obj: str, op: str, item: WriteItem) -> WriteResult:
        path, single, _, _ = entity_of(obj)
        try:
            body = self._to_vendor(obj, item.record, item.external_id if op != "update" else None)
        except _RecordError as e:
            return WriteResult(key=item.key, ok=False, code=e.code, error=e.message, field=e.field)
        if op == "update":
            if not item.dest_id:
                return WriteResult(key=item.key, ok=False, code="NOT_FOUND",
                                   error="update without a destination id")
            method, url, payload = "PUT", f"{path}/{item.dest_id}", {single: body}
        elif op == "upsert":
            method, url = "POST", f"{path}/upsert"
            payload = {"unique_identifier": {self.external_id_field: item.external_id},
                       single: body}
        else:
            method, url, payload = "POST", path, {single: body}
        status, resp = self._request(method, url, op=op, json_body=payload, write=True, n=1)
        if status >= 400:
            return self._record_error(obj, item.key, status, resp)
        rec = resp.get(single) if isinstance(resp, dict) else None
        if not isinstance(rec, dict) or rec.get("id") in (None, ""):
            raise FreshsalesProtocolError(f"{method} /api/{url}: response has no {single!r} "
                                          "with an id")
        created = True if op == "create" else (status == 201 if op == "upsert" else False)
        return WriteResult(key=item.key, ok=True, dest_id=str(rec["id"]), created=created)

    def _bulk_upsert(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        path, _, plural, _ = entity_of(obj)
        out: list[WriteResult] = []
        payload: list[dict[str, Any]] = []
        sent: list[WriteItem] = []
        for it in items:
            try:
                data = self._to_vendor(obj, it.record, it.external_id)
            except _RecordError as e:
                out.append(WriteResult(key=it.key, ok=False, code=e.code, error=e.message,
                                       field=e.field))
                continue
            payload.append({self.external_id_field: it.external_id, "data": data})
            sent.append(it)
        if not sent:
            return out
        exts = [it.external_id or "" for it in sent]
        existed = self.find_by_external_id(obj, exts)  # tells created from updated afterwards
        url = f"{path}/bulk_upsert"
        status, resp = self._request("POST", url, op="upsert", json_body={plural: payload},
                                     write=True, n=len(sent))
        if status >= 400:
            raise FreshsalesAPIError(f"POST /api/{url}", status, _errors(resp) or ["refused"])
        job_id = _job_id(resp)
        if job_id in (None, ""):
            raise FreshsalesProtocolError(f"POST /api/{url}: response has no job id")
        job = self._wait_for_job(str(job_id))
        failures: dict[str, tuple[str, int]] = {}
        data = job.get("data") if isinstance(job.get("data"), dict) else {}
        for f in data.get("failures") or []:
            if not isinstance(f, dict):
                continue
            ident = f.get("unique_identifier")
            value = ident.get(self.external_id_field) if isinstance(ident, dict) else None
            if value is None and isinstance(f.get("index"), int) and 0 <= f["index"] < len(exts):
                value = exts[f["index"]]
            err = f.get("errors") if isinstance(f.get("errors"), dict) else {}
            msgs = _errors({"errors": err}) or ["rejected"]
            failures[str(value)] = ("; ".join(msgs), int(err.get("code") or 400))
        try:
            found = self.find_by_external_id(obj, exts)
        except TransientError as exc:
            raise TransientError(f"{exc} (after bulk upsert job {job_id})",
                                 retry_after=exc.retry_after, maybe_committed=True) from None
        for it, ext in zip(sent, exts, strict=True):
            if ext in failures:
                msg, code = failures[ext]
                r = self._record_error(obj, it.key, code, {"errors": {"code": code,
                                                                     "message": [msg]}})
                r.retryable = code >= 500 or code == 429
                out.append(r)
            elif ext in found:
                out.append(WriteResult(key=it.key, ok=True, dest_id=found[ext],
                                       created=ext not in existed))
            # else: no result for this key -> the executor treats its outcome as unknown
        return out

    def _wait_for_job(self, job_id: str) -> dict[str, Any]:
        url = f"job_statuses/{job_id}"
        for attempt in range(self.max_polls):
            try:
                status, resp = self._request("GET", url, op="job_status")
            except TransientError as exc:
                raise TransientError(f"{exc} (bulk upsert job {job_id} outcome unknown)",
                                     retry_after=exc.retry_after, maybe_committed=True) from None
            if status >= 400:
                raise FreshsalesAPIError(f"GET /api/{url}", status, _errors(resp) or ["refused"])
            job = resp.get("job_status", resp) if isinstance(resp, dict) else None
            if not isinstance(job, dict):
                raise FreshsalesProtocolError(f"GET /api/{url}: no job status")
            state = str(job.get("status") or "").lower()
            if state in _TERMINAL or job.get("progress") == 100:
                return job
            self._sleep(self.poll_interval * min(2 ** attempt, 30))
        raise TransientError(f"bulk upsert job {job_id} did not finish after {self.max_polls} "
                             "polls", maybe_committed=True)

    def delete(self, obj: str, ids: Sequence[str]) -> list[WriteResult]:
        """One result per id, keyed by id. Entities with ``bulk_destroy`` (see
        :data:`BULK_DESTROY_ENTITIES`) delete 100 ids a call and then read them back; an id
        still there (the bulk call refused it, or a background deletion has not reached it) gets
        its own ``DELETE``, as do the other entities' ids. An id already gone answers 404 on
        that ``DELETE`` (``NOT_FOUND``, which a rollback counts as deleted)."""
        path = entity_of(obj)[0]
        unique = list(dict.fromkeys(str(i) for i in ids))
        if path in BULK_DESTROY_ENTITIES or path.startswith("custom_module/"):
            out: list[WriteResult] = []
            for chunk in chunks(unique, MAX_BULK_DESTROY):
                out.extend(self._bulk_destroy(obj, path, list(chunk)))
            return out
        return [self._delete_one(obj, path, rid) for rid in unique]

    def _delete_one(self, obj: str, path: str, rid: str) -> WriteResult:
        status, resp = self._request("DELETE", f"{path}/{rid}", op="delete", write=True, n=1)
        if status >= 400:
            return self._record_error(obj, rid, status, resp)
        return WriteResult(key=rid, ok=True, dest_id=rid)

    def _bulk_destroy(self, obj: str, path: str, ids: list[str]) -> list[WriteResult]:
        """``ids`` (at most 100): read them back first (an id already gone answers NOT_FOUND,
        as its ``DELETE`` would), ``bulk_destroy`` the rest, read those back, and ``DELETE``
        each one still there."""
        try:
            present = self._existing(obj, ids)
        except FreshsalesAPIError:  # the read-back is refused: one DELETE each, as before
            return [self._delete_one(obj, path, rid) for rid in ids]
        url = f"{path}/bulk_destroy"
        todo = [rid for rid in ids if rid in present]
        left: set[str] = set()
        if todo:
            status, resp = self._request(
                "POST", url, op="delete", write=True, n=len(todo),
                json_body={"selected_ids": [_int_id(i) for i in todo]})
            if status in (404, 405):  # no bulk_destroy for this entity on this account
                left = set(todo)
            elif status >= 400:
                failed = {rid: self._record_error(obj, rid, status, resp) for rid in todo}
                return [failed.get(rid) or _gone(rid) for rid in ids]
            else:
                left = self._after_bulk_destroy(obj, resp, todo)
        return [self._delete_one(obj, path, rid) if rid in left
                else WriteResult(key=rid, ok=True, dest_id=rid) if rid in present
                else _gone(rid) for rid in ids]

    def _after_bulk_destroy(self, obj: str, resp: Any, ids: list[str]) -> set[str]:
        """Which of ``ids`` a successful ``bulk_destroy`` left: a job it names is waited for
        first [unverified: none documented]; a refused read-back leaves them all to check."""
        job_id = _job_id(resp)
        try:
            if job_id not in (None, ""):
                self._wait_for_job(str(job_id))
            return self._existing(obj, ids)
        except TransientError as exc:
            raise TransientError(f"{exc} (after bulk destroy of {len(ids)} ids)",
                                 retry_after=exc.retry_after, maybe_committed=True) from None
        except FreshsalesAPIError:
            return set(ids)

    def _existing(self, obj: str, ids: list[str]) -> set[str]:
        """Which of ``ids`` (at most 100) exist: filtered search on ``id`` [unverified]."""
        rules = [{"attribute": "id", "operator": "is_in",
                  "value": [_int_id(i) for i in ids]}]
        found: set[str] = set()
        for _, recs in self._search(obj, rules, op="get"):
            found.update(str(r["id"]) for r in recs if isinstance(r, dict) and "id" in r)
        return found & set(ids)

    # ------------------------------------------------------------------ reads
    def get(self, obj: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        path, single, _, _ = entity_of(obj)
        out: dict[str, dict[str, Any]] = {}
        for rid in dict.fromkeys(ids):
            status, resp = self._request("GET", f"{path}/{rid}", op="get")
            if status == 404:
                continue
            rec = self._expect(f"GET /api/{path}/{{id}}", status, resp, single)
            if isinstance(rec, dict):
                out[str(rec.get("id", rid))] = self._from_vendor(obj, rec)
        return out

    def _search(self, obj: str, rules: list[dict[str, Any]], *, per_page: int = 100,
                op: str = "find_by_external_id") -> Iterator[tuple[dict[str, Any], Any]]:
        """Every page of a filtered search: yields (response, records)."""
        _, _, plural, search = entity_of(obj)
        page = 1
        while True:
            body = {"filter_rule": rules, "page": page, "per_page": per_page,
                    "sort": "created_at", "sort_type": "asc"}
            status, resp = self._request("POST", f"filtered_search/{search}", op=op,
                                         json_body=body)
            recs = self._expect(f"POST /api/filtered_search/{search}", status, resp, plural)
            if not isinstance(recs, list):
                raise FreshsalesProtocolError(f"POST /api/filtered_search/{search}: "
                                              f"{plural!r} is not a list")
            yield resp, recs
            meta = resp.get("meta") if isinstance(resp.get("meta"), dict) else {}
            total_pages = meta.get("total_pages")
            if not isinstance(total_pages, int) or page >= total_pages or not recs:
                return
            page += 1

    def find_by_external_id(self, obj: str, external_ids: Sequence[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        ext = self.external_id_field
        for chunk in chunks(list(dict.fromkeys(external_ids)), 100):
            rules = [{"attribute": ext, "operator": "is_in", "value": list(chunk)}]
            for _, recs in self._search(obj, rules):
                for rec in recs:
                    if not isinstance(rec, dict):
                        continue
                    cf = rec.get("custom_field") if isinstance(rec.get("custom_field"), dict) \
                        else rec
                    value = cf.get(ext)
                    if value in chunk and rec.get("id") is not None:
                        out[value] = str(rec["id"])
        return out

    def count(self, obj: str) -> int:
        for resp, _ in self._search(obj, [], per_page=1, op="count"):
            meta = resp.get("meta")
            if isinstance(meta, dict) and isinstance(meta.get("total"), int):
                return meta["total"]
            break
        raise FreshsalesProtocolError(f"filtered search of {obj}: no meta.total")

    def list_records(self, obj: str, *, modified_since: str | None = None
                     ) -> Iterable[dict[str, Any]]:
        rules = [{"attribute": "updated_at", "operator": "is_after",
                  "value": modified_since}] if modified_since else []
        out: list[dict[str, Any]] = []
        for _, recs in self._search(obj, rules, op="list_records"):
            out.extend(self._from_vendor(obj, r) for r in recs if isinstance(r, dict))
        return out

    def list_users(self) -> list[User]:
        status, resp = self._request("GET", "selector/owners", op="list_users")
        users = self._expect("GET /api/selector/owners", status, resp, "users")
        out: list[User] = []
        for u in users if isinstance(users, list) else []:
            if not isinstance(u, dict) or u.get("id") is None:
                raise FreshsalesProtocolError("GET /api/selector/owners: a user without an id")
            out.append(User(id=str(u["id"]), email=str(u.get("email") or ""),
                            name=str(u.get("display_name") or u.get("name") or ""),
                            active=bool(u.get("is_active", True))))
        return out

    # ------------------------------------------------------------------ files
    def upload_attachment(self, obj: str, record_id: str, file_name: str, path: Path,
                          key: str) -> WriteResult:
        found = local_file(path, key)
        if isinstance(found, WriteResult):
            return found
        p, size = found
        if size > ATTACHMENT_LIMIT_BYTES:
            return WriteResult(key=key, ok=False, code="FILE_TOO_LARGE",
                               error=f"file is {size} bytes; Freshsales allows "
                                     f"{ATTACHMENT_LIMIT_BYTES} bytes")
        if obj not in DOCUMENT_TARGETS:
            return WriteResult(key=key, ok=False, code="OPERATION_NOT_ALLOWED",
                               error=f"Freshsales documents attach to "
                                     f"{', '.join(sorted(DOCUMENT_TARGETS))}, not {obj}")
        if key in self._unsettled_uploads:  # a retry after an unknown outcome: look first
            existing = self._find_document(obj, record_id, file_name, size)
            if existing is not None:
                self._unsettled_uploads.discard(key)
                return WriteResult(key=key, ok=True, dest_id=existing, created=False)
        form = {"file_name": file_name, "is_shared": "true", "targetable_type": obj,
                "targetable_id": str(record_id)}
        try:
            with p.open("rb") as fh:
                status, resp = self._request("POST", "documents", op="upload_attachment",
                                             data=form, files={"file": (file_name, fh)},
                                             write=True, n=1)
        except TransientError as exc:
            if exc.maybe_committed:
                self._unsettled_uploads.add(key)
            raise
        self._unsettled_uploads.discard(key)
        if status >= 400:
            r = self._record_error(obj, key, status, resp)
            return r
        doc = resp.get("document") if isinstance(resp, dict) else None
        if not isinstance(doc, dict) or doc.get("id") is None:
            raise FreshsalesProtocolError("POST /api/documents: response has no document id")
        return WriteResult(key=key, ok=True, dest_id=str(doc["id"]), created=True)

    def list_attachments(self, obj: str, record_id: str) -> list[dict[str, Any]]:
        """Documents of one record: ``{"id", "name", "content_file_size", ...}`` items."""
        path = f"{entity_of(obj)[0]}/{record_id}/document_associations"
        status, resp = self._request("GET", path, op="get")
        if status == 404:
            return []
        if status >= 400 or not isinstance(resp, dict):
            raise FreshsalesAPIError(f"GET /api/{path}", status, _errors(resp) or ["refused"])
        docs = resp.get("documents", resp.get("document_associations", []))
        return [d for d in docs if isinstance(d, dict)] if isinstance(docs, list) else []

    def _find_document(self, obj: str, record_id: str, file_name: str, size: int) -> str | None:
        for d in self.list_attachments(obj, record_id):
            if d.get("name") == file_name and str(d.get("content_file_size")) == str(size) \
                    and d.get("id") is not None:
                return str(d["id"])
        return None

    def delete_attachments(self, ids: Sequence[str]) -> list[WriteResult]:
        out: list[WriteResult] = []
        for aid in ids:
            status, resp = self._request("DELETE", f"documents/{aid}", op="delete_attachments",
                                         write=True, n=1)
            if status >= 400:
                out.append(self._record_error("Document", aid, status, resp))
            else:
                out.append(WriteResult(key=aid, ok=True, dest_id=aid))
        return out

