"""Freshsales deletes through ``POST /api/{e}/bulk_destroy`` ``{"selected_ids": [...]}``
(API_NOTES.md 3.3 [3p]) for contacts, sales accounts, deals and custom modules: results per id,
read back rather than taken from the answer; ids already gone answer NOT_FOUND as a DELETE does;
faults behave as on single deletes."""

from __future__ import annotations

import random

import pytest

from runtime.destinations.base import TransientError, WriteItem
from runtime.destinations.faults import FaultPlan
from runtime.dialects.freshsales import open_sandbox
from tests.dialects.test_freshsales_sandbox import USERS, org_schema


@pytest.fixture
def client(tmp_path):
    from runtime.targets import sandbox_users

    c = open_sandbox(org_schema(), tmp_path / "org.sqlite", sandbox_users(USERS), {})
    calls: list[tuple[str, str]] = []
    sb = c.sandbox
    real = sb.handle

    def counted(method, path, query, headers, body):
        calls.append((method, path.split("/api/", 1)[-1]))
        return real(method, path, query, headers, body)

    sb.handle = counted
    c.calls = calls
    yield c
    c.close()


def _contacts(client, n: int) -> list[str]:
    results = client.upsert("Contact", [WriteItem(f"C:{i}", f"C:{i}", {"last_name": f"L{i}"})
                                        for i in range(n)])
    assert all(r.ok for r in results)
    return [r.dest_id for r in results]


def test_bulk_destroy_in_hundreds_results_by_id(client):
    ids = _contacts(client, 150)
    missing = str(int(max(ids)) + 999)
    asked = ids + [missing]
    random.Random(3).shuffle(asked)
    client.calls.clear()
    results = client.delete("Contact", asked)
    by_id = {r.key: r for r in results}
    assert len(results) == len(by_id) == 151
    assert all(by_id[i].ok and by_id[i].dest_id == i for i in ids)
    assert (by_id[missing].ok, by_id[missing].code) == (False, "NOT_FOUND")
    kinds = [(m, p) for m, p in client.calls]
    assert kinds.count(("POST", "contacts/bulk_destroy")) == 2
    assert not [c for c in kinds if c[0] == "DELETE"]
    assert len(kinds) == 2 + 2 * 2  # per 100 ids: read back, bulk_destroy, read back
    assert client.sandbox.store.get("Contact", ids) == {}
    assert client.count("Contact") == 0


def test_ids_the_bulk_call_left_get_their_own_delete(client, monkeypatch):
    """An id still there after bulk_destroy (refused, or a background job behind) is deleted
    on its own; an id that cannot be deleted fails alone, matched by id."""
    ids = _contacts(client, 4)
    store = client.sandbox.store
    real_delete = store.delete

    def lagging(obj, rids):
        if len(rids) > 1:  # the bulk call: leave two behind
            return real_delete(obj, [r for r in rids if r not in ids[1:3]])
        if rids == [ids[2]]:  # and this one is locked
            raise AssertionError("not reached")
        return real_delete(obj, rids)

    monkeypatch.setattr(store, "delete", lagging)
    locked = ids[2]
    real_handle = client.sandbox.handle

    def locked_handle(method, path, query, headers, body):
        if method == "DELETE" and path.endswith(f"/contacts/{locked}"):
            return 409, {"content-type": "application/json"}, (
                b'{"errors": {"code": 409, "message": ["Record is locked"]}}')
        return real_handle(method, path, query, headers, body)

    client.sandbox.handle = locked_handle
    results = client.delete("Contact", list(reversed(ids)))
    by_id = {r.key: r for r in results}
    assert [r.key for r in results] == list(reversed(ids))
    assert by_id[ids[0]].ok and by_id[ids[1]].ok and by_id[ids[3]].ok
    assert (by_id[locked].ok, by_id[locked].retryable) == (False, True)
    assert ("DELETE", f"contacts/{ids[1]}") in client.calls
    assert ("DELETE", f"contacts/{ids[0]}") not in client.calls
    assert set(store.get("Contact", ids)) == {locked}


def test_lost_response_on_bulk_destroy_is_committed_and_unknown(client):
    ids = _contacts(client, 3)
    client.sandbox.store.faults = FaultPlan(seed=1, lost_response_rate=1.0)
    with pytest.raises(TransientError) as exc:
        client.delete("Contact", ids)
    assert exc.value.maybe_committed
    client.sandbox.store.faults = None
    assert client.sandbox.store.get("Contact", ids) == {}  # the write committed
    again = client.delete("Contact", ids)  # a resumed rollback finds them gone
    assert [(r.ok, r.code) for r in again] == [(False, "NOT_FOUND")] * 3


def test_other_entities_and_custom_modules(client):
    [lead] = client.create("Lead", [WriteItem("L:1", "L:1", {"last_name": "Lead"})])
    [plan] = client.create("treatment_plans", [WriteItem("T:1", "T:1", {"name": "Plan"})])
    assert lead.ok and plan.ok
    client.calls.clear()
    assert [r.ok for r in client.delete("Lead", [lead.dest_id])] == [True]
    assert client.calls == [("DELETE", f"leads/{lead.dest_id}")]  # no bulk_destroy for leads
    client.calls.clear()
    assert [r.ok for r in client.delete("treatment_plans", [plan.dest_id])] == [True]
    assert ("POST", "custom_module/treatment_plans/bulk_destroy") in client.calls


def test_sandbox_bulk_destroy_refuses_bad_bodies(client):
    http = client._http  # noqa: SLF001
    h = {"Authorization": f"Token token={client.sandbox.api_key}"}
    base = "http://x/crm/sales/api"
    for body in ({}, {"selected_ids": []}, {"selected_ids": "1,2"}, {"selected_ids": [None]},
                 {"selected_ids": [True]}):
        r = http.post(f"{base}/contacts/bulk_destroy", json=body, headers=h)
        assert r.status_code == 400 and r.json()["errors"]["message"] == [
            "selected_ids is invalid"], body
    assert http.post(f"{base}/leads/bulk_destroy", json={"selected_ids": [1]},
                     headers=h).status_code == 404
    ok = http.post(f"{base}/contacts/bulk_destroy", json={"selected_ids": [1]}, headers=h)
    assert ok.status_code == 202 and "message" in ok.json()
