"""The Pipedrive connector's requests and error handling, over ``httpx.MockTransport``: auth headers,
custom fields by hash with option ids, envelopes -> WriteResult, 429 / 403 / 401 handling, the
daily token budget and the 2 s burst window, and secrets kept out of reprs and logs."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from runtime.destinations.base import FatalError, TransientError, WriteItem
from runtime.dialects.pipedrive import VirtualClock, open_client
from runtime.dialects.pipedrive.auth import (
    PipedriveAuthError,
    PipedriveCredentials,
    company_base_url,
)
from runtime.dialects.pipedrive.client import BurstWindow, PipedriveClient, token_cost

SECRET = "api-token-SECRET-0123456789"
EXT_KEY = "a" * 40
GENDER_KEY = "b" * 40
TAGS_KEY = "c" * 40
BALANCE_KEY = "d" * 40
PERSON_FIELDS = {"success": True, "data": [
    {"field_code": "name", "field_name": "Name", "field_type": "varchar",
     "is_custom_field": False},
    {"field_code": EXT_KEY, "field_name": "Source_System_ID", "field_type": "varchar",
     "is_custom_field": True},
    {"field_code": GENDER_KEY, "field_name": "Gender", "field_type": "enum",
     "is_custom_field": True, "options": [{"id": 31, "label": "Male"}, {"id": 32, "label": "Female"}]},
    {"field_code": TAGS_KEY, "field_name": "Tags", "field_type": "set", "is_custom_field": True,
     "options": [{"id": 41, "label": "VIP"}, {"id": 42, "label": "New"}]},
    {"field_code": BALANCE_KEY, "field_name": "Balance", "field_type": "monetary",
     "is_custom_field": True},
], "additional_data": {"next_cursor": None}}


class Recorder:
    """A MockTransport handler: answers from ``routes`` and keeps every request."""

    def __init__(self, routes=None):
        self.requests: list[httpx.Request] = []
        self.routes = routes or {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        key = f"{request.method} {request.url.path}"
        answer = self.routes.get(key)
        if callable(answer):
            return answer(request)
        if answer is not None:
            return answer
        if request.url.path.endswith("personFields"):
            return httpx.Response(200, json=PERSON_FIELDS)
        if request.method == "POST":
            return httpx.Response(200, json={"success": True, "data": {"id": 7},
                                             "additional_data": None})
        return httpx.Response(404, json={"success": False, "error": "not found"})


def client(handler, **kw) -> PipedriveClient:
    kw.setdefault("credentials", PipedriveCredentials(api_token=SECRET))
    if "clock" not in kw and "sleep" not in kw:
        # a virtual clock the client's sleeps advance: waiting out a 429's reset (it paces on
        # its clock until then) takes no wall time; a no-op sleep on the real clock would spin
        vclock = VirtualClock(start=100.0)
        kw.update(clock=vclock, sleep=vclock.sleep)
    kw.setdefault("sleep", lambda s: None)
    return PipedriveClient(base_url="https://acme.pipedrive.com",
                           http=httpx.Client(transport=httpx.MockTransport(handler)), **kw)


def test_create_sends_custom_fields_by_hash_and_option_ids():
    rec = Recorder()
    c = client(rec)
    [r] = c.create("Person", [WriteItem("P1", "P1", {
        "name": "Ann", "emails": "ann@example.org", "org_id": "12", "owner_id": "21000001",
        "Gender": "Female", "Tags": ["VIP", "New"], "Balance": 12.5})])
    assert r.ok and r.dest_id == "7" and r.created
    post = rec.requests[-1]
    assert post.url == "https://acme.pipedrive.com/api/v2/persons"
    assert post.headers["x-api-token"] == SECRET
    body = json.loads(post.content)
    assert body["org_id"] == 12 and body["owner_id"] == 21000001
    assert body["emails"] == [{"value": "ann@example.org", "primary": True, "label": "work"}]
    assert body["custom_fields"] == {EXT_KEY: "P1", GENDER_KEY: 32, TAGS_KEY: [41, 42],
                                     BALANCE_KEY: {"value": 12.5, "currency": "USD"}}
    assert "Gender" not in body and "Source_System_ID" not in body


def test_empty_set_is_sent_as_null_and_update_patches():
    rec = Recorder({"PATCH /api/v2/persons/7": httpx.Response(200, json={
        "success": True, "data": {"id": 7}})})
    c = client(rec)
    [r] = c.update("Person", [WriteItem("P1", None, {"Tags": []}, "7")])
    assert r.ok and r.created is False
    req = rec.requests[-1]
    assert req.method == "PATCH" and json.loads(req.content) == {"custom_fields": {TAGS_KEY: None}}


def test_oauth_bearer_header():
    rec = Recorder()
    c = client(rec, credentials=PipedriveCredentials(access_token="oauth-SECRET"))
    c.create("Organization", [WriteItem("O1", None, {"name": "Org"})])
    assert rec.requests[-1].headers["authorization"] == "Bearer oauth-SECRET"
    assert "x-api-token" not in rec.requests[-1].headers


def test_error_envelope_becomes_write_result():
    rec = Recorder({"POST /api/v2/persons": httpx.Response(400, json={
        "success": False, "error": "Invalid field(s) in the payload: asdasdasd",
        "error_info": "Please check developers.pipedrive.com", "data": None,
        "additional_data": None})})
    [r] = client(rec).create("Person", [WriteItem("P1", None, {"name": "x"})])
    assert not r.ok and r.code == "HTTP_400" and r.field == "asdasdasd"
    assert "Invalid field" in r.error


def test_401_is_fatal_and_names_the_env_var():
    rec = Recorder({"POST /api/v2/organizations": httpx.Response(401, json={
        "success": False, "error": "unauthorized access", "errorCode": 401})})
    with pytest.raises(PipedriveAuthError, match="PIPEDRIVE_API_TOKEN") as exc:
        client(rec).create("Organization", [WriteItem("O", None, {"name": "x"})])
    assert SECRET not in str(exc.value)
    oauth = client(rec, credentials=PipedriveCredentials(access_token="tok"))
    with pytest.raises(PipedriveAuthError, match="PIPEDRIVE_ACCESS_TOKEN"):
        oauth.create("Organization", [WriteItem("O", None, {"name": "x"})])


def test_missing_credentials_name_both_env_vars(monkeypatch):
    monkeypatch.delenv("PIPEDRIVE_API_TOKEN", raising=False)
    monkeypatch.delenv("PIPEDRIVE_ACCESS_TOKEN", raising=False)
    c = client(Recorder(), credentials=PipedriveCredentials.from_env())
    with pytest.raises(PipedriveAuthError, match="PIPEDRIVE_API_TOKEN.*PIPEDRIVE_ACCESS_TOKEN"):
        c.create("Organization", [WriteItem("O", None, {"name": "x"})])


def _throttled(reset: str = "2"):
    return httpx.Response(429, json={"success": False, "error": "Rate limit exceeded"},
                          headers={"x-ratelimit-limit": "40", "x-ratelimit-remaining": "0",
                                   "x-ratelimit-reset": reset})


def test_429_is_transient_with_reset_then_fatal_after_repeats():
    rec = Recorder({"POST /api/v2/organizations": _throttled()})
    c = client(rec, max_429=3)
    for _ in range(2):
        with pytest.raises(TransientError) as exc:
            c.create("Organization", [WriteItem("O", None, {"name": "x"})])
        assert exc.value.retry_after == 2.0 and exc.value.maybe_committed is False
    with pytest.raises(FatalError, match="403 lockout"):
        c.create("Organization", [WriteItem("O", None, {"name": "x"})])
    assert c.stats.throttled == 3


def test_429_with_a_day_long_reset_stops_at_once():
    rec = Recorder({"POST /api/v2/organizations": _throttled(reset="80000")})
    with pytest.raises(FatalError):
        client(rec).create("Organization", [WriteItem("O", None, {"name": "x"})])


def test_403_html_page_is_fatal():
    rec = Recorder({"POST /api/v2/organizations": httpx.Response(
        403, content=b"<html>blocked</html>", headers={"content-type": "text/html"})})
    with pytest.raises(FatalError, match="blocked"):
        client(rec).create("Organization", [WriteItem("O", None, {"name": "x"})])


def test_5xx_and_dropped_connections_are_transient():
    rec = Recorder({"POST /api/v2/organizations": httpx.Response(503, json={"success": False})})
    with pytest.raises(TransientError) as exc:
        client(rec).create("Organization", [WriteItem("O", None, {"name": "x"})])
    assert exc.value.maybe_committed

    def drop(request):
        raise httpx.RemoteProtocolError("gone", request=request)

    rec = Recorder({"POST /api/v2/organizations": drop})
    with pytest.raises(TransientError) as exc:
        client(rec).create("Organization", [WriteItem("O", None, {"name": "x"})])
    assert exc.value.maybe_committed


def test_daily_budget_stops_before_overdrawing():
    rec = Recorder()
    c = client(rec, daily_budget=12)
    c.create("Organization", [WriteItem("O1", None, {"name": "x"})])  # 5 tokens
    c.create("Organization", [WriteItem("O2", None, {"name": "x"})])  # 10
    with pytest.raises(FatalError, match="daily token budget"):
        c.create("Organization", [WriteItem("O3", None, {"name": "x"})])
    assert len(rec.requests) == 2


def test_daily_budget_follows_the_header():
    rec = Recorder({"POST /api/v2/organizations": httpx.Response(
        200, json={"success": True, "data": {"id": 1}},
        headers={"x-daily-ratelimit-token-remaining": "3"})})
    c = client(rec)
    c.create("Organization", [WriteItem("O1", None, {"name": "x"})])
    assert c.daily_remaining == 3
    with pytest.raises(FatalError):
        c.create("Organization", [WriteItem("O2", None, {"name": "x"})])


def test_burst_window_paces_requests():
    clock = VirtualClock(start=100.0)
    rec = Recorder()
    c = client(rec, burst=5, clock=clock, sleep=clock.sleep)
    for i in range(12):
        c.create("Organization", [WriteItem(f"O{i}", None, {"name": "x"})])
    # 12 requests at 5 per rolling 2 s: two full windows waited
    assert clock.slept == pytest.approx(4.0)
    w = BurstWindow(2, 2.0, clock)
    w.take()
    w.take()
    assert w.wait() == pytest.approx(2.0)


def test_search_bucket_is_separate_and_smaller():
    clock = VirtualClock(start=0.0)

    def search(request):
        return httpx.Response(200, json={"success": True, "data": {"items": []},
                                         "additional_data": {"next_cursor": None}})

    rec = Recorder({"GET /api/v2/persons/search": search})
    c = client(rec, clock=clock, sleep=clock.sleep)
    c.find_by_external_id("Person", [f"P{i}" for i in range(15)])
    searches = [r for r in rec.requests if r.url.path.endswith("/search")]
    assert len(searches) == 15
    assert clock.slept == pytest.approx(2.0)  # 10 per 2 s
    q = searches[0].url.params
    assert q["fields"] == "custom_fields" and q["exact_match"] == "true" and q["term"] == "P0"


def test_find_by_external_id_compares_the_field_exactly():
    def search(request):
        return httpx.Response(200, json={"success": True, "data": {"items": [
            {"result_score": 1, "item": {"id": 5}}, {"result_score": 1, "item": {"id": 6}}]}})

    def get(request):
        assert request.url.params["ids"] == "5,6"
        return httpx.Response(200, json={"success": True, "data": [
            {"id": 5, "custom_fields": {EXT_KEY: "p1"}},  # a case-insensitive hit
            {"id": 6, "custom_fields": {EXT_KEY: "P1"}}]})

    c = client(Recorder({"GET /api/v2/persons/search": search, "GET /api/v2/persons": get}))
    assert c.find_by_external_id("Person", ["P1"]) == {"P1": "6"}


def test_token_costs():
    assert token_cost("v2", "POST", "/persons") == 5
    assert token_cost("v2", "GET", "/persons/12") == 1
    assert token_cost("v2", "GET", "/persons/search") == 20
    assert token_cost("v1", "POST", "/notes") == 10
    assert token_cost("v1", "DELETE", "/files/9") == 6


def test_secrets_never_in_repr_or_logs(caplog):
    caplog.set_level(logging.DEBUG)
    rec = Recorder()
    c = client(rec)
    c.create("Organization", [WriteItem("O1", None, {"name": "x"})])
    creds = PipedriveCredentials(api_token=SECRET, access_token="oauth-SECRET")
    for text in (repr(c), str(c), repr(creds), str(creds), caplog.text):
        assert SECRET not in text and "oauth-SECRET" not in text
    assert "x-api-token" not in str(rec.requests[-1].url)  # header, never the query string


def test_open_client_uri(monkeypatch):
    monkeypatch.setenv("PIPEDRIVE_API_TOKEN", SECRET)
    c = open_client("pipedrive://acme.pipedrive.com", {"plan": "premium", "seats": "3"})
    try:
        assert c.base_url == "https://acme.pipedrive.com"
        assert c.capabilities.native_upsert is False and c.capabilities.batch_size == 1
        assert c.daily_budget == 30_000 * 5 * 3 and c.burst.limit == 100
        assert SECRET not in repr(c)
    finally:
        c.close()
    assert company_base_url("acme") == "https://acme.pipedrive.com"
    with pytest.raises(ValueError):
        company_base_url("evil.example.com/x")
