"""Salesforce metadata and schema changes: describe/describeGlobal through the client
(``metadata_bundle``) against the sandbox and the vendor's real describe example; the Metadata API
package ``emit_schema_package`` writes (parsed back, deterministic, names validated), deployed to
the sandbox's ``deployRequest``; ``apply_schema_changes`` refuses with the way to do it."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from runtime.dialects import get_dialect
from runtime.dialects.base import UnsupportedByDialect
from runtime.dialects.salesforce import emit_schema_package, open_sandbox
from runtime.dialects.salesforce.package import METADATA_NS, SchemaPackageError, read_package
from runtime.schema.changes import apply_changes
from runtime.schema.model import FieldType

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT.parent / "shared" / "crm" / "metadata_examples" / "salesforce_fields_example.json"
MAPPING = ROOT / "mappings" / "aeronaclinic_to_salesforce.fmap"
NS = {"m": METADATA_NS}
SF = get_dialect("salesforce")


@pytest.fixture(scope="module")
def changes():
    from compiler.compile import compile_path

    res = compile_path(MAPPING, display="mappings/aeronaclinic_to_salesforce.fmap")
    assert res.ok, [d.message for d in res.diagnostics]
    ns: dict = {}
    exec(compile(res.python, "sf_schema_plan", "exec"), ns)  # noqa: S102 (our own codegen)
    return [c.model_dump() if hasattr(c, "model_dump") else dict(c)
            for c in ns["PLAN"].schema_changes]


@pytest.fixture
def sf(tmp_path):
    c = open_sandbox(SF.standard_schema(), tmp_path / "org.sqlite", None, {})
    yield c
    c.close()


@pytest.mark.skipif(not EXAMPLE.exists(), reason="../shared/crm/metadata_examples is absent "
                    "(the vendor's describe example lives outside the repository)")
def test_load_metadata_accepts_the_vendor_describe_example():
    payload = json.loads(EXAMPLE.read_text("utf-8"))
    warnings: list = []
    schema = SF.load_metadata(payload, source_name=str(EXAMPLE), warnings=warnings)
    o = schema.object("Whizbang")
    assert o is not None and o.vendor["key_prefix"] == "a01" and len(o.fields) == 30
    ref = o.field("ParentWhizbang__c")
    assert ref.type == FieldType.lookup and ref.lookup_targets == ["Whizbang"]
    assert o.field("Picklist_Field").picklist_values
    assert o.field("Id").type == FieldType.id and o.field("Id").read_only


def test_metadata_bundle_from_the_sandbox_loads_back(sf):
    listed = {o["name"]: o for o in sf.describe_global()}
    assert listed["Contact"]["keyPrefix"] == "003" and listed["Account"]["createable"]
    bundle = sf.metadata_bundle(["Contact", "Account"])
    assert set(bundle["objects"]) == {"Contact", "Account"}
    d = bundle["objects"]["Contact"]
    assert {"name", "label", "keyPrefix", "fields", "childRelationships", "urls"} <= set(d)
    fields = {f["name"]: f for f in d["fields"]}
    assert fields["Id"]["type"] == "id" and fields["AccountId"]["type"] == "reference"
    assert fields["AccountId"]["referenceTo"] == ["Account"]
    assert fields["Fmap_External_ID__c"]["externalId"] is True
    loaded = SF.load_metadata(bundle, source_name="bundle")
    want = sf.schema().object("Contact")
    got = loaded.object("Contact")
    for f in want.fields:
        if f.type == FieldType.id:
            continue
        g = got.field(f.api_name)
        assert g is not None, f.api_name
        assert (g.type, g.required, g.external_id, sorted(g.lookup_targets),
                g.picklist_values) == (f.type, f.required, f.external_id,
                                       sorted(f.lookup_targets), f.picklist_values), f.api_name
    everything = sf.metadata_bundle([])
    assert "Contact" in everything["objects"] and "User" not in everything["objects"]


def test_metadata_bundle_leaves_out_objects_the_org_lacks(sf):
    """The contract (runtime/dialects/base.py): an object the org does not have is left out (a
    describe answering 404), so `fmap schema apply` counts it as missing instead of failing."""
    bundle = sf.metadata_bundle(["Contact", "Pet__c", "Contact"])
    assert list(bundle["objects"]) == ["Contact"]
    assert SF.load_metadata(bundle, source_name="bundle").object("Contact") is not None


def test_apply_schema_changes_says_to_emit_a_package(sf, changes):
    with pytest.raises(UnsupportedByDialect) as exc:
        sf.apply_schema_changes(changes)
    assert "--emit package" in str(exc.value) and "deploy" in str(exc.value)


def _xml(path: Path) -> ET.Element:
    return ET.fromstring(path.read_bytes())


def test_emitted_package_is_valid_metadata_xml(changes, tmp_path):
    paths = emit_schema_package(changes, tmp_path / "pkg", external_id_objects=["Account"])
    pkg = tmp_path / "pkg"
    assert paths[0] == pkg / "package.xml"
    root = _xml(pkg / "package.xml")
    assert root.tag == f"{{{METADATA_NS}}}Package"
    types = {t.findtext("m:name", namespaces=NS): [m.text for m in t.findall("m:members", NS)]
             for t in root.findall("m:types", NS)}
    assert types["CustomObject"] == sorted(["Appointment__c", "Clinical_Note__c", "Document__c",
                                            "Invoice__c", "Treatment__c"])
    assert "Contact.Insurance_Provider__c" in types["CustomField"]
    assert "Account.Fmap_External_ID__c" in types["CustomField"]
    assert root.findtext("m:version", namespaces=NS) == "62.0"

    appt = _xml(pkg / "objects" / "Appointment__c.object")
    assert appt.findtext("m:label", namespaces=NS) == "Appointment"
    assert appt.findtext("m:pluralLabel", namespaces=NS) == "Appointments"
    assert appt.findtext("m:deploymentStatus", namespaces=NS) == "Deployed"
    assert appt.findtext("m:sharingModel", namespaces=NS) == "ReadWrite"
    assert appt.findtext("m:nameField/m:type", namespaces=NS) == "AutoNumber"
    fields = {f.findtext("m:fullName", namespaces=NS): f for f in appt.findall("m:fields", NS)}
    assert list(fields) == sorted(fields)  # deterministic order
    contact = fields["Contact__c"]
    assert [c.tag.split("}")[1] for c in contact][0] == "fullName"
    assert (contact.findtext("m:type", namespaces=NS), contact.findtext("m:referenceTo", namespaces=NS),
            contact.findtext("m:required", namespaces=NS),
            contact.findtext("m:deleteConstraint", namespaces=NS)) == \
        ("Lookup", "Contact", "true", "Restrict")
    assert contact.findtext("m:relationshipName", namespaces=NS) == "Appointment_Contact"
    assert fields["Practitioner__c"].findtext("m:referenceTo", namespaces=NS) == "User"
    status = fields["Status__c"]
    assert [v.findtext("m:fullName", namespaces=NS) for v in status.findall(
        "m:valueSet/m:valueSetDefinition/m:value", NS)][:2] == ["Booked", "Confirmed"]
    ext = fields["Source_System_ID__c"]
    assert (ext.findtext("m:externalId", namespaces=NS), ext.findtext("m:unique", namespaces=NS),
            ext.findtext("m:length", namespaces=NS)) == ("true", "true", "50")
    assert fields["All_Day__c"].findtext("m:defaultValue", namespaces=NS) == "false"
    inv = {f.findtext("m:fullName", namespaces=NS): f
           for f in _xml(pkg / "objects" / "Invoice__c.object").findall("m:fields", NS)}
    assert (inv["Total__c"].findtext("m:type", namespaces=NS),
            inv["Total__c"].findtext("m:precision", namespaces=NS),
            inv["Total__c"].findtext("m:scale", namespaces=NS)) == ("Currency", "10", "2")
    note = {f.findtext("m:fullName", namespaces=NS): f
            for f in _xml(pkg / "objects" / "Clinical_Note__c.object").findall("m:fields", NS)}
    assert note["Body__c"].findtext("m:type", namespaces=NS) == "LongTextArea"
    # standard objects carry only their new fields
    std = _xml(pkg / "objects" / "Contact.object")
    assert std.find("m:label", NS) is None and std.find("m:sharingModel", NS) is None
    # deterministic: a second emit writes the same bytes
    emit_schema_package(changes, tmp_path / "again", external_id_objects=["Account"])
    for p in paths:
        assert (tmp_path / "again" / p.relative_to(pkg)).read_bytes() == p.read_bytes()


def test_labels_are_escaped_and_bad_names_refused(tmp_path):
    changes = [{"action": "create_module", "object": "Lab__c",
                "details": {"label": "R&D <Lab> \"x\""}},
               {"action": "create_field", "object": "Lab__c", "field": "Tag__c",
                "type": "picklist", "details": {"values": ["a&b", "<c>"]}}]
    emit_schema_package(changes, tmp_path / "p")
    lab = _xml(tmp_path / "p" / "objects" / "Lab__c.object")
    assert lab.findtext("m:label", namespaces=NS) == 'R&D <Lab> "x"'
    back = read_package({"objects/Lab__c.object":
                         (tmp_path / "p" / "objects" / "Lab__c.object").read_bytes()})
    assert back[0] == {"action": "create_module", "object": "Lab__c",
                       "details": {"label": 'R&D <Lab> "x"'}}
    assert next(c for c in back if c.get("field") == "Tag__c")["details"]["values"] == \
        ["a&b", "<c>"]
    bad = [{"action": "create_module", "object": "Bad Name"},
           {"action": "create_field", "object": "Contact", "field": "two__words__c",
            "type": "text(10)"},
           {"action": "create_field", "object": "Contact", "field": "Big__c",
            "type": "decimal(30, 2)"}]
    with pytest.raises(SchemaPackageError) as exc:
        emit_schema_package(bad, tmp_path / "bad")
    assert len(exc.value.problems) == 3
    assert not (tmp_path / "bad").exists()  # nothing written


def test_deploying_the_package_creates_what_the_mapping_needs(sf, changes, tmp_path):
    emit_schema_package(changes, tmp_path / "pkg")
    res = sf.deploy_package(tmp_path / "pkg")
    assert res["deployResult"]["status"] == "Succeeded"
    want = apply_changes(SF.standard_schema(), changes, SF)
    bundle = sf.metadata_bundle(["Appointment__c", "Invoice__c", "Contact"])
    got = SF.load_metadata(bundle, source_name="deployed")
    for name in ("Appointment__c", "Invoice__c"):
        for f in want.object(name).fields:
            if f.type == FieldType.id:
                continue
            g = got.object(name).field(f.api_name)
            assert g is not None, (name, f.api_name)
            assert g.type == f.type and g.required == f.required, (name, f.api_name)
            assert g.picklist_values == f.picklist_values
    assert got.object("Contact").field("Insurance_Provider__c").max_length == 100
    assert sf.describe("Appointment__c")["keyPrefix"].startswith("a")
