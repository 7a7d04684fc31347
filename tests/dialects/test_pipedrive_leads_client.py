"""The Pipedrive connector's leads against the in-process emulator (``open_sandbox``): create,
read, update, delete and list through ``/api/v1/leads`` as the real API takes them (integer
links, ``value`` as ``{amount, currency}``, ``visible_to`` a string, the deal's custom fields by
hash key at the top level), every page of a listing longer than one, and a create whose reply
was lost settled to the newest lead holding what was sent."""

from __future__ import annotations

import pytest

from runtime.destinations.base import TransientError, User, WriteItem
from runtime.destinations.faults import FaultPlan
from runtime.dialects import get_dialect
from runtime.dialects.pipedrive import open_sandbox
from runtime.dialects.pipedrive.client import PAGE_LIMIT
from runtime.schema.changes import apply_changes

USERS = [User("21000001", "pm@example.com", "Practice Manager")]
CHANGES = [{"action": "create_field", "object": "Deal", "field": "Region", "type": "picklist",
            "details": {"values": ["North", "South"]}}]


@pytest.fixture
def pd(tmp_path):
    """A client over a sandbox org with one person and one organization, recording the path
    and query of every request it sends."""
    c = open_sandbox(apply_changes(get_dialect("pipedrive").standard_schema(), CHANGES),
                     tmp_path / "org.sqlite", USERS, {"clock": "virtual"})
    c.person = c.create("Person", [WriteItem("p", None, {"name": "Ann"})])[0].dest_id
    c.org = c.create("Organization", [WriteItem("o", None, {"name": "Acme"})])[0].dest_id
    c.seen = []
    c._http.event_hooks["request"].append(
        lambda r: c.seen.append((r.method, r.url.path, dict(r.url.params))))
    yield c
    c.close()


def stored(c, rid: str) -> dict:
    return c.sandbox.store.get("Lead", [rid])[rid]


def test_crud_through_the_client(pd):
    r = pd.create("Lead", [WriteItem("k", "leads:1", {
        "title": "Referral", "person_id": pd.person, "value": "250.5", "currency": "EUR",
        "visible_to": 1, "expected_close_date": "2025-06-30", "Region": "North"})])[0]
    assert r.ok and r.created, r
    assert len(r.dest_id) == 36
    raw = stored(pd, r.dest_id)
    assert (raw["value"], raw["currency"], raw["visible_to"], raw["Region"]) == (
        "250.5", "EUR", "1", "North")
    got = pd.get("Lead", [r.dest_id])[r.dest_id]
    assert {k: got[k] for k in ("title", "person_id", "value", "currency", "visible_to",
                                "expected_close_date", "Region")} == {
        "title": "Referral", "person_id": pd.person, "value": 250.5, "currency": "EUR",
        "visible_to": "1", "expected_close_date": "2025-06-30", "Region": "North"}
    u = pd.update("Lead", [WriteItem("k", None, {"value": None, "Region": "South",
                                                  "organization_id": pd.org}, r.dest_id)])[0]
    assert u.ok and u.created is False
    raw = stored(pd, r.dest_id)
    assert "value" not in raw and "currency" not in raw
    assert raw["Region"] == "South" and raw["organization_id"] == pd.org
    # a value without a currency takes the target's
    v = pd.update("Lead", [WriteItem("k", None, {"value": 7}, r.dest_id)])[0]
    assert v.ok and stored(pd, r.dest_id)["currency"] == "USD"
    assert pd.delete("Lead", [r.dest_id])[0].ok
    assert pd.get("Lead", [r.dest_id]) == {}
    assert [m for m, p, _ in pd.seen if p.startswith("/api/v1/leads")] == [
        "POST", "GET", "PATCH", "PATCH", "DELETE", "GET"]


def test_refusals_come_back_as_failed_results(pd):
    no_link, bad_person = pd.create("Lead", [WriteItem("a", None, {"title": "Orphan"})])[0], \
        pd.create("Lead", [WriteItem("b", None, {"title": "x", "person_id": "999"})])[0]
    assert not no_link.ok and no_link.code == "HTTP_400" and "must be set" in no_link.error
    assert not bad_person.ok and "person_id" in bad_person.error
    missing = pd.update("Lead", [WriteItem("c", None, {"title": "x"},
                                           "adf21080-0e10-11eb-879b-05d71fb426ec")])[0]
    assert not missing.ok and missing.code == "HTTP_404"
    assert pd.sandbox.store.count("Lead") == 0


def test_list_records_reads_every_page(pd):
    n = PAGE_LIMIT * 2 + 37
    store = pd.sandbox.store
    for i in range(n):  # seeded straight into the store: fast, and the API reads them back
        assert store.create("Lead", [WriteItem(f"s{i}", None, {
            "title": f"Lead {i:04d}", "person_id": pd.person})])[0].ok
    pd.seen.clear()
    leads = pd.list_records("Lead")
    assert len(leads) == n
    assert [x["title"] for x in leads[:2]] == ["Lead 0000", "Lead 0001"]  # oldest first
    starts = [q["start"] for m, p, q in pd.seen if p == "/api/v1/leads"][:3]
    assert starts == ["0", str(PAGE_LIMIT), str(2 * PAGE_LIMIT)]


def test_a_lost_create_is_found_newest_first_and_not_sent_twice(pd):
    """An older lead holds the same title and person as the create whose reply is lost: the
    scan (``sort=add_time DESC``) settles on the new one, and ``upsert`` updates it instead of
    creating a third."""
    body = {"title": "Follow-up", "person_id": pd.person}
    older = pd.create("Lead", [WriteItem("o", None, dict(body))])[0].dest_id
    pd.sandbox.store.faults = FaultPlan(seed=1, lost_response_rate=1.0)
    item = WriteItem("k", "leads:lost", dict(body))
    with pytest.raises(TransientError):
        pd.create("Lead", [item])
    pd.sandbox.store.faults = None
    assert pd.sandbox.store.count("Lead") == 2  # the lost create committed
    newest = next(r["id"] for r in pd.list_records("Lead") if r["id"] != older)
    pd.seen.clear()
    assert pd.find_by_external_id("Lead", ["leads:lost"]) == {"leads:lost": newest}
    listing = [q for m, p, q in pd.seen if p == "/api/v1/leads"]
    assert listing and all(q["sort"] == "add_time DESC" and q["person_id"] == pd.person
                           for q in listing)
    with pytest.raises(TransientError):  # in flight again: upsert looks before it sends
        pd.sandbox.store.faults = FaultPlan(seed=1, lost_response_rate=1.0)
        pd.create("Lead", [item])
    pd.sandbox.store.faults = None
    third = next(r["id"] for r in pd.list_records("Lead") if r["id"] not in (older, newest))
    r = pd.upsert("Lead", [item])[0]
    assert r.ok and r.created is False and r.dest_id == third
    assert pd.sandbox.store.count("Lead") == 3


def test_a_resumed_run_finds_the_lead_from_the_journals_payload(pd):
    """A new process knows only the journal: the payload as the executor wrote it (string
    ids, the amount and currency apart) is rebuilt into the body a create sends, and the lead
    holding it is found; one holding something else is not taken for it."""
    store = pd.sandbox.store
    for i in range(3):
        store.create("Lead", [WriteItem(f"s{i}", None, {"title": f"Other {i}",
                                                        "organization_id": pd.org})])
    rid = store.create("Lead", [WriteItem("x", None, {
        "title": "Journaled", "organization_id": pd.org, "value": 90, "currency": "GBP"})])[0]
    payload = {"title": "Journaled", "organization_id": pd.org, "value": "90",
               "currency": "GBP"}
    assert pd.find_by_external_id("Lead", ["leads:j", "leads:none"], hints={
        "leads:j": {"sent_at": None, "payload": payload},
        "leads:none": {"sent_at": None, "payload": {**payload, "title": "Never sent"}},
    }) == {"leads:j": rid.dest_id}
