"""Leads in the Pipedrive emulator, spoken to over HTTP as openapi-v1.yaml documents them: UUID
ids, ISO 8601 times with milliseconds, ``value`` as ``{amount, currency}``, a person or an
organization required, the deal's custom fields by hash key, the documented 404, bad input
answered in Pipedrive's error envelope, the list's filters, ``sort`` and its flat ``start``/
``limit`` pagination, and the per-request accounting every other endpoint has."""

from __future__ import annotations

import re

import httpx
import pytest

from runtime.destinations.base import User
from runtime.destinations.sandbox_store import CounterClock
from runtime.dialects import get_dialect
from runtime.dialects.pipedrive import VirtualClock
from runtime.dialects.pipedrive.client import token_cost
from runtime.dialects.pipedrive.sandbox import PipedriveSandbox, SyncASGITransport, field_code
from runtime.schema.changes import apply_changes

USERS = [User("21000001", "pm@example.com", "Practice Manager"),
         User("21000002", "dr@example.com", "Doctor")]
CHANGES = [{"action": "create_field", "object": "Deal", "field": "Region", "type": "picklist",
            "details": {"values": ["North", "South"]}}]
REGION = field_code("Deal", "Region")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
# getLead's documented keys (openapi-v1.yaml GetLeadResponse)
LEAD_KEYS = {"id", "title", "owner_id", "creator_id", "label_ids", "person_id",
             "organization_id", "source_name", "origin", "origin_id", "channel", "channel_id",
             "source_deal_id", "is_archived", "was_seen", "value", "expected_close_date",
             "next_activity_id", "add_time", "update_time", "visible_to", "cc_email"}


@pytest.fixture
def api(tmp_path):
    """An httpx client with the token, over a sandbox whose store ticks one second per write
    (2024-01-01T00:00:01Z, :02, ...), with one person (id 1) and one organization (id 1)."""
    schema = apply_changes(get_dialect("pipedrive").standard_schema(), CHANGES)
    sb = PipedriveSandbox(schema, tmp_path / "org.sqlite", users=USERS, clock=VirtualClock(),
                          store_clock=CounterClock(), daily_budget=100_000)
    transport = SyncASGITransport(sb)
    http = httpx.Client(transport=transport, base_url="http://pd.invalid",
                        headers={"x-api-token": sb.token})
    assert http.post("/api/v2/persons", json={"name": "Ann"}).json()["data"]["id"] == 1
    assert http.post("/api/v2/organizations", json={"name": "Acme"}).json()["data"]["id"] == 1
    http.sandbox = sb
    yield http
    http.close()
    transport.close()
    sb.close()


def region_option(http: httpx.Client, label: str) -> int:
    field = next(f for f in http.get("/api/v2/dealFields").json()["data"]
                 if f["field_code"] == REGION)
    return next(o["id"] for o in field["options"] if o["label"] == label)


def add(http: httpx.Client, title: str, **body) -> dict:
    r = http.post("/api/v1/leads", json={"title": title, "person_id": 1, **body})
    assert r.status_code == 201, r.text
    return r.json()["data"]


def test_a_created_lead_answers_in_the_documented_shape(api):
    north = region_option(api, "North")
    r = api.post("/api/v1/leads", json={
        "title": "Jane Doe Lead", "organization_id": 1, "value": {"amount": 999, "currency": "USD"},
        "expected_close_date": "2025-03-01", "visible_to": "1", REGION: north,
        "label_ids": ["f08b42a0-4e75-11ea-9643-03698ef1cfd6"]})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["success"] is True
    lead = body["data"]
    assert set(lead) == LEAD_KEYS | {REGION}
    assert UUID.match(lead["id"])
    assert ISO_MS.match(lead["add_time"]) and lead["add_time"] == lead["update_time"]
    assert lead["value"] == {"amount": 999, "currency": "USD"}
    assert lead["visible_to"] == "1" and lead["organization_id"] == 1 and lead["person_id"] is None
    assert lead["owner_id"] == 21000001  # "the user making the request" when not given
    assert lead["source_name"] == "API" and lead["origin"] == "API"
    assert lead["is_archived"] is False and lead[REGION] == north
    assert lead["label_ids"] == ["f08b42a0-4e75-11ea-9643-03698ef1cfd6"]
    again = api.get(f"/api/v1/leads/{lead['id']}").json()["data"]
    assert again == lead
    # a custom field without a value is left out, as the spec says
    assert REGION not in add(api, "Plain")


@pytest.mark.parametrize(("body", "error"), [
    ({"person_id": 1}, '"title" is required'),
    ({"title": "No link"}, 'One of the "person_id" or "organization_id" must be set.'),
    ({"title": "x", "person_id": None, "organization_id": None},
     'One of the "person_id" or "organization_id" must be set.'),
    ({"title": "x", "person_id": "1"}, '"person_id" must be a number'),
    ({"title": "x", "person_id": True}, '"person_id" must be a number'),
    ({"title": "x" * 256, "person_id": 1},
     '"title" length must be less than or equal to 255 characters long'),
    ({"title": "x", "person_id": 1, "value": 500}, '"value" must be of type object'),
    ({"title": "x", "person_id": 1, "value": {"amount": 5}}, '"value.currency" is required'),
    ({"title": "x", "person_id": 1, "value": {"amount": "5", "currency": "EUR"}},
     '"value.amount" must be a number'),
    ({"title": "x", "person_id": 1, "visible_to": 3}, '"visible_to" must be one of'),
    ({"title": "x", "person_id": 1, "expected_close_date": "01/03/2025"},
     '"expected_close_date" must be a date'),
    ({"title": "x", "person_id": 1, "label_ids": ["not-a-uuid"]}, '"label_ids" must be'),
    ({"title": "x", "person_id": 1, "was_seen": "yes"}, '"was_seen" must be a boolean'),
    ({"title": "x", "person_id": 1, "is_archived": True},  # update only
     "Invalid field(s) in the payload: is_archived"),
    ({"title": "x", "person_id": 1, "name": "x"}, "Invalid field(s) in the payload: name"),
    ({"title": "x", "person_id": 1, "f" * 40: 1}, "Invalid field(s) in the payload: " + "f" * 40),
    ({"title": "x", "person_id": 1, REGION: 1}, f"Option id 1 is not valid for field {REGION}"),
    ({"title": "x", "person_id": 77}, "Invalid person_id: the linked item was not found"),
], ids=["no-title", "no-link", "null-links", "string-id", "bool-id", "long-title",
        "scalar-value", "value-no-currency", "string-amount", "integer-visible-to", "bad-date",
        "bad-label", "string-boolean", "archive-on-create", "unknown-key", "unknown-hash",
        "bad-option", "missing-person"])
def test_bad_input_is_a_400_in_pipedrives_envelope(api, body, error):
    r = api.post("/api/v1/leads", json=body)
    assert r.status_code == 400, r.text
    got = r.json()
    assert got["success"] is False and got["error"].startswith(error)
    assert got["data"] is None and got["additional_data"] is None and got["error_info"]
    assert api.get("/api/v1/leads").json()["data"] == []  # nothing was written


@pytest.mark.parametrize(("content", "ctype", "status"), [
    (b"{not json", "application/json", 400),
    (b"[1, 2]", "application/json", 400),
    (b"title=x&person_id=1", "application/x-www-form-urlencoded", 415),
], ids=["not-json", "not-an-object", "form-encoded"])
def test_a_body_that_is_no_json_object_is_refused(api, content, ctype, status):
    r = api.post("/api/v1/leads", content=content, headers={"content-type": ctype})
    assert r.status_code == status
    assert r.json()["success"] is False


def test_an_unknown_lead_is_the_documented_404(api):
    missing = "adf21080-0e10-11eb-879b-05d71fb426ec"
    for r in (api.get(f"/api/v1/leads/{missing}"),
              api.patch(f"/api/v1/leads/{missing}", json={"title": "x"}),
              api.delete(f"/api/v1/leads/{missing}"), api.get("/api/v1/leads/12")):
        assert r.status_code == 404
        assert r.json() == {"success": False, "error": "requested lead not found",
                            "error_info": "Object was not found.", "data": None,
                            "additional_data": None}


def test_update_keeps_a_link_archives_and_deletes(api):
    lead = add(api, "Lead", organization_id=1, value={"amount": 10, "currency": "EUR"})
    url = f"/api/v1/leads/{lead['id']}"
    r = api.patch(url, json={"person_id": None, "value": None, "title": "Renamed"})
    assert r.status_code == 200, r.text
    got = r.json()["data"]
    assert (got["person_id"], got["organization_id"], got["value"], got["title"]) == (
        None, 1, None, "Renamed")
    assert got["update_time"] > got["add_time"]
    r = api.patch(url, json={"organization_id": None})  # would leave it linked to nothing
    assert r.status_code == 400 and "must be set" in r.json()["error"]
    assert api.patch(url, json={"is_archived": True}).json()["data"]["is_archived"] is True
    assert api.get("/api/v1/leads").json()["data"] == []  # "Returns multiple not archived leads"
    assert api.get(url).json()["data"]["is_archived"] is True  # still there by id
    r = api.delete(url)
    assert r.json() == {"success": True, "data": {"id": lead["id"]}}
    assert api.get(url).status_code == 404


def test_the_list_pages_by_start_and_limit_with_its_details_in_additional_data(api):
    ids = [add(api, f"Lead {i}")["id"] for i in range(7)]
    seen, start, pages = [], 0, []
    while True:
        body = api.get("/api/v1/leads", params={"start": start, "limit": 3}).json()
        pages.append(body["additional_data"])
        seen += [x["id"] for x in body["data"]]
        if not body["additional_data"]["more_items_in_collection"]:
            break
        start += len(body["data"])
    assert seen == ids  # oldest first by default
    assert pages == [{"start": 0, "limit": 3, "more_items_in_collection": True},
                     {"start": 3, "limit": 3, "more_items_in_collection": True},
                     {"start": 6, "limit": 3, "more_items_in_collection": False}]
    default = api.get("/api/v1/leads").json()["additional_data"]
    assert default == {"start": 0, "limit": 100, "more_items_in_collection": False}
    for bad in ({"start": "x"}, {"limit": "0"}, {"start": "-1"}):
        assert api.get("/api/v1/leads", params=bad).status_code == 400


def test_the_list_filters_and_sorts_as_documented(api):
    a = add(api, "A", person_id=1)
    b = add(api, "B", person_id=None, organization_id=1)
    c = add(api, "C", person_id=1, organization_id=1)
    api.patch(f"/api/v1/leads/{a['id']}", json={"title": "A2"})  # a is now the latest update

    def listed(**q) -> list[str]:
        r = api.get("/api/v1/leads", params=q)
        assert r.status_code == 200, r.text
        return [x["title"] for x in r.json()["data"]]

    assert listed() == ["A2", "B", "C"]
    assert listed(person_id=1) == ["A2", "C"]
    assert listed(organization_id=1) == ["B", "C"]
    assert listed(owner_id=21000001) == ["A2", "B", "C"] and listed(owner_id=21000002) == []
    assert listed(updated_since=c["add_time"]) == ["A2", "C"]  # update_time >= the time given
    assert listed(sort="add_time DESC") == ["C", "B", "A2"]
    assert listed(sort="update_time DESC") == ["A2", "C", "B"]
    assert listed(sort="title DESC") == ["C", "B", "A2"]
    assert listed(sort="owner_id ASC, add_time DESC") == ["C", "B", "A2"]
    assert listed(sort="id") == sorted(listed(), key=lambda t: {"A2": a, "B": b, "C": c}[t]["id"])
    for bad in ({"sort": "name ASC"}, {"sort": "add_time SIDEWAYS"}, {"person_id": "Ann"},
                {"updated_since": "yesterday"}, {"filter_id": "3"}):
        r = api.get("/api/v1/leads", params=bad)
        assert r.status_code == 400 and r.json()["success"] is False, bad


def test_leads_are_authenticated_and_booked_like_every_endpoint(api):
    sb = api.sandbox
    r = api.get("/api/v1/leads", headers={"x-api-token": "wrong"})
    assert r.status_code == 401 and r.json()["error"] == "unauthorized access"
    before = sb.ledger.spent
    lead = add(api, "Costed")
    api.get(f"/api/v1/leads/{lead['id']}")
    r = api.get("/api/v1/leads")
    assert sb.ledger.spent - before == (token_cost("v1", "POST", "/leads")
                                        + token_cost("v1", "GET", f"/leads/{lead['id']}")
                                        + token_cost("v1", "GET", "/leads")) == 10 + 2 + 20
    assert int(r.headers["x-daily-ratelimit-token-remaining"]) == sb.ledger.remaining
    assert "x-ratelimit-remaining" in r.headers


def test_the_deals_custom_fields_created_later_reach_leads(api):
    """Leads "inherit the custom fields' structure from deals": a deal field added through
    ``POST /dealFields`` is a lead field at once, by the same hash key."""
    r = api.post("/api/v2/dealFields", json={"field_name": "Referrer", "field_type": "varchar"})
    assert r.status_code == 200, r.text
    key = r.json()["data"]["field_code"]
    lead = add(api, "With referrer", **{key: "Dr Who"})
    assert lead[key] == "Dr Who"
    assert api.get(f"/api/v1/leads/{lead['id']}").json()["data"][key] == "Dr Who"


def test_notes_and_files_attach_to_leads(api):
    lead = add(api, "Parent")
    r = api.post("/api/v1/notes", json={"content": "call back", "lead_id": lead["id"]})
    assert r.status_code == 200 and r.json()["data"]["lead_id"] == lead["id"]
    r = api.post("/api/v1/files", files={"file": ("a.txt", b"hello")},
                 data={"lead_id": lead["id"]})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["lead_id"] == lead["id"]
    r = api.post("/api/v1/notes", json={"content": "x",
                                        "lead_id": "adf21080-0e10-11eb-879b-05d71fb426ec"})
    assert r.status_code == 400
