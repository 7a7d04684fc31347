"""Watermark tie keys live in their own table (one row a key), not in one JSON list: a bulk import
that stamps every row alike must not put every key in memory on every delta run. Membership is one
indexed lookup, asked only for records exactly at the tie instant; admission is what it was with
the in-memory set; an old state file's JSON list is moved into the table once."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "operations2"))
import ops2fix  # noqa: E402

from runtime.executor import RunOptions, check_invariant, run_migration  # noqa: E402
from runtime.sources.base import instant_parser  # noqa: E402
from runtime.state import StateStore, Watermark  # noqa: E402
from runtime.state.schema import migrate  # noqa: E402

T = "2024-05-01T10:00:00Z"
T_SAME = "2024-05-01T12:00:00+02:00"  # the same instant, spelled differently
T_BEFORE = "2024-05-01T09:59:59Z"
T_AFTER = "2024-05-01T10:00:01Z"


def _rows(store: StateStore, obj: str) -> list[str]:
    return [k for (k,) in store.conn.execute(
        "SELECT key FROM watermark_keys WHERE source_object = ? ORDER BY key", (obj,))]


def test_tie_keys_are_rows_of_their_own_table(tmp_path):
    with StateStore(tmp_path / "s.sqlite") as store:
        cols = [r[1] for r in store.conn.execute("PRAGMA table_info(watermarks)")]
        assert "tie_keys" not in cols
        store.advance_watermark("patients", T, (f"k{i}" for i in range(1000)))
        store.advance_watermark("clinics", T, ["c1"])
        assert len(_rows(store, "patients")) == 1000 and _rows(store, "clinics") == ["c1"]
        store.advance_watermark("patients", T_SAME, ["extra"])  # same instant: added
        assert len(_rows(store, "patients")) == 1001
        store.advance_watermark("patients", T_BEFORE, ["old"])  # earlier: nothing changes
        assert "old" not in _rows(store, "patients")
        wm = store.advance_watermark("patients", T_AFTER, ["new"])  # later: replaced
        assert _rows(store, "patients") == ["new"] and wm.keys == {"new"}
        assert _rows(store, "clinics") == ["c1"]  # another object's ties are its own
        store.reset_watermark("patients")
        assert _rows(store, "patients") == [] and store.get_watermark("patients") is None
        assert _rows(store, "clinics") == ["c1"]


def test_membership_is_one_indexed_lookup_and_only_at_the_tie_instant(tmp_path):
    with StateStore(tmp_path / "s.sqlite") as store:
        store.advance_watermark("patients", T, (f"k{i}" for i in range(5000)))
        wm = store.get_watermark("patients")
        parse = instant_parser()
        at = parse(wm.modified_at)
        statements: list[str] = []
        store.conn.set_trace_callback(statements.append)
        try:
            assert wm.admits_instant(parse(T_AFTER), "k1", at)
            assert not wm.admits_instant(parse(T_BEFORE), "zz", at)
            assert wm.admits_instant(None, "k1", at)
            assert statements == []  # off the tie instant: the keys are not consulted
            assert not wm.admits_instant(parse(T_SAME), "k1", at)
            assert wm.admits_instant(parse(T), "zz", at)
        finally:
            store.conn.set_trace_callback(None)
        assert len(statements) == 2 and all("watermark_keys" in s for s in statements)
        plan = " ".join(r[3] for r in store.conn.execute(
            "EXPLAIN QUERY PLAN SELECT 1 FROM watermark_keys WHERE source_object = ? AND key = ?",
            ("patients", "k1")))
        assert "SEARCH" in plan and "PRIMARY KEY" in plan, plan


@pytest.mark.parametrize("ts", [T, T_SAME, T_BEFORE, T_AFTER, None, "not a date"])
@pytest.mark.parametrize("key", ["a", "b", "c"])
def test_admission_is_what_the_in_memory_set_decided(tmp_path, ts, key):
    with StateStore(tmp_path / "s.sqlite") as store:
        stored = store.advance_watermark("patients", T, ["a", "b"])
        in_memory = Watermark("patients", T, frozenset({"a", "b"}))
        assert stored.admits(ts, key) == in_memory.admits(ts, key)
        assert store.get_watermark("patients").admits(ts, key) == in_memory.admits(ts, key)


def test_an_old_state_file_moves_its_json_list_into_the_table(tmp_path):
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, upto=3) == 3
    keys = [f"p{i}" for i in range(300)]
    conn.execute("INSERT INTO watermarks VALUES ('patients', ?, ?, 7, 't')", (T, json.dumps(keys)))
    conn.execute("INSERT INTO watermarks VALUES ('clinics', ?, '[]', 7, 't')", (T_AFTER,))
    conn.close()
    with StateStore(path) as store:
        assert sorted(_rows(store, "patients")) == sorted(keys) and _rows(store, "clinics") == []
        wm = store.get_watermark("patients")
        assert wm.modified_at == T and wm.keys == set(keys)
        assert not wm.admits(T, "p5") and wm.admits(T, "p999") and wm.admits(T_AFTER, "p5")
        assert store.conn.execute(
            "SELECT run_id FROM watermarks WHERE source_object = 'clinics'").fetchone() == (7,)
        cols = [r[1] for r in store.conn.execute("PRAGMA table_info(watermarks)")]
        assert "tie_keys" not in cols
    with StateStore(path) as store:  # reopening does not migrate again
        assert len(_rows(store, "patients")) == 300


# -- a bulk import: every row stamped alike ------------------------------------------------------

CLINICS = [{"id": "c1", "name": "North", "region": "N", "updated_at": T}]


def _patient(i: int, ts: str, last: str | None = None) -> dict:
    return {"id": f"p{i}", "last_name": last or f"Name{i}", "email": f"p{i}@x.com",
            "status": "Active", "clinic_id": "c1", "doctor": "doc@example.com",
            "notes": "", "updated_at": ts, "appointments": []}


@pytest.fixture(scope="module")
def module(tmp_path_factory):
    return ops2fix.compile_module(tmp_path_factory.mktemp("build"), "run")


def test_delta_after_a_bulk_import_reads_only_new_and_changed_records(tmp_path, module):
    src = ops2fix.write_src(tmp_path / "src", clinics=CLINICS, notes=[],
                            patients=[_patient(i, T) for i in range(60)])
    dest, state = ops2fix.store(), StateStore(tmp_path / "state.sqlite")

    def run(**opts):
        source = ops2fix.open_src(src)
        try:
            res = run_migration(module, source, dest, state, tmp_path / "stage",
                                source_id=str(src), options=RunOptions(**opts))
        finally:
            source.close()
        assert res.status == "completed", res.message
        check_invariant(res.counts)
        return res

    def read(run_id):
        return {k for (k,) in state.conn.execute(
            "SELECT source_key FROM outcomes WHERE run_id = ? AND map = 'Patients'", (run_id,))}

    run()
    assert len(_rows(state, "patients")) == 60
    assert read(run(delta=True).run_id) == set()  # all 60 at the tie instant, all seen
    rows = [_patient(i, T) for i in range(60)] + [_patient(60, T_SAME), _patient(61, T_BEFORE)]
    rows[3] = _patient(3, T_AFTER, last="Changed")
    ops2fix.write_src(src, patients=rows)
    third = run(delta=True)
    # new at the tie instant: read; older than the watermark: not; changed later: read
    assert read(third.run_id) == {"p60", "p3"}
    assert _rows(state, "patients") == ["p3"]  # the watermark moved to p3's instant
    assert read(run(delta=True).run_id) == set()
    dest.close()
    state.close()
