"""runtime.schema.source: declared source schemas (kind: source, nested-array convention)."""

from __future__ import annotations

import textwrap

import pytest

from runtime.schema.io import SchemaLoadError
from runtime.schema.model import FieldType
from runtime.schema.source import child_objects, date_format, load_source_schema

GOOD = """
system: clinic
kind: source
objects:
  - api_name: patients
    key: id
    modified_at: updated_at
    fields:
      - {api_name: id, type: id, nullable: false}
      - {api_name: dob, type: date, vendor: {date_format: "%d/%m/%Y"}}
      - {api_name: updated_at, type: datetime}
      - {api_name: clinic_id, type: lookup, lookup_targets: [clinics]}
      - {api_name: appointments, type: array, item_object: patients.appointments}
  - api_name: patients.appointments
    key: id
    fields:
      - {api_name: id, type: id}
      - {api_name: start, type: datetime, vendor: {format: "%Y-%m-%d %H:%M"}}
  - api_name: clinics
    key: id
    fields:
      - {api_name: id, type: id}
"""


def _write(tmp_path, text, name="src.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def test_loads_and_fills_parent(tmp_path):
    schema = load_source_schema(_write(tmp_path, GOOD))
    appts = schema.object("patients.appointments")
    assert appts.parent == "patients"
    assert [o.api_name for o in child_objects(schema, "patients")] == ["patients.appointments"]
    patients = schema.object("patients")
    assert patients.field("appointments").type == FieldType.array
    assert date_format(patients.field("dob")) == "%d/%m/%Y"
    assert date_format(appts.field("start")) == "%Y-%m-%d %H:%M"  # "format" is read too


@pytest.mark.parametrize(
    ("old", "new", "json_path", "needle"),
    [
        ("kind: source", "kind: target", "$.kind", "expected kind 'source'"),
        ("item_object: patients.appointments", "item_object: patients.visits",
         "$.objects[0].fields[4].item_object", "does not exist"),
        ("{api_name: appointments, type: array, item_object: patients.appointments}",
         "{api_name: appointments, type: array}", "$.objects[0].fields[4].item_object", "needs item_object"),
        ("    modified_at: updated_at", "    modified_at: changed", "$.objects[0].modified_at", "not a field"),
        ("lookup_targets: [clinics]", "lookup_targets: [surgeries]", "$.objects[0].fields[3].lookup_targets",
         "'surgeries'"),
        ("  - api_name: clinics\n", "  - api_name: patients\n", "$.objects[2].api_name", "duplicate object"),
        ("{api_name: updated_at, type: datetime}", "{api_name: dob, type: datetime}",
         "$.objects[0].fields[2].api_name", "duplicate field"),
    ],
    ids=["kind", "missing-item-object", "array-without-item", "bad-modified-at", "bad-lookup",
         "duplicate-object", "duplicate-field"],
)
def test_structure_errors(tmp_path, old, new, json_path, needle):
    assert old in GOOD
    with pytest.raises(SchemaLoadError) as info:
        load_source_schema(_write(tmp_path, GOOD.replace(old, new, 1)))
    assert info.value.json_path == json_path
    assert needle in info.value.message


def test_wrong_parent(tmp_path):
    text = GOOD.replace("  - api_name: patients.appointments\n",
                        "  - api_name: patients.appointments\n    parent: clinics\n")
    with pytest.raises(SchemaLoadError, match="has parent 'clinics', not 'patients'"):
        load_source_schema(_write(tmp_path, text))


def test_project_source_schemas_load(repo_root):
    paths = sorted((repo_root / "mappings" / "schemas").glob("*.yaml"))
    if not paths:
        pytest.skip("no committed source schemas yet")
    for p in paths:
        schema = load_source_schema(p)
        assert schema.kind == "source"
        assert all(o.key for o in schema.objects), p
