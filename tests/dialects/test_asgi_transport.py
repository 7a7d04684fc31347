"""The in-process transport (runtime/dialects/_asgi.py): an emulator is called in the caller's
thread, and what the client sees is what the ASGI path (event loop + worker thread, as before)
gives: the same request as ``handle`` reads it, the same response, the same dropped connection."""

from __future__ import annotations

import json
import threading

import httpx
import pytest

from runtime.dialects import get_dialect
from runtime.dialects._asgi import (
    ASGIEmulator,
    DroppedConnection,
    Response,
    SyncASGITransport,
    in_process_http,
)
from runtime.dialects.zoho.ratelimit import Tier
from runtime.dialects.zoho.sandbox import ZohoSandbox


class Echo(ASGIEmulator):
    """Answers with what ``handle`` was given; ``/drop`` drops the connection, ``/boom`` fails."""

    def __init__(self) -> None:
        self.threads: set[int] = set()

    def handle(self, method: str, path: str, query: dict[str, list[str]],
               headers: dict[str, str], body: bytes) -> Response:
        self.threads.add(threading.get_ident())
        if path == "/drop":
            raise DroppedConnection("lost response")
        if path == "/boom":
            raise KeyError("emulator bug")
        out = {"method": method, "path": path, "query": query,
               "headers": {k: v for k, v in headers.items() if k != "content-length"},
               "body": body.hex()}
        return 207, {"Content-Type": "application/json", "X-Odd": "caf\u00e9",
                     "x-many": "a, b"}, json.dumps(out, sort_keys=True).encode()


REQUESTS = [
    ("GET", "http://sb.invalid/crm/v8/Leads?ids=1,2&ids=3&empty=&q=a%20b%26c", {}, None),
    ("POST", "http://sb.invalid/a%20b/%C3%A9?x=1", {"X-Api-Token": "t", "X-Dup": "1"},
     b"\x00\xffbinary"),
    ("DELETE", "http://sb.invalid/api/v2/persons/12", {"Authorization": "Bearer x"}, None),
    ("PUT", "http://sb.invalid/p", {"Content-Type": "application/json"},
     json.dumps({"data": [{"id": 1}]}).encode()),
]


def _exchange(direct: bool, app: Echo) -> list[tuple[int, list, bytes]]:
    with httpx.Client(transport=SyncASGITransport(app, direct=direct)) as http:
        out = []
        for method, url, headers, body in REQUESTS:
            r = http.request(method, url, headers=headers, content=body)
            out.append((r.status_code, r.headers.raw, r.content))
        return out


def test_direct_call_sees_and_answers_what_the_asgi_path_does():
    portal_app, direct_app = Echo(), Echo()
    via_portal = _exchange(False, portal_app)
    direct = _exchange(True, direct_app)
    assert direct == via_portal
    first = json.loads(direct[0][2])
    assert first["query"] == {"ids": ["1,2", "3"], "empty": [""], "q": ["a b&c"]}
    second = json.loads(direct[1][2])
    assert second["path"] == "/a b/\u00e9" and bytes.fromhex(second["body"]) == b"\x00\xffbinary"
    assert second["headers"]["x-api-token"] == "t"
    assert dict(direct[0][1])[b"X-Odd"] == "caf\u00e9".encode("latin-1")
    # direct: no event loop thread, handle runs in the caller's thread
    assert direct_app.threads == {threading.get_ident()}
    assert threading.get_ident() not in portal_app.threads


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "portal"])
def test_dropped_connection_and_emulator_bugs(direct):
    app = Echo()
    transport = SyncASGITransport(app, direct=direct)
    with httpx.Client(transport=transport) as http:
        with pytest.raises(httpx.RemoteProtocolError) as exc:
            http.post("http://sb.invalid/drop", content=b"{}")
        assert isinstance(exc.value.__cause__, DroppedConnection)
        with pytest.raises(KeyError):
            http.get("http://sb.invalid/boom")
        assert http.get("http://sb.invalid/ok").status_code == 207  # usable afterwards
    assert (transport._portal is None) is direct  # noqa: SLF001


def test_plain_asgi_app_goes_through_the_event_loop():
    async def app(scope, receive, send):
        assert scope["type"] == "http"
        await receive()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": scope["path"].encode()})

    http, transport = in_process_http(app)
    with http:
        assert http.get("http://sb.invalid/x/y").text == "/x/y"
    transport.close()
    transport.close()  # idempotent


def test_zoho_concurrency_gate_on_the_direct_path(tmp_path):
    """Zoho's per-edition concurrency limit holds for caller threads: a request beyond it is a
    429 that never reaches ``handle``; once the others finish the gate admits again."""
    sb = ZohoSandbox(get_dialect("zoho").standard_schema(), tmp_path / "o.sqlite",
                     tier=Tier(concurrency=1))
    inside, release = threading.Event(), threading.Event()
    real = sb.handle
    seen: list[str] = []

    def slow(method, path, query, headers, body):
        seen.append(path)
        if path.endswith("/slow"):
            inside.set()
            release.wait(10)
        return real(method, path, query, headers, body)

    sb.handle = slow  # type: ignore[method-assign]
    h = {"Authorization": f"Zoho-oauthtoken {sb.token}"}
    http, transport = in_process_http(sb)
    try:
        first: list[int] = []
        t = threading.Thread(target=lambda: first.append(
            http.get("http://z.invalid/crm/v8/slow", headers=h).status_code))
        t.start()
        assert inside.wait(10)
        r = http.get("http://z.invalid/crm/v8/Leads/actions/count", headers=h)
        assert r.status_code == 429 and r.json()["code"] == "TOO_MANY_REQUESTS"
        assert "concurrency" in r.json()["message"]
        release.set()
        t.join(10)
        assert first and first[0] != 429  # the slow request itself was admitted
        assert seen == ["/crm/v8/slow"]  # the throttled one never reached handle
        assert http.get("http://z.invalid/crm/v8/Leads/actions/count",
                        headers=h).status_code == 200
        assert sb._inflight == 0  # noqa: SLF001
    finally:
        release.set()
        http.close()
        transport.close()
        sb.close()
