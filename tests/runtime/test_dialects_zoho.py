"""Zoho metadata loader: fields, layouts and modules responses -> normalised schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime.dialects import get_dialect
from runtime.schema.io import SchemaLoadError
from runtime.schema.model import FieldType

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "metadata"
ZOHO = get_dialect("zoho")


def _fix(name):
    return json.loads((FIX / name).read_text())


def _contacts(warnings=None, **extra):
    payload = {"fields": _fix("zoho_contacts_fields.json"), **extra}
    return ZOHO.load_metadata({"objects": {"Contacts": payload}}, source_name="snap",
                              warnings=warnings).object("Contacts")


def test_fields_response():
    warnings = []
    schema = ZOHO.load_metadata(_fix("zoho_contacts_fields.json"), source_name="f.json",
                                object_name="Contacts", warnings=warnings)
    obj = schema.object("Contacts")
    f = {x.api_name: x for x in obj.fields}
    assert f["Last_Name"].required and f["Last_Name"].max_length == 80
    # field_read_only is a UI/profile flag; operation_type says the API can write Owner
    assert f["Owner"].type == FieldType.owner and not f["Owner"].read_only
    assert f["Owner"].lookup_targets == ["Users"] and f["Owner"].vendor["field_read_only"]
    assert f["Email"].type == FieldType.email and f["Email"].unique
    # used values only, display_value sent, "-None-" dropped, differing actual_value kept
    assert f["Lead_Source"].picklist_values == ["Referral", "Web Download"]
    assert f["Lead_Source"].vendor["actual_values"] == {"Referral": "External Referral"}
    assert f["Account_Name"].type == FieldType.lookup and f["Account_Name"].lookup_targets == ["Accounts"]
    assert f["NHS_Number"].custom and f["NHS_Number"].external_id and f["NHS_Number"].vendor["column_name"] == "CONTACTCF1"
    assert f["Patient_Number"].read_only and not f["Patient_Number"].required
    assert f["First_Visit"].create_only and not f["First_Visit"].read_only
    assert (f["Balance"].type, f["Balance"].precision, f["Balance"].scale) == (FieldType.currency, 16, 2)
    assert f["Created_Time"].audit and f["Created_Time"].read_only
    assert f["Consent_Status"].type == FieldType.unknown
    assert [(w.json_path, w.source) for w in warnings] == [("$.fields[10].data_type", "f.json")]
    assert "hologram" in warnings[0].message


def test_layouts_override_required():
    obj = _contacts(layouts=_fix("zoho_contacts_layouts.json"))
    f = {x.api_name: x for x in obj.fields}
    assert f["Email"].required  # required in the Standard (first) layout
    assert not f["Lead_Source"].required  # only in the Referrals layout
    assert f["Lead_Source"].vendor["required_in_layouts"] == ["Referrals"]
    assert not f["Patient_Number"].required  # read-only fields are never required
    other = _contacts(layouts=_fix("zoho_contacts_layouts.json"), layout="Referrals")
    assert other.field("Lead_Source").required and not other.field("Email").required


def test_modules_response_and_bundle():
    schema = ZOHO.load_metadata(_fix("zoho_modules.json"), source_name="m")
    assert schema.object_names() == ["Contacts", "Patient_Details"]  # api_supported=false dropped
    custom = schema.object("Patient_Details")
    assert custom.custom and custom.label == "Patient Detail" and custom.plural_label == "Patient Details"
    bundle = {"modules": _fix("zoho_modules.json"),
              "objects": {"Contacts": {"fields": _fix("zoho_contacts_fields.json")}}}
    merged = ZOHO.load_metadata(bundle, source_name="b")
    assert merged.object("Contacts").label == "Contact"
    assert merged.object("Contacts").field("Last_Name").required
    assert merged.object("Patient_Details").fields == []


def test_shared_examples(shared_dir):
    ex = shared_dir / "crm" / "metadata_examples"
    warnings = []
    leads = ZOHO.load_metadata(json.loads((ex / "zoho_fields_example.json").read_text()),
                               source_name="zoho_fields_example.json", object_name="Leads",
                               warnings=warnings).object("Leads")
    assert warnings == []
    assert leads.field_names() == ["Address_1_Coordinates_Latitude", "Address_1_Coordinates_Longitude",
                                   "Owner", "Company", "First_Name"]
    lat = leads.field("Address_1_Coordinates_Latitude")
    assert (lat.type, lat.scale, lat.custom) == (FieldType.decimal, 9, True)
    assert leads.field("Company").max_length == 200
    assert leads.field("Owner").type == FieldType.owner and not leads.field("Owner").read_only
    who = json.loads((ex / "zoho_field_lookup_example.json").read_text())
    events = ZOHO.load_metadata({"fields": [who]}, source_name="x", object_name="Events").object("Events")
    assert events.field("Who_Id").lookup_targets == ["Contacts"]


@pytest.mark.parametrize(
    ("payload", "object_name", "json_path", "needle"),
    [
        ({"fields": [{"data_type": "text"}]}, "Leads", "$.fields[0].api_name", "missing required key 'api_name'"),
        ({"fields": [{"api_name": "A"}]}, "Leads", "$.fields[0].data_type", "missing required key 'data_type'"),
        ({"fields": {"api_name": "A"}}, "Leads", "$.fields", "expected an array"),
        ({"fields": [{"api_name": "A", "data_type": "text", "length": "long"}]}, "Leads",
         "$.fields[0].length", "expected an integer"),
        ({"fields": [{"api_name": "A", "data_type": "picklist", "pick_list_values": [{"type": "used"}]}]},
         "Leads", "$.fields[0].pick_list_values[0].display_value", "missing"),
        ({"fields": [{"api_name": "A", "data_type": "text", "system_mandatory": "yes"}]}, "Leads",
         "$.fields[0].system_mandatory", "expected true or false"),
        ({"fields": []}, None, "$", "pass object_name"),
        ({"data": []}, "Leads", "$.fields", "missing required key 'fields'"),
        ([1, 2], None, "$[0]", "expected an object"),
        ("fields", "Leads", "$", "expected an object, got a string"),
        ({"objects": {"Leads": {"fields": [], "layouts": {"layouts": [{"sections": [{"fields": [{}]}]}]}}}},
         None, '$.objects.Leads.layouts.layouts[0].sections[0].fields[0].api_name', "missing"),
        ({"modules": [{"module_name": "X"}]}, None, "$.modules[0].api_name", "missing"),
    ],
    ids=["no-api-name", "no-data-type", "fields-object", "bad-length", "bad-picklist", "bad-bool",
         "no-object-name", "wrong-top-key", "top-list", "top-string", "bad-layout", "bad-module"],
)
def test_malformed(payload, object_name, json_path, needle):
    with pytest.raises(SchemaLoadError) as info:
        ZOHO.load_metadata(payload, source_name="bad.json", object_name=object_name)
    assert info.value.json_path == json_path
    assert needle in info.value.message
    assert info.value.path == "bad.json"


def test_snapshot_round_trip(tmp_path):
    """`fmap schema pull` saves the loaded org; CI reloads the committed snapshot unchanged."""
    from runtime.schema.io import load_schema, save_schema

    bundle = {"modules": _fix("zoho_modules.json"),
              "objects": {"Contacts": {"fields": _fix("zoho_contacts_fields.json"),
                                       "layouts": _fix("zoho_contacts_layouts.json")}}}
    schema = ZOHO.load_metadata(bundle, source_name="org")
    for suffix in (".json", ".yaml"):
        assert load_schema(save_schema(schema, tmp_path / f"org{suffix}")) == schema
    merged = ZOHO.standard_schema().merged(schema)
    assert merged.object("Contacts").field("NHS_Number").external_id
    assert merged.object("Leads").field("Last_Name").required  # standard objects kept
