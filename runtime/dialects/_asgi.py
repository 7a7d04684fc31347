"""The ASGI plumbing every dialect's emulator (``<dialect>/sandbox.py``) shares.

An emulator is a plain ASGI application (no framework) whose vendor logic is one synchronous
method, ``handle(method, path, query, headers, body) -> (status, headers, body)``. The shared part
lives here so that the four emulators differ only in what the vendor's API does:

- :class:`ASGIEmulator` answers the lifespan protocol, reads a whole request, runs ``handle`` on a
  worker thread (the SQLite store blocks) and writes the response. An emulator with a gate in
  front of ``handle`` (Zoho's concurrency limit) overrides :meth:`ASGIEmulator.respond` and
  :meth:`ASGIEmulator.respond_sync` alike.
- :class:`SyncASGITransport` lets a synchronous ``httpx.Client`` speak to such an app in process.
  For an :class:`ASGIEmulator` it calls :meth:`~ASGIEmulator.respond_sync` in the caller's thread:
  the request is parsed as :func:`read_request` parses an ASGI scope and the response rebuilt as
  :func:`write_response` sends it, without an event loop or a thread hop (the ASGI app is only for
  uvicorn). Any other ASGI app runs on an event loop in a private thread (an ``anyio`` blocking
  portal, started on first use) through ``httpx.ASGITransport``, which is async-only.
- :class:`DroppedConnection` is how an emulator plays a connection that closes without an answer
  (a timeout or a lost response): in process it surfaces as ``httpx.RemoteProtocolError``, as a
  real server closing the socket would; under uvicorn (``fmap sandbox serve``) it becomes
  uvicorn's bare non-JSON 500.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import anyio
import anyio.from_thread
import anyio.to_thread
import httpx

__all__ = ["ASGIEmulator", "DroppedConnection", "Request", "Response", "SyncASGITransport",
           "in_process_http", "request_of"]

# (method, path, query, headers, body): what ``handle`` takes; header names are lower-case
Request = tuple[str, str, dict[str, list[str]], dict[str, str], bytes]
# (status, headers, body): what ``handle`` returns
Response = tuple[int, dict[str, str], bytes]


class DroppedConnection(Exception):
    """Raised by the app to emulate a connection that closes without a response."""


class ASGIEmulator:
    """Mixin for an emulator class that defines ``handle(method, path, query, headers, body)``."""

    handle: Callable[..., Response]

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = await read_request(scope, receive)
        if request is None:  # the client went away before the body was complete
            return
        status, headers, body = await self.respond(*request)
        await write_response(send, status, headers, body)

    async def respond(self, method: str, path: str, query: dict[str, list[str]],
                      headers: dict[str, str], body: bytes) -> Response:
        """``handle`` on a worker thread, so a slow store call does not stall the event loop."""
        return await anyio.to_thread.run_sync(
            lambda: self.handle(method, path, query, headers, body))

    def respond_sync(self, method: str, path: str, query: dict[str, list[str]],
                     headers: dict[str, str], body: bytes) -> Response:
        """What :meth:`respond` answers, in the calling thread (the in-process transport)."""
        return self.handle(method, path, query, headers, body)


async def _lifespan(receive: Callable, send: Callable) -> None:
    while True:
        msg = await receive()
        if msg["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif msg["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def read_request(scope: dict, receive: Callable) -> Request | None:
    """The whole HTTP request of ``scope``; None if the client disconnected first."""
    chunks = []
    while True:
        msg = await receive()
        if msg["type"] == "http.request":
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body"):
                break
        elif msg["type"] == "http.disconnect":
            return None
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    return scope["method"], scope["path"], query, headers, b"".join(chunks)


async def write_response(send: Callable, status: int, headers: dict[str, str],
                         body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(k.encode("latin-1"), v.encode("latin-1"))
                            for k, v in headers.items()]})
    await send({"type": "http.response.body", "body": body})


class SyncASGITransport(httpx.BaseTransport):
    """Synchronous httpx transport over an ASGI app, in process.

    An app with ``respond_sync`` (an :class:`ASGIEmulator`) is called directly in the caller's
    thread. Any other app (or ``direct=False``, which benchmarks use to compare) runs on an event
    loop in a private thread (anyio blocking portal), each request forwarded through
    ``httpx.ASGITransport``: two thread hops each way, which cost a 100-patient run about a third
    of its CPU. Both ways hand back complete responses and turn :class:`DroppedConnection` into
    ``httpx.RemoteProtocolError``; other exceptions of the app propagate."""

    def __init__(self, app: Callable, *, direct: bool = True) -> None:
        self.app = app
        self._direct: Callable[..., Response] | None = (
            getattr(app, "respond_sync", None) if direct else None)
        self._async: httpx.ASGITransport | None = None
        self._portal: Any = None
        self._finalizer: weakref.finalize | None = None
        self._closed = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            if self._direct is not None:
                status, raw, body = self._call_direct(request)
            else:
                status, raw, body = self._call_portal(request)
        except DroppedConnection as exc:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.",
                                            request=request) from exc
        return httpx.Response(status, headers=raw, content=body, request=request)

    def _call_direct(self, request: httpx.Request
                     ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        assert self._direct is not None
        status, headers, body = self._direct(*request_of(request))
        # as write_response encodes them and httpx.ASGITransport hands them back
        return status, [(k.encode("latin-1"), v.encode("latin-1"))
                        for k, v in headers.items()], body

    def _call_portal(self, request: httpx.Request
                     ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        if self._portal is None:
            if self._closed:
                raise RuntimeError("transport is closed")
            self._async = httpx.ASGITransport(app=self.app, raise_app_exceptions=True)
            cm = anyio.from_thread.start_blocking_portal()
            self._portal = cm.__enter__()
            # an unclosed portal's thread would keep the interpreter from exiting: the
            # finalizer also runs at exit (weakref.finalize's atexit flag)
            self._finalizer = weakref.finalize(self, _stop_portal, cm)
        content = request.read()
        transport = self._async
        assert transport is not None

        async def go() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            areq = httpx.Request(request.method, request.url, headers=request.headers,
                                 content=content)
            resp = await transport.handle_async_request(areq)
            body = b"".join([chunk async for chunk in resp.stream])
            return resp.status_code, resp.headers.raw, body

        return self._portal.call(go)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._finalizer is not None:
                self._finalizer()


def request_of(request: httpx.Request) -> Request:
    """``request`` as :func:`read_request` reads the ASGI scope ``httpx.ASGITransport`` makes of
    it: the decoded path, the raw query string parsed, header names lower-cased (the last of a
    repeated header wins), the whole body."""
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.headers.raw}
    query = parse_qs(request.url.query.decode("latin-1"), keep_blank_values=True)
    return request.method, request.url.path, query, headers, request.read()


def _stop_portal(cm: Any) -> None:
    try:
        cm.__exit__(None, None, None)
    except RuntimeError:
        pass


def in_process_http(app: Callable, timeout: float = 60.0, *, direct: bool = True
                    ) -> tuple[httpx.Client, SyncASGITransport]:
    """An ``httpx.Client`` wired to ``app`` in process (``sandbox:<dialect>`` targets), and its
    transport: the client that uses them owns both and closes them with the emulator.
    ``direct``: see :class:`SyncASGITransport`."""
    transport = SyncASGITransport(app, direct=direct)
    return httpx.Client(transport=transport, timeout=timeout), transport
