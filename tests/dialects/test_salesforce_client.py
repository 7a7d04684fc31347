"""SalesforceClient against scripted responses (httpx.MockTransport): the documented examples of
API_NOTES.md section 2 (collections partial failure, allOrNone, upsert ``created``, 300 Multiple
Choices, REQUEST_LIMIT_EXCEEDED, INVALID_FIELD), auth and refresh, secrets never shown, request
shapes, query paging."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from runtime.destinations.base import FatalError, TransientError, WriteItem
from runtime.dialects.salesforce.auth import SalesforceAuthError, SalesforceCredentials
from runtime.dialects.salesforce.client import SalesforceClient, parse_limit_info

SECRET_ACCESS = "00Dxx0000001gPL!access-SECRET-123"
SECRET_REFRESH = "5Aep861refresh-SECRET-abc"
SECRET_CLIENT = "client-SECRET-xyz"
INSTANCE = "https://acme.my.salesforce.com"
API = "/services/data/v62.0"
LIMIT = {"Sforce-Limit-Info": "api-usage=18/15000"}


def client_for(handler, creds: SalesforceCredentials | None = None) -> SalesforceClient:
    http = httpx.Client(transport=httpx.MockTransport(handler))
    return SalesforceClient(credentials=creds or SalesforceCredentials(
        instance_url=INSTANCE, access_token=SECRET_ACCESS), http=http)


def items(n: int) -> list[WriteItem]:
    return [WriteItem(f"k{i}", f"ext{i}", {"Name": f"N{i}"}) for i in range(n)]


def reply(status: int, body, headers=None):
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, json=body, headers={**LIMIT, **(headers or {})})

    handler.seen = seen  # type: ignore[attr-defined]
    return handler


# ---------------------------------------------------------------------- documented examples
PARTIAL = [{"id": "001RM000003oCprYAE", "success": True, "errors": []},
           {"success": False, "errors": [{"statusCode": "MALFORMED_ID", "message":
                                          "Contact ID: id value of incorrect type: "
                                          "001xx000003DGb2999", "fields": ["Id"]}]}]
ROLLED_BACK = [{"id": "001RM000003oCprYAE", "success": False, "errors": [{
    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK", "message": "Record rolled back because "
    "not all records were valid and the request was using AllOrNone header", "fields": []}]},
    {"success": False, "errors": [{"statusCode": "MALFORMED_ID", "message": "bad id",
                                   "fields": ["Id"]}]}]
UPSERT = [{"id": "001xx0000004GxDAAU", "success": True, "errors": [], "created": True},
          {"id": "001xx0000004GxEAAU", "success": True, "errors": [], "created": False}]
DUPLICATES = [{"success": False, "errors": [{"statusCode": "DUPLICATES_DETECTED",
                                             "message": "Use one of these records?",
                                             "fields": []}]}]
PICKLIST = [{"success": False, "errors": [{
    "message": "Race: bad value for restricted picklist field: Native American / Alaskan Native",
    "statusCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "fields": ["Race__c"]}]}]
REQUIRED = [{"success": False, "errors": [{"message": "Required fields are missing: [Name]",
                                           "statusCode": "REQUIRED_FIELD_MISSING",
                                           "fields": ["Name"]}]}]
INVALID_FIELD = [{"message": "No such column 'foo' on sobject of type Bar",
                  "errorCode": "INVALID_FIELD"}]
MULTIPLE = ["/services/data/v23.0/sobjects/Whizbang/foo",
            "/services/data/v23.0/sobjects/Whizbang/bar"]
BAD_EXT = [{"message": "Provided external ID field does not exist or is not accessible: Namez",
            "errorCode": "NOT_FOUND"}]

# (id, op, n items, HTTP status, body, expected [(ok, dest_id, created, code, field)])
CASES = [
    ("partial-failure", "create", 2, 200, PARTIAL,
     [(True, "001RM000003oCprYAE", True, None, None), (False, None, None, "MALFORMED_ID", "Id")]),
    ("all-or-none-rolled-back", "create", 2, 200, ROLLED_BACK,
     [(False, None, None, "ALL_OR_NONE_OPERATION_ROLLED_BACK", None),
      (False, None, None, "MALFORMED_ID", "Id")]),
    ("upsert-created-flags", "upsert", 2, 200, UPSERT,
     [(True, "001xx0000004GxDAAU", True, None, None),
      (True, "001xx0000004GxEAAU", False, None, None)]),
    ("duplicate-rule", "create", 1, 200, DUPLICATES,
     [(False, None, None, "DUPLICATES_DETECTED", None)]),
    ("restricted-picklist", "create", 1, 200, PICKLIST,
     [(False, None, None, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "Race__c")]),
    ("required-field", "update", 1, 200, REQUIRED,
     [(False, None, None, "REQUIRED_FIELD_MISSING", "Name")]),
    ("invalid-field-whole-request", "create", 2, 400, INVALID_FIELD,
     [(False, None, None, "INVALID_FIELD", None)] * 2),
    ("upsert-300-multiple-choices", "upsert", 1, 300, MULTIPLE,
     [(False, None, None, "MULTIPLE_CHOICES", "Fmap_External_ID__c")]),
    ("upsert-bad-external-id-field", "upsert", 1, 404, BAD_EXT,
     [(False, None, None, "NOT_FOUND", None)]),
]


@pytest.mark.parametrize("op,n,status,body,expected", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_documented_results(op, n, status, body, expected):
    handler = reply(status, body)
    its = items(n)
    for it in its:
        it.dest_id = "001xx0000004GxDAAU" if op == "update" else None
    c = client_for(handler)
    results = getattr(c, op)("Account", its)
    got = [(r.ok, r.dest_id, r.created, r.code, r.field) for r in results]
    assert got == expected
    assert [r.key for r in results] == [it.key for it in its]
    assert c.api_usage == (18, 15000)
    req = handler.seen[0]
    assert req.headers["authorization"] == f"Bearer {SECRET_ACCESS}"
    sent = json.loads(req.content)
    assert sent["allOrNone"] is False
    assert all(r["attributes"] == {"type": "Account"} for r in sent["records"])
    if op == "upsert":
        assert req.method == "PATCH"
        assert req.url.path == f"{API}/composite/sobjects/Account/Fmap_External_ID__c"
        assert sent["records"][0]["Fmap_External_ID__c"] == "ext0"
    elif op == "create":
        assert (req.method, req.url.path) == ("POST", f"{API}/composite/sobjects")
    else:
        assert req.method == "PATCH" and sent["records"][0]["id"] == "001xx0000004GxDAAU"


def test_daily_limit_is_fatal_and_concurrency_limit_transient():
    total = reply(403, [{"message": "TotalRequests Limit exceeded.",
                         "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
                  {"Sforce-Limit-Info": "api-usage=15001/15000"})
    with pytest.raises(FatalError, match="daily API request allocation.*15001/15000"):
        client_for(total).create("Account", items(1))
    conc = reply(403, [{"message": "ConcurrentPerOrgLongTxn Limit exceeded.",
                        "errorCode": "REQUEST_LIMIT_EXCEEDED"}])
    with pytest.raises(TransientError) as ei:
        client_for(conc).create("Account", items(1))
    assert ei.value.maybe_committed is False


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_and_timeouts_are_transient(status):
    with pytest.raises(TransientError) as ei:
        client_for(reply(status, [{"errorCode": "SERVER_UNAVAILABLE", "message": "x"}])
                   ).create("Account", items(1))
    assert ei.value.maybe_committed is True

    def boom(request):
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(TransientError):
        client_for(boom).create("Account", items(1))
    with pytest.raises(TransientError) as ei:
        client_for(boom).count("Account")
    assert ei.value.maybe_committed is False


def test_401_refreshes_once_then_names_the_env_vars(caplog):
    calls = {"token": 0, "api": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/services/oauth2/token":
            calls["token"] += 1
            body = dict(x.split("=") for x in request.content.decode().split("&"))
            assert body["grant_type"] == "refresh_token"
            return httpx.Response(200, json={"access_token": f"fresh-{calls['token']}",
                                             "instance_url": INSTANCE})
        calls["api"] += 1
        if request.headers["authorization"] == "Bearer fresh-1":
            return httpx.Response(200, json={"totalSize": 3, "done": True, "records": []})
        return httpx.Response(401, json=[{"message": "Session expired or invalid",
                                          "errorCode": "INVALID_SESSION_ID"}])

    creds = SalesforceCredentials(instance_url=INSTANCE, access_token=SECRET_ACCESS,
                                  client_id=SECRET_CLIENT, client_secret=SECRET_CLIENT,
                                  refresh_token=SECRET_REFRESH)
    caplog.set_level(logging.DEBUG)
    c = client_for(handler, creds)
    assert c.count("Account") == 3
    assert calls == {"token": 1, "api": 2}
    # without a refresh token: FatalError naming the variables
    bad = client_for(reply(401, [{"message": "Session expired or invalid",
                                  "errorCode": "INVALID_SESSION_ID"}]))
    with pytest.raises(SalesforceAuthError, match="SF_REFRESH_TOKEN.*SF_ACCESS_TOKEN") as ei:
        bad.count("Account")
    shown = caplog.text + repr(c) + repr(creds) + str(creds) + repr(c.auth) + str(ei.value)
    for secret in (SECRET_ACCESS, SECRET_REFRESH, SECRET_CLIENT):
        assert secret not in shown


def test_credentials_from_env_and_tls_verified(monkeypatch):
    env = {"SF_INSTANCE_URL": INSTANCE, "SF_ACCESS_TOKEN": SECRET_ACCESS}
    creds = SalesforceCredentials.from_env(env)
    assert creds.instance_url == INSTANCE and creds.access_token == SECRET_ACCESS
    assert SECRET_ACCESS not in repr(creds)
    from runtime.dialects.salesforce import open_client

    for k, v in env.items():
        monkeypatch.setenv(k, v)
    c = open_client("salesforce://acme.my.salesforce.com", {})
    try:
        assert c.auth.instance_url == INSTANCE
        assert c._http._transport._pool._ssl_context.verify_mode.name == "CERT_REQUIRED"
        assert SECRET_ACCESS not in repr(c)
    finally:
        c.close()


def test_query_follows_next_records_url_and_soql_escapes():
    pages = {
        None: {"totalSize": 3, "done": False, "nextRecordsUrl": f"{API}/query/01gxx-2000",
               "records": [{"attributes": {"type": "Account"}, "Id": "001A",
                            "Fmap_External_ID__c": "a'1"}]},
        "01gxx-2000": {"totalSize": 3, "done": True, "records": [
            {"attributes": {"type": "Account"}, "Id": "001B", "Fmap_External_ID__c": "b"}]},
    }
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        tail = request.url.path.rsplit("/", 1)[-1]
        return httpx.Response(200, json=pages[None if tail == "query" else tail])

    c = client_for(handler)
    assert c.find_by_external_id("Account", ["a'1", "b", "zz"]) == {"a'1": "001A", "b": "001B"}
    q = seen[0].url.params["q"]
    assert q == ("SELECT Id, Fmap_External_ID__c FROM Account WHERE Fmap_External_ID__c IN "
                 "('a\\'1', 'b', 'zz')")


def test_parse_limit_info():
    assert parse_limit_info("api-usage=18/15000") == (18, 15000)
    assert parse_limit_info(None) is None
