"""Freshsales and Pipedrive field-metadata loaders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime.dialects import get_dialect
from runtime.schema.io import SchemaLoadError
from runtime.schema.model import FieldType

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "metadata"
FS = get_dialect("freshsales")
PD = get_dialect("pipedrive")


def _load(name):
    return json.loads((FIX / name).read_text())


# ---- Freshsales --------------------------------------------------------------------------------

@pytest.mark.parametrize("object_name", [None, "contacts", "Contact"])
def test_freshsales_contacts(object_name):
    warnings = []
    schema = FS.load_metadata(_load("freshsales_contacts_fields.json"), source_name="fs",
                              object_name=object_name, warnings=warnings)
    assert schema.object_names() == ["Contact"]  # base_model or entity name
    f = {x.api_name: x for x in schema.object("Contact").fields}
    assert f["last_name"].required and not f["first_name"].required
    stage = f["lifecycle_stage_id"]
    assert stage.type == FieldType.picklist and stage.required
    assert stage.picklist_values == ["Lead", "Customer"]
    assert stage.vendor["choices"] == {"Lead": 17001007403, "Customer": 17001007404}  # sent as ids
    assert f["owner_id"].type == FieldType.owner and f["owner_id"].picklist_values == []
    assert f["sales_account_id"].lookup_targets == ["SalesAccount"]
    assert f["cf_nhs_number"].custom and f["cf_nhs_number"].vendor["custom_field"]
    assert f["cf_treatment_interest"].type == FieldType.multipicklist
    assert f["cf_recall_due"].type == FieldType.date
    assert f["created_at"].audit and f["created_at"].read_only
    assert warnings == []


def test_freshsales_unknown_type_and_empty_dropdown_warn():
    warnings = []
    payload = {"fields": [{"id": 1, "name": "cf_x", "type": "signature"},
                          {"id": 2, "name": "cf_y", "type": "dropdown", "choices": []}]}
    obj = FS.load_metadata(payload, source_name="fs", object_name="deals", warnings=warnings).object("Deal")
    assert obj.field("cf_x").type == FieldType.unknown
    assert [w.json_path for w in warnings] == ["$.fields[0].type", "$.fields[1].choices"]


@pytest.mark.parametrize(
    ("payload", "object_name", "json_path", "needle"),
    [
        ({"fields": [{"name": "a", "type": "text"}]}, None, "$", "pass object_name"),
        ({"fields": [{"type": "text"}]}, "contacts", "$.fields[0].name", "missing"),
        ({"fields": [{"name": "a"}]}, "contacts", "$.fields[0].type", "missing"),
        ({"fields": [{"name": "a", "type": "dropdown", "choices": [{"value": "x"}]}]}, "contacts",
         "$.fields[0].choices[0].id", "choice id"),
        ({"fields": [{"name": "a", "type": "text", "required": 1}]}, "contacts", "$.fields[0].required",
         "expected true or false"),
        ({"contacts": []}, "contacts", "$.fields", "missing required key 'fields'"),
    ],
    ids=["no-entity", "no-name", "no-type", "choice-without-id", "bad-required", "wrong-shape"],
)
def test_freshsales_malformed(payload, object_name, json_path, needle):
    with pytest.raises(SchemaLoadError) as info:
        FS.load_metadata(payload, source_name="fs", object_name=object_name)
    assert info.value.json_path == json_path and needle in info.value.message


# ---- Pipedrive ---------------------------------------------------------------------------------

def test_pipedrive_v2_fields():
    warnings = []
    schema = PD.load_metadata(_load("pipedrive_person_fields_v2.json"), source_name="pd",
                              object_name="personFields", warnings=warnings)
    obj = schema.object("Person")
    f = {x.api_name: x for x in obj.fields}
    assert f["name"].required and f["name"].max_length == 255
    assert f["org_id"].type == FieldType.lookup and f["org_id"].lookup_targets == ["Organization"]
    assert f["owner_id"].type == FieldType.owner and f["owner_id"].lookup_targets == ["User"]
    assert f["add_time"].audit and f["add_time"].create_only
    bal = f["Outstanding_Balance"]  # custom fields are named by their (API-safe) names
    assert bal.type == FieldType.currency and bal.custom and bal.label == "Outstanding Balance"
    assert bal.vendor["key"] == "3f1c2d9a8b7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a"
    assert f["Last_Payment_Date"].type == FieldType.date
    procs = f["Proposed_Procedures"]
    assert procs.type == FieldType.multipicklist
    assert procs.vendor["options"] == {"Implant": 31, "Crown": 32, "Root canal": 33}
    assert f["Patient_status"].required and f["Patient_status"].picklist_values == ["Active", "Inactive"]
    assert f["Patient_Status_2"].vendor["key"].startswith("e11e")  # name collision -> suffixed
    assert f["Clinical_notes"].type == FieldType.textarea and f["Clinical_notes"].max_length == 65_535
    assert f["Mood_ring"].type == FieldType.unknown
    assert [w.json_path for w in warnings] == ["$.data[8]", "$.data[10].field_type"]
    assert not obj.capabilities.upsert


def test_pipedrive_shared_examples(shared_dir):
    ex = shared_dir / "crm" / "metadata_examples"
    v2 = PD.load_metadata(json.loads((ex / "pipedrive_fields_example.json").read_text()),
                          source_name="v2", object_name="Person").object("Person")
    assert v2.field_names() == ["name", "phone", "Lead_Source"]
    assert v2.field("name").required and v2.field("phone").type == FieldType.phone
    assert v2.field("Lead_Source").vendor == {"key": "40characterhashforcustomfieldidentifier",
                                              "field_type": "enum", "options": {"Inbound": 1, "Outbound": 2}}
    v1 = PD.load_metadata(json.loads((ex / "pipedrive_fields_example_v1.json").read_text()),
                          source_name="v1", object_name="persons").object("Person")
    assert v1.field_names() == ["title", "Customer_Type"]
    ct = v1.field("Customer_Type")
    assert ct.required and ct.custom and ct.vendor["key"] == "9dc80c50d78a15643bfc4ca79d76156a73a1ca0e"
    assert ct.vendor["options"]["Company"] == 191


def test_pipedrive_v1_inactive_fields_are_skipped():
    payload = {"data": [{"key": "abc", "name": "Old", "field_type": "varchar", "edit_flag": True,
                         "active_flag": False},
                        {"key": "name", "name": "Name", "field_type": "varchar", "mandatory_flag": True}]}
    obj = PD.load_metadata(payload, source_name="x", object_name="Person").object("Person")
    assert obj.field_names() == ["name"]


@pytest.mark.parametrize(
    ("payload", "object_name", "json_path", "needle"),
    [
        ({"data": []}, None, "$", "pass object_name"),
        ({"success": True}, "Person", "$.data", "missing required key 'data'"),
        ({"success": False, "error": "unauthorized access", "data": None}, "Person", "$.success", "unauthorized"),
        ({"data": {"field_code": "x"}}, "Person", "$.data", "expected an array"),
        ({"data": [{"field_code": "x", "field_name": "X"}]}, "Person", "$.data[0].field_type", "missing"),
        ({"data": [{"key": "x", "field_type": "varchar"}]}, "Person", "$.data[0].name", "missing"),
        ({"data": [{"field_code": "h", "field_name": "!!", "field_type": "varchar", "is_custom_field": True}]},
         "Person", "$.data[0].field_name", "no letters or digits"),
        ({"data": [{"field_code": "h", "field_name": "E", "field_type": "enum", "options": [{"label": "a"}]}]},
         "Person", "$.data[0].options[0].id", "missing"),
    ],
    ids=["no-entity", "no-data", "error-response", "data-object", "no-type", "v1-no-name", "unnameable",
         "option-without-id"],
)
def test_pipedrive_malformed(payload, object_name, json_path, needle):
    with pytest.raises(SchemaLoadError) as info:
        PD.load_metadata(payload, source_name="pd", object_name=object_name)
    assert info.value.json_path == json_path and needle in info.value.message
