"""The JSONL dry-run destination: one line per item, deterministic ids, upsert by external id,
an index rebuilt from the files on reopen, no validation."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from runtime.destinations.base import Destination, DestinationCapabilities, User, WriteItem
from runtime.destinations.jsonl import JsonlDestination


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_is_a_destination(tmp_path):
    d = JsonlDestination(tmp_path)
    assert isinstance(d, Destination)
    assert d.schema().object_names() == []


def test_writes_one_line_per_item_with_serialised_values(tmp_path):
    d = JsonlDestination(tmp_path)
    res = d.create("Contacts", [
        WriteItem("b", "P-2", {"Last_Name": "B", "Balance": Decimal("10.50"),
                               "Born": date(1980, 2, 1),
                               "Seen": datetime(2024, 3, 1, 10, tzinfo=UTC)}),
        WriteItem("a", None, {"Whatever": ["x", 1], "Last_Name": None}),  # never validated
    ])
    assert [(r.key, r.ok, r.dest_id, r.created) for r in res] == [
        ("b", True, "contacts-000001", True), ("a", True, "contacts-000002", True)]
    out = lines(tmp_path / "Contacts.jsonl")
    assert [(e["op"], e["key"], e["external_id"], e["id"]) for e in out] == [
        ("create", "b", "P-2", "contacts-000001"), ("create", "a", None, "contacts-000002")]
    assert out[0]["record"] == {"Last_Name": "B", "Balance": "10.50", "Born": "1980-02-01",
                                "Seen": "2024-03-01T10:00:00+00:00"}


def test_upsert_update_delete_and_reads(tmp_path):
    d = JsonlDestination(tmp_path)
    [r1] = d.upsert("Contacts", [WriteItem("k", "P-1", {"Last_Name": "A", "Notes": "n"})])
    [r2] = d.upsert("Contacts", [WriteItem("k", "P-1", {"Last_Name": "B"})])
    assert (r1.created, r2.created, r2.dest_id) == (True, False, r1.dest_id)
    same_call = d.upsert("Contacts", [WriteItem("x", "P-9", {}), WriteItem("y", "P-9", {})])
    assert [r.created for r in same_call] == [True, False]
    assert same_call[0].dest_id == same_call[1].dest_id
    assert d.find_by_external_id("Contacts", ["P-1", "nope"]) == {"P-1": r1.dest_id}
    [u] = d.update("Contacts", [WriteItem("k", None, {"Phone": "1"}, dest_id=r1.dest_id)])
    assert u.ok
    assert d.get("Contacts", [r1.dest_id, "missing"]) == {r1.dest_id: {
        "Last_Name": "B", "Notes": "n", "Phone": "1", "id": r1.dest_id, "$external_id": "P-1"}}
    assert d.count("Contacts") == 2
    assert [r.ok for r in d.delete("Contacts", [r1.dest_id])] == [True]
    assert d.count("Contacts") == 1
    assert d.find_by_external_id("Contacts", ["P-1"]) == {}
    assert [r["$external_id"] for r in d.list_records("Contacts")] == ["P-9"]
    assert [e["op"] for e in lines(tmp_path / "Contacts.jsonl")] == [
        "upsert", "upsert", "upsert", "upsert", "update", "delete"]
    [bad] = d.update("Contacts", [WriteItem("k", None, {"Phone": "1"})])
    assert (bad.ok, bad.code) == (False, "NOT_FOUND")


def test_round_trip_reopen_rebuilds_index_and_counters(tmp_path):
    d = JsonlDestination(tmp_path)
    d.create("Accounts", [WriteItem(f"a{i}", f"A{i}", {"Name": f"N{i}"}) for i in range(3)])
    d.upsert("Contacts", [WriteItem("c", "C1", {"Last_Name": "X", "Account": "accounts-000002"})])
    d.update("Accounts", [WriteItem("u", None, {"Name": "Renamed"}, dest_id="accounts-000001")])
    d.delete("Accounts", ["accounts-000003"])
    before = {o: list(d.list_records(o)) for o in ("Accounts", "Contacts")}
    d.close()
    # a torn last line from a killed run is ignored
    with (tmp_path / "Accounts.jsonl").open("a", encoding="utf-8") as fh:
        fh.write('{"op": "create", "key": "torn"')
    d2 = JsonlDestination(tmp_path)
    assert {o: list(d2.list_records(o)) for o in ("Accounts", "Contacts")} == before
    assert d2.find_by_external_id("Accounts", ["A0", "A1", "A2"]) == {
        "A0": "accounts-000001", "A1": "accounts-000002"}
    assert d2.get("Accounts", ["accounts-000001"])["accounts-000001"]["Name"] == "Renamed"
    [r] = d2.upsert("Contacts", [WriteItem("c", "C1", {"Last_Name": "Y"})])
    assert (r.created, r.dest_id) == (False, "contacts-000001")
    [r] = d2.create("Accounts", [WriteItem("n", "A9", {"Name": "new"})])
    assert r.dest_id == "accounts-000004"  # ids continue, never reused


def test_attachments_are_logged_with_hash(tmp_path):
    out = tmp_path / "out"
    f = tmp_path / "x-ray.png"
    f.write_bytes(b"\x89PNG" + b"0" * 10)
    d = JsonlDestination(out)
    r = d.upload_attachment("Contacts", "contacts-000001", "x-ray.png", f, key="att-1")
    assert (r.key, r.ok) == ("att-1", True)
    r2 = d.upload_attachment("Contacts", "contacts-000001", "missing.pdf", tmp_path / "no.pdf",
                             key="att-2")
    assert r2.ok and r2.dest_id != r.dest_id
    [e1, e2] = lines(out / "Contacts.jsonl")
    assert e1["op"] == "attachment" and e1["record"]["size"] == 14
    assert e1["record"]["parent"] == "contacts-000001" and len(e1["record"]["sha256"]) == 64
    assert e2["record"]["size"] is None
    assert d.count("Contacts") == 0  # attachments are not records
    assert JsonlDestination(out).count("Contacts") == 0


def test_users_batch_size_and_stats(tmp_path):
    users = [User("u1", "a@x.com")]
    d = JsonlDestination(tmp_path, users=users,
                         capabilities=DestinationCapabilities(name="dry", batch_size=2))
    assert d.list_users() == users
    with pytest.raises(ValueError):
        d.create("Accounts", [WriteItem(str(i), None, {}) for i in range(3)])
    d.create("Accounts", [WriteItem("a", None, {}), WriteItem("b", None, {})])
    assert (d.stats.calls, d.stats.records_written) == (1, 2)
    assert len(lines(tmp_path / "Accounts.jsonl")) == 2  # the oversized call wrote nothing
