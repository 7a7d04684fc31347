"""The ASGI plumbing every dialect's emulator (``<dialect>/sandbox.py``) shares.

An emulator is a plain ASGI application (no framework) whose vendor logic is one synchronous
method, ``handle(method, path, query, headers, body) -> (status, headers, body)``. The shared part
lives here so that the four emulators differ only in what the vendor's API does:

- :class:`ASGIEmulator` answers the lifespan protocol, reads a whole request, runs ``handle`` on a
  worker thread (the SQLite store blocks) and writes the response. An emulator with a gate in
  front of ``handle`` (Zoho's concurrency limit) overrides :meth:`ASGIEmulator.respond`.
- :class:`SyncASGITransport` lets a synchronous ``httpx.Client`` speak to such an app in process.
  ``httpx.ASGITransport`` is async-only, so the adapter runs the app on an event loop in a private
  thread (an ``anyio`` blocking portal) and hands back complete responses.
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
           "in_process_http"]

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
    """Synchronous httpx transport over an ASGI app: the app runs on an event loop in a private
    thread (anyio blocking portal); each request is forwarded through ``httpx.ASGITransport``."""

    def __init__(self, app: Callable) -> None:
        self._async = httpx.ASGITransport(app=app, raise_app_exceptions=True)
        self._cm = anyio.from_thread.start_blocking_portal()
        self._portal = self._cm.__enter__()
        self._closed = False
        # an unclosed portal's thread would keep the interpreter from exiting: the finalizer
        # also runs at exit (weakref.finalize's atexit flag)
        self._finalizer = weakref.finalize(self, _stop_portal, self._cm)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        content = request.read()

        async def go() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            areq = httpx.Request(request.method, request.url, headers=request.headers,
                                 content=content)
            resp = await self._async.handle_async_request(areq)
            body = b"".join([chunk async for chunk in resp.stream])
            return resp.status_code, resp.headers.raw, body

        try:
            status, headers, body = self._portal.call(go)
        except DroppedConnection as exc:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.",
                                            request=request) from exc
        return httpx.Response(status, headers=headers, content=body, request=request)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._finalizer()


def _stop_portal(cm: Any) -> None:
    try:
        cm.__exit__(None, None, None)
    except RuntimeError:
        pass


def in_process_http(app: Callable, timeout: float = 60.0
                    ) -> tuple[httpx.Client, SyncASGITransport]:
    """An ``httpx.Client`` wired to ``app`` in process (``sandbox:<dialect>`` targets), and its
    transport: the client that uses them owns both and closes them with the emulator."""
    transport = SyncASGITransport(app)
    return httpx.Client(transport=transport, timeout=timeout), transport
