"""Salesforce describe loader -> normalised schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime.dialects import get_dialect
from runtime.schema.io import SchemaLoadError
from runtime.schema.model import FieldType

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "metadata"
SF = get_dialect("salesforce")


def _patient(warnings=None):
    payload = json.loads((FIX / "salesforce_patient_describe.json").read_text())
    return SF.load_metadata(payload, source_name="describe.json", warnings=warnings).object("Patient__c")


def test_custom_object_describe():
    warnings = []
    obj = _patient(warnings)
    assert obj.custom and obj.label == "Patient" and obj.vendor["key_prefix"] == "a05"
    assert obj.capabilities.upsert and obj.capabilities.attachments
    f = {x.api_name: x for x in obj.fields}
    assert f["Id"].type == FieldType.id and f["Id"].read_only
    assert f["OwnerId"].type == FieldType.owner and not f["OwnerId"].required  # defaultedOnCreate
    assert f["Name"].required and f["Name"].vendor["nameField"]
    ext = f["Source_System_ID__c"]
    assert ext.external_id and ext.unique and ext.custom and ext.max_length == 40
    assert f["Contact__c"].required and f["Contact__c"].create_only and f["Contact__c"].lookup_targets == ["Contact"]
    assert not f["Consent__c"].required  # booleans are never required
    assert f["Gender__c"].picklist_values == ["Male", "Female", "U"]  # inactive "Other" dropped
    assert f["Gender__c"].vendor["labels"] == {"U": "Unknown"}
    assert f["Gender__c"].vendor["restricted"] is True and f["Gender__c"].vendor["default_value"] == "U"
    assert (f["Balance__c"].precision, f["Balance__c"].scale) == (16, 2)
    assert f["Age__c"].read_only and not f["Age__c"].required  # calculated
    assert f["CreatedDate"].audit and f["CreatedDate"].read_only
    assert f["Shape__c"].type == FieldType.unknown
    assert [w.json_path for w in warnings] == ["$.fields[10].type"]


def test_list_and_bundle_forms():
    payload = json.loads((FIX / "salesforce_patient_describe.json").read_text())
    assert SF.load_metadata([payload], source_name="x").object_names() == ["Patient__c"]
    del payload["name"]
    schema = SF.load_metadata({"objects": {"Patient__c": payload}}, source_name="x")
    assert schema.object("Patient__c").field("Name").required


def test_shared_examples(shared_dir):
    ex = json.loads((shared_dir / "crm" / "metadata_examples" / "salesforce_fields_example.json").read_text())
    warnings = []
    obj = SF.load_metadata(ex, source_name="whizbang", warnings=warnings).object("Whizbang")
    assert warnings == []
    assert len(obj.fields) == 30
    f = {x.api_name: x for x in obj.fields}
    assert f["Auto_Number"].read_only  # autoNumber
    assert f["CreateableButNotUpdateableField"].create_only
    assert not f["UpdateableButNotCreateableField"].read_only
    assert f["ParentWhizbang__c"].lookup_targets == ["Whizbang"]
    assert f["Picklist_Multiselect_Field"].type == FieldType.multipicklist
    assert [x.api_name for x in obj.fields if x.audit] == ["CreatedDate", "CreatedById", "LastModifiedDate",
                                                             "LastModifiedById"]
    contact = json.loads((shared_dir / "data" / "clinic-sources" / "crm_meta"
                          / "salesforce_contact_describe_fields_extract.json").read_text())
    c = SF.load_metadata(contact, source_name="contact").object("Contact")
    assert [x.api_name for x in c.fields if x.required] == ["LastName"]
    assert c.field("AccountId").lookup_targets == ["Account"]
    assert c.field("MailingAddress").type == FieldType.object and c.field("MailingAddress").read_only
    assert c.field("Salutation").picklist_values[:2] == ["Mr.", "Ms."]


@pytest.mark.parametrize(
    ("payload", "json_path", "needle"),
    [
        ({"fields": []}, "$.name", "missing required key 'name'"),
        ({"name": "X"}, "$.fields", "missing required key 'fields'"),
        ({"name": "X", "fields": [{"type": "string"}]}, "$.fields[0].name", "missing"),
        ({"name": "X", "fields": [{"name": "A"}]}, "$.fields[0].type", "missing"),
        ({"name": "X", "fields": [{"name": "A", "type": "string", "nillable": "no"}]}, "$.fields[0].nillable",
         "expected true or false"),
        ({"name": "X", "fields": [{"name": "A", "type": "reference", "referenceTo": "Account"}]},
         "$.fields[0].referenceTo", "expected an array"),
        ({"name": "X", "fields": [{"name": "A", "type": "picklist", "picklistValues": [{"label": "a"}]}]},
         "$.fields[0].picklistValues[0].value", "missing"),
        ({"objects": [{"name": "X", "fields": [None]}]}, "$.objects[0].fields[0]", "got null"),
    ],
    ids=["no-name", "no-fields", "field-no-name", "field-no-type", "bad-bool", "bad-refs",
         "bad-picklist", "null-field"],
)
def test_malformed(payload, json_path, needle):
    with pytest.raises(SchemaLoadError) as info:
        SF.load_metadata(payload, source_name="bad")
    assert (info.value.json_path, info.value.path) == (json_path, "bad")
    assert needle in info.value.message
