"""runtime.dialects: registry, declared capabilities, bundled standard schemas."""

from __future__ import annotations

import re

import pytest

from runtime.dialects import (
    Dialect,
    UnknownDialect,
    dialect_names,
    get_dialect,
)
from runtime.schema.model import FieldType

ALL = ["freshsales", "pipedrive", "salesforce", "zoho"]


def test_names():
    assert dialect_names() == ALL


@pytest.mark.parametrize(("name", "expected"), [
    ("zoho", "zoho"), ("Zoho", "zoho"), (" SALESFORCE ", "salesforce"), ("sfdc", "salesforce"),
    ("zoho-crm", "zoho"), ("freshworks", "freshsales"), ("pipedrive", "pipedrive"),
])
def test_lookup(name, expected):
    d = get_dialect(name)
    assert isinstance(d, Dialect) and d.name == expected
    assert get_dialect(expected) is d  # one instance per dialect


@pytest.mark.parametrize(("name", "suggestion"), [
    ("zoh", "zoho"), ("salesfroce", "salesforce"), ("pipdrive", "pipedrive"), ("freshsale", "freshsales"),
    ("sfcd", "salesforce"),
])
def test_unknown_suggests(name, suggestion):
    with pytest.raises(UnknownDialect) as info:
        get_dialect(name)
    assert info.value.suggestion == suggestion
    assert str(info.value) == f"unknown dialect {name!r}; did you mean {suggestion!r}?"


def test_unknown_without_suggestion_lists_known():
    with pytest.raises(UnknownDialect) as info:
        get_dialect("hubspot-xyz")
    assert info.value.suggestion is None
    assert "known dialects: freshsales, pipedrive, salesforce, zoho" in str(info.value)


CAPS = {
    # name: (batch_size, upsert, bulk?, attachment limit, rate-limit kind, exhausted status, sample id)
    "zoho": (100, "native", True, 100 * 1024**2, "credits_24h", 429, "5725767000000524157"),
    "salesforce": (200, "native", True, 2 * 1024**3, "requests_24h", 403, "001RM000003oCprYAE"),
    "freshsales": (1, "native", True, 150 * 1024**2, "requests_hour", 429, "17001007403"),
    "pipedrive": (1, "none", False, None, "token_budget", 429, "12345"),
}


@pytest.mark.parametrize("name", ALL)
def test_capabilities(name):
    d = get_dialect(name)
    batch, upsert, bulk, limit, kind, status, sample_id = CAPS[name]
    assert (d.batch_size, d.upsert, d.bulk is not None, d.attachment_limit_bytes) == (batch, upsert, bulk, limit)
    assert d.rate_limit.kind == kind and d.rate_limit.exhausted_status == status
    assert d.rate_limit.default_plan in d.rate_limit.plans
    assert re.match(d.id_format, sample_id)
    assert not re.match(d.id_format, "not an id!")


def test_rate_limit_numbers():
    zoho = get_dialect("zoho").rate_limit.plans
    assert (zoho["enterprise"].base, zoho["enterprise"].per_user, zoho["enterprise"].max) == (50_000, 1_000, 5_000_000)
    assert get_dialect("pipedrive").rate_limit.plans["premium"].multiplier == 5
    assert get_dialect("freshsales").rate_limit.plans["pro"].per_hour == 2_000


def test_audit_and_owner_hints():
    sf = get_dialect("salesforce")
    assert "Set Audit Fields upon Record Creation" in sf.audit_hint("Contact", "CreatedDate")
    assert sf.audit_hint("Contact", "LastName") is None
    assert sf.owner_field_for("Contact") == "OwnerId"
    assert get_dialect("zoho").owner_field_for("Patient_Details") == "Owner"
    assert get_dialect("pipedrive").owner_field_for("Note") == "user_id"
    assert get_dialect("salesforce").external_id_name("Source_System_ID") == "Source_System_ID__c"
    assert get_dialect("freshsales").external_id_name("source_id") == "cf_source_id"


# ---- bundled standard schemas -----------------------------------------------------------------

STANDARD = {
    "zoho": {
        "Leads": ["Last_Name"], "Contacts": ["Last_Name"], "Accounts": ["Account_Name"],
        "Deals": ["Deal_Name", "Stage"], "Tasks": ["Subject"],
        "Events": ["Event_Title", "Start_DateTime", "End_DateTime"],
        "Notes": ["Note_Content", "Parent_Id"], "Products": ["Product_Name"],
        "Invoices": ["Subject", "Account_Name", "Invoiced_Items"], "Attachments": ["File_Name", "Parent_Id"],
        "Users": ["last_name", "email", "role", "profile"],
    },
    "salesforce": {
        "Contact": ["LastName"], "Account": ["Name"], "Lead": ["LastName", "Company"], "Event": [],
        "Task": [], "User": ["Username", "LastName", "Email", "Alias", "CommunityNickname",
                             "TimeZoneSidKey", "LocaleSidKey", "EmailEncodingKey", "LanguageLocaleKey",
                             "ProfileId"],
        "Note": ["ParentId", "Title"], "ContentNote": ["Title"], "Attachment": ["ParentId", "Name", "Body"],
        "ContentVersion": ["Title", "PathOnClient", "VersionData"],
        "Opportunity": ["Name", "StageName", "CloseDate"],
    },
    "freshsales": {
        "Contact": ["last_name"], "Lead": ["last_name"], "SalesAccount": ["name"], "Deal": ["name", "amount"],
        "Task": ["title", "due_date", "targetable_type", "targetable_id"],
        "Appointment": ["title", "from_date", "end_date", "targetable_type", "targetable_id"],
        "Note": ["description", "targetable_type", "targetable_id"], "Product": ["name"], "User": [],
        "Document": ["file", "file_name", "targetable_type", "targetable_id"],
    },
    "pipedrive": {
        "Person": ["name"], "Organization": ["name"], "Deal": ["title"], "Activity": [],
        "Note": ["content"], "Product": ["name"], "User": [], "File": ["file"],
    },
}


@pytest.mark.parametrize("name", ALL)
def test_standard_schema_objects_and_required_fields(name):
    schema = get_dialect(name).standard_schema()
    assert schema.system == name and schema.kind == "target"
    for obj_name, required in STANDARD[name].items():
        obj = schema.object(obj_name)
        assert obj is not None, f"{name}: {obj_name} missing"
        assert sorted(f.api_name for f in obj.fields if f.required) == sorted(required), obj_name


@pytest.mark.parametrize("name", ALL)
def test_standard_schema_consistency(name):
    d = get_dialect(name)
    schema = d.standard_schema()
    for obj in schema.objects:
        names = obj.field_names()
        assert len(names) == len(set(names)), obj.api_name
        for f in obj.fields:
            if f.type in (FieldType.lookup, FieldType.owner):
                assert f.lookup_targets, (obj.api_name, f.api_name)
            if f.type == FieldType.picklist and f.picklist_values:
                assert len(set(f.picklist_values)) == len(f.picklist_values)
            assert not (f.required and f.read_only), (obj.api_name, f.api_name)
            if d.audit_hint(obj.api_name, f.api_name):
                assert f.audit, (obj.api_name, f.api_name)
        owner = d.owner_field_for(obj.api_name)
        if owner and obj.capabilities.createable:
            assert obj.field(owner) is not None, (obj.api_name, owner)
            assert obj.field(owner).type == FieldType.owner


@pytest.mark.parametrize(("name", "obj", "field", "targets"), [
    ("zoho", "Contacts", "Account_Name", ["Accounts"]),
    ("zoho", "Events", "Who_Id", ["Contacts"]),
    ("zoho", "Notes", "Parent_Id", None),
    ("salesforce", "Contact", "AccountId", ["Account"]),
    ("salesforce", "Event", "WhoId", ["Contact", "Lead"]),
    ("freshsales", "Contact", "sales_account_id", ["SalesAccount"]),
    ("pipedrive", "Person", "org_id", ["Organization"]),
    ("pipedrive", "Deal", "person_id", ["Person"]),
])
def test_standard_lookups(name, obj, field, targets):
    f = get_dialect(name).standard_schema().object(obj).field(field)
    assert f.type == FieldType.lookup
    if targets is not None:
        assert f.lookup_targets == targets
    else:
        assert {"Contacts", "Leads", "Accounts", "Deals"} <= set(f.lookup_targets)


def test_standard_audit_and_owner_fields():
    zoho = get_dialect("zoho").standard_schema()
    created = zoho.object("Contacts").field("Created_Time")
    assert created.audit and created.read_only
    assert zoho.object("Contacts").field("Owner").type == FieldType.owner
    sf = get_dialect("salesforce").standard_schema()
    assert sf.object("Contact").field("CreatedDate").audit
    assert sf.object("Contact").field("OwnerId").type == FieldType.owner
    pd = get_dialect("pipedrive").standard_schema()
    assert pd.object("Person").field("add_time").create_only
    assert pd.object("Person").capabilities.upsert is False
    assert get_dialect("zoho").standard_schema().object("Contacts").capabilities.upsert is True


def test_standard_schema_is_a_fresh_copy():
    d = get_dialect("zoho")
    d.standard_schema().object("Leads").fields.clear()
    assert d.standard_schema().object("Leads").field("Last_Name") is not None


def test_standard_schema_merges_with_a_snapshot():
    from runtime.schema.model import FieldSchema, ObjectSchema, SystemSchema

    snapshot = SystemSchema(system="zoho", objects=[
        ObjectSchema(api_name="Contacts", fields=[FieldSchema(api_name="NHS_Number", custom=True)]),
        ObjectSchema(api_name="Patient_Details", custom=True),
    ])
    merged = get_dialect("zoho").standard_schema().merged(snapshot)
    contacts = merged.object("Contacts")
    assert contacts.field("NHS_Number").custom and contacts.field("Last_Name").required
    assert merged.object("Patient_Details") is not None
