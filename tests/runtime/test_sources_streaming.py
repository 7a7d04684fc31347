"""Streaming: memory does not grow with the source size (PERFORMANCE.md), and the first record of a
large file arrives without the file being read whole."""

from __future__ import annotations

import json
import sqlite3
import tracemalloc

import pytest

from runtime.sources import open_source

ROW = {
    "id": 0,
    "first_name": "Alexandra",
    "last_name": "Montgomery-Smith",
    "email": "a@example.org",
    "dob": "01/02/1980",
    "notes": "n" * 60,
}


def make(tmp_path, kind: str, n: int) -> str:
    d = tmp_path / f"{kind}{n}"
    d.mkdir()
    if kind == "csv":
        with open(d / "patients.csv", "w", encoding="utf-8") as fh:
            fh.write(",".join(ROW) + "\n")
            for i in range(n):
                fh.write(",".join(str(i) if k == "id" else str(v) for k, v in ROW.items()) + "\n")
        return f"csv:{d}"
    if kind == "json":
        with open(d / "patients.json", "w", encoding="utf-8") as fh:
            fh.write("[\n")
            for i in range(n):
                fh.write(
                    ("," if i else "")
                    + json.dumps({**ROW, "id": i, "appointments": [{"id": i}]})
                    + "\n"
                )
            fh.write("]\n")
        return f"json:{d / 'patients.json'}"
    if kind == "jsonl":
        with open(d / "patients.jsonl", "w", encoding="utf-8") as fh:
            for i in range(n):
                fh.write(json.dumps({**ROW, "id": i}) + "\n")
        return f"jsonl:{d / 'patients.jsonl'}"
    c = sqlite3.connect(d / "db.sqlite")
    c.execute(f"CREATE TABLE patients ({', '.join(ROW)})")
    c.executemany(
        f"INSERT INTO patients VALUES ({', '.join('?' * len(ROW))})",
        ([i, *list(ROW.values())[1:]] for i in range(n)),
    )
    c.commit()
    c.close()
    return f"sqlite:///{d / 'db.sqlite'}"


def peak_reading(uri: str) -> tuple[int, int]:
    src = open_source(uri, options={"check_duplicates": "false"})
    tracemalloc.start()
    try:
        n = sum(1 for _ in src.records("patients"))
        return n, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        src.close()


@pytest.mark.parametrize("kind", ["csv", "json", "jsonl", "sqlite"])
def test_peak_memory_flat_from_2k_to_20k_rows(tmp_path, kind):
    small_n, small = peak_reading(make(tmp_path, kind, 2_000))
    big_n, big = peak_reading(make(tmp_path, kind, 20_000))
    assert (small_n, big_n) == (2_000, 20_000)
    # holding 18k more records would cost > 20 MB; allow noise of 512 KiB
    assert big - small < 512 * 1024, (kind, small, big)


@pytest.mark.parametrize("kind", ["csv", "json"])
def test_first_record_without_reading_the_whole_file(tmp_path, kind):
    uri = make(tmp_path, kind, 20_000)  # ~3 MB
    src = open_source(uri)
    tracemalloc.start()
    try:
        it = src.records("patients")
        first = next(it)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        it.close()
    assert first.key == "0"
    assert peak < 1024 * 1024, peak
