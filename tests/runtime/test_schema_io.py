"""runtime.schema.io: load/save SystemSchema JSON/YAML; every malformed input is a SchemaLoadError."""

from __future__ import annotations

import json
import pickle

import pytest

from runtime.schema.io import (
    SchemaLoadError,
    dump_schema,
    json_path_from_loc,
    load_schema,
    parse_schema,
    save_schema,
    schema_from_data,
)
from runtime.schema.model import FieldSchema, FieldType, ObjectSchema, SystemSchema


def _schema() -> SystemSchema:
    return SystemSchema(
        system="zoho",
        objects=[ObjectSchema(api_name="Contacts", fields=[
            FieldSchema(api_name="Last_Name", required=True, max_length=80),
            FieldSchema(api_name="Gender", type=FieldType.picklist, picklist_values=["Male", "Female"]),
            FieldSchema(api_name="Account_Name", type=FieldType.lookup, lookup_targets=["Accounts"],
                        vendor={"data_type": "lookup"}),
        ])],
    )


@pytest.mark.parametrize("suffix", [".json", ".yaml", ".yml"])
def test_round_trip(tmp_path, suffix):
    path = save_schema(_schema(), tmp_path / f"org{suffix}")
    assert load_schema(path) == _schema()


def test_dump_omits_defaults_but_keeps_kind():
    data = json.loads(dump_schema(_schema()))
    field = data["objects"][0]["fields"][0]
    assert field == {"api_name": "Last_Name", "required": True, "max_length": 80}
    assert data["kind"] == "target"


def test_json_path_from_loc():
    assert json_path_from_loc(("objects", 2, "fields", 5, "type")) == "$.objects[2].fields[5].type"
    assert json_path_from_loc(("vendor", "my key")) == '$.vendor["my key"]'


BASE = {"system": "zoho", "objects": [
    {"api_name": "Leads", "fields": [{"api_name": "A"}, {"api_name": "B"}]},
    {"api_name": "Contacts", "fields": [{"api_name": "C"}]},
]}


def _with(path, value):
    data = json.loads(json.dumps(BASE))
    node = data
    for part in path[:-1]:
        node = node[part]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("mutation", "json_path", "needle"),
    [
        ((("objects", 0, "fields", 1, "type"), "texty"), "$.objects[0].fields[1].type", "not a valid value"),
        ((("objects", 1, "fields", 0, "api_name"), KeyError), "$.objects[1].fields[0].api_name", "missing"),
        ((("objects", 1, "colour"), "red"), "$.objects[1].colour", "unknown key"),
        ((("objects", 0, "fields"), "nope"), "$.objects[0].fields", "list"),
        ((("system",), KeyError), "$.system", "missing"),
        ((("objects", 0, "fields", 0, "max_length"), "long"), "$.objects[0].fields[0].max_length", "integer"),
    ],
    ids=["bad-enum", "missing-api-name", "extra-key", "fields-not-list", "missing-system", "bad-int"],
)
def test_validation_errors_have_json_paths(mutation, json_path, needle):
    with pytest.raises(SchemaLoadError) as info:
        schema_from_data(_with(*mutation), source_name="org.json")
    err = info.value
    assert err.json_path == json_path
    assert needle in err.message
    assert err.path == "org.json"
    assert "pydantic" not in str(err) and "Traceback" not in str(err)


def test_all_errors_are_collected():
    data = _with(("objects", 0, "fields", 1, "type"), "texty")
    data["objects"][1]["fields"][0]["required"] = "sometimes"
    with pytest.raises(SchemaLoadError) as info:
        schema_from_data(data)
    assert [p for p, _ in info.value.details] == ["$.objects[0].fields[1].type",
                                                 "$.objects[1].fields[0].required"]
    assert "(and 1 more)" in str(info.value)


@pytest.mark.parametrize(
    ("text", "fmt", "needle"),
    [
        ('{"system": "zoho", "objects": [', "json", "invalid JSON at line 1"),
        ("[1, 2]", "json", "must be an object"),
        ('"zoho"', "json", "got a string"),
        ("system: zoho\nobjects: [\n", "yaml", "invalid YAML at line"),
        ("- a\n- b\n", "yaml", "got an array"),
        ("", "yaml", "got null"),
    ],
    ids=["truncated-json", "json-list", "json-string", "broken-yaml", "yaml-list", "empty-yaml"],
)
def test_malformed_documents(text, fmt, needle):
    with pytest.raises(SchemaLoadError) as info:
        parse_schema(text, fmt=fmt, source_name="x")
    assert info.value.json_path == "$"
    assert needle in info.value.message


def test_file_errors(tmp_path):
    with pytest.raises(SchemaLoadError, match="file not found"):
        load_schema(tmp_path / "missing.json")
    (tmp_path / "s.toml").write_text("x")
    with pytest.raises(SchemaLoadError, match="unsupported schema file type '.toml'"):
        load_schema(tmp_path / "s.toml")
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"system": "z\xff"}')
    with pytest.raises(SchemaLoadError, match="byte offset 13"):
        load_schema(bad)


def test_bom_is_accepted(tmp_path):
    p = tmp_path / "s.json"
    p.write_bytes(b"\xef\xbb\xbf" + json.dumps(BASE).encode())
    assert load_schema(p).object_names() == ["Leads", "Contacts"]


def test_error_pickles():
    err = SchemaLoadError("a.json", "$.x", "bad", details=[("$.x", "bad"), ("$.y", "worse")])
    back = pickle.loads(pickle.dumps(err))
    assert (back.path, back.json_path, back.message, back.details) == ("a.json", "$.x", "bad", err.details)
