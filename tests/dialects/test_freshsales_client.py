"""FreshsalesClient against scripted responses (httpx.MockTransport): the documented examples of
API_NOTES.md section 3 (envelopes, error shapes), ``custom_field`` never ``custom_fields``, choice
ids from metadata, 401/429/5xx mapping, and the API key never shown."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest

from runtime.destinations.base import FatalError, TransientError, WriteItem
from runtime.dialects.freshsales import open_client
from runtime.dialects.freshsales.auth import FreshsalesAuthError, FreshsalesCredentials, api_base
from runtime.dialects.freshsales.client import FreshsalesClient
from runtime.schema.model import FieldSchema, FieldType, ObjectSchema, SystemSchema

EXAMPLES = json.loads((Path(__file__).resolve().parent.parent / "fixtures" / "freshsales"
                       / "api_examples.json").read_text("utf-8"))
SECRET = "fs-SECRET-api-key-123"
BASE = "https://widgetz.myfreshworks.com/crm/sales"


class Script:
    """A MockTransport handler answering by (method, path prefix); records every request."""

    def __init__(self, routes: list[tuple[str, str, object]] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.routes = routes or []

    def on(self, method: str, prefix: str, responder) -> Script:
        self.routes.append((method, prefix, responder))
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
        return httpx.Response(404, json={"errors": {"code": 404, "message": ["no route"]}})

    def bodies(self) -> list[dict]:
        return [json.loads(r.content) for r in self.requests if r.content]


def schema() -> SystemSchema:
    from runtime.dialects import get_dialect

    base = get_dialect("freshsales").standard_schema()
    extra = SystemSchema(system="freshsales", objects=[
        ObjectSchema(api_name="Contact", fields=[
            FieldSchema(api_name="cf_gender", type=FieldType.picklist, custom=True,
                        picklist_values=["Male", "Female"],
                        vendor={"choices": {"Male": 17001007403, "Female": 17001007404}}),
            FieldSchema(api_name="cf_nhs_number", custom=True),
            FieldSchema(api_name="cf_fmap_external_id", custom=True, unique=True,
                        external_id=True)]),
        ObjectSchema(api_name="cm_projects", custom=True, fields=[
            FieldSchema(api_name="id", type=FieldType.id, read_only=True),
            FieldSchema(api_name="name"), FieldSchema(api_name="cf_title", custom=True)])])
    return base.merged(extra)


def client_for(script: Script, **kw) -> FreshsalesClient:
    http = httpx.Client(transport=httpx.MockTransport(script))
    return FreshsalesClient(base_url=BASE, credentials=FreshsalesCredentials(SECRET), http=http,
                            schema=kw.pop("schema", schema()), sleep=lambda s: None, **kw)


def rec_response(single: str, rid: int = 144, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json={single: {"id": rid, "custom_field": {}}})


# ---------------------------------------------------------------------- documented requests
@pytest.mark.parametrize("ex", EXAMPLES["requests"], ids=lambda e: e["id"])
def test_requests_use_documented_paths_and_singular_envelopes(ex):
    single = ex["envelope"]
    script = Script().on(ex["method"], "/crm/sales/api/", rec_response(single, 144, 201))
    c = client_for(script)
    item = WriteItem("k1", "Contact:1", {"name": "Acme"} if ex["object"] != "Contact"
                     else {"last_name": "Owner"}, dest_id="144" if ex["op"] == "update" else None)
    [r] = getattr(c, ex["op"])(ex["object"], [item])
    assert r.ok and r.dest_id == "144", r
    req = script.requests[-1]
    assert (req.method, req.url.path) == (ex["method"], ex["path"])
    body = json.loads(req.content)
    assert single in body and isinstance(body[single], dict)
    assert req.headers["authorization"] == f"Token token={SECRET}"
    if ex["op"] == "upsert":
        assert body["unique_identifier"] == {"cf_fmap_external_id": "Contact:1"}
        assert r.created is True  # 201
    if ex["op"] == "update":
        assert "cf_fmap_external_id" not in json.dumps(body)  # an update keeps the record's id


@pytest.mark.parametrize("ex", EXAMPLES["errors"], ids=lambda e: e["id"])
def test_documented_error_shapes_become_record_results(ex):
    script = Script().on("POST", "/crm/sales/api/", httpx.Response(ex["status"], json=ex["body"]))
    c = client_for(script)
    [r] = c.create(ex["object"], [WriteItem("k", "x:1", {"name": "N"})])
    assert not r.ok
    assert (r.code, r.field) == (ex["code"], ex["field"])
    assert r.error == ex["body"]["errors"]["message"][0]


def test_note_body_matches_the_documented_example():
    script = Script().on("POST", "/crm/sales/api/notes", rec_response("note", 9, 201))
    c = client_for(script)
    c.create("Note", [WriteItem("n", None, {"description": "...", "targetable_type": "Contact",
                                            "targetable_id": "123"})])
    assert script.bodies()[0] == EXAMPLES["note_example"]  # targetable_id as an integer


def test_bulk_upsert_body_and_job_polling():
    """Identifier at item level + ``data``; job polled until done; outcomes read back by the
    unique identifier (created vs updated from a read before)."""
    before = httpx.Response(200, json={"contacts": [
        {"id": 7, "custom_field": {"cf_fmap_external_id": "C:1"}}], "meta": {"total_pages": 1}})
    after = httpx.Response(200, json={"contacts": [
        {"id": 7, "custom_field": {"cf_fmap_external_id": "C:1"}},
        {"id": 8, "custom_field": {"cf_fmap_external_id": "C:2"}}], "meta": {"total_pages": 1}})
    jobs = [httpx.Response(200, json={"job_status": {"id": 5, "status": "in_progress",
                                                     "progress": 40}}),
            httpx.Response(200, json={"job_status": {"id": 5, "status": "completed",
                                                     "progress": 100, "data": {"failures": [
                                                         {"unique_identifier": {
                                                             "cf_fmap_external_id": "C:3"},
                                                          "errors": {"code": 400, "message": [
                                                              "Last name can't be blank"]}}]}}})]
    script = (Script().on("POST", "/crm/sales/api/filtered_search/contact", [before, after])
              .on("POST", "/crm/sales/api/contacts/bulk_upsert",
                  httpx.Response(202, json={"job_id": 5}))
              .on("GET", "/crm/sales/api/job_statuses/5", jobs))
    c = client_for(script)
    items = [WriteItem(f"C:{i}", f"C:{i}", {"first_name": "Alex", "last_name": "Owner"})
             for i in (1, 2, 3)]
    results = {r.key: r for r in c.upsert("Contact", items)}
    bulk = next(json.loads(r.content) for r in script.requests if "bulk_upsert" in r.url.path)
    shape = EXAMPLES["bulk_upsert_example"]["contacts"][0]
    assert set(bulk["contacts"][0]) == {"cf_fmap_external_id", "data"}  # as {"emails", "data"}
    assert bulk["contacts"][0]["data"]["first_name"] == shape["data"]["first_name"]
    assert (results["C:1"].ok, results["C:1"].created, results["C:1"].dest_id) == (True, False, "7")
    assert (results["C:2"].ok, results["C:2"].created, results["C:2"].dest_id) == (True, True, "8")
    assert (results["C:3"].ok, results["C:3"].code, results["C:3"].field) == \
        (False, "REQUIRED_FIELD_MISSING", "last_name")
    assert sum(1 for r in script.requests if "job_statuses" in r.url.path) == 2
    search = next(json.loads(r.content) for r in script.requests if "filtered_search" in
                  r.url.path)
    assert set(search) == set(EXAMPLES["filtered_search_example"])
    assert search["filter_rule"][0]["operator"] == "is_in"


# ---------------------------------------------------------------------- custom fields, choices
def test_custom_fields_go_under_singular_custom_field_never_plural():
    script = Script().on("POST", "/crm/sales/api/contacts", rec_response("contact", 1, 201))
    c = client_for(script)
    [r] = c.create("Contact", [WriteItem("k", "Contact:1", {
        "last_name": "Lee", "cf_nhs_number": "9434765919", "cf_gender": "Female"})])
    assert r.ok
    raw = script.requests[0].content.decode()
    assert '"custom_fields"' not in raw
    body = json.loads(raw)["contact"]
    assert body["custom_field"] == {"cf_nhs_number": "9434765919", "cf_gender": 17001007404,
                                    "cf_fmap_external_id": "Contact:1"}
    assert "cf_nhs_number" not in body and body["last_name"] == "Lee"


@pytest.mark.parametrize("value,sent", [("Male", 17001007403), ("female", 17001007404),
                                        (17001007403, 17001007403), ("17001007404", 17001007404)],
                         ids=["label", "casefold", "id", "id-text"])
def test_dropdown_values_are_sent_as_choice_ids(value, sent):
    script = Script().on("POST", "/crm/sales/api/contacts", rec_response("contact", 1, 201))
    client_for(script).create("Contact", [WriteItem("k", None, {"last_name": "L",
                                                                "cf_gender": value})])
    assert script.bodies()[0]["contact"]["custom_field"]["cf_gender"] == sent


def test_unknown_dropdown_label_fails_that_record_only():
    script = Script().on("POST", "/crm/sales/api/contacts", rec_response("contact", 1, 201))
    c = client_for(script)
    results = c.create("Contact", [WriteItem("bad", None, {"last_name": "L", "cf_gender": "Nope"}),
                                   WriteItem("good", None, {"last_name": "L", "cf_gender": "Male"})])
    assert [(r.key, r.ok, r.code, r.field) for r in results] == [
        ("bad", False, "INVALID_CHOICE", "cf_gender"), ("good", True, None, None)]
    assert len(script.requests) == 1  # nothing sent for the bad record
    assert "Nope" not in (results[0].error or "")  # messages carry no field values


def test_choice_ids_are_learned_from_field_metadata():
    """A custom dropdown the schema knows without ids: GET settings/contacts/fields once."""
    s = schema()
    s.object("Contact").field("cf_gender").vendor.pop("choices")
    fields = {"fields": [{"id": 1, "name": "cf_gender", "label": "Gender", "type": "dropdown",
                          "base_model": "Contact", "choices": [{"id": 901, "value": "Male"},
                                                               {"id": 902, "value": "Female"}]}]}
    script = (Script().on("GET", "/crm/sales/api/settings/contacts/fields",
                          httpx.Response(200, json=fields))
              .on("POST", "/crm/sales/api/contacts", rec_response("contact", 1, 201)))
    c = client_for(script, schema=s)
    for v in ("Female", "Male"):
        [r] = c.create("Contact", [WriteItem(v, None, {"last_name": "L", "cf_gender": v})])
        assert r.ok
    assert [b["contact"]["custom_field"]["cf_gender"] for b in script.bodies()] == [902, 901]
    assert sum(1 for r in script.requests if "settings" in r.url.path) == 1
    # and read back as labels
    got = c._from_vendor("Contact", {"id": 1, "custom_field": {"cf_gender": 902}})
    assert got["cf_gender"] == "Female" and got["id"] == "1"


# ---------------------------------------------------------------------- whole-call errors
def test_401_is_fatal_and_names_the_env_var():
    script = Script().on("GET", "/crm/sales/api/selector/owners", httpx.Response(
        401, json={"errors": {"code": 401, "message": ["Invalid API key"]}}))
    with pytest.raises(FreshsalesAuthError) as info:
        client_for(script).list_users()
    assert "FRESHSALES_API_KEY" in str(info.value) and SECRET not in str(info.value)
    assert isinstance(info.value, FatalError)


@pytest.mark.parametrize("headers,retry_after", [({"Retry-After": "37"}, 37.0), ({}, None)],
                         ids=["retry-after", "no-headers"])
def test_429_is_transient_with_or_without_retry_after(headers, retry_after):
    script = Script().on("POST", "/crm/sales/api/contacts", httpx.Response(
        429, headers=headers, json={"errors": {"code": 429, "message": ["limit"]}}))
    c = client_for(script)
    with pytest.raises(TransientError) as info:
        c.create("Contact", [WriteItem("k", None, {"last_name": "L"})])
    assert info.value.retry_after == retry_after and not info.value.maybe_committed
    assert c.stats.throttled == 1


def test_long_retry_after_beyond_max_wait_is_fatal():
    script = Script().on("GET", "/", httpx.Response(429, headers={"Retry-After": "3500"}))
    with pytest.raises(FatalError, match="hourly"):
        client_for(script, max_wait=600).list_users()


def test_5xx_and_dropped_connections_are_transient_maybe_committed():
    def drop(request):
        raise httpx.RemoteProtocolError("Server disconnected", request=request)

    c = client_for(Script().on("POST", "/", drop))
    with pytest.raises(TransientError) as info:
        c.create("Contact", [WriteItem("k", None, {"last_name": "L"})])
    assert info.value.maybe_committed
    c = client_for(Script().on("POST", "/", httpx.Response(502, text="bad gateway")))
    with pytest.raises(TransientError):
        c.create("Contact", [WriteItem("k", None, {"last_name": "L"})])


def test_oversized_file_is_refused_before_sending(tmp_path):
    big = tmp_path / "big.bin"
    with big.open("wb") as fh:
        fh.truncate(150 * 1024 * 1024 + 1)  # sparse: no real disk use
    script = Script()
    r = client_for(script).upload_attachment("Contact", "1", "big.bin", big, "Document:1")
    assert (r.ok, r.code) == (False, "FILE_TOO_LARGE") and script.requests == []


# ---------------------------------------------------------------------- secrets and URIs
def test_api_key_never_in_repr_or_logs(caplog, monkeypatch):
    monkeypatch.setenv("FRESHSALES_API_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    script = Script().on("GET", "/crm/sales/api/selector/owners", httpx.Response(
        200, json={"users": [{"id": 1, "display_name": "A", "email": "a@x.example",
                              "is_active": True}]}))
    c = client_for(script)
    assert c.list_users()[0].id == "1"
    creds = FreshsalesCredentials.discover()
    for text in (repr(c), repr(creds), str(creds), caplog.text, repr(c.capabilities)):
        assert SECRET not in text
    real = open_client("freshsales://widgetz.myfreshworks.com", {})
    try:
        assert SECRET not in repr(real) and real.base_url == BASE
    finally:
        real.close()


def test_missing_key_names_the_env_var(monkeypatch):
    monkeypatch.delenv("FRESHSALES_API_KEY", raising=False)
    with pytest.raises(FreshsalesAuthError, match="FRESHSALES_API_KEY"):
        open_client("freshsales://widgetz.myfreshworks.com", {})


@pytest.mark.parametrize("host,base", [
    ("widgetz.myfreshworks.com", "https://widgetz.myfreshworks.com/crm/sales"),
    ("widgetz", "https://widgetz.myfreshworks.com/crm/sales"),
    ("acme.freshsales.io", "https://acme.freshsales.io"),
])
def test_bundle_domains(host, base):
    assert api_base(host) == base


def test_target_uri_opens_the_real_client_over_tls(monkeypatch):
    from runtime.targets import open_target

    monkeypatch.setenv("FRESHSALES_API_KEY", SECRET)
    dest = open_target("freshsales://widgetz.myfreshworks.com?plan=pro")
    try:
        assert isinstance(dest, FreshsalesClient)
        assert dest.base_url.startswith("https://")
        assert dest.capabilities.rate_limit.per_window == 2000
        assert dest.capabilities.rate_limit.window_seconds == 3600
    finally:
        dest.close()


def test_one_call_per_record_keeps_progress_on_transient_errors():
    """Records written before a 429 keep their results; the rest come back without one (the
    executor retries them). A create whose outcome is unknown raises, so the executor looks
    the batch up by external id before re-sending (no duplicate)."""
    throttled = httpx.Response(429, json={"errors": {"code": 429, "message": ["limit"]}})
    script = Script().on("POST", "/crm/sales/api/contacts",
                         [rec_response("contact", 1, 201), throttled])
    c = client_for(script)
    items = [WriteItem(f"k{i}", f"C:{i}", {"last_name": "L"}) for i in range(3)]
    assert [r.key for r in c.create("Contact", items)] == ["k0"]

    def drop(request):
        raise httpx.RemoteProtocolError("Server disconnected", request=request)

    script = Script().on("POST", "/crm/sales/api/contacts", [rec_response("contact", 1, 201),
                                                             drop])
    with pytest.raises(TransientError) as info:
        client_for(script).create("Contact", items)
    assert info.value.maybe_committed
    # updates are idempotent: partial results even after a lost response
    script = Script().on("PUT", "/crm/sales/api/contacts/", [rec_response("contact", 1), drop])
    upd = [WriteItem(f"k{i}", None, {"last_name": "L"}, dest_id=str(i + 1)) for i in range(3)]
    assert [r.key for r in client_for(script).update("Contact", upd)] == ["k0"]
