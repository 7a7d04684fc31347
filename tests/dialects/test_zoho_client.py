"""ZohoClient against scripted responses (httpx.MockTransport): auth and refresh, secrets never
shown, error mapping, request order matching, batching, COQL chunks, paging, attachments."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest

from runtime.destinations.base import FatalError, TransientError, WriteItem
from runtime.dialects.zoho import open_client
from runtime.dialects.zoho.auth import DATA_CENTRES, ZohoAuthError, ZohoCredentials, data_centre
from runtime.dialects.zoho.client import ZohoClient, ZohoProtocolError
from runtime.dialects.zoho.ratelimit import CreditLedger, Tier, credits_for, write_cost

SECRET_REFRESH = "1000.refresh-SECRET-abc"
SECRET_CLIENT = "client-SECRET-xyz"
SECRET_ACCESS = "1000.access-SECRET-123"


class Script:
    """A MockTransport handler: a list of (matcher, responder) consumed in order per route."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.routes: list[tuple[str, str, object]] = []

    def on(self, method: str, path_prefix: str, responder) -> Script:
        self.routes.append((method, path_prefix, responder))
        return self

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        for i, (method, prefix, responder) in enumerate(self.routes):
            if request.method == method and request.url.path.startswith(prefix):
                if isinstance(responder, list):
                    r = responder.pop(0)
                    if not responder:
                        self.routes.pop(i)
                else:
                    r = responder
                return r(request) if callable(r) else r
        return httpx.Response(404, json={"code": "INVALID_URL_PATTERN", "message": "no route",
                                         "status": "error", "details": {}})


def ok_item(i: int, action: str | None = None) -> dict:
    item = {"code": "SUCCESS", "details": {"id": f"57257670000005{i:05d}",
                                           "Created_Time": "2024-01-01T00:00:00+00:00"},
            "message": "record added", "status": "success"}
    if action:
        item["action"] = action
    return item


def client_for(script: Script, creds: ZohoCredentials | None = None, **kw) -> ZohoClient:
    http = httpx.Client(transport=httpx.MockTransport(script))
    return ZohoClient(credentials=creds or ZohoCredentials(access_token=SECRET_ACCESS),
                      http=http, **kw)


def items(n: int, prefix: str = "contacts") -> list[WriteItem]:
    return [WriteItem(f"{prefix}:{i}", f"{prefix}:{i}", {"Last_Name": f"L{i}"}) for i in range(n)]


# ---------------------------------------------------------------------- auth and domains
@pytest.mark.parametrize("dc,api,accounts", [
    ("com", "https://www.zohoapis.com", "https://accounts.zoho.com"),
    ("us", "https://www.zohoapis.com", "https://accounts.zoho.com"),
    ("eu", "https://www.zohoapis.eu", "https://accounts.zoho.eu"),
    ("in", "https://www.zohoapis.in", "https://accounts.zoho.in"),
    ("au", "https://www.zohoapis.com.au", "https://accounts.zoho.com.au"),
    ("jp", "https://www.zohoapis.jp", "https://accounts.zoho.jp"),
    ("ca", "https://www.zohoapis.ca", "https://accounts.zohocloud.ca"),
    ("sa", "https://www.zohoapis.sa", "https://accounts.zoho.sa"),
    ("com.cn", "https://www.zohoapis.com.cn", "https://accounts.zoho.com.cn"),
], ids=lambda v: v if "." not in v or len(v) < 8 else None)
def test_data_centres(dc, api, accounts):
    assert data_centre(dc) == (api, accounts)
    assert len(DATA_CENTRES) == 8


def test_unknown_data_centre():
    with pytest.raises(ValueError, match="unknown Zoho data centre"):
        data_centre("mars")


def test_open_client_picks_domains(monkeypatch):
    monkeypatch.setenv("ZOHO_ACCESS_TOKEN", SECRET_ACCESS)
    c = open_client("zoho://eu", {"edition": "enterprise", "users_count": "20"})
    try:
        assert c.api_domain == "https://www.zohoapis.eu"
        assert c.auth.accounts_domain == "https://accounts.zoho.eu"
        assert c.capabilities.rate_limit.per_window == 70_000
        assert c.capabilities.rate_limit.concurrency == 20
    finally:
        c.close()
    local = open_client("zoho://127.0.0.1:9999", {})
    try:
        assert local.api_domain == "http://127.0.0.1:9999"
    finally:
        local.close()


def test_header_and_refresh_flow():
    script = Script()
    script.on("POST", "/oauth/v2/token", lambda r: httpx.Response(
        200, json={"access_token": "fresh-token", "api_domain": "https://www.zohoapis.com",
                   "expires_in": 3600, "token_type": "Bearer"}))
    script.on("GET", "/crm/v8/Contacts/actions/count", httpx.Response(200, json={"count": 3}))
    creds = ZohoCredentials(client_id="cid", client_secret=SECRET_CLIENT,
                            refresh_token=SECRET_REFRESH)
    c = client_for(script, creds)
    assert c.count("Contacts") == 3
    token_req, call = script.requests
    assert token_req.url.host == "accounts.zoho.com"
    form = dict(x.split("=") for x in token_req.content.decode().split("&"))
    assert form["grant_type"] == "refresh_token" and form["refresh_token"] == SECRET_REFRESH.replace(".", ".")
    assert "refresh_token" not in str(token_req.url)  # secrets travel in the body, never the URL
    assert call.headers["Authorization"] == "Zoho-oauthtoken fresh-token"


def test_expired_token_refreshes_once_then_names_env_vars():
    script = Script()
    expired = httpx.Response(401, json={"code": "INVALID_TOKEN", "details": {},
                                        "message": "invalid oauth token", "status": "error"})
    script.on("GET", "/crm/v8/Contacts/actions/count",
              [expired, httpx.Response(200, json={"count": 1}), expired, expired])
    script.on("POST", "/oauth/v2/token", lambda r: httpx.Response(200, json={"access_token": "t2"}))
    creds = ZohoCredentials(client_id="cid", client_secret=SECRET_CLIENT,
                            refresh_token=SECRET_REFRESH, access_token="t1")
    c = client_for(script, creds)
    assert c.count("Contacts") == 1
    assert c.auth.refreshes == 1
    with pytest.raises(ZohoAuthError) as exc:
        c.count("Contacts")
    assert "ZOHO_REFRESH_TOKEN" in str(exc.value)
    assert c.auth.refreshes == 2  # one refresh for the second failure, then stop: no storm
    calls = [r for r in script.requests if r.url.path.endswith("/count")]
    assert len(calls) == 4


def test_access_token_only_fails_fatally_without_retry():
    script = Script().on("GET", "/crm/v8/users", httpx.Response(
        401, json={"code": "AUTHENTICATION_FAILURE", "details": {},
                   "message": "Authentication failed", "status": "error"}))
    c = client_for(script)
    with pytest.raises(ZohoAuthError, match="ZOHO_ACCESS_TOKEN"):
        c.list_users()
    assert len(script.requests) == 1


def test_refused_refresh_token_is_fatal():
    script = Script().on("POST", "/oauth/v2/token",
                         httpx.Response(200, json={"error": "invalid_code"}))
    c = client_for(script, ZohoCredentials(client_id="c", client_secret=SECRET_CLIENT,
                                           refresh_token=SECRET_REFRESH))
    with pytest.raises(ZohoAuthError, match="invalid_code.*ZOHO_REFRESH_TOKEN"):
        c.count("Leads")


def test_no_credentials_names_env_vars():
    c = client_for(Script(), ZohoCredentials())
    with pytest.raises(ZohoAuthError, match="ZOHO_CLIENT_ID"):
        c.count("Leads")


def test_credentials_from_env_and_keyring_optional(monkeypatch):
    env = {"ZOHO_CLIENT_ID": "cid", "ZOHO_CLIENT_SECRET": SECRET_CLIENT,
           "ZOHO_REFRESH_TOKEN": SECRET_REFRESH}
    creds = ZohoCredentials.discover(env)
    assert creds.can_refresh and creds.source == "environment"
    import builtins

    real_import = builtins.__import__

    def no_keyring(name, *a, **k):
        if name == "keyring":
            raise ImportError(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_keyring)
    assert ZohoCredentials.from_keyring() is None
    assert ZohoCredentials.discover({}).source == "environment"


def test_secrets_never_in_logs_or_repr(caplog):
    script = Script()
    script.on("POST", "/oauth/v2/token", lambda r: httpx.Response(200, json={"access_token": SECRET_ACCESS}))
    script.on("POST", "/crm/v8/Contacts/upsert", lambda r: httpx.Response(
        201, json={"data": [ok_item(0, "insert")]}))
    creds = ZohoCredentials(client_id="cid", client_secret=SECRET_CLIENT,
                            refresh_token=SECRET_REFRESH)
    with caplog.at_level(logging.DEBUG):
        c = client_for(script, creds)
        c.upsert("Contacts", items(1))
        texts = [repr(c), str(c), repr(creds), str(creds), repr(c.auth), repr(c.capabilities)]
        try:
            client_for(Script(), ZohoCredentials(access_token="x")).count("Nope")
        except FatalError as exc:
            texts.append(str(exc))
    texts += [r.getMessage() for r in caplog.records]
    blob = "\n".join(texts)
    assert caplog.records  # httpx did log the requests...
    for secret in (SECRET_ACCESS, SECRET_REFRESH, SECRET_CLIENT):
        assert secret not in blob  # ...but never a secret


def test_tls_verification_stays_on():
    src = (Path(__file__).resolve().parents[2] / "runtime" / "dialects" / "zoho")
    for f in src.glob("*.py"):
        assert "verify=False" not in f.read_text(), f


# ---------------------------------------------------------------------- writes
def test_upsert_body_and_results_by_position():
    seen = []

    def answer(request):
        body = json.loads(request.content)
        seen.append(body)
        out = []
        for i, rec in enumerate(body["data"]):
            if rec["Last_Name"] == "L1":
                out.append({"code": "INVALID_DATA", "details": {"api_name": "Last_Name",
                            "json_path": f"$.data[{i}].Last_Name", "expected_data_type": "text"},
                            "message": "invalid data", "status": "error"})
            else:
                out.append(ok_item(i, "update" if i == 2 else "insert"))
        return httpx.Response(207, json={"data": out})

    c = client_for(Script().on("POST", "/crm/v8/Contacts/upsert", answer))
    res = c.upsert("Contacts", items(3))
    assert [r.key for r in res] == ["contacts:0", "contacts:1", "contacts:2"]
    assert res[0].ok and res[0].created is True
    assert not res[1].ok and res[1].code == "INVALID_DATA" and res[1].field == "Last_Name"
    assert res[2].ok and res[2].created is False
    body = seen[0]
    assert body["trigger"] == [] and body["duplicate_check_fields"] == ["Source_System_ID"]
    assert body["data"][0]["Source_System_ID"] == "contacts:0"


def test_batches_of_at_most_100_each_matched_within_its_call():
    sizes = []

    def answer(request):
        data = json.loads(request.content)["data"]
        sizes.append(len(data))
        return httpx.Response(201, json={"data": [ok_item(int(r["Last_Name"][1:])) for r in data]})

    c = client_for(Script().on("POST", "/crm/v8/Leads", answer))
    res = c.create("Leads", items(250, "leads"))
    assert sizes == [100, 100, 50]
    assert all(r.ok for r in res)
    assert res[249].dest_id.endswith("00249") and res[249].key == "leads:249"


def test_update_uses_put_with_ids_and_converts_values():
    from datetime import UTC, date, datetime
    from decimal import Decimal

    seen = []

    def answer(request):
        seen.append(json.loads(request.content))
        return httpx.Response(200, json={"data": [ok_item(0)]})

    c = client_for(Script().on("PUT", "/crm/v8/Contacts", answer))
    c.update("Contacts", [WriteItem("k", "contacts:1", {
        "Date_of_Birth": date(1990, 2, 3), "Account_Name": "5725767000000524001",
        "Owner": "5725767000000411001", "Last_Activity_Time": datetime(2024, 1, 1, tzinfo=UTC),
        "Annual_Revenue": Decimal("12.50")}, dest_id="5725767000000524009")])
    rec = seen[0]["data"][0]
    assert rec["id"] == "5725767000000524009"
    assert rec["Date_of_Birth"] == "1990-02-03"
    assert rec["Account_Name"] == {"id": "5725767000000524001"}
    assert rec["Owner"] == {"id": "5725767000000411001"}
    assert rec["Last_Activity_Time"] == "2024-01-01T00:00:00+00:00"


ERROR_TABLE = [
    ("INVALID_DATA", {"api_name": "Email", "json_path": "$.data[0].Email"}, "Email", False),
    ("INVALID_DATA", {"json_path": "$.data[0].Phone"}, "Phone", False),
    ("MANDATORY_NOT_FOUND", {"api_name": "Last_Name", "json_path": "$.data[0].Last_Name"},
     "Last_Name", False),
    ("DUPLICATE_DATA", {"api_name": "Source_System_ID", "json_path": "$.data[0].Source_System_ID",
                        "duplicate_record": {"id": "5725767000000524001", "module": {
                            "api_name": "Contacts"}}, "more_records": False},
     "Source_System_ID", False),
    ("RECORD_LOCKED", {}, None, True),
    ("NO_PERMISSION", {}, None, False),
]


@pytest.mark.parametrize("code,details,field,retryable", ERROR_TABLE,
                         ids=[f"{c}-{i}" for i, (c, *_) in enumerate(ERROR_TABLE)])
def test_record_error_codes(code, details, field, retryable):
    item = {"code": code, "details": details, "message": "m", "status": "error"}
    c = client_for(Script().on("POST", "/crm/v8/Contacts", httpx.Response(400, json={"data": [item]})))
    (r,) = c.create("Contacts", items(1))
    assert not r.ok and r.code == code and r.field == field and r.retryable is retryable
    if code == "DUPLICATE_DATA":
        assert "5725767000000524001" in r.error


def test_short_result_list_leaves_keys_unknown():
    c = client_for(Script().on("POST", "/crm/v8/Contacts", httpx.Response(
        201, json={"data": [ok_item(0)]})))
    res = c.create("Contacts", items(3))
    assert [r.key for r in res] == ["contacts:0"]  # the executor treats the others as unknown


@pytest.mark.parametrize("response,exc,maybe", [
    (httpx.Response(429, json={"code": "TOO_MANY_REQUESTS", "details": {"retry_after": 7},
                               "message": "x", "status": "error"}), TransientError, False),
    (httpx.Response(503, text="<html>busy</html>"), TransientError, True),
    (httpx.Response(500, json={"code": "INTERNAL_ERROR", "details": {}, "message": "x",
                               "status": "error"}), TransientError, True),
    (httpx.Response(200, text="<html>captive portal</html>"), ZohoProtocolError, None),
    (httpx.Response(201, json={"result": []}), ZohoProtocolError, None),
    (httpx.Response(201, json=[1, 2]), ZohoProtocolError, None),
    (httpx.Response(400, json={"code": "INVALID_MODULE", "details": {}, "status": "error",
                               "message": "The module name given seems to be invalid"}),
     FatalError, None),
], ids=["429", "503-html", "500", "200-html", "missing-data", "list-body", "invalid-module"])
def test_whole_call_errors(response, exc, maybe):
    c = client_for(Script().on("POST", "/crm/v8/Contacts", response))
    with pytest.raises(exc) as info:
        c.create("Contacts", items(2))
    assert "/crm/v8/Contacts" in str(info.value)  # names the endpoint, never a KeyError
    if maybe is not None:
        assert info.value.maybe_committed is maybe
    if response.status_code == 429:
        assert info.value.retry_after == 7


def test_dropped_connection_and_timeout_are_transient():
    def drop(request):
        raise httpx.RemoteProtocolError("Server disconnected", request=request)

    def slow(request):
        raise httpx.ReadTimeout("timed out", request=request)

    for fn in (drop, slow):
        c = client_for(Script().on("POST", "/crm/v8/Contacts/upsert", fn))
        with pytest.raises(TransientError) as info:
            c.upsert("Contacts", items(1))
        assert info.value.maybe_committed is True
    c = client_for(Script().on("GET", "/crm/v8/Contacts", drop))
    with pytest.raises(TransientError) as info:
        c.get("Contacts", ["1"])
    assert info.value.maybe_committed is False


def test_spent_daily_credits_are_fatal_not_a_long_sleep():
    c = client_for(Script().on("GET", "/crm/v8/Leads/actions/count", httpx.Response(
        429, json={"code": "TOO_MANY_REQUESTS", "details": {"retry_after": 40000},
                   "message": "x", "status": "error"})))
    with pytest.raises(FatalError, match="credits"):
        c.count("Leads")


# ---------------------------------------------------------------------- reads
def test_find_by_external_id_chunks_coql_in_lists_of_50():
    queries = []

    def answer(request):
        q = json.loads(request.content)["select_query"]
        queries.append(q)
        values = q[q.index("(") + 1:q.rindex(")")].split(", ")
        data = [{"id": f"9{i}", "Source_System_ID": v.strip("'")}
                for i, v in enumerate(values) if not v.endswith("7'")]
        return httpx.Response(200, json={"data": data, "info": {"count": len(data),
                                                                "more_records": False}})

    c = client_for(Script().on("POST", "/crm/v8/coql", answer))
    ext = [f"contacts:{i}" for i in range(120)] + ["it's"]
    found = c.find_by_external_id("Contacts", ext)
    in_lists = [q[q.index("(") + 1:q.rindex(")")].split(", ") for q in queries]
    assert [len(v) for v in in_lists] == [50, 50, 21]
    assert queries[0].startswith("select id, Source_System_ID from Contacts where "
                                 "Source_System_ID in ('contacts:0'")
    assert "'it\\'s'" in queries[2]
    assert "contacts:7" not in found and found["contacts:8"]


def test_find_by_external_id_no_content():
    c = client_for(Script().on("POST", "/crm/v8/coql", httpx.Response(204)))
    assert c.find_by_external_id("Contacts", ["a"]) == {}


def test_list_records_pages_with_token_and_if_modified_since():
    pages = [
        httpx.Response(200, json={"data": [{"id": "1", "Source_System_ID": "a",
                                            "Account_Name": {"id": "7", "name": "x"}}],
                                  "info": {"more_records": True, "next_page_token": "tok2"}}),
        httpx.Response(200, json={"data": [{"id": "2", "Source_System_ID": "b"}],
                                  "info": {"more_records": False}}),
    ]
    script = Script().on("GET", "/crm/v8/Contacts", pages)
    c = client_for(script)
    recs = list(c.list_records("Contacts", modified_since="2024-01-01T00:00:00+00:00"))
    assert [r["id"] for r in recs] == ["1", "2"]
    assert recs[0]["$external_id"] == "a" and recs[0]["Account_Name"] == "7"
    assert "Source_System_ID" not in recs[0]  # bookkeeping, not a mapped value (rollback)
    first, second = script.requests
    assert first.headers["If-Modified-Since"] == "2024-01-01T00:00:00+00:00"
    assert "page_token" not in first.url.params and second.url.params["page_token"] == "tok2"
    assert len(first.url.params["fields"].split(",")) <= 50


def test_list_users_active_only_and_paged():
    pages = [httpx.Response(200, json={"users": [{"id": "1", "email": "a@x", "full_name": "A",
                                                  "status": "active"}],
                                       "info": {"more_records": True}}),
             httpx.Response(200, json={"users": [{"id": "2", "email": "b@x", "status": "active"}],
                                       "info": {"more_records": False}})]
    script = Script().on("GET", "/crm/v8/users", pages)
    users = client_for(script).list_users()
    assert [u.id for u in users] == ["1", "2"]
    assert script.requests[0].url.params["type"] == "ActiveUsers"


def test_delete_in_batches_keyed_by_id():
    sizes = []

    def answer(request):
        ids = request.url.params["ids"].split(",")
        sizes.append(len(ids))
        return httpx.Response(200, json={"data": [
            {"code": "SUCCESS", "details": {"id": i}, "message": "record deleted",
             "status": "success"} for i in ids]})

    res = client_for(Script().on("DELETE", "/crm/v8/Leads", answer)).delete(
        "Leads", [str(i) for i in range(150)])
    assert sizes == [100, 50] and all(r.ok for r in res) and res[120].key == "120"


def test_attachment_size_checked_before_sending(tmp_path, monkeypatch):
    import runtime.dialects.zoho.client as mod

    script = Script()
    c = client_for(script)
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 2048)
    monkeypatch.setattr(mod, "ATTACHMENT_LIMIT_BYTES", 1024)
    r = c.upload_attachment("Contacts", "1", "big.bin", big, "k")
    assert not r.ok and r.code == "FILE_SIZE_MORE_THAN_ALLOWED_SIZE"
    assert script.requests == []
    r = c.upload_attachment("Contacts", "1", "x.exe", big, "k")
    assert not r.ok and script.requests == []


def test_attachment_multipart_upload(tmp_path):
    def answer(request):
        assert request.headers["content-type"].startswith("multipart/form-data")
        assert b'name="file"; filename="a.txt"' in request.content
        return httpx.Response(200, json={"data": [{"code": "SUCCESS", "details": {"id": "55"},
                                                   "message": "attachment is added",
                                                   "status": "success"}]})

    f = tmp_path / "a.txt"
    f.write_text("hello")
    listing = [httpx.Response(204),
               httpx.Response(200, json={"data": [{"id": "55", "File_Name": "a.txt", "Size": "5"}],
                                         "info": {"more_records": False}})]
    script = Script().on("GET", "/crm/v8/Contacts/9/Attachments", listing) \
        .on("POST", "/crm/v8/Contacts/9/Attachments", answer)
    c = client_for(script)
    r = c.upload_attachment("Contacts", "9", "a.txt", f, "k")
    assert r.ok and r.created and r.dest_id == "Contacts/9/55"
    # a retry (lost response, resumed run) finds the file there: nothing is sent twice
    again = c.upload_attachment("Contacts", "9", "a.txt", f, "k")
    assert again.ok and again.created is False and again.dest_id == "Contacts/9/55"
    assert [r.method for r in script.requests] == ["GET", "POST", "GET"]


def test_delete_attachments_through_their_parent():
    script = Script().on("DELETE", "/crm/v8/Contacts/9/Attachments/55", httpx.Response(
        200, json={"data": [{"code": "SUCCESS", "details": {"id": "55"},
                             "message": "record deleted", "status": "success"}]}))
    res = client_for(script).delete_attachments(["Contacts/9/55", "55"])
    assert res[0].ok and res[0].key == "Contacts/9/55"
    assert not res[1].ok and res[1].code == "INVALID_DATA"
    assert len(script.requests) == 1


# ---------------------------------------------------------------------- rate limits as data
@pytest.mark.parametrize("edition,users,credits", [
    ("free", 3, 5_000), ("standard", 10, 52_500), ("standard", 1000, 100_000),
    ("professional", 10, 55_000), ("enterprise", 10, 60_000), ("ultimate", 10, 70_000),
    ("zoho_one", 10, 60_000),
])
def test_credits_per_edition(edition, users, credits):
    assert credits_for(edition, users) == credits


def test_write_cost_and_ledger():
    assert [write_cost(n) for n in (1, 10, 11, 100)] == [1, 1, 2, 10]
    t = [0.0]
    ledger = CreditLedger(20, 100, clock=lambda: t[0])
    assert ledger.charge(10) is None and ledger.charge(10) is None
    t[0] = 30
    assert ledger.charge(1) == pytest.approx(70)  # the t=0 credits leave the window at t=100
    t[0] = 100
    assert ledger.charge(5) is None and ledger.remaining == 15  # both early charges expired
    assert Tier(edition="enterprise").concurrency_limit == 20


# ---------------------------------------------------------------------- fmap schema methods
def _change(action: str, obj: str, field: str | None = None, type_: str | None = None) -> dict:
    return {"action": action, "object": obj, "field": field, "type": type_, "details": {}}


def test_apply_schema_changes_reports_each_change():
    """A module Zoho refuses fails its own fields too; fields are paired with Zoho's answers by
    position; a field the new module came with counts as created without a request."""
    sent: list[dict] = []

    def modules(request):
        body = json.loads(request.content)
        sent.append(body)
        name = body["modules"][0]["api_name"]
        if name == "Bad_Module":
            return httpx.Response(400, json={"modules": [{
                "code": "INVALID_DATA", "message": "plural label taken", "status": "error",
                "details": {}}]})
        return httpx.Response(201, json={"modules": [{
            "code": "SUCCESS", "message": "module created", "status": "success",
            "details": {"api_name": name, "id": "1"}}]})

    def fields(request):
        body = json.loads(request.content)
        sent.append(body)
        return httpx.Response(207, json={"fields": [
            {"code": "SUCCESS", "status": "success", "message": "field created",
             "details": {"api_name": body["fields"][0]["api_name"]}},
            {"code": "DUPLICATE_DATA", "status": "error", "message": "duplicate data",
             "details": {"api_name": body["fields"][1]["api_name"]}}]})

    script = (Script()
              .on("POST", "/crm/v8/settings/modules", modules)
              .on("GET", "/crm/v8/settings/fields", httpx.Response(200, json={"fields": [
                  {"api_name": "Name", "data_type": "text"},
                  {"api_name": "Owner", "data_type": "ownerlookup"}]}))
              .on("GET", "/crm/v8/settings/layouts", httpx.Response(200, json={"layouts": []}))
              .on("POST", "/crm/v8/settings/fields", fields))
    changes = [_change("create_module", "Pets"), _change("create_module", "Bad_Module"),
               _change("create_field", "Pets", "Name", "text(120)"),
               _change("create_field", "Pets", "Species", "text(40)"),
               _change("create_field", "Pets", "Chip", "text(20)"),
               _change("create_field", "Bad_Module", "X", "text")]
    with client_for(script) as client:
        results = client.apply_schema_changes(changes)
    assert [(r["object"], r["field"], r["status"]) for r in results] == [
        ("Pets", None, "created"), ("Bad_Module", None, "failed"),
        ("Pets", "Name", "created"), ("Pets", "Species", "created"),
        ("Pets", "Chip", "failed"), ("Bad_Module", "X", "failed")]
    assert "plural label taken" in results[1]["message"]
    assert results[4]["message"] == "DUPLICATE_DATA duplicate data"
    assert results[5]["message"] == "module Bad_Module was not created"
    field_posts = [b for b in sent if "fields" in b]
    assert [f["api_name"] for f in field_posts[0]["fields"]] == ["Species", "Chip"]
    assert field_posts[0]["fields"][0]["length"] == 40


def test_metadata_bundle_leaves_out_modules_the_org_lacks():
    script = (Script()
              .on("GET", "/crm/v8/settings/modules", httpx.Response(200, json={"modules": [
                  {"api_name": "Leads", "id": "1"}]}))
              .on("GET", "/crm/v8/settings/fields", httpx.Response(200, json={"fields": [
                  {"api_name": "Last_Name", "data_type": "text", "system_mandatory": True}]}))
              .on("GET", "/crm/v8/settings/layouts", httpx.Response(200, json={"layouts": []})))
    with client_for(script) as client:
        bundle = client.metadata_bundle(["Leads", "Pets", "Leads"])
    assert list(bundle["objects"]) == ["Leads"]
    assert [r.url.params.get("module") for r in script.requests
            if r.url.path.endswith("/fields")] == ["Leads"]
    from runtime.dialects import get_dialect

    schema = get_dialect("zoho").load_metadata(bundle, source_name="t")
    assert schema.object("Leads").field("Last_Name").required


# ---------------------------------------------------------------------- credits left in the window
class _Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_credit_gauge_tracks_the_reported_remainder():
    from runtime.dialects.zoho.ratelimit import CreditGauge

    clock = _Clock()
    gauge = CreditGauge(Tier(credits=1000, window_seconds=1000), clock=clock)  # 1 credit/s
    assert gauge.estimate() is None and gauge.wait_for(50) == 0  # nothing reported yet
    gauge.observe("5")
    assert gauge.estimate() == 5 and gauge.wait_for(5) == 0
    assert gauge.wait_for(8) == pytest.approx(3.0)
    gauge.spend(5)
    clock.t += 2
    assert gauge.estimate() == pytest.approx(2.0)
    clock.t += 10_000
    assert gauge.estimate() == 1000  # never above the limit
    gauge.observe("not a number")  # ignored
    assert gauge.estimate() == 1000
    gauge.observe(None)  # under 50 % used again: Zoho stops sending it
    assert gauge.estimate() is None


def test_bare_429_takes_its_wait_from_the_credits_header():
    clock = _Clock()
    script = Script().on("POST", "/crm/v8/Leads/upsert", httpx.Response(
        429, json={"code": "TOO_MANY_REQUESTS", "message": "limit", "status": "error",
                   "details": {}}, headers={"X-API-CREDITS-REMAINING": "4"}))
    with client_for(script, tier=Tier(credits=1000, window_seconds=1000), clock=clock) as client:
        with pytest.raises(TransientError) as info:
            client.upsert("Leads", items(100, "leads"))  # costs 10 credits; 4 left; 1/s
        assert info.value.retry_after == pytest.approx(6.0)
        assert not info.value.maybe_committed
        # the next call is held back without being sent until the credits are back
        sent = len(script.requests)
        with pytest.raises(TransientError) as info:
            client.upsert("Leads", items(100, "leads"))
        assert len(script.requests) == sent and client.paced == 1
        assert info.value.retry_after == pytest.approx(6.0)


def test_credits_too_far_off_stop_the_run_cleanly():
    clock = _Clock()
    script = Script().on("GET", "/crm/v8/users", httpx.Response(
        200, json={"users": [], "info": {"more_records": False}},
        headers={"X-API-CREDITS-REMAINING": "0"}))
    with client_for(script, tier=Tier(credits=86_400, window_seconds=86_400), clock=clock,
                    max_wait=60) as client:
        client.list_users()
        with pytest.raises(TransientError) as info:  # 10 credits at 1/s: 10 s, worth waiting
            client.upsert("Leads", items(100, "leads"))
        assert info.value.retry_after == pytest.approx(10.0)
    with client_for(script, tier=Tier(credits=8_640, window_seconds=86_400), clock=clock,
                    max_wait=60) as client:
        client.list_users()
        with pytest.raises(FatalError, match="resume the run later"):  # 0.1/s: 100 s > 60
            client.upsert("Leads", items(100, "leads"))
