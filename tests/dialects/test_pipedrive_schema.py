"""``metadata_bundle`` and ``apply_schema_changes`` on the Pipedrive client: the vendor's real
``*Fields`` examples and the sandbox's own responses both load; custom fields are created through
``POST /api/v2/{entity}Fields`` and then written by name (the hash key resolved), survive a
sandbox restart; activity fields (no API) fail with the admin step; custom objects are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime.destinations.base import User, WriteItem
from runtime.dialects import UnsupportedByDialect, get_dialect
from runtime.dialects.pipedrive import open_sandbox

SHARED = Path(__file__).resolve().parents[3] / "shared" / "crm" / "metadata_examples"
USERS = [User("21000001", "pm@example.com", "Practice Manager")]
CHANGES = [
    {"action": "create_field", "object": "Person", "field": "Gender", "type": "picklist",
     "details": {"values": ["Male", "Female"], "label": "Gender"}},
    {"action": "create_field", "object": "Person", "field": "Unit_Price",
     "type": "currency(10, 2)", "details": {"label": "Unit Price (GBP)"}},
    {"action": "create_field", "object": "Deal", "field": "Source_System_ID",
     "type": "text(50)", "details": {"label": "Source System ID", "external_id": True}},
    {"action": "create_field", "object": "Activity", "field": "Recall_Type", "type": "text(20)",
     "details": {}},
]


def _open(tmp_path: Path):
    return open_sandbox(get_dialect("pipedrive").standard_schema(), tmp_path / "org.sqlite",
                        USERS, {"clock": "virtual"})


@pytest.mark.parametrize(("name", "obj", "std"), [
    ("pipedrive_fields_example.json", "Person", "name"),  # GET /api/v2/personFields
    ("pipedrive_fields_example_v1.json", "Deal", "title"),  # GET /v1/dealFields
])
def test_vendor_examples_load(name, obj, std):
    path = SHARED / name
    if not path.is_file():
        pytest.skip(f"{path} is absent (../shared is not checked out next to the repo)")
    warnings: list = []
    schema = get_dialect("pipedrive").load_metadata(
        json.loads(path.read_text("utf-8")), source_name=name, object_name=obj,
        warnings=warnings)
    person = schema.object(obj)
    assert person is not None and person.field(std) is not None
    assert any(f.custom for f in person.fields)
    assert all(f.vendor.get("key") for f in person.fields if f.custom)  # the hash, to write by


def test_create_fields_then_write_them_by_name(tmp_path):
    c = _open(tmp_path)
    try:
        before = c.metadata_bundle(["Person", "Deal"])
        assert set(before["objects"]) == {"Person", "Deal"}
        assert not any(f["is_custom_field"] for f in before["objects"]["Person"]["data"])
        results = c.apply_schema_changes(CHANGES)
        assert [r["status"] for r in results] == ["created", "created", "created", "failed"]
        assert "Settings > Data fields" in results[3]["message"]
        bundle = c.metadata_bundle(["Person", "Deal"])
        schema = get_dialect("pipedrive").load_metadata(bundle, source_name="sandbox")
        gender = schema.object("Person").field("Gender")
        assert gender.custom and len(gender.vendor["key"]) == 40
        assert set(gender.vendor["options"]) == {"Male", "Female"}
        price = schema.object("Person").field("Unit_Price")
        assert price is not None and price.vendor["field_type"] == "monetary"
        raw = {f["field_name"]: f for f in bundle["objects"]["Deal"]["data"]}
        assert raw["Source System ID"]["field_type"] == "varchar"  # created with its label
        r = c.create("Person", [WriteItem("p:1", "p:1", {"name": "Ann", "Gender": "Female",
                                                          "Unit_Price": 12.5})])[0]
        assert r.ok, r
        stored = c.sandbox.store.get("Person", [r.dest_id])[r.dest_id]
        assert stored["Gender"] == "Female" and float(stored["Unit_Price"]) == 12.5
        d = c.create("Deal", [WriteItem("d:1", "d:1", {"title": "Invoice 1"})])[0]
        assert c.find_by_external_id("Deal", ["d:1"]) == {"d:1": d.dest_id}
        again = c.apply_schema_changes(CHANGES[:1])  # the same name twice: refused
        assert again[0]["status"] == "failed" and "already exists" in again[0]["message"]
    finally:
        c.close()
    reopened = _open(tmp_path)  # a served org keeps its fields across a restart
    try:
        assert reopened.org_fields("Person")["Gender"].vendor["key"] == gender.vendor["key"]
    finally:
        reopened.close()


def test_custom_objects_are_refused_before_anything_is_created(tmp_path):
    c = _open(tmp_path)
    try:
        with pytest.raises(UnsupportedByDialect, match="custom objects"):
            c.apply_schema_changes([{"action": "create_module", "object": "Treatment_Plan"},
                                    CHANGES[0]])
        assert "Gender" not in c.org_fields("Person")
    finally:
        c.close()
