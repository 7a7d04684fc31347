"""SQL source over SQLite: tables, named queries, value conversion, filters, errors."""

from __future__ import annotations

import sqlite3
from decimal import Decimal

import pytest

from runtime.sources import SourceError, open_source
from runtime.sources.sql import SqlSource


@pytest.fixture()
def db(tmp_path):
    path = tmp_path / "clinic.db"
    c = sqlite3.connect(path)
    c.execute(
        "CREATE TABLE patients (patient_id INTEGER PRIMARY KEY, name TEXT, balance NUMERIC(10,2), "
        "updated_at DATETIME, dob DATE)"
    )
    c.executemany(
        "INSERT INTO patients VALUES (?, ?, ?, ?, ?)",
        [
            (3, "Cy", "0.10", "2024-03-01 09:00:00", "1990-01-31"),
            (1, "Ann", "12.50", "2024-01-01 09:00:00", "1980-02-29"),
            (2, "Bob", None, "2024-02-01 09:00:00", None),
        ],
    )
    c.execute("CREATE TABLE clinics (id TEXT, name TEXT)")
    c.executemany("INSERT INTO clinics VALUES (?, ?)", [("c1", "Main"), ("c1", "Dup")])
    c.commit()
    c.close()
    return path


def test_table_records_ordered_and_converted(db):
    src = open_source(f"sqlite:///{db}?key.patients=patient_id&modified.patients=updated_at")
    assert isinstance(src, SqlSource)
    assert src.objects() == ["clinics", "patients"]
    recs = list(src.records("patients"))
    assert [r.key for r in recs] == ["1", "2", "3"]  # ordered by the key
    ann = recs[0]
    assert ann.data["balance"] == Decimal("12.50") and isinstance(ann.data["balance"], Decimal)
    assert ann.data["updated_at"] == "2024-01-01T09:00:00"
    assert ann.data["dob"] == "1980-02-29"
    assert ann.modified_at == "2024-01-01T09:00:00"
    assert ann.position == "patients row 1"
    assert recs[1].data["balance"] is None
    assert src.count("patients") == 3
    assert [r.key for r in src.records("patients", modified_at="2024-02-01T09:00:00")] == ["2", "3"]
    assert [r.key for r in src.records("patients", key="3")] == ["3"]
    src.close()


def test_named_query_and_duplicates(db):
    src = open_source(
        f"sqlite:///{db}",
        options={
            "query.active": "SELECT patient_id AS id, name FROM patients WHERE patient_id > 1"
        },
    )
    assert "active" in src.objects()
    assert sorted(r.key for r in src.records("active")) == ["2", "3"]
    assert src.count("active") == 2
    clinics = list(src.records("clinics"))
    assert [r.problem for r in clinics] == [None, "duplicate source key"]


def test_errors_are_source_errors(db, tmp_path):
    src = open_source(f"sqlite:///{db}", options={"query.broken": "SELECT nope FROM nowhere"})
    with pytest.raises(SourceError, match="no object 'missing'"):
        list(src.records("missing"))
    with pytest.raises(SourceError, match="cannot read 'broken'.*no such table"):
        list(src.records("broken"))
    with pytest.raises(SourceError, match="SQLite database not found"):
        open_source(f"sqlite:///{tmp_path / 'absent.db'}")
    with pytest.raises(SourceError, match="unknown source kind"):
        open_source("ftp://example.org/x")
