"""The Freshsales sandbox over HTTP, and the FreshsalesClient against it (in process): auth,
envelopes, vendor error strings, ignored keys, choice ids, the async bulk job, reads, users,
documents, the hourly limit with and without headers."""

from __future__ import annotations

import json
import math

import httpx
import pytest

from runtime.destinations.base import FatalError, TransientError, WriteItem
from runtime.dialects import get_dialect
from runtime.dialects.freshsales import open_sandbox
from runtime.dialects.freshsales.sandbox import FreshsalesSandbox, SyncASGITransport
from runtime.schema.model import FieldSchema, FieldType, ObjectSchema, SystemSchema
from runtime.targets import open_target

USERS = "mappings/sandbox/freshsales_users.json"


def org_schema() -> SystemSchema:
    base = get_dialect("freshsales").standard_schema().model_copy(deep=True)
    base.object("Contact").fields.extend([
        FieldSchema(api_name="cf_gender", type=FieldType.picklist, custom=True,
                    label="Gender", picklist_values=["Male", "Female", "Other"]),
        FieldSchema(api_name="cf_nhs_number", custom=True, label="NHS Number", max_length=10)])
    base.objects.append(ObjectSchema(api_name="treatment_plans", custom=True, fields=[
        FieldSchema(api_name="id", type=FieldType.id, read_only=True),
        FieldSchema(api_name="name", required=True),
        FieldSchema(api_name="cf_contact", type=FieldType.lookup, custom=True,
                    lookup_targets=["Contact"])]))
    return base


@pytest.fixture
def client(tmp_path):
    from runtime.targets import sandbox_users

    c = open_sandbox(org_schema(), tmp_path / "org.sqlite", sandbox_users(USERS), {})
    yield c
    c.close()


@pytest.fixture
def raw(tmp_path):
    """(httpx client speaking to a bare sandbox, the sandbox)."""
    sb = FreshsalesSandbox(org_schema(), tmp_path / "raw.sqlite", api_key="k-1")
    transport = SyncASGITransport(sb)
    http = httpx.Client(transport=transport, base_url="http://sb/crm/sales",
                        headers={"Authorization": "Token token=k-1"})
    yield http, sb
    http.close()
    transport.close()
    sb.close()


# ---------------------------------------------------------------------- raw HTTP
def test_auth_is_required(raw):
    http, _ = raw
    for headers in ({"Authorization": ""}, {"Authorization": "Token token=wrong"},
                    {"Authorization": "Bearer k-1"}):
        r = http.get("/api/selector/owners", headers=headers)
        assert r.status_code == 401
        assert r.json() == {"errors": {"code": 401, "message": ["Invalid API key"]}}


def test_envelopes_integer_ids_and_ignored_keys(raw):
    http, _ = raw
    r = http.post("/api/contacts", json={"contact": {
        "last_name": "Lee", "no_such_field": 1, "cf_nhs_number": "top-level is ignored",
        "custom_fields": {"cf_nhs_number": "1111111111"},  # plural: silently ignored
        "custom_field": {"cf_fmap_external_id": "Contact:1"}}})
    assert r.status_code == 201, r.text
    rec = r.json()["contact"]
    assert isinstance(rec["id"], int)
    assert rec["custom_field"]["cf_nhs_number"] is None
    assert rec["custom_field"]["cf_fmap_external_id"] == "Contact:1"
    assert "no_such_field" not in rec
    got = http.get(f"/api/contacts/{rec['id']}").json()
    assert set(got) == {"contact"} and got["contact"]["last_name"] == "Lee"
    listed = http.post("/api/filtered_search/contact", json={"filter_rule": [], "per_page": 10})
    assert listed.json()["meta"] == {"total_pages": 1, "total": 1}
    assert [c["id"] for c in listed.json()["contacts"]] == [rec["id"]]


@pytest.mark.parametrize("body,status,message", [
    ({"contact": {"first_name": "A"}}, 400, "Last name can't be blank"),
    ({"contact": {"last_name": "B", "custom_field": {"cf_gender": "Male"}}}, 400,
     "Gender is invalid"),  # a label: dropdowns take choice ids
    ({"contact": {"last_name": "B", "custom_field": {"cf_gender": 999}}}, 400,
     "Gender is invalid"),
    ({"contact": {"last_name": "B", "custom_field": {"cf_nhs_number": "12345678901"}}}, 400,
     "NHS Number is too long (maximum is 10 characters)"),
    ({"contact": {"last_name": "B", "sales_account_id": 42}}, 400, "Sales account id is invalid"),
], ids=["blank", "label", "bad-id", "too-long", "bad-lookup"])
def test_vendor_error_strings(raw, body, status, message):
    http, _ = raw
    r = http.post("/api/contacts", json=body)
    assert r.status_code == status
    assert r.json() == {"errors": {"code": status, "message": [message]}}


def test_duplicate_and_upsert_by_unique_identifier(raw):
    http, sb = raw
    body = {"contact": {"last_name": "A", "custom_field": {"cf_fmap_external_id": "X"}}}
    assert http.post("/api/contacts", json=body).status_code == 201
    dup = http.post("/api/contacts", json=body)
    assert dup.json() == {"errors": {"code": 400, "message": [
        "fmap External ID has already been taken"]}}
    up = http.post("/api/contacts/upsert", json={"unique_identifier": {
        "cf_fmap_external_id": "X"}, "contact": {"last_name": "B"}})
    assert up.status_code == 200 and up.json()["contact"]["last_name"] == "B"
    new = http.post("/api/contacts/upsert", json={"unique_identifier": {
        "cf_fmap_external_id": "Y"}, "contact": {"last_name": "C"}})
    assert new.status_code == 201
    assert sb.store.count("Contact") == 2


def test_bulk_upsert_job_progresses_to_done(raw):
    http, sb = raw
    gender = sb.schema().object("Contact").field("cf_gender").vendor["choices"]
    items = [{"cf_fmap_external_id": f"C:{i}", "data": {"last_name": f"L{i}", "custom_field": {
        "cf_gender": gender["Female"]}}} for i in range(3)]
    items.append({"cf_fmap_external_id": "C:bad", "data": {"first_name": "no last name"}})
    r = http.post("/api/contacts/bulk_upsert", json={"contacts": items})
    assert r.status_code == 202
    job_id = r.json()["job_id"]
    first = http.get(f"/api/job_statuses/{job_id}").json()["job_status"]
    assert first["status"] == "in_progress" and first["progress"] == 0
    done = http.get(f"/api/job_statuses/{job_id}").json()["job_status"]
    assert done["status"] == "completed" and done["progress"] == 100
    assert set(done) >= {"created_at", "data", "job_type_name", "progress", "status",
                         "status_updated_at"}
    assert done["data"]["failures"] == [{"index": 3, "unique_identifier": {
        "cf_fmap_external_id": "C:bad"}, "errors": {"code": 400, "message": [
            "Last name can't be blank"]}}]
    too_many = http.post("/api/contacts/bulk_upsert", json={"contacts": items * 26})
    assert too_many.status_code == 400


def test_hourly_limit_429_with_headers_then_reset(tmp_path):
    now = [0.0]
    sb = FreshsalesSandbox(org_schema(), tmp_path / "l.sqlite", api_key="k", limit=3,
                           clock=lambda: now[0])
    transport = SyncASGITransport(sb)
    http = httpx.Client(transport=transport, base_url="http://sb",
                        headers={"Authorization": "Token token=k"})
    try:
        codes = [http.get("/api/selector/owners") for _ in range(4)]
        assert [r.status_code for r in codes] == [200, 200, 200, 429]
        assert codes[0].headers["X-RateLimit-Total"] == "3"
        assert codes[2].headers["X-RateLimit-Remaining"] == "0"
        assert codes[3].headers["Retry-After"] == "3600"
        now[0] = 3600.0
        assert http.get("/api/selector/owners").status_code == 200
    finally:
        http.close()
        transport.close()
        sb.close()


# ---------------------------------------------------------------------- client over sandbox
def test_client_crud_find_count_and_choice_ids(client):
    sb = client.sandbox
    [acc] = client.upsert("SalesAccount", [WriteItem("A:1", "A:1", {"name": "Leeds"})])
    assert acc.ok and acc.created and acc.dest_id.isdigit()
    results = client.upsert("Contact", [
        WriteItem(f"C:{i}", f"C:{i}", {"last_name": f"L{i}", "cf_gender": "Female",
                                        "sales_account_id": acc.dest_id,
                                        "owner_id": "16000000002"}) for i in range(5)])
    assert all(r.ok and r.created for r in results), results
    # stored as the label, written as the id
    rid = results[0].dest_id
    assert sb.store.get("Contact", [rid])[rid]["cf_gender"] == "Female"
    got = client.get("Contact", [rid, "999"])
    assert list(got) == [rid]
    assert got[rid]["cf_gender"] == "Female" and got[rid]["sales_account_id"] == acc.dest_id
    assert got[rid]["$external_id"] == "C:0" and got[rid]["owner_id"] == "16000000002"
    # bulk again: every record updated, none created, no duplicates
    again = client.upsert("Contact", [
        WriteItem(f"C:{i}", f"C:{i}", {"last_name": f"M{i}"}) for i in range(6)])
    assert [r.created for r in again] == [False] * 5 + [True]
    assert client.count("Contact") == 6
    assert client.find_by_external_id("Contact", ["C:1", "C:5", "nope"]) == {
        "C:1": results[1].dest_id, "C:5": again[5].dest_id}
    [upd] = client.update("Contact", [WriteItem("C:1", None, {"job_title": "Dentist"},
                                                results[1].dest_id)])
    assert upd.ok and client.get("Contact", [upd.dest_id])[upd.dest_id]["job_title"] == "Dentist"
    bad = client.upsert("Contact", [WriteItem("C:9", "C:9", {"last_name": "x",
                                                             "cf_gender": "Martian"})])
    assert (bad[0].ok, bad[0].code) == (False, "INVALID_CHOICE")
    blank = client.create("Contact", [WriteItem("C:10", "C:10", {"first_name": "x"})])
    assert (blank[0].code, blank[0].field, blank[0].error) == (
        "REQUIRED_FIELD_MISSING", "last_name", "Last name can't be blank")
    deleted = client.delete("Contact", [results[0].dest_id, "12345"])
    assert [(r.ok, r.code) for r in deleted] == [(True, None), (False, "NOT_FOUND")]
    assert client.count("Contact") == 5
    assert len(list(client.list_records("Contact"))) == 5


def test_client_emulated_upsert_for_notes_tasks_and_custom_modules(client):
    [c] = client.upsert("Contact", [WriteItem("C:1", "C:1", {"last_name": "L"})])
    note = {"description": "hello", "targetable_type": "Contact", "targetable_id": c.dest_id}
    first = client.upsert("Note", [WriteItem("N:1", "N:1", note)])
    second = client.upsert("Note", [WriteItem("N:1", "N:1", {**note, "description": "v2"})])
    assert first[0].created is True and second[0].created is False
    assert first[0].dest_id == second[0].dest_id and client.count("Note") == 1
    tp = client.upsert("treatment_plans", [WriteItem("T:1", "T:1", {"name": "Plan",
                                                                    "cf_contact": c.dest_id})])
    assert tp[0].ok, tp
    rec = client.get("treatment_plans", [tp[0].dest_id])[tp[0].dest_id]
    assert rec["cf_contact"] == c.dest_id
    reqs = client.sandbox.requests
    assert reqs > 0


def test_client_users_and_documents(client, tmp_path):
    users = client.list_users()
    assert len(users) == 25 and users[0].id == "16000000001"
    assert sum(not u.active for u in users) == 2
    [c] = client.upsert("Contact", [WriteItem("C:1", "C:1", {"last_name": "L"})])
    f = tmp_path / "xray.jpg"
    f.write_bytes(b"x" * 1234)
    up = client.upload_attachment("Contact", c.dest_id, "xray.jpg", f, "Document:1")
    assert up.ok and up.created and up.dest_id.isdigit()
    docs = client.list_attachments("Contact", c.dest_id)
    assert [(d["name"], d["content_file_size"]) for d in docs] == [("xray.jpg", 1234)]
    # a retry after a lost response finds the document by name and size, uploads nothing
    client._unsettled_uploads.add("Document:1")
    again = client.upload_attachment("Contact", c.dest_id, "xray.jpg", f, "Document:1")
    assert (again.ok, again.created, again.dest_id) == (True, False, up.dest_id)
    assert len(client.list_attachments("Contact", c.dest_id)) == 1
    bad = client.upload_attachment("Note", c.dest_id, "xray.jpg", f, "Document:2")
    assert bad.code == "OPERATION_NOT_ALLOWED"
    gone = client.delete_attachments([up.dest_id, "5"])
    assert [r.ok for r in gone] == [True, False]
    assert client.list_attachments("Contact", c.dest_id) == []


def test_client_lost_upload_response_is_not_uploaded_twice(tmp_path):
    from runtime.destinations.faults import FaultPlan
    from runtime.targets import sandbox_users

    client = open_sandbox(org_schema(), tmp_path / "o.sqlite", sandbox_users(USERS), {})
    try:
        [c] = client.upsert("Contact", [WriteItem("C:1", "C:1", {"last_name": "L"})])
        client.sandbox.store.faults = FaultPlan(1, lost_response_rate=1.0)
        f = tmp_path / "a.txt"
        f.write_text("consent")
        with pytest.raises(TransientError) as info:
            client.upload_attachment("Contact", c.dest_id, "a.txt", f, "Document:9")
        assert info.value.maybe_committed
        client.sandbox.store.faults = None
        r = client.upload_attachment("Contact", c.dest_id, "a.txt", f, "Document:9")
        assert r.ok and r.created is False
        assert len(client.sandbox.store.attachments("Contact", c.dest_id)) == 1
    finally:
        client.close()


@pytest.mark.parametrize("rate_headers", ["1", "0"], ids=["headers", "no-headers"])
def test_client_over_the_hourly_limit(tmp_path, rate_headers):
    from runtime.targets import sandbox_users

    now = [10.0]
    client = open_sandbox(org_schema(), tmp_path / "o.sqlite", sandbox_users(USERS),
                          {"limit": "2", "clock": lambda: now[0], "rate_headers": rate_headers})
    try:
        assert client.capabilities.rate_limit.per_window == 2
        client.list_users()
        client.list_users()
        with pytest.raises(TransientError) as info:
            client.list_users()
        assert info.value.retry_after == (3590.0 if rate_headers == "1" else None)
        now[0] = 3600.0
        assert client.list_users()
    finally:
        client.close()


def test_fatal_store_quota_becomes_429(tmp_path):
    from runtime.destinations.faults import FaultPlan
    from runtime.targets import sandbox_users

    client = open_sandbox(org_schema(), tmp_path / "o.sqlite", sandbox_users(USERS),
                          {"faults": FaultPlan(1, fatal_after_calls=0)})
    try:
        with pytest.raises((TransientError, FatalError)):
            client.create("Contact", [WriteItem("C:1", "C:1", {"last_name": "L"})])
    finally:
        client.close()


def test_sandbox_target_uri(tmp_path):
    dest = open_target(f"sandbox:freshsales?users={USERS}&db={tmp_path / 'x.sqlite'}&plan=pro",
                       schema_changes=[])
    try:
        assert type(dest).__name__ == "FreshsalesClient"
        assert dest.capabilities.rate_limit.per_window == 2000
        assert dest.sandbox.ledger.limit == 2000
        assert not math.isinf(dest.sandbox.ledger.limit)
        assert "token" not in repr(dest).lower()
        assert dest.sandbox.api_key not in repr(dest)
    finally:
        dest.close()
    unmetered = open_target(f"sandbox:freshsales?db={tmp_path / 'y.sqlite'}")
    try:
        assert unmetered.capabilities.rate_limit.per_window == 0
        assert json.dumps(unmetered.capabilities.model_dump())
    finally:
        unmetered.close()
