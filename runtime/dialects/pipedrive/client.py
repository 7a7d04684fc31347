"""The Pipedrive connector: the :class:`~runtime.destinations.base.Destination` interface over an
injected ``httpx.Client``.

Calls (API_NOTES.md section 4; ``{base}`` is ``https://<company>.pipedrive.com``):

================ ==========================================================================
create           ``POST {base}/api/v2/{persons|organizations|deals|activities|products}``;
                 ``POST {base}/api/v1/notes``; ``POST {base}/api/v1/leads``
update           ``PATCH {base}/api/v2/{entity}/{id}``; ``PUT /api/v1/notes/{id}``;
                 ``PATCH /api/v1/leads/{id}``
delete           ``DELETE {base}/api/v2/{entity}/{id}`` (soft delete); v1 for notes and leads
get              ``GET {base}/api/v2/{entity}?ids=`` (at most 100);
                 ``GET /api/v1/{notes|leads}/{id}``
find by ext id   ``GET /api/v2/{entity}/search?term=&fields=custom_fields&exact_match=true``
                 (then the hits are read back and the external-id field compared exactly);
                 activities have no search: ``GET /api/v2/activities?updated_since=``; notes
                 have no custom fields: their content ends with a ``[fmap-ref <id>]`` line,
                 looked for among the parent's notes (``GET /api/v1/notes?person_id=``);
                 files: by parent, name and size (``GET /api/v1/files?sort=id DESC``)
list_records     ``GET /api/v2/{entity}?limit=500&cursor=``; ``GET /api/v1/notes?start=``
list_users       ``GET /api/v1/users``
files            ``POST /api/v1/files`` (multipart ``file`` + ``person_id``...);
                 ``GET /api/v1/files``; ``DELETE /api/v1/files/{id}``
metadata         ``GET /api/v2/{person|organization|deal|activity|product}Fields``;
                 ``GET /api/v1/{lead|note}Fields`` (``start``/``limit``; a lead's custom fields
                 are the deal's, by the same hash keys, at the body's top level)
================ ==========================================================================

There are no batch writes and no upsert (``capabilities.native_upsert = False``, batch size 1):
the external id goes into a custom field (``Source_System_ID`` unless ``external_id_field``
says otherwise; its 40-character hash key is read from the ``*Fields`` metadata by name), and
:meth:`PipedriveClient.find_by_external_id` finds records by it, which the executor calls before
it re-sends a write whose outcome is unknown. What that lookup needs survives a restart: it is
in the records themselves, and the send time, the parent and the mapping's own external-id value
are kept in a small on-disk log (:mod:`~runtime.dialects.pipedrive.sentlog`) committed before
each write goes out. Custom fields go under ``custom_fields`` keyed by
hash, enum/set values as option ids, monetary values as ``{"value", "currency"}``; a lead's
``value`` and ``currency`` go as ``value: {"amount", "currency"}`` and its ``visible_to`` as a
string (openapi-v1.yaml addLead).

Rate limits: a daily token budget per company and a rolling 2 s burst window per token (search:
10 per 2 s). The client paces itself (it waits for a free slot in its own windows and honours
``x-ratelimit-remaining`` / ``x-ratelimit-reset``), stops with :class:`FatalError` before the
daily budget (``x-daily-ratelimit-token-remaining`` or a configured ``daily_budget``) would be
overdrawn, turns a 429 into ``TransientError(retry_after=x-ratelimit-reset)``, and after
``max_429`` consecutive 429s stops (FatalError) instead of retrying into Pipedrive's 403 lockout.

Errors: ``{"success": false, "error": ...}`` with 400/404/422 -> ``WriteResult(ok=False)``;
401 -> :class:`PipedriveAuthError` naming the environment variable; 402/403 ->
:class:`PipedriveAPIError` (a 403 HTML page -> the lockout message); 5xx and dropped connections ->
``TransientError`` (``maybe_committed`` for writes); a non-JSON body -> :class:`PipedriveProtocolError`.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

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
    local_file,
    send,
)
from runtime.dialects.pipedrive.auth import PipedriveAuthError, PipedriveCredentials
from runtime.dialects.pipedrive.capabilities import RATE_LIMIT
from runtime.dialects.pipedrive.sentlog import Sent, SentLog
from runtime.schema.model import FieldSchema, FieldType, SystemSchema

__all__ = ["PipedriveClient", "PipedriveAPIError", "PipedriveProtocolError", "TOKEN_COSTS",
           "token_cost", "ENTITIES", "DEFAULT_EXTERNAL_ID_FIELD", "BurstWindow", "plan_limits",
           "EXTERNAL_ID_KEY"]

DEFAULT_EXTERNAL_ID_FIELD = "Source_System_ID"
EXTERNAL_ID_KEY = "$external_id"
IDS_LIMIT = 100
PAGE_LIMIT = 500
# records a content scan (an object whose records carry no id of ours) reads at the most before
# it stops and reports the outcome it was settling as unknown: 40 pages, 400 tokens on v2
SCAN_LIMIT = 20_000
SEARCH_BURST = 10  # requests per 2 s on every plan
BURST_WINDOW_S = 2.0

# object -> (api version, path segment, *Fields segment in that version or None)
ENTITIES: dict[str, tuple[str, str, str | None]] = {
    "Person": ("v2", "persons", "personFields"),
    "Organization": ("v2", "organizations", "organizationFields"),
    "Deal": ("v2", "deals", "dealFields"),
    "Activity": ("v2", "activities", "activityFields"),
    "Product": ("v2", "products", "productFields"),
    "Note": ("v1", "notes", "noteFields"),
    "Lead": ("v1", "leads", "leadFields"),
}
FILE_OBJECT = "File"  # read, counted and deleted through /v1/files; written by upload_attachment
_SEARCHABLE = {"persons", "organizations", "deals", "products"}
# the parent filters each listing takes (the ``GET`` parameters of openapi-v2.yaml / -v1.yaml)
_LIST_LINKS = {"persons": ("org_id",), "deals": ("person_id", "org_id"),
               "activities": ("deal_id", "lead_id", "person_id", "org_id"),
               "leads": ("person_id", "organization_id")}
# the fields that tie a sent note (or lead) to its parent, in the order a lookup tries them
_PARENT_LINKS = ("person_id", "org_id", "deal_id", "lead_id")
# v1 listings whose operation declares no start/limit though the reply documents pagination
_NO_PAGE_PARAMS = {"noteFields"}  # openapi-v1.yaml getNoteFields
_FILE_PARENTS = {"Person": "person_id", "Organization": "org_id", "Deal": "deal_id",
                 "Product": "product_id", "Activity": "activity_id", "Lead": "lead_id"}

# Token cost per operation, from the specs' ``x-token-cost`` (tests check every row against
# openapi-v1.yaml / openapi-v2.yaml). Keys: "<version> <METHOD> <spec path>".
TOKEN_COSTS: dict[str, int] = {
    **{f"v2 {m} /{e}{p}": c
       for e in ("persons", "organizations", "deals", "activities", "products")
       for m, p, c in (("GET", "", 10), ("POST", "", 5), ("GET", "/{id}", 1),
                       ("PATCH", "/{id}", 5), ("DELETE", "/{id}", 3))},
    **{f"v2 GET /{e}/search": 20 for e in ("persons", "organizations", "deals", "products")},
    "v2 GET /itemSearch/field": 20,
    **{f"v2 GET /{f}": 10 for f in ("personFields", "organizationFields", "dealFields",
                                    "activityFields", "productFields")},
    "v1 GET /notes": 20, "v1 POST /notes": 10, "v1 GET /notes/{id}": 2,
    "v1 PUT /notes/{id}": 10, "v1 DELETE /notes/{id}": 6,
    "v1 GET /leads": 20, "v1 POST /leads": 10, "v1 GET /leads/{id}": 2,
    "v1 PATCH /leads/{id}": 10, "v1 DELETE /leads/{id}": 6,
    "v1 GET /files": 20, "v1 POST /files": 10, "v1 DELETE /files/{id}": 6,
    "v1 GET /users": 20,
    "v1 GET /leadFields": 20, "v1 GET /noteFields": 20,
}
_ID_SEGMENT = re.compile(r"^(\d+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")


def token_cost(version: str, method: str, path: str) -> int:
    """Tokens one call costs (``path`` below ``/api/v1`` or ``/api/v2``, ids as they are)."""
    parts = [("{id}" if _ID_SEGMENT.match(p) else p) for p in path.strip("/").split("/")]
    key = f"{version} {method.upper()} /{'/'.join(parts)}"
    if key in TOKEN_COSTS:
        return TOKEN_COSTS[key]
    # the notes' rule of thumb (API_NOTES.md 4.7) for anything not in the table
    base = {"GET": 1 if parts[-1] == "{id}" else 10, "DELETE": 3}.get(method.upper(), 5)
    return base * (2 if version == "v1" else 1)


def plan_limits(plan: str, *, oauth: bool = False) -> tuple[int, int]:
    """(daily token base x multiplier, burst requests per 2 s) of a plan."""
    p = RATE_LIMIT.plans.get(plan.strip().lower())
    if p is None:
        raise ValueError(f"unknown Pipedrive plan {plan!r}; one of {', '.join(RATE_LIMIT.plans)}")
    burst = int(p.burst or 20) * (4 if oauth else 1)
    return int((p.base or 30_000) * (p.multiplier or 1)), burst


class BurstWindow:
    """A rolling window of ``limit`` requests per ``seconds``: :meth:`wait` says how long until a
    request may go, :meth:`take` books one."""

    def __init__(self, limit: int, seconds: float = BURST_WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = int(limit)
        self.seconds = float(seconds)
        self.clock = clock
        self._times: deque[float] = deque()

    def _expire(self, now: float) -> None:
        while self._times and self._times[0] <= now - self.seconds:
            self._times.popleft()

    def wait(self) -> float:
        now = self.clock()
        self._expire(now)
        if len(self._times) < self.limit:
            return 0.0
        return max(1e-3, self._times[0] + self.seconds - now)

    def take(self) -> None:
        now = self.clock()
        self._expire(now)
        self._times.append(now)

    @property
    def remaining(self) -> int:
        self._expire(self.clock())
        return max(0, self.limit - len(self._times))


class PipedriveAPIError(APIError):
    """A whole request Pipedrive refused (permission, account, lockout): retrying won't help.
    The shared :class:`APIError`, as every dialect's is; Pipedrive's error text carries no code."""

    def __init__(self, endpoint: str, status: int, message: str) -> None:
        super().__init__(endpoint, status, None, message)


class PipedriveProtocolError(FatalError):
    """Pipedrive answered something the connector cannot read (not JSON, keys missing)."""


def _jsonable(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if v.tzinfo else \
            v.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    return v


def _int_id(v: Any) -> Any:
    return int(v) if isinstance(v, str) and v.isdigit() else v


# Notes have no custom fields: the external id travels in the content as a last line
# ``[fmap-ref <id>]`` (plain text survives Pipedrive's HTML sanitiser, which a comment or an
# attribute might not), so a note is found by it after a restart and read back without it.
NOTE_MARKER = "\n\n[fmap-ref {ext}]"
_NOTE_MARKER_RE = re.compile(
    r"(?:\s|<br\s*/?>|<p>)*\[fmap-ref ([^\]\s<]+)\](?:\s|</p>|<br\s*/?>)*$")
NOTE_MAX = 100_000


def note_marker(ext: str) -> str:
    return NOTE_MARKER.format(ext=quote(str(ext), safe=":#.-_@/+=~"))


def strip_note_marker(content: Any) -> tuple[Any, str | None]:
    """(content without the marker, the external id it carried or None)."""
    if not isinstance(content, str):
        return content, None
    m = _NOTE_MARKER_RE.search(content)
    if m is None:
        return content, None
    return content[:m.start()], unquote(m.group(1))


def _v1_epoch(ts: Any) -> float | None:
    """A v1 ``YYYY-MM-DD HH:MM:SS`` (UTC) time as epoch seconds."""
    try:
        return datetime.strptime(str(ts), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def _epoch(ts: Any) -> float | None:
    """A journal ``sent_at`` (ISO 8601, epoch seconds or a datetime) as epoch seconds."""
    if ts is None:
        return None
    if isinstance(ts, (int, float)):
        return float(ts)
    if isinstance(ts, datetime):
        return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).timestamp()
    try:
        d = datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
    except ValueError:
        return None
    return (d if d.tzinfo else d.replace(tzinfo=UTC)).timestamp()


# how far before a recorded send a search window starts (clock skew between us and Pipedrive)
SKEW_S = 600.0

def _field_name(f: FieldSchema) -> str:
    """The name to create a field with: its label when that reads back (``api_safe_name``) as
    the field's API name, else the API name spelled with spaces."""
    from runtime.dialects._loader import api_safe_name

    if f.label and api_safe_name(f.label) == f.api_name:
        return f.label
    return f.api_name.replace("_", " ")


def _create_type(f: FieldSchema) -> str | None:
    """The ``field_type`` for ``POST /{entity}Fields`` (no boolean, no datetime in Pipedrive)."""
    t = f.type
    if t in (FieldType.text, FieldType.email, FieldType.url, FieldType.datetime):
        return "text" if (f.max_length or 0) > 255 else "varchar"
    return {FieldType.textarea: "text", FieldType.phone: "phone", FieldType.integer: "double",
            FieldType.decimal: "double", FieldType.percent: "double",
            FieldType.currency: "monetary", FieldType.date: "date", FieldType.picklist: "enum",
            FieldType.multipicklist: "set", FieldType.owner: "user",
            FieldType.lookup: {"Organization": "org", "Person": "people"}.get(
                (f.lookup_targets or [""])[0])}.get(t)


def _holds_sent(sent: Any, got: Any) -> bool:
    """Whether a listed record ``got`` holds what a create ``sent`` (the only way to know a
    record that carries no id of ours). Lenient where Pipedrive rewrites what it stores: a key
    the listing leaves out is not compared, a multi-value (emails, set options) needs the sent
    values among the stored ones, ``{"value": ...}`` objects compare by value, numbers by value
    (``5`` is ``"5"`` is ``5.0``). An empty body identifies nothing."""
    if not isinstance(sent, dict) or not isinstance(got, dict):
        return False
    compared = [k for k, v in sent.items() if v is not None and k in got]
    return bool(compared) and all(_same(sent[k], got[k]) for k in compared)


def _same(sent: Any, got: Any) -> bool:
    if isinstance(got, dict) and "value" in got and not isinstance(sent, dict):
        got = got["value"]  # a v1 expanded link, an address
    if isinstance(sent, dict):
        if not isinstance(got, dict):
            return "value" in sent and _same(sent["value"], got)
        return all(_same(v, got.get(k)) for k, v in sent.items() if v is not None)
    if isinstance(sent, list):
        have = [_scalar(x) for x in got] if isinstance(got, list) else [_scalar(got)]
        return all(_scalar(x) in have for x in sent)
    return _scalar(sent) == _scalar(got)


def _scalar(v: Any) -> Any:
    if isinstance(v, dict):
        v = v.get("value")
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, (int, float, Decimal)) or (isinstance(v, str) and _NUMBER.match(v)):
        return float(v)
    return str(v)


def _custom_read(f: FieldSchema, v: Any) -> Any:
    """A custom field's value as Pipedrive answers it -> the record's: option ids back to their
    labels (v2 ``custom_fields`` and v1's top-level hash keys alike), ``{"value": ...}`` to the
    value."""
    labels = {i: lab for lab, i in (f.vendor.get("options") or {}).items()}
    if isinstance(v, dict) and "value" in v:
        v = v["value"]
    if isinstance(v, list):
        return [labels.get(x, x) for x in v]
    return labels.get(v, v) if isinstance(v, (int, str)) else v


def _lead_value(out: dict[str, Any], record: dict[str, Any], default_currency: str) -> None:
    """A lead's ``value`` goes as ``{"amount", "currency"}`` (both required; ``null`` clears):
    the record's ``value`` is the amount and its ``currency`` (else the target's) the currency.
    A ``currency`` without an amount is left as it is, for Pipedrive to refuse."""
    if "value" not in out:
        return
    amount = out["value"]
    if isinstance(amount, dict):  # the mapping built the object itself
        return
    out.pop("currency", None)
    if isinstance(amount, str) and _NUMBER.match(amount.strip()):
        n = float(amount)
        amount = int(n) if n.is_integer() else n  # the API takes a number, not "500"
    if amount is not None:
        out["value"] = {"amount": amount,
                        "currency": record.get("currency") or default_currency}


_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
_INVALID_FIELD = re.compile(r"Invalid field\(s\) in the payload: ([\w, ]+)")
_MULTI = {"emails", "phones"}
_ADDRESS = {"postal_address", "address"}


class PipedriveClient(OwnedHTTP):
    """Pipedrive destination. Give it an ``httpx.Client`` (its transport decides where requests
    go: the real API, a ``MockTransport``, or the sandbox) or let it build one."""

    def __init__(
        self,
        *,
        base_url: str,
        credentials: PipedriveCredentials | None = None,
        http: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        schema: SystemSchema | None = None,
        external_id_field: str = DEFAULT_EXTERNAL_ID_FIELD,
        plan: str = "growth",
        seats: int | None = None,
        daily_budget: int | None = None,
        burst: int | None = None,
        currency: str = "USD",
        max_429: int = 4,
        max_wait: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        name: str = "pipedrive",
        timeout: float = 60.0,
        owns: Iterable[Any] = (),
        sent_log: SentLog | str | Path | None = None,
        scan_limit: int = SCAN_LIMIT,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._creds = credentials or PipedriveCredentials.from_env()
        self.external_id_field = external_id_field
        self.currency = currency
        self.plan = plan
        per_day, plan_burst = plan_limits(plan, oauth=self._creds.kind == "oauth")
        self.daily_budget = daily_budget if daily_budget is not None else (
            per_day * seats if seats else None)
        self.daily_remaining: int | None = self.daily_budget
        self.max_429 = max_429
        self.max_wait = max_wait
        self.clock = clock
        self.sleep = sleep
        self.burst = BurstWindow(burst or plan_burst, clock=clock)
        self.search_burst = BurstWindow(SEARCH_BURST, clock=clock)
        self._blocked_until = 0.0
        self._consecutive_429 = 0
        self.tokens_spent = 0
        self.scan_limit = scan_limit
        self._schema = schema
        self._open_http(http, transport, timeout, owns)
        self._lock = threading.RLock()
        self._fields: dict[str, dict[str, FieldSchema]] = {}  # obj -> api_name -> org field
        self._unsettled: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        # upload key -> when it was sent (None: unknown, e.g. named by a resumed run's recovery)
        self._unsettled_uploads: dict[str, float | None] = {}
        self._ext_values: dict[tuple[str, str], str] = {}  # (obj, external id) -> field value
        # what a resumed process needs to find an in-flight write (sentlog.py); None: memory only
        self.sent_log = sent_log if isinstance(sent_log, SentLog) or sent_log is None \
            else SentLog(sent_log)
        self.capabilities = DestinationCapabilities(
            name=name, batch_size=1, native_upsert=False, bulk=False,
            attachment_limit_bytes=None, find_hints=True,
            # the client paces itself per request (burst + search windows, headers); the
            # executor's bucket is left unlimited so the two do not double-count
            rate_limit=RateLimit(kind="tokens", per_window=0, window_seconds=BURST_WINDOW_S,
                                 write_cost_per_call=5, read_cost_per_call=1, concurrency=1))
        self.stats = CallStats()

    def __repr__(self) -> str:
        return (f"PipedriveClient(base={self.base_url!r}, auth={self._creds.kind!r}, "
                f"plan={self.plan!r})")

    # ------------------------------------------------------------------ transport
    def _pace(self, search: bool) -> None:
        while True:
            waits = [self.burst.wait(), self._blocked_until - self.clock()]
            if search:
                waits.append(self.search_burst.wait())
            w = max(waits)
            if w <= 0:
                break
            self.sleep(w)
        self.burst.take()
        if search:
            self.search_burst.take()

    def _request(self, method: str, version: str, path: str, *, op: str,
                 params: dict | None = None, json_body: Any = None, files: Any = None,
                 data: Any = None, write: bool = False, n: int = 0) -> tuple[int, Any]:
        """One API call -> (status, parsed JSON body)."""
        endpoint = f"{method} /api/{version}{path}"
        cost = token_cost(version, method, path)
        with self._lock:
            if self.daily_remaining is not None and cost > self.daily_remaining:
                raise FatalError(
                    f"{endpoint}: the Pipedrive daily token budget is nearly spent "
                    f"({self.daily_remaining} tokens left, this call costs {cost}); stopping "
                    "before Pipedrive answers 429 and locks the token out. Resume after the "
                    "budget resets (server midnight) with --resume")
            self._pace(search=path.endswith("/search") or path.startswith("/itemSearch"))
        url = f"{self.base_url}/api/{version}{path}"
        headers = self._creds.headers()
        self.stats.count_call(op, n)
        resp = send(self._http, method, url, endpoint=endpoint, write=write, params=params,
                    json=json_body, files=files, data=data, headers=headers)
        self._read_limits(resp, cost)
        status = resp.status_code
        if status == 429:
            self.stats.throttled += 1
            self._consecutive_429 += 1
            reset = header_float(resp, "x-ratelimit-reset") or \
                header_float(resp, "retry-after")
            if self._consecutive_429 >= self.max_429 or self.daily_remaining == 0 or \
                    (reset is not None and reset > self.max_wait):
                raise FatalError(
                    f"{endpoint}: Pipedrive kept answering 429 ({self._consecutive_429} in a "
                    "row; the daily token budget or the burst limit is exhausted); stopping "
                    "instead of retrying into a 403 lockout. Resume later with --resume")
            if reset is not None:
                self._blocked_until = self.clock() + reset
            raise TransientError(f"{endpoint}: 429 rate limited", retry_after=reset,
                                 maybe_committed=False)
        self._consecutive_429 = 0
        body = self._parse(resp, endpoint)
        if status == 401:
            raise PipedriveAuthError(
                f"{endpoint}: Pipedrive rejected the credentials (HTTP 401); set a valid "
                f"{self._creds.env_var}")
        if status == 403 and body is None:
            raise PipedriveAPIError(endpoint, 403, "(an HTML page: Pipedrive has blocked this "
                                    "token after repeated 429s; wait before resuming)")
        if status in (402, 403):
            raise PipedriveAPIError(endpoint, status, self._error_text(body))
        if status >= 500:
            raise TransientError(f"{endpoint}: HTTP {status}", maybe_committed=write)
        if body is None:
            raise PipedriveProtocolError(f"{endpoint}: HTTP {status} with a non-JSON body "
                                         f"({resp.headers.get('content-type', 'none')})")
        return status, body

    def _read_limits(self, resp: httpx.Response, cost: int) -> None:
        with self._lock:
            self.tokens_spent += cost
            daily = header_float(resp, "x-daily-ratelimit-token-remaining")
            if daily is not None:
                self.daily_remaining = int(daily)
            elif self.daily_remaining is not None and resp.status_code != 429:
                self.daily_remaining = max(0, self.daily_remaining - cost)
            remaining = header_float(resp, "x-ratelimit-remaining")
            reset = header_float(resp, "x-ratelimit-reset")
            if remaining is not None and remaining <= 0 and reset is not None:
                self._blocked_until = max(self._blocked_until, self.clock() + reset)

    @staticmethod
    def _parse(resp: httpx.Response, endpoint: str) -> Any:
        if not resp.content:
            return {}
        if "json" not in resp.headers.get("content-type", "json"):
            return None
        try:
            body = resp.json()
        except ValueError:
            return None
        if not isinstance(body, dict):
            raise PipedriveProtocolError(f"{endpoint}: expected a JSON object")
        return body

    @staticmethod
    def _error_text(body: Any) -> str:
        if isinstance(body, dict):
            return str(body.get("error") or body.get("error_info") or "error")
        return "error"

    def _ok_data(self, endpoint: str, status: int, body: dict) -> Any:
        if status >= 400 or body.get("success") is False:
            raise PipedriveAPIError(endpoint, status, self._error_text(body))
        return body.get("data")

    def _v1_pages(self, path: str, *, op: str, params: dict[str, Any] | None = None,
                  sort: str | None = None, paged: bool = True) -> Iterator[list[Any]]:
        """The ``data`` of each page of a v1 listing (``start``/``limit`` pagination); the next
        page is asked for only when the caller reads on. Notes and files nest the page's
        details in ``additional_data.pagination``; leads put them in ``additional_data`` itself
        (openapi-v1.yaml ``getLeads``) and send no ``next_start``. ``paged=False`` is for an
        endpoint whose parameters the spec leaves out while its reply still documents
        pagination (getNoteFields): the first request sends no ``start``/``limit``, so it is
        valid as documented, and only a reply saying there is more is followed with ``start``."""
        start = 0
        while True:
            paging = {"start": start, "limit": PAGE_LIMIT} if paged else \
                ({"start": start} if start else {})
            status, resp = self._request(
                "GET", "v1", path, op=op,
                params={**(params or {}), **paging, **({"sort": sort} if sort else {})})
            data = self._ok_data(f"GET /api/v1{path}", status, resp) or []
            yield data
            extra = resp.get("additional_data") or {}
            pag = extra.get("pagination") if isinstance(extra.get("pagination"), dict) else extra
            if not pag.get("more_items_in_collection") or not data:
                return
            # the records read, not the limit asked: a server that caps the page lower skips none
            start = int(pag.get("next_start") or start + len(data))

    def _v2_pages(self, path: str, *, op: str, params: dict[str, Any] | None = None
                  ) -> Iterator[list[Any]]:
        """The ``data`` of each page of a v2 listing (``cursor`` pagination)."""
        cursor = None
        while True:
            status, resp = self._request(
                "GET", "v2", path, op=op,
                params={"limit": PAGE_LIMIT, **(params or {}),
                        **({"cursor": cursor} if cursor else {})})
            yield self._ok_data(f"GET /api/v2{path}", status, resp) or []
            cursor = (resp.get("additional_data") or {}).get("next_cursor")
            if not cursor:
                return

    # ------------------------------------------------------------------ schema and fields
    def schema(self) -> SystemSchema:
        if self._schema is None:
            from runtime.dialects import get_dialect

            self._schema = get_dialect("pipedrive").standard_schema()
        return self._schema

    def _std(self, obj: str) -> dict[str, FieldSchema]:
        o = self.schema().object(obj)
        return {f.api_name: f for f in o.fields} if o is not None else {}

    def org_fields(self, obj: str) -> dict[str, FieldSchema]:
        """The org's fields of an object from its ``*Fields`` endpoint (custom fields by name,
        hash key and option ids in ``vendor``), read once. Writes and reads only need the custom
        fields: a lead's are the deal's (already read for deals, so no ``leadFields`` call), and
        notes have none (no ``noteFields`` call spent on finding nothing)."""
        if obj in self._fields:
            return self._fields[obj]
        if obj == "Lead":  # leads "inherit the custom fields' structure from deals" (v1 spec)
            return self._fields.setdefault(obj, {n: f for n, f in self.org_fields("Deal").items()
                                                 if f.custom})
        if obj == "Note":
            return self._fields.setdefault(obj, {})
        ent = ENTITIES.get(obj)
        out: dict[str, FieldSchema] = {}
        if ent is not None and ent[2] is not None:
            from runtime.dialects.pipedrive.metadata import load_pipedrive_metadata

            schema = load_pipedrive_metadata(self._fields_response(obj),
                                             source_name=f"{ent[2]} (org)", object_name=obj)
            o = schema.object(obj)
            out = {f.api_name: f for f in o.fields} if o is not None else {}
        self._fields[obj] = out
        return out

    def _fields_response(self, obj: str) -> dict[str, Any]:
        """``GET /api/v2/{entity}Fields`` (cursor) or ``GET /api/v1/{lead|note}Fields``
        (``start``/``limit``), every page, as one response of that version."""
        version, _, seg = ENTITIES.get(obj) or (None, None, None)
        if seg is None:
            raise FatalError(f"Pipedrive has no fields endpoint for {obj!r} (one of "
                             f"{', '.join(o for o, e in ENTITIES.items() if e[2])})")
        if version == "v1":
            items = [x for page in self._v1_pages(f"/{seg}", op="metadata",
                                                  paged=seg not in _NO_PAGE_PARAMS)
                     for x in page]
            return {"success": True, "data": items, "additional_data": {"pagination": {
                "start": 0, "limit": len(items), "more_items_in_collection": False}}}
        items = [x for page in self._v2_pages(f"/{seg}", op="metadata") for x in page]
        return {"success": True, "data": items, "additional_data": {"next_cursor": None}}

    def metadata_bundle(self, objects: Sequence[str]) -> dict[str, Any]:
        """``{"objects": {name: its *Fields response}, "no_field_metadata": [name, ...]}``, what
        ``fmap schema pull`` saves and :func:`load_pipedrive_metadata` reads (v2 responses for
        the v2 objects, v1 ``leadFields``/``noteFields`` ones for leads and notes). A name that
        is no Pipedrive object (Pipedrive has no custom objects) is left out, as the contract
        says for an object the org lacks. An object Pipedrive has without a fields endpoint
        (files) is named under ``no_field_metadata`` instead of failing the whole pull or
        vanishing from it: the snapshot says its fields are not in it, and the loader warns."""
        names = [o for o in dict.fromkeys(objects) if o in ENTITIES or o == FILE_OBJECT]
        have = [o for o in names if (ENTITIES.get(o) or (None, None, None))[2]]
        return {"objects": {o: self._fields_response(o) for o in have},
                "no_field_metadata": [o for o in names if o not in have]}

    def apply_schema_changes(self, changes: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Custom fields through ``POST /api/v2/{entity}Fields`` (persons, organizations, deals,
        products). Pipedrive has no custom objects (:class:`UnsupportedByDialect`, before
        anything is created) and no API for activity fields (that change fails, naming the
        admin step); the new field's hash key is then found by its name like any other."""
        from runtime.dialects.base import UnsupportedByDialect
        from runtime.schema.changes import field_from_change

        modules = [c for c in changes if c.get("action") != "create_field"]
        if modules:
            raise UnsupportedByDialect("pipedrive", "custom objects do not exist in Pipedrive "
                                       f"({', '.join(sorted({c['object'] for c in modules}))})")
        out: list[dict[str, Any]] = []
        for c in changes:
            obj, name = c["object"], c["field"]
            res = {"object": obj, "field": name, "status": "failed", "message": None}
            out.append(res)
            version, _, seg = ENTITIES.get(obj) or (None, None, None)
            # v1 fields (notes, leads) have no create endpoint; a lead's are the deal's
            if seg is None or version != "v2" or obj == "Activity":
                res["message"] = (f"Pipedrive's API cannot create {obj} fields; an admin adds "
                                  f"{name!r} in Settings > Data fields")
                continue
            f = field_from_change(c)
            body: dict[str, Any] = {"field_name": _field_name(f), "field_type": _create_type(f)}
            if body["field_type"] is None:
                res["message"] = f"Pipedrive custom fields have no {f.type.value} type"
                continue
            if body["field_type"] in ("enum", "set"):
                if not f.picklist_values:
                    res["message"] = "a picklist needs its values"
                    continue
                body["options"] = [{"label": v} for v in f.picklist_values]
            status, resp = self._request("POST", "v2", f"/{seg}", op="schema", json_body=body)
            if status < 400 and resp.get("success") is not False:
                res["status"] = "created"
                self._fields.pop(obj, None)  # read again: the new hash key, found by name
            else:
                res["message"] = self._error_text(resp)
        return out

    def _custom(self, obj: str, name: str) -> FieldSchema | None:
        f = self.org_fields(obj).get(name)
        return f if f is not None and f.custom and f.vendor.get("key") else None

    def _ext_key(self, obj: str) -> str | None:
        f = self._custom(obj, self.external_id_field)
        return f.vendor["key"] if f is not None else None

    # ------------------------------------------------------------------ record conversion
    def _custom_value(self, f: FieldSchema, v: Any) -> Any:
        ptype = f.vendor.get("field_type")
        opts: dict[str, Any] = f.vendor.get("options") or {}
        if v is None:
            return None
        if ptype == "enum":
            return opts.get(str(v), v)
        if ptype == "set":
            vals = v if isinstance(v, list) else [x for x in str(v).split(";") if x]
            ids = [opts.get(str(x), x) for x in vals]
            return ids or None  # [] is a validation error; null clears
        if ptype == "monetary":
            return v if isinstance(v, dict) else {"value": _jsonable(v), "currency": self.currency}
        return _jsonable(v)

    def _to_pd(self, obj: str, item: WriteItem, *, creating: bool) -> dict[str, Any]:
        version = ENTITIES.get(obj, ("v2",))[0]
        std = self._std(obj)
        out: dict[str, Any] = {}
        custom: dict[str, Any] = {}
        record = dict(item.record)
        if creating and item.external_id is not None and version == "v2" \
                and self._ext_key(obj) is not None:
            own = record.get(self.external_id_field)
            if own in (None, ""):
                record[self.external_id_field] = item.external_id
            else:  # the mapping writes its own source id: keep it (the journal has it) and
                self._ext_values[(obj, item.external_id)] = str(own)  # search by it
        for k, v in record.items():
            f = std.get(k)
            if f is None or f.custom:
                cf = self._custom(obj, k)
                if cf is not None:
                    custom[cf.vendor["key"]] = self._custom_value(cf, v)
                    continue
            if f is not None and f.type in (FieldType.lookup, FieldType.owner, FieldType.id):
                v = _int_id(v)
            elif k in _MULTI and version == "v2" and isinstance(v, str):
                v = [{"value": v, "primary": True, "label": "work"}]
            elif k in _ADDRESS and version == "v2" and isinstance(v, str):
                v = {"value": v}
            elif k == "visible_to":
                v = str(v) if obj == "Lead" and v is not None else _int_id(v)  # a string there
            out[k] = _jsonable(v)
        if obj == "Lead":
            _lead_value(out, record, self.currency)
        if custom and version == "v1":
            out.update(custom)  # v1 (leads): custom fields by hash key at the top level
        elif custom:
            out["custom_fields"] = custom
        if obj == "Note" and isinstance(out.get("content"), str):
            # an update keeps the marker: the executor keys an update by the record's external id
            ext = item.external_id if creating else (item.external_id or item.key)
            limit = (std.get("content").max_length if std.get("content") else None) or NOTE_MAX
            if ext and len(out["content"]) + len(note_marker(ext)) <= limit:
                out["content"] += note_marker(ext)
        return out

    def _from_pd(self, obj: str, rec: dict[str, Any]) -> dict[str, Any]:
        std = self._std(obj)
        by_key = {f.vendor["key"]: f for f in self.org_fields(obj).values()
                  if f.custom and f.vendor.get("key")}
        out: dict[str, Any] = {}
        for k, v in rec.items():
            if k == "custom_fields" and isinstance(v, dict):
                for h, cv in v.items():
                    f = by_key.get(h)
                    if f is not None:
                        out[f.api_name] = _custom_read(f, cv)
                continue
            top = by_key.get(k) if len(k) == 40 else None  # v1: custom fields at the top level
            if top is not None:
                out[top.api_name] = _custom_read(top, v)
                continue
            f = std.get(k)
            if f is None and k != "id":
                continue  # vendor extras (is_deleted, active_flag...) are not record fields
            if k in _MULTI and isinstance(v, list):
                prim = next((x for x in v if isinstance(x, dict) and x.get("primary")),
                            v[0] if v else None)
                v = prim.get("value") if isinstance(prim, dict) else prim
            elif k in _ADDRESS and isinstance(v, dict):
                v = v.get("value")
            elif (k == "id" or (f is not None and f.type in (FieldType.lookup, FieldType.owner))
                  ) and isinstance(v, int) and not isinstance(v, bool):
                v = str(v)
            elif isinstance(v, dict) and "value" in v and k.endswith("_id"):
                v = str(v["value"]) if v["value"] is not None else None  # v1 expanded links
            out[k] = v
        if obj == "Lead" and isinstance(rec.get("value"), dict):  # {amount, currency}
            out["value"] = rec["value"].get("amount")
            out["currency"] = rec["value"].get("currency")
        if obj == "Note":
            ext = None
            if "content" in out:
                out["content"], ext = strip_note_marker(out["content"])
            out[EXTERNAL_ID_KEY] = ext
            return out
        out[EXTERNAL_ID_KEY] = out.get(self.external_id_field)
        return out

    # ------------------------------------------------------------------ writes
    def _entity(self, obj: str) -> tuple[str, str]:
        ent = ENTITIES.get(obj)
        if ent is None:
            raise FatalError(f"Pipedrive has no record API for {obj!r} (one of "
                             f"{', '.join(ENTITIES)}; files go through upload_attachment)")
        return ent[0], ent[1]

    def create(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        version, seg = self._entity(obj)
        out = []
        for it in items:
            body = self._to_pd(obj, it, creating=True)
            if it.external_id is not None:
                self._unsettled[(obj, it.external_id)] = (time.time(), body)
                if self.sent_log is not None:
                    link = next((k for k in _PARENT_LINKS if body.get(k)), None) \
                        if obj == "Note" else None
                    self.sent_log.record(obj, it.external_id, Sent(
                        time.time(), own=self._ext_values.get((obj, it.external_id)),
                        link=link, parent=str(body[link]) if link else None))
            status, resp = self._request("POST", version, f"/{seg}", op="create",
                                         json_body=body, write=True, n=1)
            r = self._result(it.key, status, resp, created=True)
            if it.external_id is not None:
                self._unsettled.pop((obj, it.external_id), None)
            out.append(r)
        return out

    def update(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        version, seg = self._entity(obj)
        method = "PUT" if obj == "Note" else "PATCH"
        out = []
        for it in items:
            if not it.dest_id:
                out.append(WriteResult(key=it.key, ok=False, code="MISSING_ID",
                                       error="update without a record id"))
                continue
            status, resp = self._request(method, version, f"/{seg}/{it.dest_id}", op="update",
                                         json_body=self._to_pd(obj, it, creating=False),
                                         write=True, n=1)
            out.append(self._result(it.key, status, resp, created=False))
        return out

    def upsert(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        """Pipedrive has no upsert: find by external id, then PATCH or POST (not atomic)."""
        found = self.find_by_external_id(obj, [i.external_id for i in items if i.external_id])
        out = []
        for it in items:
            rid = found.get(it.external_id or "")
            if rid:
                r = self.update(obj, [WriteItem(it.key, None, it.record, rid)])[0]
            else:
                r = self.create(obj, [it])[0]
            out.append(r)
        return out

    def _result(self, key: str, status: int, resp: dict, *, created: bool | None) -> WriteResult:
        if status < 400 and resp.get("success") is not False:
            data = resp.get("data")
            rid = data.get("id") if isinstance(data, dict) else None
            if rid is None:
                return WriteResult(key=key, ok=False, code="MALFORMED_RESULT",
                                   error="success without data.id")
            return WriteResult(key=key, ok=True, dest_id=str(rid), created=created)
        msg = self._error_text(resp)
        m = _INVALID_FIELD.search(msg)
        field = m.group(1).split(",")[0].strip() if m else None
        code = str(resp.get("code") or resp.get("errorCode") or f"HTTP_{status}")
        return WriteResult(key=key, ok=False, code=code, error=msg, field=field,
                           retryable=status == 409)

    def delete(self, obj: str, ids: Sequence[str]) -> list[WriteResult]:
        if obj == FILE_OBJECT:
            return self.delete_attachments(ids)
        version, seg = self._entity(obj)
        # one DELETE per record: the v2 spec (../shared/crm/specs/pipedrive/openapi-v2.yaml) has
        # no bulk delete for persons, organizations, deals, activities or products, only for
        # field options (and a deal's products); v1 bulk deletes exist for fields and filters
        # only in openapi-v1.yaml, and v1 ``DELETE /persons?ids=`` is deprecated (API_NOTES.md
        # 4.3, api/v1/deletepersons.md)
        out = []
        for rid in ids:
            status, resp = self._request("DELETE", version, f"/{seg}/{rid}", op="delete",
                                         write=True, n=1)
            if status < 400 and resp.get("success") is not False:
                out.append(WriteResult(key=rid, ok=True, dest_id=rid))  # v1 notes: data is the id
                continue
            r = self._result(rid, status, resp, created=None)
            r.dest_id = rid if r.ok else None
            out.append(r)
        return out

    # ------------------------------------------------------------------ reads
    def get(self, obj: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        if obj == FILE_OBJECT:
            want = {str(i) for i in ids}
            return {r["id"]: r for r in self.list_records(FILE_OBJECT) if r["id"] in want}
        version, seg = self._entity(obj)
        uniq = list(dict.fromkeys(str(i) for i in ids))
        out: dict[str, dict[str, Any]] = {}
        if version == "v1":
            for rid in uniq:
                status, resp = self._request("GET", "v1", f"/{seg}/{rid}", op="get")
                if status == 404:
                    continue
                data = self._ok_data(f"GET /api/v1/{seg}/{{id}}", status, resp)
                if isinstance(data, dict):
                    out[rid] = self._from_pd(obj, data)
            return out
        for chunk in chunks(uniq, IDS_LIMIT):
            status, resp = self._request("GET", "v2", f"/{seg}", op="get",
                                         params={"ids": ",".join(chunk), "limit": IDS_LIMIT})
            for rec in self._ok_data(f"GET /api/v2/{seg}", status, resp) or []:
                if isinstance(rec, dict) and rec.get("id") is not None:
                    out[str(rec["id"])] = self._from_pd(obj, rec)
        return out

    def find_by_external_id(self, obj: str, external_ids: Sequence[str], *,
                            hints: dict[str, dict[str, Any]] | None = None) -> dict[str, str]:
        """external id -> record id for those that exist.

        Everything it needs survives a restart: the external id is in the record (a custom
        field, a note's marker line), and without a search endpoint the records are scanned
        (from a window around the send time when one is known). ``hints`` (optional, per
        external id: ``sent_at`` and ``payload`` as the run journal holds them) narrow the scan
        for a resumed process; this process's own unsettled sends narrow it the same way."""
        version, seg = self._entity(obj) if obj != FILE_OBJECT else ("v1", "files")
        wanted = list(dict.fromkeys(e for e in external_ids if e))
        hints = hints or {}
        out: dict[str, str] = {}
        if obj == FILE_OBJECT:
            # a file carries no id of ours; the upload that is retried looks for it by parent,
            # name and size before sending again (upload_attachment)
            for ext in wanted:
                sent = self.sent_log.get(FILE_OBJECT, ext) if self.sent_log else None
                if sent is not None and sent.link and sent.parent and sent.name:
                    fid = self._find_file(sent.link, sent.parent, sent.name, sent.size or 0,
                                          since=sent.sent_at)
                    if fid is not None:
                        out[ext] = fid
                        continue
                self._unsettled_uploads.setdefault(ext, _epoch((hints.get(ext) or {})
                                                               .get("sent_at")))
            return out
        key = self._ext_key(obj) if version == "v2" else None
        if obj == "Note":
            out = self._find_notes(wanted, hints)
        elif key is None:
            out = self._find_by_content(obj, wanted, hints)
        elif seg in _SEARCHABLE:
            for ext in wanted:
                terms = self._ext_terms(obj, ext)
                hits: list[str] = []
                for term in terms:
                    status, resp = self._request(
                        "GET", "v2", f"/{seg}/search", op="find_by_external_id",
                        params={"term": term, "fields": "custom_fields",
                                "exact_match": "true", "limit": 100})
                    data = self._ok_data(f"GET /api/v2/{seg}/search", status, resp) or {}
                    hits += [str(x["item"]["id"]) for x in data.get("items") or []
                             if isinstance(x, dict) and isinstance(x.get("item"), dict)
                             and x["item"].get("id") is not None]
                # search matches any custom field, case-insensitively: compare exactly
                for rid, rec in sorted(self.get(obj, hits).items(), key=lambda kv: int(kv[0])):
                    if rec.get(self.external_id_field) in terms:
                        out[ext] = rid
                        break
        else:  # activities: no search endpoint; list what changed since the first send
            since = self._since(obj, wanted, hints)
            ts = (datetime.fromtimestamp(since - SKEW_S, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                  if since else None)
            want = {t: e for e in wanted for t in reversed(self._ext_terms(obj, e))}
            for rec in self.list_records(obj, modified_since=ts):
                ext = want.get(rec.get(self.external_id_field))
                if ext is not None and ext not in out:
                    out[ext] = rec["id"]
        for ext in out:
            self._unsettled.pop((obj, ext), None)
        return out

    def _since(self, obj: str, wanted: list[str], hints: dict[str, dict[str, Any]]
               ) -> float | None:
        """The earliest send time of ``wanted`` (this process's or the journal's), or None when
        one of them is unknown (then the whole object is scanned)."""
        times = []
        for e in wanted:
            t = self._unsettled.get((obj, e), (None,))[0]
            if t is None:
                t = _epoch((hints.get(e) or {}).get("sent_at"))
            if t is None and self.sent_log is not None:
                sent = self.sent_log.get(obj, e)
                t = sent.sent_at if sent is not None else None
            if t is None:
                return None
            times.append(t)
        return min(times) if times else None

    def _find_notes(self, wanted: list[str], hints: dict[str, dict[str, Any]]
                    ) -> dict[str, str]:
        """Notes by their marker line: the notes of the parent when the sent payload is known
        (this process's, or the journal's ``payload`` hint), else every note (in the send-time
        window when known). A note whose marker did not fit is matched by its content."""
        out: dict[str, str] = {}
        by_parent: dict[tuple[str, str], list[str]] = {}
        bodies: dict[str, dict[str, Any]] = {}
        rest: list[str] = []
        for ext in wanted:
            body = (self._unsettled.get(("Note", ext)) or (None, None))[1] or \
                (hints.get(ext) or {}).get("payload")
            parent = None
            if isinstance(body, dict):
                bodies[ext] = body
                parent = next(((k, str(body[k])) for k in _PARENT_LINKS if body.get(k)), None)
            if parent is None and self.sent_log is not None:
                sent = self.sent_log.get("Note", ext)
                if sent is not None and sent.link and sent.parent:
                    parent = (sent.link, sent.parent)
            (by_parent.setdefault(parent, []) if parent else rest).append(ext)

        def match(ext: str, rec: dict[str, Any]) -> bool:
            if rec.get(EXTERNAL_ID_KEY) is not None:
                return rec[EXTERNAL_ID_KEY] == ext
            body = bodies.get(ext)
            return body is not None and rec.get("content") == strip_note_marker(
                body.get("content"))[0]

        def scan(params: dict[str, Any], exts: list[str]) -> None:
            todo = set(exts)
            for page in self._v1_pages("/notes", op="find_by_external_id", params=params,
                                       sort="id DESC"):
                for raw in page:
                    if not isinstance(raw, dict) or raw.get("id") is None:
                        continue
                    rec = self._from_pd("Note", raw)
                    for ext in [e for e in todo if match(e, rec)]:
                        out[ext] = rec["id"]
                        todo.discard(ext)
                if not todo:
                    return

        for (link, rid), exts in by_parent.items():
            scan({link: rid}, exts)
        if rest:
            since = self._since("Note", rest, hints)
            params = {"updated_since": datetime.fromtimestamp(
                since - SKEW_S, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")} if since else {}
            scan(params, rest)
        return out

    def _ext_terms(self, obj: str, ext: str) -> list[str]:
        """Values the external-id field may hold for executor external id ``ext``: the value
        this client wrote, else ``ext`` itself and its key without the ``<map>:`` prefix (a
        mapping that writes its own source id, seen again after a restart)."""
        own = self._ext_values.get((obj, ext))
        if own is None and self.sent_log is not None:
            sent = self.sent_log.get(obj, ext)
            own = sent.own if sent is not None else None
        if own is not None:
            return [own]
        terms = [ext]
        if ":" in ext and ext.rsplit(":", 1)[1]:
            terms.append(ext.rsplit(":", 1)[1])
        return terms

    def _find_by_content(self, obj: str, wanted: list[str],
                         hints: dict[str, dict[str, Any]]) -> dict[str, str]:
        """Objects whose records carry no id of ours (leads; a v2 object whose org lacks the
        external-id field): the record holding what was sent is looked for among the object's
        records (changed since the send when its time is known; of the parent the body names
        when the listing filters by it), newest first, page after page to the end.

        What was sent is this process's own body (kept while the outcome is unknown) or is
        rebuilt from the journal's ``payload`` hint; with neither, nothing this client knows of
        is in flight (an upsert's fresh records) and the id is left out. A scan that reads
        ``scan_limit`` records without finding one raises :class:`FatalError`: the outcome stays
        unknown (the run stops with it journaled) rather than taken for "absent", which would
        create the record a second time."""
        version, seg = self._entity(obj)
        pages = self._v1_pages if version == "v1" else self._v2_pages
        out: dict[str, str] = {}
        undecided = 0
        for ext in wanted:
            body = self._sent_body(obj, ext, hints)
            if not body:
                continue
            params = next(({k: body[k]} for k in _LIST_LINKS.get(seg, ())
                           if body.get(k) is not None), {})
            since = self._since(obj, [ext], hints)
            if since is not None:
                params["updated_since"] = datetime.fromtimestamp(
                    since - SKEW_S, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            if version == "v2":
                params.update(sort_by="id", sort_direction="desc")
            scanned = 0
            for page in pages(f"/{seg}", op="find_by_external_id", params=params,
                              **({"sort": "add_time DESC"} if version == "v1" else {})):
                hit = next((str(r["id"]) for r in page if isinstance(r, dict)
                            and r.get("id") is not None and _holds_sent(body, r)), None)
                if hit is not None:
                    out[ext] = hit
                    break
                scanned += len(page)
                if scanned >= self.scan_limit:
                    undecided += 1
                    break
        if undecided:
            raise FatalError(
                f"{obj}: the outcome of {undecided} create(s) is still unknown: "
                f"GET /api/{version}/{seg} was read to the scan limit ({self.scan_limit} records "
                "each) without finding the record that was sent. It is not assumed absent, so "
                f"nothing is sent again; check the {obj} records in Pipedrive (or raise the "
                "target's scan_limit option, e.g. ?scan_limit=100000) and resume with --resume")
        return out

    def _sent_body(self, obj: str, ext: str, hints: dict[str, dict[str, Any]]
                   ) -> dict[str, Any] | None:
        """The body a create of ``ext`` sent: this process's, else rebuilt from the journal's
        payload (the record as the executor wrote it) the way :meth:`create` builds it."""
        sent = self._unsettled.get((obj, ext))
        if sent is not None:
            return sent[1]
        payload = (hints.get(ext) or {}).get("payload")
        if not isinstance(payload, dict):
            return None
        return self._to_pd(obj, WriteItem(ext, ext, payload), creating=True)

    def count(self, obj: str) -> int:
        return sum(1 for _ in self.list_records(obj))

    def list_records(self, obj: str, *, modified_since: str | None = None
                     ) -> list[dict[str, Any]]:
        if obj == FILE_OBJECT:
            return [{k: (str(v) if k == "id" or k in _FILE_PARENTS.values() and v is not None
                         else v) for k, v in f.items()} | {EXTERNAL_ID_KEY: None}
                    for f in self._files()]
        version, seg = self._entity(obj)
        pages = self._v1_pages if version == "v1" else self._v2_pages
        params = {"updated_since": modified_since} if modified_since else {}
        return [self._from_pd(obj, r) for page in pages(f"/{seg}", op="list_records",
                                                        params=params)
                for r in page if isinstance(r, dict)]

    def list_users(self) -> list[User]:
        status, resp = self._request("GET", "v1", "/users", op="list_users")
        users = []
        for u in self._ok_data("GET /api/v1/users", status, resp) or []:
            if not isinstance(u, dict) or u.get("id") is None:
                raise PipedriveProtocolError("GET /api/v1/users: a user without an id")
            users.append(User(id=str(u["id"]), email=str(u.get("email") or ""),
                              name=str(u.get("name") or ""),
                              active=bool(u.get("active_flag", True))))
        return users

    # ------------------------------------------------------------------ files
    def upload_attachment(self, obj: str, record_id: str, file_name: str, path: Path,
                          key: str) -> WriteResult:
        found = local_file(path, key)
        if isinstance(found, WriteResult):
            return found
        p, size = found
        link = _FILE_PARENTS.get(obj)
        if link is None:
            return WriteResult(key=key, ok=False, code="NOT_SUPPORTED",
                               error=f"Pipedrive files cannot be attached to {obj}")
        earlier = self.sent_log.get(FILE_OBJECT, key) if self.sent_log is not None else None
        if key in self._unsettled_uploads or earlier is not None:
            # sent before (here, or by a process that died): look before sending again
            since = self._unsettled_uploads.get(key) or (earlier.sent_at if earlier else None)
            existing = self._find_file(link, record_id, file_name, size, since=since)
            if existing is not None:
                self._unsettled_uploads.pop(key, None)
                return WriteResult(key=key, ok=True, dest_id=existing, created=False)
        self._unsettled_uploads[key] = time.time()
        if self.sent_log is not None:
            self.sent_log.record(FILE_OBJECT, key, Sent(time.time(), link=link,
                                                        parent=str(record_id), name=file_name,
                                                        size=size))
        with p.open("rb") as fh:
            status, resp = self._request("POST", "v1", "/files", op="upload_attachment",
                                         files={"file": (file_name, fh)},
                                         data={link: str(record_id)}, write=True, n=1)
        self._unsettled_uploads.pop(key, None)
        return self._result(key, status, resp, created=True)

    def _files(self) -> list[dict[str, Any]]:
        """Every file of the company (``GET /api/v1/files``, newest first)."""
        return [f for page in self._v1_pages("/files", op="get", sort="id DESC") for f in page
                if isinstance(f, dict) and f.get("id") is not None]

    def _find_file(self, link: str, record_id: str, file_name: str, size: int, *,
                   since: float | None = None) -> str | None:
        """The file on that record with that name and size, newest first; the listing stops at
        files added before ``since`` (less the clock skew) when the send time is known."""
        for page in self._v1_pages("/files", op="find_by_external_id", sort="id DESC"):
            for f in page:
                if not isinstance(f, dict) or f.get("id") is None:
                    continue
                if str(f.get(link)) == str(record_id) and f.get("name") == file_name \
                        and int(f.get("file_size") or -1) == size:
                    return str(f["id"])
                added = _v1_epoch(f.get("add_time"))
                if since is not None and added is not None and added < since - SKEW_S:
                    return None
        return None

    def delete_attachments(self, ids: Sequence[str]) -> list[WriteResult]:
        out = []
        for fid in ids:
            status, resp = self._request("DELETE", "v1", f"/files/{fid}", op="delete",
                                         write=True, n=1)
            r = self._result(fid, status, resp, created=None)
            r.dest_id = fid if r.ok else None
            out.append(r)
        return out

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        super().close()
        if self.sent_log is not None:
            self.sent_log.close()
            self.sent_log = None

