"""The Pipedrive sandbox: envelopes, integer ids, time formats, no uniqueness, search semantics,
option ids, the token ledger with its headers, the burst and search windows, 429 then the 403
lockout page, auth; and the client against it (reads back, lost responses, files, users)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from runtime.destinations.base import FatalError, TransientError, User, WriteItem
from runtime.destinations.faults import FaultPlan
from runtime.dialects import get_dialect
from runtime.dialects.pipedrive import VirtualClock, open_sandbox
from runtime.dialects.pipedrive.sandbox import LOCKOUT_HTML, PipedriveSandbox, field_code
from runtime.dialects.zoho.sandbox import SyncASGITransport
from runtime.schema.changes import apply_changes

USERS = [User("21000001", "pm@example.com", "Practice Manager"),
         User("21000002", "dr@example.com", "Doctor")]
CHANGES = [
    {"action": "create_field", "object": "Person", "field": "Source_System_ID",
     "type": "text(50)", "details": {"unique": True, "external_id": True}},
    {"action": "create_field", "object": "Person", "field": "Gender", "type": "picklist",
     "details": {"values": ["Male", "Female"]}},
    {"action": "create_field", "object": "Person", "field": "Tags", "type": "multipicklist",
     "details": {"values": ["VIP", "New"]}},
    {"action": "create_field", "object": "Activity", "field": "Source_System_ID",
     "type": "text(50)", "details": {}},
]
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
V1TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")


def schema():
    return apply_changes(get_dialect("pipedrive").standard_schema(), CHANGES)


@pytest.fixture
def raw(tmp_path):
    """(sandbox, httpx client with the token, virtual clock)."""
    clock = VirtualClock()
    sb = PipedriveSandbox(schema(), tmp_path / "org.sqlite", users=USERS, clock=clock,
                          daily_budget=10_000)
    transport = SyncASGITransport(sb)
    http = httpx.Client(transport=transport, base_url="http://pd.invalid",
                        headers={"x-api-token": sb.token})
    yield sb, http, clock
    http.close()
    transport.close()
    sb.close()


@pytest.fixture
def client(tmp_path):
    c = open_sandbox(schema(), tmp_path / "org.sqlite", USERS, {"clock": "virtual"})
    yield c
    c.close()


def test_auth_required(raw):
    sb, http, _ = raw
    r = http.get("/api/v2/persons", headers={"x-api-token": "wrong"})
    assert r.status_code == 401
    assert r.json() == {"success": False, "error": "unauthorized access", "errorCode": 401,
                        "error_info": r.json()["error_info"]}
    bearer = http.get("/api/v2/persons", headers={"x-api-token": "",
                                                  "authorization": f"Bearer {sb.token}"})
    assert bearer.status_code == 200


def test_envelope_ids_times_and_no_uniqueness(raw):
    sb, http, _ = raw
    ext = field_code("Person", "Source_System_ID")
    bodies = [{"name": "Ann", "emails": [{"value": "ann@example.org", "primary": True}],
               "owner_id": 21000002, "custom_fields": {ext: "P1"}}] * 2
    ids = []
    for b in bodies:  # the same email and even the same external id twice: both accepted
        r = http.post("/api/v2/persons", json=b)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["success"] is True and set(body) == {"success", "data", "additional_data"}
        assert isinstance(body["data"]["id"], int)
        assert RFC3339.match(body["data"]["add_time"])
        assert body["data"]["owner_id"] == 21000002
        assert body["data"]["custom_fields"][ext] == "P1"
        ids.append(body["data"]["id"])
    assert ids[1] == ids[0] + 1
    listed = http.get("/api/v2/persons", params={"ids": f"{ids[0]},{ids[1]}"}).json()
    assert [p["id"] for p in listed["data"]] == ids
    assert listed["additional_data"] == {"next_cursor": None}


def test_validation_errors(raw):
    _, http, _ = raw
    gender, tags = field_code("Person", "Gender"), field_code("Person", "Tags")
    r = http.post("/api/v2/persons", json={"emails": []})
    assert r.status_code == 400 and r.json()["error"] == "Name must be given."
    assert r.json()["data"] is None and r.json()["success"] is False
    r = http.post("/api/v2/persons", json={"name": "x", "asdasdasd": 1})
    assert r.json()["error"] == "Invalid field(s) in the payload: asdasdasd"
    r = http.post("/api/v2/persons", json={"name": "x", "custom_fields": {tags: []}})
    assert r.status_code == 400 and r.json()["field_code"] == tags
    r = http.post("/api/v2/persons", json={"name": "x", "custom_fields": {gender: "Male"}})
    assert r.status_code == 400  # labels are not option ids
    r = http.post("/api/v2/persons", json={"name": "x", "custom_fields": {"f" * 40: 1}})
    assert r.status_code == 400 and r.json()["field_code"] == "f" * 40
    r = http.post("/api/v2/persons", json={"name": "x", "org_id": "12"})
    assert r.status_code == 400  # v2 does not coerce strings to integers
    fields = http.get("/api/v2/personFields").json()["data"]
    g = next(f for f in fields if f["field_code"] == gender)
    male = next(o["id"] for o in g["options"] if o["label"] == "Male")
    r = http.post("/api/v2/persons", json={"name": "x", "custom_fields": {gender: male, tags: None}})
    assert r.status_code == 200 and r.json()["data"]["custom_fields"][gender] == male
    assert http.patch("/api/v2/persons/999", json={"name": "y"}).status_code == 404


def test_search_case_insensitive_but_item_search_case_sensitive(raw):
    _, http, _ = raw
    ext = field_code("Person", "Source_System_ID")
    http.post("/api/v2/persons", json={"name": "Ann", "custom_fields": {ext: "Abc-1"}})
    hits = http.get("/api/v2/persons/search", params={
        "term": "abc-1", "fields": "custom_fields", "exact_match": "true"}).json()
    assert [h["item"]["id"] for h in hits["data"]["items"]] == [1]
    exact = http.get("/api/v2/itemSearch/field", params={
        "entity_type": "person", "field": ext, "term": "abc-1", "match": "exact"}).json()
    assert exact["data"] == []
    exact = http.get("/api/v2/itemSearch/field", params={
        "entity_type": "person", "field": ext, "term": "Abc-1", "match": "exact"}).json()
    assert exact["data"] == [{"id": 1, "name": "Ann"}]


def test_notes_v1_times_and_pagination(raw):
    _, http, _ = raw
    pid = http.post("/api/v2/persons", json={"name": "Ann"}).json()["data"]["id"]
    assert http.post("/api/v1/notes", json={"content": "orphan"}).status_code == 400
    for i in range(3):
        r = http.post("/api/v1/notes", json={"content": f"n{i}", "person_id": pid})
        assert r.status_code == 200
        assert V1TIME.match(r.json()["data"]["add_time"])
    page = http.get("/api/v1/notes", params={"person_id": pid, "limit": 2}).json()
    assert len(page["data"]) == 2
    assert page["additional_data"]["pagination"]["more_items_in_collection"] is True
    assert page["additional_data"]["pagination"]["next_start"] == 2


def test_headers_on_every_response_and_token_ledger(raw):
    sb, http, _ = raw
    r = http.post("/api/v2/organizations", json={"name": "Org"})
    for h in ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset",
              "x-daily-ratelimit-token-remaining"):
        assert h in r.headers
    assert r.headers["x-ratelimit-limit"] == "40"  # growth plan, API token
    assert int(r.headers["x-daily-ratelimit-token-remaining"]) == 10_000 - 5
    http.get("/api/v2/organizations/1")  # 1 token
    http.get("/api/v2/organizations/search", params={"term": "Org"})  # 20 tokens
    http.post("/api/v1/notes", json={"content": "x", "org_id": 1})  # 10 tokens
    assert sb.ledger.spent == 5 + 1 + 20 + 10
    bad = http.get("/api/v2/persons", headers={"x-api-token": "no"})
    assert bad.status_code == 401 and sb.ledger.spent == 36  # unauthenticated calls are free


def test_burst_window_then_403_lockout(raw):
    sb, http, clock = raw
    for _ in range(40):
        assert http.get("/api/v2/persons").status_code == 200
    r = http.get("/api/v2/persons")
    assert r.status_code == 429 and r.headers["x-ratelimit-remaining"] == "0"
    assert r.json()["success"] is False
    clock.sleep(2.0)  # the window rolls
    assert http.get("/api/v2/persons").status_code == 200
    for _ in range(39):
        http.get("/api/v2/persons")
    codes = [http.get("/api/v2/persons").status_code for _ in range(sb.lockout_after + 1)]
    assert codes[:-1] == [429] * sb.lockout_after and codes[-1] == 403
    page = http.get("/api/v2/persons")
    assert page.status_code == 403 and page.content == LOCKOUT_HTML
    assert page.headers["content-type"].startswith("text/html")
    clock.sleep(sb.lockout_seconds + 1)
    assert http.get("/api/v2/persons").status_code == 200


def test_search_bucket_is_ten_per_two_seconds(raw):
    _, http, clock = raw
    codes = [http.get("/api/v2/persons/search", params={"term": "ab"}).status_code
             for _ in range(11)]
    assert codes == [200] * 10 + [429]
    assert http.get("/api/v2/persons").status_code == 200  # the general window still has room
    clock.sleep(2.0)
    assert http.get("/api/v2/persons/search", params={"term": "ab"}).status_code == 200


def test_daily_budget_exhausted_is_429_with_long_reset(tmp_path):
    sb = PipedriveSandbox(schema(), tmp_path / "o.sqlite", users=USERS, daily_budget=12)
    t = SyncASGITransport(sb)
    with httpx.Client(transport=t, base_url="http://pd", headers={"x-api-token": sb.token}) as h:
        assert h.post("/api/v2/organizations", json={"name": "a"}).status_code == 200
        assert h.post("/api/v2/organizations", json={"name": "b"}).status_code == 200
        r = h.post("/api/v2/organizations", json={"name": "c"})
        assert r.status_code == 429 and int(r.headers["x-ratelimit-reset"]) > 3600
    t.close()
    sb.close()


# ---------------------------------------------------------------------- the client against it
def test_client_round_trip(client):
    [org] = client.create("Organization", [WriteItem("O1", None, {"name": "Clinic",
                                                                  "address": "1 High St"})])
    [p] = client.create("Person", [WriteItem("P1", "P1", {
        "name": "Ann", "emails": "ann@example.org", "org_id": org.dest_id,
        "owner_id": "21000002", "Gender": "Female", "Tags": ["VIP"]})])
    assert p.ok, p
    got = client.get("Person", [p.dest_id])[p.dest_id]
    assert got["emails"] == "ann@example.org" and got["org_id"] == org.dest_id
    assert got["Gender"] == "Female" and got["Tags"] == ["VIP"]
    assert got["$external_id"] == "P1" and got["owner_id"] == "21000002"
    assert client.get("Organization", [org.dest_id])[org.dest_id]["address"] == "1 High St"
    [u] = client.update("Person", [WriteItem("P1", None, {"Gender": "Male"}, p.dest_id)])
    assert u.ok and client.get("Person", [p.dest_id])[p.dest_id]["Gender"] == "Male"
    assert client.find_by_external_id("Person", ["P1", "P2"]) == {"P1": p.dest_id}
    assert {x.email for x in client.list_users()} == {"pm@example.com", "dr@example.com"}
    [bad] = client.create("Person", [WriteItem("P3", "P3", {"emails": "x@example.org"})])
    assert not bad.ok and bad.error == "Name must be given."
    [d] = client.delete("Person", [p.dest_id])
    assert d.ok and client.get("Person", [p.dest_id]) == {}


def test_files_upload_list_delete(client, tmp_path):
    [p] = client.create("Person", [WriteItem("P1", "P1", {"name": "Ann"})])
    f = tmp_path / "consent.txt"
    f.write_text("consent\n" * 10)
    r = client.upload_attachment("Person", p.dest_id, "consent.txt", f, "D1")
    assert r.ok and r.dest_id.isdigit()
    assert client._find_file("person_id", p.dest_id, "consent.txt", f.stat().st_size) == r.dest_id
    [d] = client.delete_attachments([r.dest_id])
    assert d.ok


def _lost_every_write(tmp_path: Path, obj_changes=None):
    return open_sandbox(schema(), tmp_path / "lost.sqlite", USERS, {
        "clock": "virtual", "faults": FaultPlan(1, lost_response_rate=1.0)})


def test_lost_response_then_find_by_external_id(tmp_path):
    c = _lost_every_write(tmp_path)
    try:
        with pytest.raises(TransientError) as exc:
            c.create("Person", [WriteItem("P1", "P1", {"name": "Ann"})])
        assert exc.value.maybe_committed
        found = c.find_by_external_id("Person", ["P1"])
        assert list(found) == ["P1"]
        [[org]] = [c.sandbox.store.list_records("Person")]
        assert org["id"] == found["P1"]
        # activities have no search: listed since the send
        with pytest.raises(TransientError):
            c.create("Activity", [WriteItem("A1", "A1", {"subject": "Visit",
                                                         "person_id": found["P1"]})])
        assert list(c.find_by_external_id("Activity", ["A1"])) == ["A1"]
        # notes have no custom fields: matched by the content the client sent
        with pytest.raises(TransientError):
            c.create("Note", [WriteItem("N1", "N1", {"content": "hello",
                                                     "person_id": found["P1"]})])
        assert list(c.find_by_external_id("Note", ["N1"])) == ["N1"]
        assert c.find_by_external_id("Note", ["N2"]) == {}
    finally:
        c.close()


def test_client_stops_before_lockout(tmp_path):
    c = open_sandbox(schema(), tmp_path / "o.sqlite", USERS,
                     {"clock": "virtual", "daily_budget": "6"})
    try:
        c.daily_remaining = None  # pretend the client did not know the budget
        c.create("Organization", [WriteItem("O1", None, {"name": "a"})])
        with pytest.raises(FatalError):
            c.create("Organization", [WriteItem("O2", None, {"name": "b"})])
        assert c.sandbox.ledger.locked_until == {}  # never got as far as the 403 page
    finally:
        c.close()
