"""The generic sandbox store: schema enforcement per field type, partial batches keyed by key,
upsert, duplicates, recycle bin, attachments, snapshots, deterministic faults, threads, persistence."""

from __future__ import annotations

import random
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from runtime.destinations.base import (
    Destination,
    DestinationCapabilities,
    FatalError,
    TransientError,
    User,
    WriteItem,
)
from runtime.destinations.faults import FaultPlan
from runtime.destinations.sandbox_store import SandboxStore, real_clock
from runtime.dialects import get_dialect
from runtime.schema.model import (
    FieldSchema,
    FieldType,
    ObjectCapabilities,
    ObjectSchema,
    SystemSchema,
)

F = FieldSchema


def small_schema() -> SystemSchema:
    return SystemSchema(system="test", objects=[
        ObjectSchema(api_name="Accounts", capabilities=ObjectCapabilities(attachments=True),
                     fields=[
            F(api_name="id", type=FieldType.id, read_only=True),
            F(api_name="Name", type=FieldType.text, required=True, max_length=10),
            F(api_name="Code", type=FieldType.text, unique=True),
            F(api_name="Owner", type=FieldType.owner, lookup_targets=["Users"]),
        ]),
        ObjectSchema(api_name="Contacts", fields=[
            F(api_name="Last_Name", type=FieldType.text, required=True),
            F(api_name="Notes", type=FieldType.textarea),
            F(api_name="Email", type=FieldType.email),
            F(api_name="Phone", type=FieldType.phone, max_length=5),
            F(api_name="Age", type=FieldType.integer),
            F(api_name="Balance", type=FieldType.currency),
            F(api_name="Rate", type=FieldType.decimal),
            F(api_name="Share", type=FieldType.percent),
            F(api_name="Opt_Out", type=FieldType.boolean),
            F(api_name="Born", type=FieldType.date),
            F(api_name="Seen_At", type=FieldType.datetime),
            F(api_name="Gender", type=FieldType.picklist, picklist_values=["Male", "Female"]),
            F(api_name="Free_Pick", type=FieldType.picklist),
            F(api_name="Tags", type=FieldType.multipicklist, picklist_values=["a", "b"]),
            F(api_name="Account", type=FieldType.lookup, lookup_targets=["Accounts"]),
            F(api_name="Related", type=FieldType.lookup, lookup_targets=["Accounts", "Contacts"]),
            F(api_name="Full_Name", type=FieldType.text, read_only=True),
            F(api_name="Source_Key", type=FieldType.text, create_only=True),
            F(api_name="Created", type=FieldType.datetime, read_only=True, audit=True),
            F(api_name="Legacy_Id", type=FieldType.text, external_id=True),
        ]),
        ObjectSchema(api_name="Frozen", capabilities=ObjectCapabilities(
            createable=True, updateable=False, deletable=False),
            fields=[F(api_name="Name")]),
    ])


@pytest.fixture
def store() -> SandboxStore:
    s = SandboxStore(small_schema())
    yield s
    s.close()


@pytest.fixture
def zoho() -> SandboxStore:
    s = SandboxStore(get_dialect("zoho").standard_schema(),
                     capabilities=DestinationCapabilities(name="zoho", attachment_limit_bytes=100))
    yield s
    s.close()


def one(store: SandboxStore, obj: str, record: dict, ext: str | None = None, op: str = "create"):
    [result] = getattr(store, op)(obj, [WriteItem(key="k", external_id=ext, record=record)])
    return result


def acct(store: SandboxStore, name: str = "Acme", ext: str | None = None) -> str:
    r = one(store, "Accounts", {"Name": name}, ext)
    assert r.ok, r
    return r.dest_id


def test_is_a_destination(store):
    assert isinstance(store, Destination)
    assert store.schema().system == "test"


# ---------------------------------------------------------------- validation, rule by rule

VALID = [
    ("Notes", "free text"), ("Email", "a.b@example.com"), ("Phone", "12345"), ("Age", 42),
    ("Balance", Decimal("10.50")), ("Balance", "10.50"), ("Balance", 3), ("Rate", 1.25),
    ("Share", "12.5"), ("Opt_Out", False), ("Born", "1980-02-29"), ("Born", date(1980, 2, 1)),
    ("Seen_At", "2024-03-01T10:00:00+01:00"), ("Seen_At", "2024-03-01T10:00:00Z"),
    ("Seen_At", datetime(2024, 3, 1, 10, tzinfo=UTC)), ("Gender", "Female"),
    ("Free_Pick", "anything at all"), ("Tags", ["a", "b"]), ("Legacy_Id", "L-1"),
]
INVALID = [
    ("Notes", 5, "INVALID_TYPE"), ("Email", "not-an-email", "INVALID_TYPE"),
    ("Email", "a@b", "INVALID_TYPE"), ("Phone", "123456", "STRING_TOO_LONG"),
    ("Age", "42", "INVALID_TYPE"), ("Age", True, "INVALID_TYPE"), ("Age", 4.0, "INVALID_TYPE"),
    ("Balance", "ten", "INVALID_TYPE"), ("Balance", float("nan"), "INVALID_TYPE"),
    ("Balance", "Infinity", "INVALID_TYPE"), ("Rate", True, "INVALID_TYPE"),
    ("Opt_Out", "true", "INVALID_TYPE"), ("Opt_Out", 1, "INVALID_TYPE"),
    ("Born", "01/02/1980", "INVALID_TYPE"), ("Born", "1981-02-29", "INVALID_TYPE"),
    ("Born", datetime(1980, 2, 1, tzinfo=UTC), "INVALID_TYPE"),
    ("Seen_At", "2024-03-01T10:00:00", "INVALID_TYPE"), ("Seen_At", "yesterday", "INVALID_TYPE"),
    ("Seen_At", datetime(2024, 3, 1, 10), "INVALID_TYPE"), ("Seen_At", "2024-03-01", "INVALID_TYPE"),
    ("Gender", "Unknown", "INVALID_PICKLIST"), ("Gender", 1, "INVALID_TYPE"),
    ("Tags", ["a", "c"], "INVALID_PICKLIST"), ("Tags", "a", "INVALID_TYPE"),
    ("Account", "accounts-999999", "INVALID_REFERENCE"), ("Account", 7, "INVALID_REFERENCE"),
    ("Full_Name", "x", "READ_ONLY_FIELD"), ("Created", "2024-01-01T00:00:00+00:00", "READ_ONLY_FIELD"),
    ("Nope", "x", "INVALID_FIELD"),
]


@pytest.mark.parametrize(("field", "value"), VALID, ids=[f"{f}={v!r}" for f, v in VALID])
def test_valid_values_are_accepted(store, field, value):
    r = one(store, "Contacts", {"Last_Name": "Smith", field: value})
    assert r.ok, r
    assert store.get("Contacts", [r.dest_id])[r.dest_id][field] is not None


@pytest.mark.parametrize(("field", "value", "code"), INVALID,
                         ids=[f"{f}={v!r}" for f, v, _ in INVALID])
def test_invalid_values_fail_with_code_and_field_and_no_value(store, field, value, code):
    r = one(store, "Contacts", {"Last_Name": "Smith", field: value})
    assert not r.ok
    assert (r.code, r.field) == (code, field)
    assert str(value) not in r.error or str(value) in field  # no field values in messages
    assert store.count("Contacts") == 0


def test_canonical_stored_values(store):
    r = one(store, "Contacts", {
        "Last_Name": "Smith", "Balance": Decimal("10.50"), "Rate": 1.1, "Share": " 7 ",
        "Born": date(1980, 2, 1), "Seen_At": "2024-03-01T10:00:00Z", "Tags": ("b",),
        "Notes": None, "Phone": ""})
    rec = store.get("Contacts", [r.dest_id])[r.dest_id]
    assert rec["Balance"] == "10.50" and rec["Rate"] == "1.1" and rec["Share"] == "7"
    assert rec["Born"] == "1980-02-01"
    assert rec["Seen_At"] == "2024-03-01T10:00:00+00:00"
    assert rec["Tags"] == ["b"]
    assert "Notes" not in rec and "Phone" not in rec  # empty values are not stored


@pytest.mark.parametrize("empty", [None, "", "MISSING"])
def test_required_field_missing_on_create(store, empty):
    record = {} if empty == "MISSING" else {"Last_Name": empty}
    r = one(store, "Contacts", record)
    assert (r.ok, r.code, r.field) == (False, "REQUIRED_FIELD_MISSING", "Last_Name")
    assert "Last_Name" in r.error


def test_required_field_cleared_on_update(store):
    rid = one(store, "Contacts", {"Last_Name": "Smith", "Notes": "n"}).dest_id
    [r] = store.update("Contacts", [WriteItem("k", None, {"Last_Name": ""}, dest_id=rid)])
    assert (r.code, r.field) == ("REQUIRED_FIELD_MISSING", "Last_Name")
    # a partial update without the required field is fine; None clears an optional field
    [r] = store.update("Contacts", [WriteItem("k", None, {"Notes": None}, dest_id=rid)])
    assert r.ok
    assert "Notes" not in store.get("Contacts", [rid])[rid]


def test_max_length_counts_characters(store):
    assert one(store, "Accounts", {"Name": "é" * 10}).ok
    r = one(store, "Accounts", {"Name": "x" * 11})
    assert (r.code, r.field) == ("STRING_TOO_LONG", "Name")


def test_read_only_id_field(store):
    r = one(store, "Accounts", {"Name": "A", "id": "accounts-000001"})
    assert (r.code, r.field) == ("READ_ONLY_FIELD", "id")


def test_audit_fields_settable_on_create_only_when_allowed():
    s = SandboxStore(small_schema(), allow_audit_fields=True)
    r = one(s, "Contacts", {"Last_Name": "S", "Created": "2019-05-01T09:00:00+00:00"})
    assert r.ok
    assert s.get("Contacts", [r.dest_id])[r.dest_id]["Created"] == "2019-05-01T09:00:00+00:00"
    [u] = s.update("Contacts", [WriteItem("k", None, {"Created": "2019-05-02T09:00:00+00:00"},
                                          dest_id=r.dest_id)])
    assert (u.code, u.field) == ("READ_ONLY_FIELD", "Created")


def test_create_only_fields_rejected_on_update_and_upsert_match(store):
    r = one(store, "Contacts", {"Last_Name": "S", "Source_Key": "A"}, ext="E1")
    assert r.ok
    [u] = store.update("Contacts", [WriteItem("k", None, {"Source_Key": "B"}, dest_id=r.dest_id)])
    assert (u.code, u.field) == ("READ_ONLY_FIELD", "Source_Key")
    [u] = store.upsert("Contacts", [WriteItem("k", "E1", {"Source_Key": "B"})])
    assert (u.code, u.field) == ("READ_ONLY_FIELD", "Source_Key")
    assert store.get("Contacts", [r.dest_id])[r.dest_id]["Source_Key"] == "A"


def test_unknown_object_fails_every_item(store):
    results = store.create("Nope", [WriteItem("a", None, {}), WriteItem("b", None, {})])
    assert [(r.key, r.ok, r.code) for r in results] == [("a", False, "INVALID_MODULE"),
                                                        ("b", False, "INVALID_MODULE")]
    with pytest.raises(FatalError):
        store.count("Nope")


def test_object_capabilities_enforced(store):
    rid = one(store, "Frozen", {"Name": "x"}).dest_id
    [u] = store.update("Frozen", [WriteItem("k", None, {"Name": "y"}, dest_id=rid)])
    assert u.code == "OPERATION_NOT_ALLOWED"
    [d] = store.delete("Frozen", [rid])
    assert d.code == "OPERATION_NOT_ALLOWED"


# ---------------------------------------------------------------- references and owners

def test_lookup_to_existing_record_and_multi_target(store):
    a = acct(store)
    c = one(store, "Contacts", {"Last_Name": "S", "Account": a, "Related": a})
    assert c.ok
    c2 = one(store, "Contacts", {"Last_Name": "T", "Related": c.dest_id})
    assert c2.ok
    # a contact id is not an account
    bad = one(store, "Contacts", {"Last_Name": "U", "Account": c.dest_id})
    assert (bad.code, bad.field) == ("INVALID_REFERENCE", "Account")


def test_lookup_to_deleted_record_fails(store):
    a = acct(store)
    assert store.delete("Accounts", [a])[0].ok
    r = one(store, "Contacts", {"Last_Name": "S", "Account": a})
    assert (r.code, r.field) == ("INVALID_REFERENCE", "Account")
    store.restore("Accounts", [a])
    assert one(store, "Contacts", {"Last_Name": "S", "Account": a}).ok


def test_owner_must_be_an_active_user():
    users = [User("u1", "a@x.com", "A"), User("u2", "b@x.com", "B", active=False)]
    s = SandboxStore(small_schema(), users=users)
    assert s.list_users() == users
    assert one(s, "Accounts", {"Name": "A", "Owner": "u1"}).ok
    for bad in ("u2", "u3"):
        r = one(s, "Accounts", {"Name": "A", "Owner": bad})
        assert (r.code, r.field) == ("INVALID_REFERENCE", "Owner")


def test_default_user_exists(store):
    [u] = store.list_users()
    assert one(store, "Accounts", {"Name": "A", "Owner": u.id}).ok


# ---------------------------------------------------------------- batches

def test_partial_batch_results_keyed_by_key(store):
    a = acct(store)
    good = [WriteItem(f"g{i}", f"G{i}", {"Last_Name": f"N{i}", "Account": a}) for i in range(20)]
    bad = [WriteItem(f"b{i}", f"B{i}", {"Last_Name": f"N{i}", "Age": "x"}) for i in range(10)]
    items = good + bad
    random.Random(7).shuffle(items)
    results = store.create("Contacts", items)
    by_key = {r.key: r for r in results}
    assert set(by_key) == {i.key for i in items} and len(results) == len(items)
    for item in items:
        r = by_key[item.key]
        assert r.ok == item.key.startswith("g")
        if r.ok:
            assert store.find_by_external_id("Contacts", [item.external_id]) == {
                item.external_id: r.dest_id}
            assert store.get("Contacts", [r.dest_id])[r.dest_id]["Last_Name"] == \
                item.record["Last_Name"]
        else:
            assert (r.code, r.field) == ("INVALID_TYPE", "Age")
    assert store.count("Contacts") == 20


def test_batch_size_and_duplicate_keys_are_programming_errors():
    s = SandboxStore(small_schema(), capabilities=DestinationCapabilities(name="t", batch_size=2))
    items = [WriteItem(str(i), None, {"Name": "A"}) for i in range(3)]
    with pytest.raises(ValueError):
        s.create("Accounts", items)
    with pytest.raises(ValueError):
        s.create("Accounts", [WriteItem("a", None, {"Name": "A"})] * 2)
    assert s.count("Accounts") == 0


def test_default_ids_are_per_object_counters(store):
    assert acct(store) == "accounts-000001"
    assert acct(store) == "accounts-000002"
    assert one(store, "Contacts", {"Last_Name": "x"}).dest_id == "contacts-000001"
    assert not one(store, "Accounts", {}).ok  # failures consume no id
    assert acct(store) == "accounts-000003"


def test_custom_id_factory_and_clock():
    ids = iter(["X1", "X2"])
    t0 = datetime(2030, 1, 1, tzinfo=UTC)
    s = SandboxStore(small_schema(), id_factory=lambda obj: next(ids), clock=lambda: t0)
    assert acct(s) == "X1"
    rec = s.get("Accounts", ["X1"])["X1"]
    assert rec["$created_at"] == rec["$modified_at"] == "2030-01-01T00:00:00.000000+00:00"
    s2 = SandboxStore(small_schema(), clock=real_clock)
    before = datetime.now(UTC) - timedelta(seconds=1)
    rid = acct(s2)
    assert datetime.fromisoformat(s2.get("Accounts", [rid])[rid]["$created_at"]) >= before


# ---------------------------------------------------------------- upsert and duplicates

def test_upsert_creates_then_updates(store):
    [r1] = store.upsert("Contacts", [WriteItem("k", "E1", {"Last_Name": "A", "Notes": "x"})])
    assert (r1.ok, r1.created) == (True, True)
    [r2] = store.upsert("Contacts", [WriteItem("k", "E1", {"Last_Name": "B"})])
    assert (r2.ok, r2.created, r2.dest_id) == (True, False, r1.dest_id)
    rec = store.get("Contacts", [r1.dest_id])[r1.dest_id]
    assert (rec["Last_Name"], rec["Notes"], rec["$external_id"]) == ("B", "x", "E1")
    assert store.count("Contacts") == 1


def test_upsert_within_one_batch_matches_earlier_item(store):
    res = store.upsert("Contacts", [WriteItem("a", "E1", {"Last_Name": "A"}),
                                    WriteItem("b", "E1", {"Last_Name": "B"})])
    assert [(r.created, r.dest_id) for r in res] == [(True, "contacts-000001"),
                                                     (False, "contacts-000001")]


def test_upsert_without_external_id_fails_per_item(store):
    [r] = store.upsert("Contacts", [WriteItem("k", None, {"Last_Name": "A"})])
    assert r.code == "EXTERNAL_ID_MISSING"


def test_no_native_upsert():
    s = SandboxStore(small_schema(),
                     capabilities=DestinationCapabilities(name="t", native_upsert=False))
    with pytest.raises(NotImplementedError):
        s.upsert("Contacts", [WriteItem("k", "E1", {"Last_Name": "A"})])


def test_duplicate_external_id_on_create(store):
    first = one(store, "Contacts", {"Last_Name": "A"}, ext="E1")
    res = store.create("Contacts", [WriteItem("a", "E1", {"Last_Name": "B"}),
                                    WriteItem("b", "E2", {"Last_Name": "C"})])
    by_key = {r.key: r for r in res}
    assert by_key["a"].code == "DUPLICATE_VALUE" and first.dest_id in by_key["a"].error
    assert "E1" not in by_key["a"].error
    assert by_key["b"].ok
    # and on an update that tries to take another record's external id
    [u] = store.update("Contacts", [WriteItem("k", "E1", {}, dest_id=by_key["b"].dest_id)])
    assert u.code == "DUPLICATE_VALUE"


def test_unique_fields(store):
    a = one(store, "Accounts", {"Name": "A", "Code": "C1"}).dest_id
    r = one(store, "Accounts", {"Name": "B", "Code": "C1"})
    assert (r.code, r.field) == ("DUPLICATE_VALUE", "Code") and a in r.error
    assert "C1" not in r.error
    b = one(store, "Accounts", {"Name": "B", "Code": "C2"}).dest_id
    [u] = store.update("Accounts", [WriteItem("k", None, {"Code": "C1"}, dest_id=b)])
    assert u.code == "DUPLICATE_VALUE"
    # re-saving its own value is fine, and freeing a value makes it available
    [u] = store.update("Accounts", [WriteItem("k", None, {"Code": "C2"}, dest_id=b)])
    assert u.ok
    store.delete("Accounts", [a])
    assert one(store, "Accounts", {"Name": "C", "Code": "C1"}).ok
    # schema-level external id fields are unique too
    assert one(store, "Contacts", {"Last_Name": "A", "Legacy_Id": "L"}).ok
    assert one(store, "Contacts", {"Last_Name": "B", "Legacy_Id": "L"}).code == "DUPLICATE_VALUE"


def test_update_missing_and_deleted(store):
    [r] = store.update("Contacts", [WriteItem("k", None, {"Last_Name": "x"}, dest_id="nope")])
    assert r.code == "NOT_FOUND"
    rid = one(store, "Contacts", {"Last_Name": "A"}).dest_id
    store.delete("Contacts", [rid])
    [r] = store.update("Contacts", [WriteItem("k", None, {"Last_Name": "x"}, dest_id=rid)])
    assert r.code == "ENTITY_IS_DELETED"


# ---------------------------------------------------------------- recycle bin

def test_delete_moves_to_recycle_bin_and_restore(store):
    a = acct(store, ext="A1")
    b = acct(store, ext="A2")
    before = store.snapshot()
    res = store.delete("Accounts", [a, "missing"])
    assert {r.key: (r.ok, r.code) for r in res} == {a: (True, None), "missing": (False, "NOT_FOUND")}
    assert store.count("Accounts") == 1
    assert store.get("Accounts", [a]) == {}
    assert store.find_by_external_id("Accounts", ["A1", "A2"]) == {"A2": b}
    assert [r["id"] for r in store.recycle_bin("Accounts")] == [a]
    assert store.delete("Accounts", [a])[0].code == "ENTITY_IS_DELETED"
    [r] = store.restore("Accounts", [a])
    assert r.ok
    assert store.snapshot() == before
    assert store.recycle_bin("Accounts") == []
    assert store.restore("Accounts", [a])[0].code == "NOT_FOUND"


def test_restore_conflicts_with_a_new_holder_of_the_external_id(store):
    a = acct(store, ext="A1")
    store.delete("Accounts", [a])
    acct(store, ext="A1")
    assert store.restore("Accounts", [a])[0].code == "DUPLICATE_VALUE"


# ---------------------------------------------------------------- attachments

def test_attachments_hash_size_and_limit(zoho, tmp_path):
    rid = one(zoho, "Contacts", {"Last_Name": "S"}).dest_id
    small = tmp_path / "small.txt"
    small.write_bytes(b"x" * 100)
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 101)
    r = zoho.upload_attachment("Contacts", rid, "small.txt", small, key="att1")
    assert (r.key, r.ok) == ("att1", True)
    r = zoho.upload_attachment("Contacts", rid, "big.bin", big, key="att2")
    assert (r.key, r.ok, r.code) == ("att2", False, "FILE_TOO_LARGE")
    r = zoho.upload_attachment("Contacts", "contacts-999999", "small.txt", small, key="att3")
    assert r.code == "NOT_FOUND"
    r = zoho.upload_attachment("Contacts", rid, "gone.txt", tmp_path / "gone.txt", key="att4")
    assert r.code == "FILE_NOT_FOUND"
    import hashlib
    [att] = zoho.attachments("Contacts", rid)
    assert (att["name"], att["size"], att["sha256"]) == (
        "small.txt", 100, hashlib.sha256(b"x" * 100).hexdigest())
    snap = zoho.snapshot()["objects"]["Contacts"][rid]["attachments"]
    assert snap == [{"name": "small.txt", "size": 100, "sha256": att["sha256"]}]


def test_attachments_need_an_object_that_takes_them(store, tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("hi")
    rid = one(store, "Contacts", {"Last_Name": "S"}).dest_id
    r = store.upload_attachment("Contacts", rid, "a.txt", f, key="k")
    assert r.code == "OPERATION_NOT_ALLOWED"
    a = acct(store)
    assert store.upload_attachment("Accounts", a, "a.txt", f, key="k").ok


# ---------------------------------------------------------------- zoho realism, notes, listing

def test_zoho_standard_schema_end_to_end(zoho):
    [user] = zoho.list_users()
    acc = one(zoho, "Accounts", {"Account_Name": "Smile Dental", "Owner": user.id,
                                 "Annual_Revenue": "125000.00"}, ext="CL-1")
    assert acc.ok, acc
    con = one(zoho, "Contacts", {"Last_Name": "Smith", "First_Name": "Ann",
                                 "Account_Name": acc.dest_id, "Email": "ann@example.com",
                                 "Date_of_Birth": "1980-02-01"}, ext="P-1")
    assert con.ok, con
    assert one(zoho, "Contacts", {"First_Name": "No last name"}).code == "REQUIRED_FIELD_MISSING"
    assert one(zoho, "Contacts", {"Last_Name": "S", "Full_Name": "x"}).code == "READ_ONLY_FIELD"
    assert one(zoho, "Contacts", {"Last_Name": "S", "Created_Time": "2020-01-01T00:00:00+00:00"}
               ).code == "READ_ONLY_FIELD"
    assert one(zoho, "Contacts", {"Last_Name": "S", "Salutation": "Sir"}).code == "INVALID_PICKLIST"
    assert one(zoho, "Deals", {"Deal_Name": "Implant", "Stage": "Qualification",
                               "Contact_Name": con.dest_id, "Amount": 1200}).ok
    # notes are just records of a Notes-like object, linked by a lookup
    note = one(zoho, "Notes", {"Note_Content": "Allergic to penicillin", "Parent_Id": con.dest_id})
    assert note.ok, note
    assert one(zoho, "Notes", {"Note_Content": "orphan"}).code == "REQUIRED_FIELD_MISSING"
    assert one(zoho, "Notes", {"Note_Content": "x", "Parent_Id": "contacts-999999"}
               ).code == "INVALID_REFERENCE"
    assert zoho.count("Notes") == 1


def test_list_records_and_modified_since(store):
    a = acct(store, "A", ext="X")
    b = acct(store, "B")
    mid = store.get("Accounts", [b])[b]["$modified_at"]
    store.update("Accounts", [WriteItem("k", None, {"Name": "A2"}, dest_id=a)])
    recs = list(store.list_records("Accounts"))
    assert [(r["id"], r["$external_id"], r["Name"]) for r in recs] == [(a, "X", "A2"),
                                                                      (b, None, "B")]
    assert [r["id"] for r in store.list_records("Accounts", modified_since=mid)] == [a, b]
    later = (datetime.fromisoformat(mid) + timedelta(microseconds=1)).isoformat()
    assert [r["id"] for r in store.list_records("Accounts", modified_since=later)] == [a]


# ---------------------------------------------------------------- snapshots

def _load(store: SandboxStore) -> None:
    a = acct(store, "A", ext="A1")
    store.create("Contacts", [WriteItem(f"c{i}", f"C{i}", {"Last_Name": f"N{i}", "Account": a})
                              for i in range(5)])


def test_snapshot_equal_for_same_writes_and_differs_otherwise():
    s1, s2 = SandboxStore(small_schema()), SandboxStore(small_schema())
    _load(s1)
    _load(s2)
    s2.find_by_external_id("Contacts", ["C1"])  # reads do not change the snapshot
    assert s1.snapshot() == s2.snapshot()
    [r] = s2.update("Contacts", [WriteItem("k", None, {"Notes": "changed"},
                                           dest_id="contacts-000001")])
    assert r.ok
    assert s1.snapshot() != s2.snapshot()
    s2.update("Contacts", [WriteItem("k", None, {"Notes": None}, dest_id="contacts-000001")])
    assert s1.snapshot() == s2.snapshot()  # timestamps are not part of a snapshot
    s2.delete("Contacts", ["contacts-000002"])
    assert s1.snapshot() != s2.snapshot()
    snap = s1.snapshot()
    assert snap["objects"]["Contacts"]["contacts-000001"] == {
        "id": "contacts-000001", "external_id": "C0", "fields": {"Last_Name": "N0", "Account": "accounts-000001"},
        "attachments": []}


def _load_with_retries(store: SandboxStore) -> None:
    """An executor-like loop: upsert batches, re-send what failed (INJECTED items, or the whole
    batch on a TransientError, whose outcome may be unknown) until everything is in."""
    batches = [("Accounts", [WriteItem(f"A{i}", f"A{i}", {"Name": f"N{i}"}) for i in range(6)])]
    for b in range(4):
        batches.append(("Contacts", [
            WriteItem(f"C{b}-{i}", f"C{b}-{i}",
                      {"Last_Name": f"L{b}{i}", "Account": ("Accounts", f"A{i % 6}")})
            for i in range(5)]))
    for obj, items in batches:
        pending = list(items)
        for _ in range(200):
            if not pending:
                break
            by_ext = store.find_by_external_id("Accounts", [f"A{i}" for i in range(6)])
            resolved = [WriteItem(i.key, i.external_id, {
                k: by_ext[v[1]] if isinstance(v, tuple) else v for k, v in i.record.items()})
                for i in pending]
            try:
                results = store.upsert(obj, resolved)
            except TransientError:
                continue
            failed = {r.key for r in results if not r.ok}
            assert all(r.code == "INJECTED" for r in results if not r.ok), results
            pending = [i for i in pending if i.key in failed]
        assert not pending


def test_crash_and_retry_run_equals_crash_free_run_by_external_id():
    clean = SandboxStore(small_schema())
    _load_with_retries(clean)
    faulty = SandboxStore(small_schema(), faults=FaultPlan(
        5, record_error_rate=0.3, batch_failure_rate=0.1, timeout_rate=0.1,
        lost_response_rate=0.2, throttle_rate=0.1))
    _load_with_retries(faulty)
    assert any(k == "lost_response" for _, _, k, _ in faulty.faults.outcomes())
    assert clean.count("Contacts") == faulty.count("Contacts") == 20
    assert faulty.snapshot(by="external_id") == clean.snapshot(by="external_id")
    assert clean.snapshot(by="external_id")["objects"]["Contacts"]["C0-1"]["fields"] == {
        "Last_Name": "L01", "Account": "Accounts:A1"}
    with pytest.raises(ValueError):
        clean.snapshot(by="nope")


# ---------------------------------------------------------------- faults

def _drive(seed: int, calls: int = 40, **rates) -> tuple[list, list, dict]:
    s = SandboxStore(small_schema(), faults=FaultPlan(seed, **rates))
    outcomes = []
    for i in range(calls):
        items = [WriteItem(f"k{j}", f"E{i}-{j}", {"Name": "A"}) for j in range(3)]
        try:
            res = s.create("Accounts", items)
            outcomes.append(tuple((r.key, r.ok, r.code) for r in res))
        except TransientError as e:
            outcomes.append(("transient", str(e), e.maybe_committed, e.retry_after))
        except FatalError:
            outcomes.append(("fatal",))
    return outcomes, s.faults.outcomes(), s.snapshot()


RATES = dict(record_error_rate=0.2, batch_failure_rate=0.1, timeout_rate=0.1,
             lost_response_rate=0.1, throttle_rate=0.1, throttle_retry_after=2.5)


def test_fault_plan_is_deterministic_per_seed():
    a = _drive(11, **RATES)
    b = _drive(11, **RATES)
    assert a == b
    kinds = {k for _, _, k, _ in a[1]}
    assert {"ok", "throttle", "batch_failure", "timeout", "lost_response"} <= kinds
    assert any(errs for *_, errs in a[1])
    assert _drive(12, **RATES)[1] != a[1]
    # the global random module does not disturb a plan
    random.seed(0)
    assert _drive(11, **RATES)[0] == a[0]


def test_injected_record_errors_are_retryable_and_write_nothing():
    s = SandboxStore(small_schema(), faults=FaultPlan(3, record_error_rate=0.5))
    res = s.create("Accounts", [WriteItem(f"k{j}", f"E{j}", {"Name": "A"}) for j in range(20)])
    failed = [r for r in res if not r.ok]
    assert failed and len(failed) < 20
    assert all(r.code == "INJECTED" and r.retryable for r in failed)
    assert s.count("Accounts") == 20 - len(failed)
    assert s.find_by_external_id("Accounts", [f"E{j}" for j in range(20)]).keys() == {
        f"E{j}" for j, r in enumerate(res) if r.ok}


def test_lost_response_commits():
    s = SandboxStore(small_schema(), faults=FaultPlan(1, lost_response_rate=1.0))
    with pytest.raises(TransientError) as info:
        s.create("Accounts", [WriteItem("k", "E1", {"Name": "A"})])
    assert info.value.maybe_committed is True
    s.faults = None
    assert s.find_by_external_id("Accounts", ["E1"]) == {"E1": "accounts-000001"}


@pytest.mark.parametrize(("rate", "committed"), [("throttle_rate", False),
                                                  ("batch_failure_rate", False),
                                                  ("timeout_rate", True)])
def test_call_faults_write_nothing(rate, committed):
    s = SandboxStore(small_schema(),
                     faults=FaultPlan(1, throttle_retry_after=3.0, **{rate: 1.0}))
    for op in ("create", "upsert"):
        with pytest.raises(TransientError) as info:
            getattr(s, op)("Accounts", [WriteItem("k", "E1", {"Name": "A"})])
        assert info.value.maybe_committed is committed
        if rate == "throttle_rate":
            assert info.value.retry_after == 3.0
    assert s.count("Accounts") == 0  # reads are not faulted by default
    assert s.snapshot()["objects"] == {}
    assert s.stats.throttled == (2 if rate == "throttle_rate" else 0)


def test_fatal_after_n_calls():
    s = SandboxStore(small_schema(), faults=FaultPlan(1, fatal_after_calls=2))
    acct(s)
    acct(s)
    for _ in range(3):
        with pytest.raises(FatalError):
            acct(s)
    assert s.count("Accounts") == 2  # reads do not count towards the quota


def test_read_faults_when_enabled():
    s = SandboxStore(small_schema(), faults=FaultPlan(1, timeout_rate=1.0, read_faults=True))
    with pytest.raises(TransientError):
        s.count("Accounts")
    with pytest.raises(TransientError):
        s.find_by_external_id("Accounts", ["x"])


def test_fault_plan_rejects_bad_rates():
    with pytest.raises(ValueError):
        FaultPlan(1, throttle_rate=0.6, timeout_rate=0.6)
    with pytest.raises(ValueError):
        FaultPlan(1, record_error_rate=1.5)


def test_stats_count_calls_and_records(store):
    store.create("Accounts", [WriteItem("a", None, {"Name": "A"}), WriteItem("b", None, {})])
    store.count("Accounts")
    assert store.stats.calls == 2
    assert store.stats.records_written == 1
    assert store.stats.by_operation == {"create": 1, "count": 1}


# ---------------------------------------------------------------- threads and persistence

def test_two_threads_writing_distinct_keys():
    s = SandboxStore(small_schema())
    errors: list[BaseException] = []

    def worker(prefix: str) -> None:
        try:
            for i in range(40):
                items = [WriteItem(f"{prefix}{i}-{j}", f"{prefix}{i}-{j}", {"Name": "A"})
                         for j in range(5)]
                assert all(r.ok for r in s.upsert("Accounts", items))
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(p,)) for p in "xy"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert s.count("Accounts") == 400
    ids = [r["id"] for r in s.list_records("Accounts")]
    assert len(set(ids)) == 400


def test_persistence_reopen_same_snapshot(tmp_path: Path):
    path = tmp_path / "sandbox.db"
    f = tmp_path / "a.txt"
    f.write_text("hello")
    s = SandboxStore(small_schema(), path)
    _load(s)
    s.upload_attachment("Accounts", "accounts-000001", "a.txt", f, key="att")
    s.delete("Contacts", ["contacts-000003"])
    snap = s.snapshot()
    s.close()
    with SandboxStore(small_schema(), path) as s2:
        assert s2.snapshot() == snap
        assert [r["id"] for r in s2.recycle_bin("Contacts")] == ["contacts-000003"]
        # counters survive: new ids and clock ticks continue
        assert acct(s2, "B") == "accounts-000002"
        recs = {r["id"]: r for r in s2.list_records("Accounts")}
        assert recs["accounts-000002"]["$created_at"] > recs["accounts-000001"]["$created_at"]
        assert [u.id for u in s2.list_users()] == ["user-000001"]  # no second default user
