"""Settling a create whose outcome is unknown on objects whose records carry no id of ours (leads;
an org without the external-id field): the record holding what was sent is looked for page after
page (v2 ``cursor``, v1 ``start``/``limit``) rather than among the newest 500 only, a scan that
hits its bound stops the run with the outcome still unknown, and errors name what was listed.
Also: ``metadata_bundle`` names the objects it has no field metadata for."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import httpx
import pytest

from runtime.destinations.base import FatalError, TransientError, WriteItem
from runtime.destinations.faults import FaultPlan
from runtime.dialects import get_dialect
from runtime.dialects._http import APIError
from runtime.dialects.pipedrive import open_sandbox
from runtime.dialects.pipedrive.auth import PipedriveCredentials
from runtime.dialects.pipedrive.client import PAGE_LIMIT, PipedriveAPIError, PipedriveClient

SEEDED = 1200  # more than two pages of 500


@pytest.fixture
def org(tmp_path):
    """A sandbox org whose organizations have no ``Source_System_ID`` field, seeded straight
    into its store with ``SEEDED`` organizations (``Org 0001``...), with every request path and
    query the client sends."""
    c = open_sandbox(get_dialect("pipedrive").standard_schema(), tmp_path / "org.sqlite", None,
                     {"clock": "virtual"})
    seeded = [c.sandbox.store.create("Organization", [
        WriteItem(f"s{i}", None, {"name": f"Org {i:04d}"})])[0] for i in range(1, SEEDED + 1)]
    assert all(r.ok for r in seeded)
    c.ids = [r.dest_id for r in seeded]
    c.seen = []
    c._http.event_hooks["request"].append(
        lambda r: c.seen.append((r.url.path, parse_qs(r.url.query.decode()))))
    yield c
    c.close()


def listings(c, path: str = "/api/v2/organizations") -> list[dict]:
    return [q for p, q in c.seen if p == path]


def test_a_record_past_the_first_500_is_found_from_the_journals_payload(org):
    """A resumed run: the journal's payload is all there is. The listing is read newest first
    (the emulator honours ``sort_by=id&sort_direction=desc``), so an old record sits on the
    third page; the scan pages on with the cursor until it is found, and no further."""
    found = org.find_by_external_id("Organization", ["orgs:100"], hints={
        "orgs:100": {"sent_at": None, "payload": {"name": "Org 0100"}}})
    assert found == {"orgs:100": org.ids[99]}
    pages = listings(org)
    assert len(pages) == 3
    assert [q.get("cursor") is None for q in pages] == [True, False, False]
    assert all(q["limit"] == [str(PAGE_LIMIT)] for q in pages)
    assert all(q["sort_by"] == ["id"] and q["sort_direction"] == ["desc"] for q in pages)


def test_a_lost_create_is_found_in_process_and_not_sent_twice(org):
    """This process's own body: the create's response is lost after the org committed it, so
    ``upsert`` looks before sending again and updates the one record instead of a second."""
    org.sandbox.store.faults = FaultPlan(seed=1, lost_response_rate=1.0)
    item = WriteItem("k1", "orgs:new", {"name": "Org Late"})
    with pytest.raises(TransientError):
        org.create("Organization", [item])
    org.sandbox.store.faults = None
    assert org.sandbox.store.count("Organization") == SEEDED + 1
    r = org.upsert("Organization", [item])[0]
    assert r.ok and r.created is False
    assert org.sandbox.store.count("Organization") == SEEDED + 1


def test_a_scan_that_reaches_its_bound_leaves_the_outcome_unknown_and_says_so(org):
    org.scan_limit = 600
    with pytest.raises(FatalError) as caught:
        org.find_by_external_id("Organization", ["orgs:2", "orgs:1100"], hints={
            "orgs:2": {"sent_at": None, "payload": {"name": "Org 0002"}},
            "orgs:1100": {"sent_at": None, "payload": {"name": "Org 1100"}}})
    msg = str(caught.value)
    assert "outcome of 1 create(s) is still unknown" in msg
    assert "GET /api/v2/organizations" in msg and "600" in msg and "not assumed absent" in msg
    assert "Org 0002" not in msg and "orgs:2" not in msg  # no record values in the message
    # newest first: two pages for the oldest (past the bound), one for the newer one
    assert len(listings(org)) == 2 + 1


def test_a_record_that_is_not_there_is_absent_after_the_whole_listing(org):
    assert org.find_by_external_id("Organization", ["orgs:x"], hints={
        "orgs:x": {"sent_at": None, "payload": {"name": "Nobody"}}}) == {}
    assert len(listings(org)) == 3  # every page, not the first only


def test_nothing_sent_that_this_client_knows_of_is_not_looked_for(org):
    """An upsert's fresh record: no body in flight and no journal payload, so no scan."""
    assert org.find_by_external_id("Organization", ["orgs:fresh"]) == {}
    assert listings(org) == []


# ---------------------------------------------------------------------- leads (v1, scripted)
def lead(i: int, **extra) -> dict:
    return {"id": f"00000000-0000-4000-8000-{i:012d}", "title": f"Lead {i}", "person_id": 9,
            "organization_id": None, **extra}


def leads_api(total: int, refused: bool = False):
    """``GET /api/v1/leads`` as openapi-v1.yaml ``getLeads`` answers: the page's details
    directly in ``additional_data`` (no ``pagination`` object, no ``next_start``)."""
    seen: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":  # a create whose answer never comes
            raise httpx.RemoteProtocolError("connection dropped", request=request)
        if request.url.path == "/api/v2/dealFields":  # leads' custom fields are the deal's
            return httpx.Response(200, json={"success": True, "data": [],
                                             "additional_data": {"next_cursor": None}})
        q = {k: v[-1] for k, v in parse_qs(request.url.query.decode()).items()}
        seen.append(q)
        if refused:
            return httpx.Response(400, json={"success": False, "error": "Bad filter"})
        start, limit = int(q.get("start", 0)), int(q.get("limit", 100))
        rows = [lead(i) for i in range(start, min(start + limit, total))]
        return httpx.Response(200, json={"success": True, "data": rows, "additional_data": {
            "start": start, "limit": limit, "more_items_in_collection": start + limit < total}})

    client = PipedriveClient(base_url="https://acme.pipedrive.com",
                             credentials=PipedriveCredentials(api_token="t"),
                             http=httpx.Client(transport=httpx.MockTransport(handler)),
                             sleep=lambda s: None)
    return client, seen


def test_leads_page_by_start_and_limit_with_the_flat_pagination_they_answer():
    client, seen = leads_api(total=1300)
    found = client.find_by_external_id("Lead", ["leads:7"], hints={"leads:7": {
        "sent_at": None, "payload": {"title": "Lead 1210", "person_id": "9"}}})
    assert found == {"leads:7": lead(1210)["id"]}
    assert [q["start"] for q in seen] == ["0", "500", "1000"]
    assert all(q["person_id"] == "9" and q["sort"] == "add_time DESC" for q in seen)
    # the same pages serve list_records, which read the first page only before
    seen.clear()
    assert len(client.list_records("Lead")) == 1300 and len(seen) == 3


def test_a_lead_is_matched_by_what_was_sent_not_by_a_missing_content_key():
    """Leads have no ``content``: comparing it matched the newest lead to any lost create."""
    client, _ = leads_api(total=30)
    with pytest.raises(TransientError):
        client.create("Lead", [WriteItem("k", "leads:x", {"title": "Lead 12", "person_id": "9"})])
    with pytest.raises(TransientError):
        client.create("Lead", [WriteItem("k", "leads:y", {"title": "Not there", "person_id": 9})])
    assert client.find_by_external_id("Lead", ["leads:x", "leads:y"]) == {
        "leads:x": lead(12)["id"]}


def test_a_refused_listing_names_the_endpoint_it_listed():
    client, _ = leads_api(total=10, refused=True)
    with pytest.raises(PipedriveAPIError) as caught:
        client.find_by_external_id("Lead", ["leads:1"], hints={"leads:1": {
            "sent_at": None, "payload": {"title": "Lead 1"}}})
    assert str(caught.value) == "GET /api/v1/leads: HTTP 400 Bad filter"
    # the shared refusal, as every dialect's: callers that catch APIError catch it
    assert isinstance(caught.value, APIError) and caught.value.status == 400


# ---------------------------------------------------------------------- metadata_bundle
def test_the_bundle_names_objects_without_field_metadata_instead_of_failing(org):
    bundle = org.metadata_bundle(["Person", "File", "Pets", "Person"])
    assert list(bundle["objects"]) == ["Person"]
    assert bundle["no_field_metadata"] == ["File"]  # said, not silently dropped
    json.dumps(bundle)  # fmap schema pull saves it verbatim
    warnings: list = []
    schema = get_dialect("pipedrive").load_metadata(bundle, source_name="snap.json",
                                                    warnings=warnings)
    assert [o.api_name for o in schema.objects] == ["Person"]
    assert [(w.json_path, w.message.split(":")[0]) for w in warnings
            if "no fields endpoint" in w.message] == [("$.no_field_metadata[0]", "File")]
    assert org.metadata_bundle(["Person"])["no_field_metadata"] == []
