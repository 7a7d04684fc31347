"""Schema resolution (compiler.schemas): standard schema, snapshots, declared schema, source schema,
and every way a schema file can be wrong (a diagnostic naming file and JSON path, never a crash)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from compiler.check import check_path, check_text
from compiler.program import program_from_text
from compiler.schemas import resolve_schemas
from fmap.cli import app
from runtime.schema.model import FieldType
from tests.compiler.checks_cases import CLINIC_YAML

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "checks" / "aerona_zoho_contacts.fmap"
runner = CliRunner()


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return root / "m.fmap"


def codes(r) -> list[str]:
    return [d.code for d in r.diagnostics]


def test_fixture_is_clean():
    r = check_path(FIXTURE, "aerona_zoho_contacts.fmap", schema_dir=None)
    assert [str(d) for d in r.diagnostics] == []
    assert r.schemas.source is not None and r.schemas.source.system == "aeronaclinic"
    assert r.schemas.dialect.name == "zoho"


def test_declared_custom_schema_is_known():
    r = check_path(FIXTURE, schema_dir=None)
    s = r.schemas
    pd = s.target_object("Patient_Details")
    assert pd.custom and pd.field("NHS_Number").max_length == 12
    assert pd.field("Contact").lookup_targets == ["Contacts"]
    assert pd.field("Owner").type is FieldType.owner  # implicit owner field of a Zoho module
    assert s.target_object("Contacts").field("Outstanding_Balance").type is FieldType.currency
    assert s.target_object("Contacts").field("Last_Name").required  # standard fields kept


def test_source_found_by_convention(tmp_path):
    fmap = write(tmp_path, {"schemas/clinic.yaml": CLINIC_YAML,
                            "m.fmap": 'source clinic\ntarget zoho\n'
                                      'map patients -> Contacts { key id Last_Name = last_nme }\n'})
    r = check_path(fmap, "m.fmap", schema_dir=None)
    assert codes(r) == ["FM304"]
    assert r.schemas.source_file == "schemas/clinic.yaml"


def test_no_source_schema_is_one_warning_and_no_source_checks(tmp_path):
    fmap = write(tmp_path, {"m.fmap": 'source pms\ntarget zoho\n'
                                      'map patients -> Contacts { key id Last_Name = anything }\n'
                                      'map visits -> Events { key id Event_Title = x\n'
                                      '  Start_DateTime = y End_DateTime = z }\n'})
    r = check_path(fmap, "m.fmap", schema_dir=None)
    assert codes(r) == ["FM302"]
    assert r.ok


def test_check_text_without_schemas_keeps_name_level_behaviour():
    text = 'source x\ntarget zoho\nmap a -> Alpha { key id }\n'
    assert check_text(text, "t.fmap").diagnostics == []
    assert "FM305" in codes(check_text(text, "t.fmap", schemas=True))


def test_check_path_without_schema_dir_is_name_level(tmp_path):
    fmap = write(tmp_path, {"m.fmap": 'source x\ntarget zoho\nmap a -> Alpha { key id }\n'})
    assert check_path(fmap).diagnostics == []  # `fmap plan` calls it this way
    assert "FM305" in codes(check_path(fmap, schemas=True))


def test_unknown_dialect_suggests():
    r = check_text('source x\ntarget salesforse\n', "t.fmap", schemas=True)
    d = next(d for d in r.diagnostics if d.code == "FM300")
    assert (d.span.line, d.span.column) == (2, 8)
    assert d.hint == "did you mean `salesforce`?"


def test_snapshot_overlays_standard_schema(tmp_path):
    snap = {"system": "zoho", "kind": "target", "objects": [
        {"api_name": "Contacts", "fields": [{"api_name": "NHS_Number", "type": "text",
                                             "max_length": 10, "custom": True}]},
        {"api_name": "Patients", "custom": True, "fields": [{"api_name": "Name", "type": "text"}]}]}
    fmap = write(tmp_path, {"org/zoho.json": json.dumps(snap),
                            "m.fmap": 'source x\ntarget zoho "org/zoho.json"\n'
                                      'map a -> Contacts { key id Last_Name = "x"\n'
                                      '  NHS_Number = "12345678901" }\n'
                                      'map b -> Patients { key id Name = "y" }\n'})
    r = check_path(fmap, "m.fmap", schema_dir=None)
    assert [c for c in codes(r) if c != "FM302"] == ["FM312"]  # 11 characters into text(10)
    assert r.schemas.target_files == ["org/zoho.json"]


def test_schema_dir_files_named_after_the_dialect(tmp_path):
    snapdir = tmp_path / "snapshots"
    snap = {"system": "zoho", "objects": [{"api_name": "Contacts", "fields": [
        {"api_name": "Member_No", "type": "text", "max_length": 8}]}]}
    write(snapdir, {"zoho_org.json": json.dumps(snap),
                    "salesforce_org.json": "not even json"})  # other dialects' files are ignored
    fmap = write(tmp_path / "m", {"m.fmap": 'source x\ntarget zoho\nmap a -> Contacts { key id\n'
                                            '  Last_Name = "x" Member_No = "1" }\n'})
    assert "FM306" in codes(check_path(fmap, schema_dir=None))
    r = check_path(fmap, schema_dir=snapdir)
    assert [c for c in codes(r) if c != "FM302"] == []
    assert r.schemas.target_files == [str(snapdir / "zoho_org.json")]


def test_cli_schema_option_reaches_resolution(tmp_path):
    snapdir = tmp_path / "snapshots"
    write(snapdir, {"zoho.yaml": "system: zoho\nobjects:\n  - api_name: Contacts\n    fields:\n"
                                 "      - {api_name: Member_No, type: text}\n"})
    fmap = write(tmp_path / "m", {"m.fmap": 'source x\ntarget zoho\nmap a -> Contacts { key id\n'
                                            '  Last_Name = "x" Member_No = "1" }\n'})
    r = runner.invoke(app, ["check", str(fmap)])
    assert r.exit_code == 1 and "error[FM306]" in r.stdout
    r = runner.invoke(app, ["check", str(fmap), "--schema", str(snapdir)])
    assert r.exit_code == 0, r.stdout


def test_malformed_snapshot_names_file_and_json_path(tmp_path):
    bad = {"system": "zoho", "objects": [{"api_name": "Contacts",
                                          "fields": [{"api_name": "X", "type": 3}]}]}
    fmap = write(tmp_path, {"org/zoho.json": json.dumps(bad),
                            "m.fmap": 'source x\ntarget zoho "org/zoho.json"\n'})
    r = check_path(fmap, "m.fmap", schema_dir=None)
    d = next(d for d in r.diagnostics if d.code == "FM301")
    assert "org/zoho.json" in d.message and "$.objects[0].fields[0].type" in d.message
    assert (d.span.line, d.span.column) == (2, 1)


def test_malformed_vendor_metadata_names_file_and_json_path(tmp_path):
    bad = {"objects": {"Contacts": {"fields": {"fields": [{"api_name": 5}]}}}}
    fmap = write(tmp_path, {"org/zoho_meta.json": json.dumps(bad),
                            "m.fmap": 'source x\ntarget zoho "org/zoho_meta.json"\n'})
    d = next(d for d in check_path(fmap, "m.fmap", schema_dir=None).diagnostics
             if d.code == "FM301")
    assert "org/zoho_meta.json" in d.message
    assert "$.objects.Contacts.fields.fields[0].api_name" in d.message


def test_invalid_json_and_yaml_and_missing_files(tmp_path):
    fmap = write(tmp_path, {"a/zoho.json": "{not json", "m.fmap": 'target zoho "a/zoho.json"\n'})
    d = next(d for d in check_path(fmap, "m.fmap", schema_dir=None).diagnostics)
    assert d.code == "FM301" and "invalid JSON at line 1" in d.message
    fmap = write(tmp_path, {"s.yaml": "objects: [unclosed", "m.fmap": 'source x "s.yaml"\n'})
    d = next(d for d in check_path(fmap, "m.fmap", schema_dir=None).diagnostics)
    assert d.code == "FM301" and "invalid YAML" in d.message and "s.yaml" in d.message
    fmap = write(tmp_path, {"m.fmap": 'source x "nope.yaml"\ntarget zoho "nope.json"\n'})
    found = [d for d in check_path(fmap, "m.fmap", schema_dir=None).diagnostics]
    assert [d.code for d in found] == ["FM301", "FM301"]
    assert all("file not found" in d.message for d in found)


def test_malformed_source_schema_structure(tmp_path):
    bad = CLINIC_YAML.replace("item_object: patients.appointments", "item_object: nowhere")
    fmap = write(tmp_path, {"s.yaml": bad, "m.fmap": 'source clinic "s.yaml"\ntarget zoho\n'})
    d = check_path(fmap, "m.fmap", schema_dir=None).diagnostics[0]
    assert d.code == "FM301" and "s.yaml" in d.message and "item_object" in d.message


def test_unknown_vendor_type_is_unknown_with_a_warning_and_no_type_error(tmp_path):
    meta = {"objects": {"Contacts": {"fields": {"fields": [
        {"api_name": "Tooth_Chart", "data_type": "tooth_chart"}]}}}}
    fmap = write(tmp_path, {"org/zoho.json": json.dumps(meta),
                            "m.fmap": 'source x\ntarget zoho "org/zoho.json"\n'
                                      'map a -> Contacts { key id Last_Name = "x"\n'
                                      '  Tooth_Chart = [1, 2] }\n'})
    r = check_path(fmap, "m.fmap", schema_dir=None)
    assert [c for c in codes(r) if c != "FM302"] == ["FM320"]
    d = next(d for d in r.diagnostics if d.code == "FM320")
    assert "tooth_chart" in d.message and "data_type" in d.message
    assert r.schemas.target_object("Contacts").field("Tooth_Chart").type is FieldType.unknown


def test_resolution_without_a_module_or_header():
    prog = program_from_text("", "t.fmap")
    s, diags = resolve_schemas(prog)
    assert diags == [] and s.target is None and s.source is None
