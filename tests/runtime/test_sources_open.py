"""open_source(): URI forms, options from the query string, the Source protocol."""

from __future__ import annotations

import json
import sqlite3

import pytest

from runtime.sources import Source, SourceError, open_source
from runtime.sources.csv_dir import CsvDirSource
from runtime.sources.json_files import JsonSource
from runtime.sources.sql import SqlSource


def test_uri_forms(tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "patients.csv").write_text("id\n1\n")
    (tmp_path / "j").mkdir()
    (tmp_path / "j" / "patients.jsonl").write_text('{"id": 1}\n')
    (tmp_path / "j" / "clinics.json").write_text(json.dumps([{"id": "c"}]))
    sqlite3.connect(tmp_path / "d.db").execute("CREATE TABLE t (id INTEGER)").connection.commit()

    cases = {
        f"csv:{tmp_path / 'c'}": CsvDirSource,
        str(tmp_path / "c"): CsvDirSource,
        str(tmp_path / "c" / "patients.csv"): CsvDirSource,
        f"file://{tmp_path / 'c'}": CsvDirSource,
        f"json:{tmp_path / 'j'}": JsonSource,
        str(tmp_path / "j"): JsonSource,
        f"jsonl:{tmp_path / 'j' / 'patients.jsonl'}": JsonSource,
        f"sqlite:///{tmp_path / 'd.db'}": SqlSource,
    }
    for uri, cls in cases.items():
        src = open_source(uri)
        assert isinstance(src, cls), uri
        assert isinstance(src, Source)
        assert src.objects()
        src.close()
    assert open_source(str(tmp_path / "j")).objects() == ["clinics", "patients"]


def test_query_string_options_and_explicit_options_win(tmp_path):
    (tmp_path / "patients.csv").write_bytes("pid,name\n1,Ren\xe9e\n".encode("latin-1"))
    rec = next(open_source(f"csv:{tmp_path}?encoding=latin-1&key.patients=pid").records("patients"))
    assert rec.key == "1" and rec.data["name"] == "Renée" and rec.problem is None
    rec = next(
        open_source(
            f"csv:{tmp_path}?encoding=latin-1&key.patients=nope", options={"key.patients": "pid"}
        ).records("patients")
    )
    assert rec.key == "1"


def test_sql_options_are_taken_out_of_the_driver_url(tmp_path):
    c = sqlite3.connect(tmp_path / "d.db")
    c.execute("CREATE TABLE p (pid INTEGER, changed TEXT)")
    c.execute("INSERT INTO p VALUES (5, '2024-01-01')")
    c.commit()
    src = open_source(f"sqlite:///{tmp_path / 'd.db'}?key.p=pid&modified.p=changed&yield_per=10")
    rec = next(src.records("p"))
    assert (rec.key, rec.modified_at) == ("5", "2024-01-01")


def test_unusable_paths(tmp_path):
    with pytest.raises(SourceError, match="source not found"):
        open_source(str(tmp_path / "nothing"))
    (tmp_path / "a.csv").write_text("id\n")
    (tmp_path / "b.json").write_text("[]")
    with pytest.raises(SourceError, match="holds both CSV and JSON"):
        open_source(str(tmp_path))
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(SourceError, match="cannot tell the source kind"):
        open_source(str(tmp_path / "x.txt"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no .csv, .json or .jsonl files"):
        open_source(str(tmp_path / "empty"))
