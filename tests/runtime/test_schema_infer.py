"""runtime.schema.infer: source schemas inferred from small generated CSV / JSON / JSONL files."""

from __future__ import annotations

import json

import pytest

from runtime.schema.infer import infer_schema
from runtime.schema.io import SchemaLoadError
from runtime.schema.model import FieldType
from runtime.schema.source import check_source_schema

STATUSES = ["Active", "Inactive", "Prospect"]


def _patients(n=30):
    rows = []
    for i in range(1, n + 1):
        rows.append({
            "id": i,
            "patient_ref": f"P{i:05d}",
            "first_name": f"Name{i}",
            "dob": f"{(i % 28) + 1:02d}/{(i % 12) + 1:02d}/19{50 + i % 40}",
            "email": f"p{i}@example.com" if i % 3 else "",
            "mobile": f"07700 900{i:03d}",
            "status": STATUSES[i % 3],
            "balance": f"{i * 10.5:.2f}",
            "visits": str(i % 7),
            "active": "true" if i % 2 else "false",
            "updated_at": f"2024-03-{(i % 28) + 1:02d}T10:15:00+00:00",
            "notes": "x" * (300 if i == 5 else 10),
        })
    return rows


def _csv(path, rows):
    cols = list(rows[0])
    lines = [",".join(cols)] + [",".join(str(r[c]) for c in cols) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_csv_types_enums_nullability(tmp_path):
    schema = infer_schema([_csv(tmp_path / "patients.csv", _patients())], "clinic")
    assert schema.kind == "source"
    obj = schema.object("patients")
    types = {f.api_name: f.type for f in obj.fields}
    assert types == {
        "id": FieldType.integer, "patient_ref": FieldType.text, "first_name": FieldType.text,
        "dob": FieldType.date, "email": FieldType.email, "mobile": FieldType.phone,
        "status": FieldType.picklist, "balance": FieldType.decimal, "visits": FieldType.integer,
        "active": FieldType.boolean, "updated_at": FieldType.datetime, "notes": FieldType.textarea,
    }
    assert obj.field_names()[:3] == ["id", "patient_ref", "first_name"]  # column order kept
    assert obj.field("status").picklist_values == sorted(STATUSES)
    assert obj.field("dob").vendor["date_format"] == "%d/%m/%Y"
    assert obj.field("updated_at").vendor["date_format"] == "iso8601"
    assert obj.field("email").nullable is True
    assert obj.field("first_name").nullable is False
    assert obj.field("first_name").max_length == len("Name30")
    assert obj.field("notes").max_length == 300
    assert obj.key == "id"
    assert obj.modified_at == "updated_at"


def test_enum_needs_enough_rows(tmp_path):
    schema = infer_schema([_csv(tmp_path / "patients.csv", _patients(10))], "clinic")
    assert schema.object("patients").field("status").type == FieldType.text
    schema = infer_schema([_csv(tmp_path / "patients.csv", _patients(30))], "clinic", enum_max=2)
    assert schema.object("patients").field("status").type == FieldType.text


def test_leading_zero_is_not_integer_and_conformance(tmp_path):
    rows = [{"code": "007"}, {"code": "12"}, {"code": "3"}]
    obj = infer_schema([_csv(tmp_path / "codes.csv", rows)], "x").object("codes")
    assert obj.field("code").type == FieldType.text
    rows = [{"n": str(i)} for i in range(24)] + [{"n": "N/A"}]  # 25 distinct: no picklist
    strict = infer_schema([_csv(tmp_path / "n.csv", rows)], "x", min_conformance=1.0).object("n").field("n")
    assert strict.type == FieldType.text
    loose = infer_schema([_csv(tmp_path / "n.csv", rows)], "x").object("n").field("n")  # 24/25 >= 95 %
    assert loose.type == FieldType.integer and loose.vendor["nonconforming"] == 1
    rows = [{"n": str(i)} for i in range(10)] + [{"n": "N/A"}]  # 10/11 < 95 %
    assert infer_schema([_csv(tmp_path / "n.csv", rows)], "x").object("n").field("n").type == FieldType.text


def test_phone_heuristics(tmp_path):
    rows = [{"mobile": f"7700 900{i:03d}", "nhs": f"943 476 5{i:03d}", "intl": f"+44 7700 900{i:03d}",
             "ssn": f"999-12-3{i:03d}"} for i in range(5)]
    obj = infer_schema([_csv(tmp_path / "p.csv", rows)], "x").object("p")
    assert obj.field("mobile").type == FieldType.phone  # named like a phone: 10 digits, no prefix
    assert obj.field("intl").type == FieldType.phone
    assert obj.field("nhs").type == FieldType.text
    assert obj.field("ssn").type == FieldType.text


def test_date_formats_and_ambiguity(tmp_path):
    rows = [{"iso": f"2024-01-0{i}", "us": f"01/2{i}/2024", "both": f"0{i}/0{i}/2024",
             "local": f"2024-01-0{i} 09:30"} for i in range(1, 8)]
    obj = infer_schema([_csv(tmp_path / "d.csv", rows)], "x").object("d")
    assert obj.field("iso").vendor["date_format"] == "%Y-%m-%d"
    assert obj.field("us").vendor["date_format"] == "%m/%d/%Y"
    assert obj.field("both").vendor == {"date_format": "%d/%m/%Y", "date_format_ambiguous": True}
    assert obj.field("local").type == FieldType.datetime
    assert obj.field("local").vendor["date_format"] == "%Y-%m-%d %H:%M"


def test_key_guess_prefers_id_then_named_id(tmp_path):
    rows = [{"clinic_id": str(i), "patient_id": str(100 + i), "name": "x"} for i in range(5)]
    rows[1]["clinic_id"] = "0"  # clinic_id not unique
    obj = infer_schema([_csv(tmp_path / "patients.csv", rows)], "x").object("patients")
    assert obj.key == "patient_id"
    rows = [{"id": "1", "x": "a"}, {"id": "1", "x": "b"}]
    assert infer_schema([_csv(tmp_path / "dups.csv", rows)], "x").object("dups").key is None


def test_json_nested_arrays_become_child_objects(tmp_path):
    patients = [{"id": i, "name": f"N{i}", "address": {"line1": "1 High St", "postcode": "AB1 2CD"},
                 "tags": ["a", "b"],
                 "appointments": [{"id": i * 10 + j, "start": "2024-05-01 09:00", "status": "DNA",
                                   "items": [{"code": "X1", "fee": 10.5}]} for j in range(2)]}
                for i in range(1, 4)]
    p = tmp_path / "export.json"
    p.write_text(json.dumps({"meta": {"version": 2}, "patients": patients, "clinics": [{"id": 1}]}))
    schema = infer_schema([p], "aerona")
    assert schema.object_names() == ["patients", "patients.appointments",
                                     "patients.appointments.items", "clinics"]
    pat = schema.object("patients")
    arr = pat.field("appointments")
    assert (arr.type, arr.item_object) == (FieldType.array, "patients.appointments")
    assert pat.field("address").type == FieldType.object
    assert pat.field("address").vendor["keys"] == ["line1", "postcode"]
    assert pat.field("tags").vendor == {"items": "scalar"}
    appts = schema.object("patients.appointments")
    assert appts.parent == "patients" and appts.key == "id"
    assert schema.object("patients.appointments.items").parent == "patients.appointments"
    assert schema.object("patients.appointments.items").field("fee").type == FieldType.decimal
    assert pat.field("id").type == FieldType.integer
    check_source_schema(schema)  # the inferred schema satisfies the declared-schema rules


def test_json_list_and_jsonl(tmp_path):
    (tmp_path / "clinics.json").write_text(json.dumps([{"id": "c1", "open": True}, {"id": "c2", "open": False}]))
    (tmp_path / "notes.jsonl").write_text(
        "\n".join(json.dumps({"id": i, "body": "text", "score": i / 2}) for i in range(5)) + "\n\n")
    schema = infer_schema([tmp_path / "clinics.json", tmp_path / "notes.jsonl"], "x")
    assert schema.object("clinics").field("open").type == FieldType.boolean
    notes = schema.object("notes")
    assert notes.field("score").type == FieldType.decimal and notes.key == "id"


def test_sampling_limits_rows(tmp_path):
    rows = [{"id": str(i), "v": "a"} for i in range(50)] + [{"id": "50", "v": "x" * 400}]
    p = _csv(tmp_path / "big.csv", rows)
    assert infer_schema([p], "x", sample_rows=50).object("big").field("v").max_length == 1
    assert infer_schema([p], "x").object("big").field("v").type == FieldType.textarea
    (tmp_path / "big.jsonl").write_text("\n".join(json.dumps({"id": i}) for i in range(30)) + "\n{broken")
    assert infer_schema([tmp_path / "big.jsonl"], "x", sample_rows=30).object("big")
    # a top-level JSON list is not read past the sample (the broken tail is never parsed)
    (tmp_path / "big.json").write_text('[{"id": 1}, {"id": 2}, {"id": 3}, {broken')
    assert infer_schema([tmp_path / "big.json"], "x", sample_rows=2).object("big").key == "id"


def test_missing_keys_make_fields_nullable(tmp_path):
    p = tmp_path / "r.jsonl"
    p.write_text('{"id": 1, "a": "x"}\n{"id": 2}\n')
    obj = infer_schema([p], "x").object("r")
    assert obj.field("a").nullable is True and obj.field("id").nullable is False


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".json"])
def test_bad_encoding_names_file_and_offset(tmp_path, suffix):
    p = tmp_path / f"bad{suffix}"
    good = {".csv": b"id,name\n1,Ann\n", ".jsonl": b'{"id": 1}\n', ".json": b'[{"id": 1}, '}[suffix]
    tail = {".csv": b"2,Zo\xe9\n", ".jsonl": b'{"id": "\xe9"}\n', ".json": b'{"id": "\xe9"}]'}[suffix]
    p.write_bytes(good + tail)
    with pytest.raises(SchemaLoadError) as info:
        infer_schema([p], "x")
    offset = len(good) + tail.index(b"\xe9")
    assert info.value.path == str(p)
    assert f"byte offset {offset}" in info.value.message
    # the right encoding reads it
    assert infer_schema([p], "x", encoding="latin-1").objects


def test_bad_inputs(tmp_path):
    with pytest.raises(SchemaLoadError, match="file not found"):
        infer_schema([tmp_path / "nope.csv"], "x")
    (tmp_path / "x.xml").write_text("<a/>")
    with pytest.raises(SchemaLoadError, match="'.xml'"):
        infer_schema([tmp_path / "x.xml"], "x")
    (tmp_path / "broken.json").write_text('[{"id": 1}, {"id": ')
    with pytest.raises(SchemaLoadError) as info:
        infer_schema([tmp_path / "broken.json"], "x")
    assert "invalid JSON" in info.value.message
    (tmp_path / "scalar.json").write_text("42")
    with pytest.raises(SchemaLoadError, match="expected a JSON array"):
        infer_schema([tmp_path / "scalar.json"], "x")
    (tmp_path / "bad.jsonl").write_text('{"id": 1}\nnot json\n')
    with pytest.raises(SchemaLoadError) as info:
        infer_schema([tmp_path / "bad.jsonl"], "x")
    assert info.value.json_path == "$[1]" and "line 2" in info.value.message
    (tmp_path / "a.csv").write_text("id\n1\n")
    (tmp_path / "a.jsonl").write_text('{"id": 1}\n')
    with pytest.raises(SchemaLoadError, match="also defined by"):
        infer_schema([tmp_path / "a.csv", tmp_path / "a.jsonl"], "x")


def test_semicolon_csv_and_bom(tmp_path):
    p = tmp_path / "s.csv"
    p.write_bytes("\ufeffid;name\n1;Ann\n2;Bob\n".encode())
    obj = infer_schema([p], "x").object("s")
    assert obj.field_names() == ["id", "name"]


def test_synthea_sample(shared_dir):
    base = shared_dir / "data" / "clinic-sources" / "synthea"
    schema = infer_schema([base / "patients.csv", base / "encounters.csv"], "synthea", sample_rows=200)
    pat = schema.object("patients")
    assert pat.key == "Id"
    assert pat.field("BIRTHDATE").type == FieldType.date
    assert pat.field("DEATHDATE").nullable is True
    assert pat.field("GENDER").picklist_values == ["F", "M"]
    assert pat.field("SSN").type == FieldType.text  # 9 digits: not a phone
    enc = schema.object("encounters")
    assert enc.field("START").type == FieldType.datetime
    assert enc.field("PAYER").type == FieldType.text  # uuids are references, not a picklist
