"""Client-side HTTP plumbing every dialect's connector (``<dialect>/client.py``) shares.

What is here is the same for every CRM: where a ``<dialect>://host`` target points, how a call
that never got an answer becomes a :class:`TransientError`, reading a JSON body, chunking, and the
client's lifecycle. What a vendor's answers mean (envelopes, error codes, rate-limit headers, when
to refresh a token) stays in the dialect's own ``client.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

import httpx

from runtime.destinations.base import FatalError, TransientError, WriteResult

__all__ = ["APIError", "LOOPBACK_HOSTS", "OwnedHTTP", "chunks", "header_float", "jsonable",
           "local_file", "parse_json", "present", "send", "split_target"]

# hosts a ``<dialect>://HOST:PORT`` target may name for a loopback ``fmap sandbox serve``, and
# the ones that command binds without ``--allow-remote``
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def split_target(uri: str) -> tuple[str, str | None]:
    """(netloc, loopback base URL or None) of a target URI ``<dialect>://host[:port][?options]``.

    A loopback host is a local ``fmap sandbox serve``, spoken to in plain HTTP
    (``http://127.0.0.1:PORT``); anything else is the vendor's API, which each dialect turns into
    its own HTTPS base URL from the netloc.
    """
    parts = urlsplit(uri.split("?", 1)[0])
    host = (parts.hostname or "").strip("[]")
    return parts.netloc, (f"http://{parts.netloc}" if host in LOOPBACK_HOSTS else None)


def send(http: httpx.Client, method: str, url: str, *, endpoint: str, write: bool,
         **kwargs: Any) -> httpx.Response:
    """``http.request(method, url, **kwargs)``; a call that got no answer (timeout, refused or
    dropped connection) raises :class:`TransientError`, ``maybe_committed`` for a write (the
    server may have applied it before the connection went), naming ``endpoint`` (the method and
    the path without the host or query, so no id or token reaches a log)."""
    try:
        return http.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise TransientError(f"{endpoint}: timed out ({type(exc).__name__})",
                             maybe_committed=write) from None
    except httpx.TransportError as exc:
        raise TransientError(f"{endpoint}: connection failed ({type(exc).__name__})",
                             maybe_committed=write) from None


def parse_json(resp: httpx.Response, endpoint: str, error: type[FatalError]) -> Any:
    """The JSON body of ``resp``. A non-JSON body is ``error`` (the dialect's protocol error),
    except on a 5xx, where it is None: a proxy's error page says nothing the status does not."""
    try:
        return resp.json()
    except ValueError:
        if resp.status_code >= 500:
            return None
        raise error(f"{endpoint}: HTTP {resp.status_code} with a non-JSON body "
                    f"({resp.headers.get('content-type', 'no content type')})") from None


def header_float(resp: httpx.Response, name: str) -> float | None:
    """A numeric header (``Retry-After`` seconds, rate-limit counters); None if absent or not a
    number (an HTTP-date ``Retry-After`` included)."""
    value = resp.headers.get(name)
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def jsonable(v: Any) -> Any:
    """A record value as JSON: datetimes to the second, dates ISO, decimals as numbers. A
    dialect whose API wants another form (Salesforce's ``;``-joined multi-selects, Pipedrive's
    UTC ``Z`` times) keeps its own."""
    if isinstance(v, datetime):
        return v.isoformat(timespec="seconds")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    return v


def present(names: Iterable[str], fetch: Callable[[str], Any],
            refused: type[Exception]) -> dict[str, Any]:
    """``{name: fetch(name)}`` for each name the org has, in order, once each. ``fetch`` raising
    ``refused`` (the dialect's API error) with ``status`` 404 means the org lacks that object: it
    is left out (the ``metadata_bundle`` contract); any other refusal propagates."""
    out: dict[str, Any] = {}
    for name in dict.fromkeys(names):
        try:
            out[name] = fetch(name)
        except refused as exc:
            if getattr(exc, "status", None) != 404:
                raise
    return out


def local_file(path: str | Path, key: str) -> tuple[Path, int] | WriteResult:
    """(path, size) of an attachment to upload, or the failed :class:`WriteResult` of item
    ``key`` when the file is not there (the item fails, the run goes on)."""
    p = Path(path)
    try:
        return p, p.stat().st_size
    except FileNotFoundError:
        return WriteResult(key=key, ok=False, code="FILE_NOT_FOUND",
                           error="attachment file not found")


def chunks(seq: Sequence, n: int) -> Iterator[Sequence]:
    """``seq`` in slices of at most ``n`` (a call's batch or id-list limit)."""
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


class APIError(FatalError):
    """A whole request the CRM refused (bad object, permission, query): retrying won't help.
    Each dialect subclasses it under its own name (``ZohoAPIError``...). A vendor that sends no
    code (Freshsales) or no message leaves no gap in the text where it would have gone."""

    def __init__(self, endpoint: str, status: int, code: str | None, message: str) -> None:
        super().__init__(" ".join(p for p in (f"{endpoint}: HTTP {status}", code, message) if p))
        self.endpoint = endpoint
        self.status = status
        self.code = code


class OwnedHTTP:
    """The lifecycle every connector shares: an ``httpx.Client`` it was given (the caller closes
    it) or built (it closes it), plus what it owns besides (a sandbox's transport and emulator),
    closed with it; usable as a context manager."""

    _http: httpx.Client
    _owns_http: bool
    _owns: list[Any]

    def _open_http(self, http: httpx.Client | None, transport: httpx.BaseTransport | None,
                   timeout: float, owns: Iterable[Any]) -> httpx.Client:
        """Keep ``http``, or build one over ``transport`` (TLS verified: never turned off)."""
        self._http = http or httpx.Client(transport=transport, timeout=timeout, verify=True)
        self._owns_http = http is None
        self._owns = list(owns)
        return self._http

    def close(self) -> None:
        if self._owns_http:
            self._http.close()
        for thing in self._owns:
            thing.close()
        self._owns = []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
