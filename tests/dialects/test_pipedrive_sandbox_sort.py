"""The emulator's v2 listings in ``sort_by``/``sort_direction`` order (openapi-v2.yaml: ``id``,
``update_time``, ``add_time`` everywhere, ``name`` for products, ``due_date`` for activities;
``id``/``asc`` by default), undocumented values refused with a 400 in Pipedrive's envelope, and
the connector's newest-first content scan picking the newest of two records holding one body."""

from __future__ import annotations

import httpx
import pytest

from runtime.destinations.base import TransientError, WriteItem
from runtime.destinations.faults import FaultPlan
from runtime.destinations.sandbox_store import CounterClock
from runtime.dialects import get_dialect
from runtime.dialects.pipedrive import VirtualClock, open_sandbox
from runtime.dialects.pipedrive.sandbox import PipedriveSandbox, SyncASGITransport


@pytest.fixture
def api(tmp_path):
    sb = PipedriveSandbox(get_dialect("pipedrive").standard_schema(), tmp_path / "org.sqlite",
                          clock=VirtualClock(), store_clock=CounterClock(),
                          daily_budget=100_000)
    transport = SyncASGITransport(sb)
    http = httpx.Client(transport=transport, base_url="http://pd.invalid",
                        headers={"x-api-token": sb.token})
    yield http
    http.close()
    transport.close()
    sb.close()


def ids(http: httpx.Client, path: str, **q) -> list[int]:
    r = http.get(path, params=q)
    assert r.status_code == 200, r.text
    return [x["id"] for x in r.json()["data"]]


def test_persons_sort_by_id_update_time_and_add_time(api):
    for name in ("A", "B", "C"):
        api.post("/api/v2/persons", json={"name": name})
    api.patch("/api/v2/persons/1", json={"name": "A2"})  # 1 is now the latest update
    assert ids(api, "/api/v2/persons") == [1, 2, 3]  # id asc by default
    assert ids(api, "/api/v2/persons", sort_direction="desc") == [3, 2, 1]
    assert ids(api, "/api/v2/persons", sort_by="add_time", sort_direction="desc") == [3, 2, 1]
    assert ids(api, "/api/v2/persons", sort_by="update_time") == [2, 3, 1]
    assert ids(api, "/api/v2/persons", sort_by="update_time", sort_direction="desc") == [1, 3, 2]
    assert ids(api, "/api/v2/persons", ids="1,3,2", sort_direction="desc") == [3, 2, 1]


def test_the_cursor_pages_through_the_sorted_listing(api):
    for i in range(5):
        api.post("/api/v2/organizations", json={"name": f"Org {i}"})
    seen, cursor = [], None
    while True:
        r = api.get("/api/v2/organizations", params={
            "limit": 2, "sort_by": "id", "sort_direction": "desc",
            **({"cursor": cursor} if cursor else {})}).json()
        seen.append([x["id"] for x in r["data"]])
        cursor = r["additional_data"]["next_cursor"]
        if not cursor:
            break
    assert seen == [[5, 4], [3, 2], [1]]


def test_endpoint_specific_sort_fields(api):
    for name in ("Pear", "Apple", "Fig"):
        assert api.post("/api/v2/products", json={"name": name}).status_code == 201
    assert ids(api, "/api/v2/products", sort_by="name") == [2, 3, 1]
    assert ids(api, "/api/v2/products", sort_by="name", sort_direction="desc") == [1, 3, 2]
    for day in ("2025-03-02", "2025-03-01"):
        r = api.post("/api/v2/activities", json={"subject": "Call", "due_date": day})
        assert r.status_code == 200, r.text
    assert ids(api, "/api/v2/activities", sort_by="due_date") == [2, 1]


@pytest.mark.parametrize(("path", "q", "error"), [
    ("/api/v2/persons", {"sort_by": "name"}, "sort_by must be one of: id, update_time, add_time"),
    ("/api/v2/deals", {"sort_by": "due_date"}, "sort_by must be one of"),
    ("/api/v2/activities", {"sort_by": "name"}, "sort_by must be one of"),
    ("/api/v2/products", {"sort_by": "due_date"}, "sort_by must be one of: id, name"),
    ("/api/v2/persons", {"sort_direction": "DESC"}, "sort_direction must be one of: asc, desc"),
    ("/api/v2/organizations", {"sort_direction": "newest"}, "sort_direction must be one of"),
], ids=["persons-name", "deals-due-date", "activities-name", "products-due-date",
        "upper-case-direction", "unknown-direction"])
def test_undocumented_sort_values_are_refused(api, path, q, error):
    r = api.get(path, params=q)
    assert r.status_code == 400
    body = r.json()
    assert body["success"] is False and body["error"].startswith(error)
    assert body["data"] is None and body["additional_data"] is None


def test_a_lost_create_is_settled_to_the_newest_record_holding_the_body(tmp_path):
    """Two organizations named alike: an older one, and the create whose reply was lost. With
    no external-id field the connector scans newest first, so it settles on the new one, not
    on the older record that happens to hold the same values."""
    c = open_sandbox(get_dialect("pipedrive").standard_schema(), tmp_path / "o.sqlite", None,
                     {"clock": "virtual", "sent_log": "off"})
    try:
        old = c.create("Organization", [WriteItem("a", None, {"name": "Twin"})])[0].dest_id
        c.sandbox.store.faults = FaultPlan(seed=1, lost_response_rate=1.0)
        with pytest.raises(TransientError):
            c.create("Organization", [WriteItem("b", "orgs:twin", {"name": "Twin"})])
        c.sandbox.store.faults = None
        new = max(int(r["id"]) for r in c.list_records("Organization"))
        assert str(new) != old
        assert c.find_by_external_id("Organization", ["orgs:twin"]) == {"orgs:twin": str(new)}
    finally:
        c.close()
