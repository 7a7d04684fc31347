"""`fmap schema pull` / `apply` through the dialect contract (metadata_bundle,
apply_schema_changes, emit_schema_package), against the Zoho sandbox in process and over
loopback; every kind of bad input is a message with an exit code, not a traceback."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fmap.cli import app
from fmap.schemacmd import target_dialect
from runtime.dialects import UnknownDialect, UnsupportedByDialect, get_dialect
from runtime.dialects.zoho.client import ZohoClient
from tests.dialects.served import serve

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "zoho"
MAPPING = FIXTURES / "e2e.fmap"


def invoke(*args: str):
    return CliRunner().invoke(app, ["schema", *args])


def no_traceback(res) -> None:
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception


@pytest.fixture
def org(tmp_path, monkeypatch) -> str:
    monkeypatch.chdir(tmp_path)
    return f"sandbox:zoho?db={tmp_path / 'org.sqlite'}"


def test_target_dialect_is_read_from_the_uri():
    assert target_dialect("zoho://eu").name == "zoho"
    assert target_dialect("sandbox:pipedrive?db=x").name == "pipedrive"
    assert target_dialect("sfdc://login").name == "salesforce"
    assert target_dialect("freshsales://acme.myfreshworks.com").name == "freshsales"
    assert target_dialect("jsonl:out") is None
    with pytest.raises(UnknownDialect):
        target_dialect("hubspot://x")


def test_pull_writes_a_bundle_the_dialect_loads(org, tmp_path):
    out = tmp_path / "snap.json"
    res = invoke("pull", org, "--object", "Contacts", "-m", "Leads", "-o", str(out))
    assert res.exit_code == 0, res.output
    bundle = json.loads(out.read_text())
    assert set(bundle["objects"]) == {"Contacts", "Leads"}
    schema = get_dialect("zoho").load_metadata(bundle, source_name="snap")
    n = len(schema.object("Contacts").fields) + len(schema.object("Leads").fields)
    assert f"2 object(s), {n} field(s)" in res.output
    assert schema.object("Contacts").field("Last_Name").required


def test_pull_of_an_object_the_org_lacks_fails_by_name(org, tmp_path):
    res = invoke("pull", org, "-m", "Contacts", "-m", "Patients", "-o", str(tmp_path / "s.json"))
    assert res.exit_code == 1 and "the org has no Patients" in res.output
    assert not (tmp_path / "s.json").exists()


@pytest.mark.parametrize("target, code, message", [
    ("jsonl:out", 2, "not a CRM target"),
    ("hubspot://acme", 2, "unknown dialect 'hubspot'"),
    ("zoho://mars", 2, "unknown Zoho data centre 'mars'"),
    ("nonsense", 2, "not a CRM target"),
])
def test_pull_bad_targets(tmp_path, monkeypatch, target, code, message):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ZOHO_ACCESS_TOKEN", "x")
    res = invoke("pull", target, "-m", "Contacts")
    assert res.exit_code == code, res.output
    assert message in res.output
    no_traceback(res)


def test_connector_without_the_schema_methods_is_refused(tmp_path, monkeypatch):
    # generic=1: the dialect-neutral store, which speaks no vendor metadata
    monkeypatch.chdir(tmp_path)
    res = invoke("pull", f"sandbox:zoho?generic=1&db={tmp_path / 'g.sqlite'}", "-m", "Leads")
    assert res.exit_code == 2 and "no metadata_bundle" in res.output
    no_traceback(res)


def test_unreachable_host_and_missing_credentials(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for var in ("ZOHO_CLIENT_ID", "ZOHO_CLIENT_SECRET", "ZOHO_REFRESH_TOKEN", "ZOHO_ACCESS_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr("runtime.dialects.zoho.auth.ZohoCredentials.from_keyring",
                        classmethod(lambda cls, service="": None))
    res = invoke("pull", f"zoho://127.0.0.1:{port}", "-m", "Leads")
    assert res.exit_code == 1 and "ZOHO_ACCESS_TOKEN" in res.output
    no_traceback(res)
    monkeypatch.setenv("ZOHO_ACCESS_TOKEN", "some-token")
    res = invoke("pull", f"zoho://127.0.0.1:{port}", "-m", "Leads")
    assert res.exit_code == 1 and "connection failed" in res.output
    assert "some-token" not in res.output
    no_traceback(res)


def test_apply_dry_run_then_apply_then_nothing_left(org, tmp_path):
    dry = invoke("apply", str(MAPPING), "--target", org)
    assert dry.exit_code == 0, dry.output
    assert "+ module Patient_Details" in dry.output
    assert "+ field  Patient_Details.NHS_Number text(12) [unique]" in dry.output
    assert "dry run" in dry.output
    assert invoke("pull", org, "-m", "Patient_Details").exit_code == 1  # dry run changed nothing
    done = invoke("apply", str(MAPPING), "--target", org, "--apply")
    assert done.exit_code == 0, done.output
    n = dry.output.count("\n+ ") + dry.output.startswith("+ ")
    assert f"applied {n} change(s)" in done.output and "failed" not in done.output
    snap = tmp_path / "after.json"
    assert invoke("pull", org, "-m", "Patient_Details", "-o", str(snap)).exit_code == 0
    schema = get_dialect("zoho").load_metadata(json.loads(snap.read_text()), source_name="s")
    details = schema.object("Patient_Details")
    assert details.field("NHS_Number").unique and details.field("Contact").required
    again = invoke("apply", str(MAPPING), "--target", org)
    assert again.exit_code == 0 and "already has every module" in again.output


def test_apply_over_loopback_with_a_bad_token_is_a_message(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for var in ("ZOHO_CLIENT_ID", "ZOHO_CLIENT_SECRET", "ZOHO_REFRESH_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    with serve(tmp_path, "zoho", token="the-right-token") as port:
        monkeypatch.setenv("ZOHO_ACCESS_TOKEN", "a-wrong-token")
        dry = invoke("apply", str(MAPPING), "--target", f"zoho://127.0.0.1:{port}")
        assert dry.exit_code == 1 and "rejected the access token" in dry.output
        assert "+ module" not in dry.output  # not reported as pending on an org it cannot read
        bad = invoke("apply", str(MAPPING), "--target", f"zoho://127.0.0.1:{port}", "--apply")
        assert bad.exit_code == 1 and "rejected the access token" in bad.output
        assert "a-wrong-token" not in bad.output and "the-right-token" not in bad.output
        no_traceback(bad)
        monkeypatch.setenv("ZOHO_ACCESS_TOKEN", "the-right-token")
        good = invoke("apply", str(MAPPING), "--target", f"zoho://127.0.0.1:{port}", "--apply")
        assert good.exit_code == 0, good.output
        res = invoke("pull", f"zoho://127.0.0.1:{port}", "-m", "Patient_Details",
                     "-o", str(tmp_path / "p.json"))
        assert res.exit_code == 0, res.output


def test_emit_package_is_refused_for_an_api_dialect(org):
    res = invoke("apply", str(MAPPING), "--target", org, "--emit", "package", "pkg")
    assert res.exit_code == 2 and "no package to emit" in res.output
    res = invoke("apply", str(MAPPING), "--target", org, "--emit", "zip", "pkg")
    assert res.exit_code == 2 and "--emit package DIR" in res.output
    assert not Path("pkg").exists()


def test_emit_package_calls_the_dialect_hook(org, tmp_path, monkeypatch):
    import runtime.targets as targets

    seen: dict = {}

    def emit(changes, out_dir, *, external_id_objects=(), external_id_field=None):
        seen["changes"] = changes
        seen["external_id_objects"] = external_id_objects
        seen["external_id_field"] = external_id_field
        out_dir.mkdir(parents=True)
        (out_dir / "package.xml").write_text("<Package/>")
        return [out_dir / "package.xml"]

    real = targets._dialect_hook
    monkeypatch.setattr(targets, "_dialect_hook",
                        lambda name, attr: emit if attr == "emit_schema_package"
                        else real(name, attr))
    res = invoke("apply", str(MAPPING), "--target", org, "--emit", "package", "pkg")
    assert res.exit_code == 0, res.output
    assert f"wrote {Path('pkg') / 'package.xml'}" in res.output
    assert seen["changes"][0] == {**seen["changes"][0], "action": "create_module",
                                  "object": "Patient_Details"}
    assert seen["external_id_objects"] == []  # the zoho sandbox has it on every module
    assert seen["external_id_field"] == "Source_System_ID"  # the client's field
    # emitting changed nothing in the org
    assert "+ module Patient_Details" in invoke("apply", str(MAPPING), "--target", org).output


SF_MAPPING = f"""
migration "Clinic -> Salesforce (external ids)"
source clinic_e2e "{(FIXTURES / 'source.yaml').as_posix()}"
target salesforce

create object Patient_Detail__c "Patient Detail" {{
  NHS_Number__c text(12)
}}

map clinics -> Account {{
  key id
  Name = name
}}

map patients -> Contact {{
  key id
  LastName = last_name
}}

map patients -> Patient_Detail__c {{
  key id
  NHS_Number__c = nhs_number
}}
"""


def _sf_org_without_external_id_on(monkeypatch, objects: set[str],
                                   field: str = "Fmap_External_ID__c") -> None:
    """A Salesforce org (the in-process sandbox) whose describe of ``objects`` has no
    ``field`` yet (the sandbox itself adds the connector's external-id field everywhere)."""
    from runtime.dialects.salesforce.client import SalesforceClient

    real = SalesforceClient.metadata_bundle

    def bundle(self, names=None):
        out = real(self, names)
        for name, describe in out["objects"].items():
            if name in objects:
                describe["fields"] = [f for f in describe["fields"] if f["name"] != field]
        return out

    monkeypatch.setattr(SalesforceClient, "metadata_bundle", bundle)


def test_emit_package_adds_the_external_id_field_where_the_org_lacks_it(tmp_path, monkeypatch):
    """Salesforce: the package carries Fmap_External_ID__c for every object the mapping loads
    into that lacks it (Account: no declared change), not for one that has it (Contact)."""
    from runtime.dialects.salesforce.package import package_files

    monkeypatch.chdir(tmp_path)
    mapping = tmp_path / "sf.fmap"
    mapping.write_text(SF_MAPPING, "utf-8")
    _sf_org_without_external_id_on(monkeypatch, {"Account"})
    org = f"sandbox:salesforce?db={tmp_path / 'sf.sqlite'}"
    res = invoke("apply", str(mapping), "--target", org, "--emit", "package", "pkg")
    assert res.exit_code == 0, res.output
    no_traceback(res)
    assert "+ module Patient_Detail__c" in res.output
    assert ("+ field  Account.Fmap_External_ID__c text(255) [unique, external_id] "
            "(fmap's external id)") in res.output
    assert "Contact." not in res.output
    files = package_files(tmp_path / "pkg")
    assert sorted(files) == ["objects/Account.object", "objects/Patient_Detail__c.object",
                             "package.xml"]
    account = files["objects/Account.object"].decode()
    assert "<fullName>Fmap_External_ID__c</fullName>" in account
    assert "<externalId>true</externalId>" in account and "NHS_Number__c" not in account
    assert "<members>Account.Fmap_External_ID__c</members>" in files["package.xml"].decode()
    assert "3 change(s) in the package" in res.output


def test_emit_package_uses_the_clients_external_id_field(tmp_path, monkeypatch):
    """``external_id_field=`` on the target URI names the field the connector upserts by: the
    CLI checks the org for that field, and the package adds that one, not the default."""
    from runtime.dialects.salesforce.package import package_files

    monkeypatch.chdir(tmp_path)
    mapping = tmp_path / "sf.fmap"
    mapping.write_text(SF_MAPPING, "utf-8")
    _sf_org_without_external_id_on(monkeypatch, {"Account"}, "Clinic_Ref__c")
    org = f"sandbox:salesforce?db={tmp_path / 'sf.sqlite'}&external_id_field=Clinic_Ref__c"
    res = invoke("apply", str(mapping), "--target", org, "--emit", "package", "pkg")
    assert res.exit_code == 0, res.output
    no_traceback(res)
    assert "+ field  Account.Clinic_Ref__c text(255) [unique, external_id]" in res.output
    assert "Fmap_External_ID__c" not in res.output
    files = package_files(tmp_path / "pkg")
    assert sorted(files) == ["objects/Account.object", "objects/Patient_Detail__c.object",
                             "package.xml"]
    text = "".join(v.decode() for v in files.values())
    assert "Fmap_External_ID__c" not in text
    for obj in ("Account", "Patient_Detail__c"):
        assert "<fullName>Clinic_Ref__c</fullName>" in files[f"objects/{obj}.object"].decode()
        assert f"<members>{obj}.Clinic_Ref__c</members>" in files["package.xml"].decode()


def test_package_refuses_an_external_id_field_it_cannot_create(tmp_path):
    """A standard field (no ``__c``) named as the external id cannot go in a package: the
    package error says so and nothing is written."""
    from runtime.dialects.salesforce import emit_schema_package
    from runtime.dialects.salesforce.package import SchemaPackageError

    with pytest.raises(SchemaPackageError) as exc:
        emit_schema_package([], tmp_path / "pkg", external_id_objects=["Account"],
                            external_id_field="AccountNumber")
    assert "external_id_field" in str(exc.value)
    assert not (tmp_path / "pkg").exists()


def test_emit_package_with_only_external_ids_missing_still_writes_one(tmp_path, monkeypatch):
    """An org that has every declared module and field but not the connector's external-id
    field on a loaded object still needs a package; with it everywhere, nothing to do."""
    from runtime.dialects.salesforce.package import package_files

    monkeypatch.chdir(tmp_path)
    mapping = tmp_path / "sf.fmap"
    mapping.write_text(SF_MAPPING.replace(
        'create object Patient_Detail__c "Patient Detail" {\n  NHS_Number__c text(12)\n}\n',
        "").replace("map patients -> Patient_Detail__c {\n  key id\n  NHS_Number__c = "
                    "nhs_number\n}\n", ""), "utf-8")
    org = f"sandbox:salesforce?db={tmp_path / 'sf.sqlite'}"
    res = invoke("apply", str(mapping), "--target", org, "--emit", "package", "none")
    assert res.exit_code == 0, res.output
    assert "already has every module and field" in res.output and not Path("none").exists()
    _sf_org_without_external_id_on(monkeypatch, {"Contact"})
    res = invoke("apply", str(mapping), "--target", org, "--emit", "package", "pkg")
    assert res.exit_code == 0, res.output
    assert "+ field  Contact.Fmap_External_ID__c" in res.output and "Account." not in res.output
    assert sorted(package_files(tmp_path / "pkg")) == ["objects/Contact.object", "package.xml"]


def test_a_package_error_reads_as_one(tmp_path, monkeypatch):
    """A change the package cannot hold is reported as a package problem (exit 2, nothing
    written), not as something the API cannot do with a hint to emit a package."""
    import runtime.targets as targets
    from runtime.dialects.salesforce.package import SchemaPackageError

    def emit(changes, out_dir, *, external_id_objects=(), external_id_field=None):
        raise SchemaPackageError(["Patient_Detail__c.Bad Name__c: not a valid API name"])

    real = targets._dialect_hook
    monkeypatch.setattr(targets, "_dialect_hook",
                        lambda name, attr: emit if attr == "emit_schema_package"
                        else real(name, attr))
    monkeypatch.chdir(tmp_path)
    mapping = tmp_path / "sf.fmap"
    mapping.write_text(SF_MAPPING, "utf-8")
    res = invoke("apply", str(mapping), "--target",
                 f"sandbox:salesforce?db={tmp_path / 'sf.sqlite'}", "--emit", "package", "pkg")
    assert res.exit_code == 2, res.output
    no_traceback(res)
    assert ("Salesforce Sales Cloud: cannot write the metadata package: Patient_Detail__c.Bad "
            "Name__c: not a valid API name") in res.output
    assert "nothing was written" in res.output
    assert "cannot do this through its API" not in res.output
    assert "--emit package DIR" not in res.output
    assert not (tmp_path / "pkg").exists()


def test_unsupported_change_prints_the_vendor_reason(org, monkeypatch):
    def refuse(self, changes):
        raise UnsupportedByDialect("zoho", "custom modules need the Professional edition")

    monkeypatch.setattr(ZohoClient, "apply_schema_changes", refuse)
    res = invoke("apply", str(MAPPING), "--target", org, "--apply")
    assert res.exit_code == 2
    assert "custom modules need the Professional edition" in res.output
    assert "an admin must make this change" in res.output
    no_traceback(res)


def test_per_change_failures_are_listed_and_exit_1(org, monkeypatch):
    real = ZohoClient.apply_schema_changes

    def partly(self, changes):
        out = real(self, changes)
        out[-1] = {**out[-1], "status": "failed", "message": "DUPLICATE_DATA duplicate data"}
        return out

    monkeypatch.setattr(ZohoClient, "apply_schema_changes", partly)
    res = invoke("apply", str(MAPPING), "--target", org, "--apply")
    assert res.exit_code == 1
    assert "! Patient_Details.NHS_Number: DUPLICATE_DATA duplicate data" in res.output
    assert "1 failed" in res.output


def test_apply_works_with_a_dialect_that_refuses_missing_objects(org, monkeypatch):
    """The contract does not say whether metadata_bundle skips or refuses an object the org
    lacks; a refusing dialect must still get its new objects created, and still fail on a bad
    token rather than report everything as pending."""
    from runtime.destinations.base import FatalError

    real = ZohoClient.metadata_bundle

    def strict(self, objects):
        bundle = real(self, objects)
        missing = [o for o in objects if o not in bundle["objects"]]
        if missing:
            raise FatalError(f"NOT_FOUND {missing}")
        return bundle

    monkeypatch.setattr(ZohoClient, "metadata_bundle", strict)
    dry = invoke("apply", str(MAPPING), "--target", org)
    assert dry.exit_code == 0 and "+ module Patient_Details" in dry.output, dry.output
    assert invoke("apply", str(MAPPING), "--target", org, "--apply").exit_code == 0
    assert "already has every" in invoke("apply", str(MAPPING), "--target", org).output

    def dead(self, *args):
        raise FatalError("HTTP 401 INVALID_TOKEN")

    monkeypatch.setattr(ZohoClient, "metadata_bundle", dead)
    monkeypatch.setattr(ZohoClient, "list_users", dead)
    res = invoke("apply", str(MAPPING), "--target", org)
    assert res.exit_code == 1 and "INVALID_TOKEN" in res.output and "+ module" not in res.output
