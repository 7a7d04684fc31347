"""JSON / JSONL sources: list, object-of-lists, bad lines, nested arrays, the incremental reader."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.sources import SourceError, json_files, open_source
from runtime.sources.json_files import JsonSource, JsonStreamReader

PATIENTS = [
    {
        "id": 1,
        "name": "Ann",
        "appointments": [{"id": "a1", "status": "DNA"}, {"id": "a2", "status": "Complete"}],
        "treatments": [],
        "billing_lines": [{"amount": 12.5}],
    },
    {"id": 2, "name": "Bob", "appointments": [], "clinical_notes": [{"body": "<p>x</p>"}]},
]


def test_top_level_list(tmp_path):
    (tmp_path / "patients.json").write_text(json.dumps(PATIENTS, indent=2))
    src = open_source(f"json:{tmp_path / 'patients.json'}")
    assert src.objects() == ["patients"]
    recs = list(src.records("patients"))
    assert [r.key for r in recs] == ["1", "2"]
    assert recs[0].data == PATIENTS[0]  # nested arrays preserved as read
    assert recs[0].data["appointments"][0]["status"] == "DNA"
    assert recs[0].position == "patients.json:2"
    assert src.count("patients") == 2


def test_object_of_lists_ignores_metadata(tmp_path):
    doc = {
        "exported_at": "2024-06-01",
        "meta": {"v": 1},
        "patients": PATIENTS,
        "clinics": [{"id": "c1", "name": "Main"}],
    }
    (tmp_path / "export.json").write_text(json.dumps(doc))
    src = open_source(str(tmp_path / "export.json"))
    assert src.objects() == ["clinics", "patients"]
    assert [r.data for r in src.records("patients")] == PATIENTS
    assert [r.key for r in src.records("clinics")] == ["c1"]
    assert src.count("clinics") == 1


def test_jsonl_bad_line_becomes_problem_record(tmp_path):
    (tmp_path / "notes.jsonl").write_bytes(
        b'{"id": 1, "body": "a"}\n\n{"id": 2, "body": \n{"id": 3}\n"just a string"\n'
        b'{"id": 4, "x": "caf\xe9"}\n'
    )
    src = open_source(f"jsonl:{tmp_path / 'notes.jsonl'}")
    recs = list(src.records("notes"))
    assert [(r.key, r.position) for r in recs] == [
        ("1", "notes.jsonl:1"),
        ("row:2", "notes.jsonl:3"),
        ("3", "notes.jsonl:4"),
        ("row:4", "notes.jsonl:5"),
        ("row:5", "notes.jsonl:6"),
    ]
    assert recs[1].problem.startswith("invalid JSON line: Expecting value")
    assert recs[1].data == {"__line__": '{"id": 2, "body": '}
    assert recs[3].problem == "record is not a JSON object (str)"
    assert recs[4].problem.startswith("undecodable bytes at byte offset")
    assert src.count("notes") == 5


def test_directory_of_json_and_jsonl(tmp_path):
    (tmp_path / "patients.json").write_text(json.dumps(PATIENTS))
    (tmp_path / "clinics.jsonl").write_text('{"id": "c1"}\n')
    src = open_source(str(tmp_path))
    assert isinstance(src, JsonSource)
    assert src.objects() == ["clinics", "patients"]
    assert [r.key for r in src.records("clinics")] == ["c1"]


def test_duplicate_and_missing_keys_and_non_objects(tmp_path):
    (tmp_path / "p.json").write_text(
        json.dumps([{"id": 1}, {"id": 1.0}, {"name": "x"}, 5, {"id": [1]}])
    )
    recs = list(open_source(str(tmp_path / "p.json")).records("p"))
    assert [(r.key, r.problem) for r in recs] == [
        ("1", None),
        ("1", "duplicate source key"),
        ("row:3", "missing source key (field 'id')"),
        ("row:4", "record is not a JSON object (int)"),
        ("row:5", "unusable source key (field 'id' is list)"),
    ]


def test_broken_json_yields_records_before_the_break_then_errors(tmp_path):
    (tmp_path / "p.json").write_text('[\n{"id": 1},\n{"id": 2}\n{"id": 3}\n]')
    it = open_source(str(tmp_path / "p.json")).records("p")
    assert next(it).key == "1"
    assert next(it).key == "2"
    with pytest.raises(SourceError, match=r"p\.json:4: invalid JSON: expected ',' or ']'"):
        next(it)


def test_truncated_json_is_a_source_error(tmp_path):
    (tmp_path / "p.json").write_text('[{"id": 1}, {"id": 2, "name": "unterminated')
    with pytest.raises(SourceError, match=r"p\.json:1: invalid JSON"):
        list(open_source(str(tmp_path / "p.json")).records("p"))


def test_scalar_top_level_is_a_source_error(tmp_path):
    (tmp_path / "p.json").write_text("42")
    with pytest.raises(SourceError, match="expected a JSON array or object"):
        open_source(str(tmp_path / "p.json")).objects()


def test_same_object_in_two_files_is_an_error(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"patients": []}))
    (tmp_path / "patients.json").write_text("[]")
    with pytest.raises(SourceError, match="object 'patients' appears in both"):
        open_source(str(tmp_path)).objects()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    items=st.lists(json_values, max_size=6),
    indent=st.sampled_from([None, 0, 2]),
    chunk=st.integers(min_value=1, max_value=9),
)
def test_incremental_reader_matches_json_loads(items, indent, chunk):
    """Tiny chunks put every token boundary (numbers, strings, escapes) across chunk edges."""
    text = json.dumps(items, indent=indent)
    old = json_files._CHUNK
    json_files._CHUNK = chunk
    try:
        r = JsonStreamReader(io.StringIO(text), "t.json")
        assert [v for _line, v in r.iter_array()] == items
        assert r.peek() == ""
    finally:
        json_files._CHUNK = old


def test_number_split_across_chunks(monkeypatch):
    monkeypatch.setattr(json_files, "_CHUNK", 3)
    r = JsonStreamReader(io.StringIO("[12345, 6.75e10, true]"), "n.json")
    assert [v for _l, v in r.iter_array()] == [12345, 6.75e10, True]
