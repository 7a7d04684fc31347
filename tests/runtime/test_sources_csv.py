"""CSV directory source: encoding, BOM, bad bytes, ragged rows, duplicates, quoting, streaming."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.sources import SourceError, open_source
from runtime.sources.csv_dir import CsvDirSource


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_bom_stripped_and_empty_strings_kept(tmp_path):
    write(tmp_path / "patients.csv", b"\xef\xbb\xbfid,name,email\n1,Ann,\n2,,b@x.org\n")
    src = open_source(str(tmp_path))
    assert isinstance(src, CsvDirSource)
    assert src.objects() == ["patients"]
    recs = list(src.records("patients"))
    assert [r.key for r in recs] == ["1", "2"]
    assert recs[0].data == {"id": "1", "name": "Ann", "email": ""}
    assert recs[1].data["name"] == ""
    assert all(r.problem is None for r in recs)
    assert recs[0].position == "patients.csv:2"
    assert src.count("patients") == 2


def test_bom_stripped_with_plain_utf8_too(tmp_path):
    write(tmp_path / "p.csv", b"\xef\xbb\xbfid\n1\n")
    src = open_source(f"csv:{tmp_path}?encoding=utf-8")
    assert list(src.records("p"))[0].data == {"id": "1"}


def test_latin1_file_read_as_utf8_is_a_row_problem_with_byte_offset(tmp_path):
    content = "id,name\n1,Zoe\n2,Ren\xe9e\n3,Bo\n".encode("latin-1")
    write(tmp_path / "patients.csv", content)
    recs = list(open_source(f"csv:{tmp_path}").records("patients"))
    assert [r.key for r in recs] == ["1", "2", "3"]
    bad = recs[1]
    offset = content.index(b"\xe9")
    assert bad.problem == f"undecodable bytes at byte offset {offset} (encoding utf-8-sig)"
    assert "Ren" not in bad.problem  # no values in messages
    assert recs[0].problem is None and recs[2].problem is None
    # read with the right encoding it is clean
    ok = list(open_source(f"csv:{tmp_path}?encoding=latin-1").records("patients"))
    assert ok[1].data["name"] == "Renée" and ok[1].problem is None


def test_bad_bytes_in_header_is_a_source_error(tmp_path):
    write(tmp_path / "p.csv", b"id,n\xffme\n1,a\n")
    with pytest.raises(SourceError, match=r"p\.csv:1: cannot read the header row.*byte offset 4"):
        list(open_source(str(tmp_path)).records("p"))


def test_utf16_stream_decoding_and_error(tmp_path):
    write(tmp_path / "a.csv", "id,name\n1,Ann\n".encode("utf-16"))
    recs = list(open_source(f"csv:{tmp_path}?encoding=utf-16").records("a"))
    assert recs[0].data == {"id": "1", "name": "Ann"}
    write(tmp_path / "a.csv", "id,name\n1,Ann\n".encode("utf-16") + b"\x00\xd8\x41\x00")
    with pytest.raises(SourceError, match="undecodable bytes near byte offset"):
        list(open_source(f"csv:{tmp_path}?encoding=utf-16").records("a"))


def test_wrong_column_count_becomes_problem_record(tmp_path):
    write(tmp_path / "p.csv", b"id,a,b\n1,x\n2,x,y,z\n3,x,y\n")
    recs = list(open_source(str(tmp_path)).records("p"))
    assert [r.problem for r in recs] == [
        "row has 2 fields, header has 3",
        "row has 4 fields, header has 3",
        None,
    ]
    assert recs[0].data == {"id": "1", "a": "x"}
    assert recs[1].data == {"id": "2", "a": "x", "b": "y", "__extra__": ["z"]}


def test_duplicate_keys_and_missing_keys(tmp_path):
    write(tmp_path / "p.csv", b"id,n\n1,a\n2,b\n1,c\n1,d\n,e\n")
    recs = list(open_source(str(tmp_path)).records("p"))
    assert [(r.key, r.problem) for r in recs] == [
        ("1", None),
        ("2", None),
        ("1", "duplicate source key"),
        ("1", "duplicate source key"),
        ("row:5", "missing source key (field 'id')"),
    ]


def test_quoted_newlines_and_positions(tmp_path):
    write(tmp_path / "notes.csv", b'id,body\n1,"line one\nline two"\n2,"say ""hi"""\r\n3,x\n')
    recs = list(open_source(str(tmp_path)).records("notes"))
    assert recs[0].data["body"] == "line one\nline two"
    assert recs[1].data["body"] == 'say "hi"'
    assert [r.position for r in recs] == ["notes.csv:2", "notes.csv:4", "notes.csv:5"]
    assert open_source(str(tmp_path)).count("notes") == 3


def test_blank_lines_are_not_records_and_empty_file(tmp_path):
    write(tmp_path / "p.csv", b"id\n\n1\n\n2\n")
    write(tmp_path / "empty.csv", b"")
    src = open_source(str(tmp_path))
    assert [r.key for r in src.records("p")] == ["1", "2"]
    assert list(src.records("empty")) == [] and src.count("empty") == 0


def test_options_key_modified_delimiter_and_filters(tmp_path):
    write(
        tmp_path / "patients.csv",
        b"pid;updated\nA;2024-01-01T10:00:00\nB;2024-02-01T10:00:00\nC;\n",
    )
    src = open_source(
        f"csv:{tmp_path}?delimiter=semicolon&key.patients=pid&modified.patients=updated"
    )
    recs = list(src.records("patients"))
    assert [r.key for r in recs] == ["A", "B", "C"]
    assert recs[0].modified_at == "2024-01-01T10:00:00" and recs[2].modified_at is None
    since = [r.key for r in src.records("patients", modified_at="2024-02-01T10:00:00")]
    assert since == ["B", "C"]  # inclusive; no timestamp -> included
    assert [r.key for r in src.records("patients", key="B")] == ["B"]


def test_key_and_modified_from_schema(tmp_path):
    from runtime.schema import ObjectSchema, SystemSchema

    write(tmp_path / "patients.csv", b"patient_no,clinic,changed\n7,c1,2024-05-05\n")
    schema = SystemSchema(
        system="clinic",
        kind="source",
        objects=[ObjectSchema(api_name="patients", key="clinic,patient_no", modified_at="changed")],
    )
    rec = next(open_source(str(tmp_path), schema=schema).records("patients"))
    assert rec.key == "c1|7" and rec.modified_at == "2024-05-05"


def test_duplicate_header_and_unknown_object_and_missing_path(tmp_path):
    write(tmp_path / "p.csv", b"id,id\n1,2\n")
    src = open_source(str(tmp_path))
    with pytest.raises(SourceError, match="duplicate column name 'id'"):
        list(src.records("p"))
    with pytest.raises(SourceError, match="no object 'nope'.*objects: p"):
        list(src.records("nope"))
    with pytest.raises(SourceError, match="not found"):
        open_source(f"csv:{tmp_path / 'missing'}")
    with pytest.raises(SourceError, match="unknown encoding"):
        open_source(f"csv:{tmp_path}?encoding=klingon")


def test_field_larger_than_csv_default_limit(tmp_path):
    big = "x" * 300_000
    write(tmp_path / "n.csv", f'id,body\n1,"{big}"\n'.encode())
    rec = next(open_source(str(tmp_path)).records("n"))
    assert rec.data["body"] == big and rec.problem is None


def test_sniffing_off_by_default_and_on_when_asked(tmp_path):
    write(tmp_path / "p.csv", b"id;name\n1;Ann\n2;Bob\n")
    off = next(open_source(str(tmp_path)).records("p"))
    assert off.data == {"id;name": "1;Ann"}  # fixed dialect: comma
    on = next(open_source(f"csv:{tmp_path}?sniff=true").records("p"))
    assert on.data == {"id": "1", "name": "Ann"}


_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(st.tuples(_text, _text), max_size=8))
def test_csv_round_trip_of_arbitrary_text(tmp_path_factory, rows):
    d = tmp_path_factory.mktemp("rt")
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(["id", "a", "b"])
    for i, (a, b) in enumerate(rows):
        w.writerow([str(i), a, b])
    (d / "t.csv").write_bytes(buf.getvalue().encode("utf-8"))
    recs = list(open_source(str(d)).records("t"))
    assert [(r.data["a"], r.data["b"]) for r in recs] == rows
    assert all(r.problem is None for r in recs)


def test_modified_filter_reads_the_declared_format_as_instants(tmp_path):
    """US timestamps in New York time: as text "07/01/2025" sorts before "12/30/2024"; read with
    the declared format it is after it. A value in another shape is never compared as text: it
    is kept (cannot be proved unchanged)."""
    write(tmp_path / "patients.csv",
          b"id,changed\nA,12/30/2024 09:00 AM\nB,07/01/2025 10:00 AM\nC,2025-01-02\nD,yesterday\n")
    fmt = "%m/%d/%Y %I:%M %p".replace("%", "%25").replace(" ", "%20")
    src = open_source(f"csv:{tmp_path}?modified=changed&modified_format={fmt}"
                      "&modified_tz.patients=America/New_York")
    cfg = src.config("patients")
    assert (cfg.modified_format, cfg.modified_tz) == ("%m/%d/%Y %I:%M %p", "America/New_York")
    since = [r.key for r in src.records("patients", modified_at="01/01/2025 12:00 AM")]
    assert since == ["B", "C", "D"]  # C: ISO, New York midnight on the 2nd; D: unreadable
    assert [r.key for r in src.records("patients", modified_at="07/01/2025 10:01 AM")] == ["D"]
    parse = cfg.instant_parser()
    assert parse("12/30/2024 09:00 AM") == parse("2024-12-30T14:00:00+00:00")  # EST = UTC-5
    assert parse("07/01/2025 10:00 AM") == parse("2025-07-01T14:00:00Z")  # EDT = UTC-4
    assert parse("yesterday") is None


def test_modified_format_from_the_schema_and_bad_zone(tmp_path):
    from runtime.schema import FieldSchema, ObjectSchema, SystemSchema

    write(tmp_path / "patients.csv", b"id,changed\nA,30.12.2024 09:00\n")
    schema = SystemSchema(system="clinic", kind="source", objects=[ObjectSchema(
        api_name="patients", modified_at="changed",
        fields=[FieldSchema(api_name="changed", type="datetime",
                            vendor={"date_format": "%d.%m.%Y %H:%M", "tz": "Europe/Berlin"})])])
    cfg = open_source(str(tmp_path), schema=schema).config("patients")
    assert cfg.instant_parser()("30.12.2024 09:00") == cfg.instant_parser()("2024-12-30T08:00Z")
    with pytest.raises(SourceError, match="unknown time zone 'Mars/Olympus'"):
        open_source(f"csv:{tmp_path}?modified=changed&modified_tz=Mars/Olympus").config("patients")
