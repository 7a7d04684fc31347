"""State store: schema and upgrades, journal transitions, crash/resume, id map, outcomes, counts,
watermarks, quarantine and masking, audit export."""

from __future__ import annotations

import csv
import json
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.state import (
    LATEST_VERSION,
    DuplicateOutcomeError,
    OpResult,
    Outcome,
    PlannedOp,
    QuarantineItem,
    StateError,
    StateStore,
    mask,
    request_hash,
)
from runtime.state.schema import migrate

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def store(tmp_path):
    s = StateStore(tmp_path / "state.db")
    yield s
    s.close()


def planned(n: int, op: str = "create", map: str = "Contacts", start: int = 0) -> list[PlannedOp]:
    return [
        PlannedOp(
            map,
            "Contacts",
            op,
            source_object="patients",
            source_key=str(i),
            external_id=f"P-{i}",
            payload={"Last_Name": f"n{i}"},
        )
        for i in range(start, start + n)
    ]


# -- schema ----------------------------------------------------------------------------------------


def test_schema_created_with_wal_and_full_sync(tmp_path, store):
    assert store.schema_version == LATEST_VERSION
    tables = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {
        "schema_version",
        "runs",
        "ops",
        "id_map",
        "quarantine",
        "outcomes",
        "watermarks",
        "extracted",
    } <= tables
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_upgrade_from_version_1_in_place(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, upto=1) == 1
    conn.execute("INSERT INTO runs (migration, started_at, status) VALUES ('m', 't', 'stopped')")
    conn.execute(
        "INSERT INTO ops (run_id, map, target_object, op, state, planned_at) "
        "VALUES (1, 'Contacts', 'Contacts', 'create', 'sent', 't')"
    )
    cols = [r[1] for r in conn.execute("PRAGMA table_info(ops)")]
    assert "attempt" not in cols
    conn.close()

    with StateStore(path) as s:
        assert s.schema_version == LATEST_VERSION
        [op] = s.unresolved_ops(1)
        assert op.state == "sent" and op.attempt == 1
        s.set_extracted(1, "Contacts", 5)
        assert s.counts(1)["Contacts"]["extracted"] == 5
    with StateStore(path) as s:  # reopening an up-to-date file is a no-op
        assert s.schema_version == LATEST_VERSION


def test_newer_state_file_is_refused(tmp_path):
    path = tmp_path / "new.db"
    StateStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE schema_version SET version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(StateError, match="schema version 99, newer"):
        StateStore(path)


# -- runs ------------------------------------------------------------------------------------------


def test_run_lifecycle(store):
    rid = store.start_run(
        "Aerona -> Zoho", fmap_path="m.fmap", source_sha256="ab" * 32, options={"sample": 10}
    )
    run = store.get_run(rid)
    assert run.status == "running" and run.options == {"sample": 10} and run.finished_at is None
    store.set_run_status(rid, "stopped")
    assert store.resume_run(rid).status == "running"
    counts = store.finish_run(rid)
    run = store.get_run(rid)
    assert run.status == "completed" and run.counts == counts and run.finished_at
    with pytest.raises(StateError, match="only running/stopped/failed"):
        store.resume_run(rid)
    with pytest.raises(StateError, match="unknown run status"):
        store.set_run_status(rid, "exploded")
    assert store.latest_run("Aerona -> Zoho").id == rid
    assert store.latest_run("other") is None


# -- journal ---------------------------------------------------------------------------------------


def test_journal_transitions_and_id_map(store):
    rid = store.start_run("m")
    ids = store.plan_ops(rid, planned(3))
    assert [o.state for o in store.ops(rid)] == ["planned"] * 3
    assert store.get_op(ids[0]).request_hash == request_hash({"Last_Name": "n0"})
    store.mark_sent(ids)
    store.confirm(
        [OpResult(ids[0], "D0"), (ids[1], "D1")],
        outcomes=[
            Outcome("Contacts", "0", "loaded", "created"),
            Outcome("Contacts", "1", "loaded", "created"),
        ],
    )
    store.fail(
        [(ids[2], "HTTP 400 MANDATORY_NOT_FOUND Last_Name")],
        outcomes=[Outcome("Contacts", "2", "failed", "HTTP 400 MANDATORY_NOT_FOUND")],
    )
    states = {o.id: (o.state, o.destination_id, o.error) for o in store.ops(rid)}
    assert states[ids[0]] == ("confirmed", "D0", None)
    assert states[ids[2]][0] == "failed" and states[ids[2]][2].startswith("HTTP 400")
    assert store.unresolved_ops(rid) == []
    assert store.lookup("Contacts", "0") == "D0"
    assert store.lookup("Contacts", "2") is None
    assert store.lookup_many("Contacts", ["0", "1", "2", "0"]) == {"0": "D0", "1": "D1"}
    entry = store.id_entry("Contacts", "1")
    assert entry.created and entry.run_id == rid and entry.external_id == "P-1"


def test_invalid_transitions_raise_and_roll_back(store):
    rid = store.start_run("m")
    ids = store.plan_ops(rid, planned(2))
    with pytest.raises(StateError, match="cannot move ops to 'confirmed'"):
        store.confirm([OpResult(ids[0], "D0")])  # never sent
    store.mark_sent([ids[0]])
    with pytest.raises(StateError, match="allowed from planned"):
        store.mark_sent(ids)  # ids[0] already sent: the whole call is rolled back
    assert store.get_op(ids[1]).state == "planned"
    with pytest.raises(StateError, match="unknown op"):
        store.plan_ops(rid, [*planned(1, start=5), PlannedOp("X", "X", "frobnicate")])
    assert len(list(store.ops(rid))) == 2  # nothing of the bad batch was written


def test_unknown_requeue_and_update_delete(store):
    rid = store.start_run("m")
    [a] = store.plan_ops(rid, planned(1))
    store.mark_sent([a])
    store.mark_unknown([a], "timeout after 30s")
    assert store.get_op(a).state == "unknown"
    store.requeue([a])  # lookup by external id found nothing
    op = store.get_op(a)
    assert op.state == "planned" and op.attempt == 2 and op.sent_at is None
    store.mark_sent([a])
    store.confirm([OpResult(a, "D0")])
    [u] = store.plan_ops(
        rid,
        [
            PlannedOp(
                "Contacts",
                "Contacts",
                "update",
                source_key="0",
                before_image={"Last_Name": "old", "Amount": Decimal("1.50")},
            )
        ],
    )
    assert store.get_op(u).before_image == {"Amount": "1.50", "Last_Name": "old"}
    store.mark_sent([u])
    store.confirm([OpResult(u, None)])
    assert store.id_entry("Contacts", "0").created  # an update keeps the created flag
    [d] = store.plan_ops(rid, [PlannedOp("Contacts", "Contacts", "delete", source_key="0")])
    store.mark_sent([d])
    store.confirm([OpResult(d)])
    assert store.lookup("Contacts", "0") is None  # rolled back: gone from the id map


def test_upsert_created_flag(store):
    rid = store.start_run("m")
    ids = store.plan_ops(rid, planned(2, op="upsert"))
    store.mark_sent(ids)
    store.confirm([OpResult(ids[0], "D0", created=True), OpResult(ids[1], "D1", created=False)])
    assert store.id_entry("Contacts", "0").created
    assert not store.id_entry("Contacts", "1").created


def test_unresolved_ops_after_close_without_confirm(tmp_path):
    path = tmp_path / "s.db"
    s = StateStore(path)
    rid = s.start_run("m")
    ids = s.plan_ops(rid, planned(4))
    s.mark_sent(ids[:2])
    s.confirm([OpResult(ids[0], "D0")])
    s.close()  # "crash" before the rest is confirmed
    with StateStore(path) as s2:
        assert [(o.id, o.state) for o in s2.unresolved_ops(rid)] == [
            (ids[1], "sent"),
            (ids[2], "planned"),
            (ids[3], "planned"),
        ]


def test_unresolved_ops_after_sigkill(tmp_path):
    """A process killed right after mark_sent: what was committed survives, nothing else."""
    path = tmp_path / "s.db"
    code = f"""
import os, signal, sys
sys.path.insert(0, {str(ROOT)!r})
from runtime.state import StateStore, PlannedOp, OpResult
s = StateStore({str(path)!r})
rid = s.start_run("m")
ids = s.plan_ops(rid, [PlannedOp("Contacts", "Contacts", "create", source_key=str(i),
                                 external_id=f"P-{{i}}") for i in range(3)])
s.mark_sent(ids)
s.confirm([OpResult(ids[0], "D0")])
s.conn.execute("BEGIN IMMEDIATE")  # an uncommitted write in flight when the kill lands
s.conn.execute("UPDATE ops SET state = 'confirmed' WHERE id = ?", (ids[1],))
os.kill(os.getpid(), signal.SIGKILL)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert proc.returncode != 0
    with StateStore(path) as s:
        run = s.latest_run("m")
        assert run.status == "running"
        assert [(o.source_key, o.state) for o in s.unresolved_ops(run.id)] == [
            ("1", "sent"),
            ("2", "sent"),
        ]
        assert s.lookup("Contacts", "0") == "D0"


# -- outcomes and counts ---------------------------------------------------------------------------


def test_outcome_uniqueness(store):
    rid = store.start_run("m")
    store.record_outcome(rid, "Contacts", "1", "loaded", "created", source_object="patients")
    with pytest.raises(
        DuplicateOutcomeError, match="'1' already has an outcome for map 'Contacts'"
    ):
        store.record_outcomes(
            rid,
            [
                Outcome("Contacts", "2", "skipped", "rule x"),
                Outcome("Contacts", "1", "failed", "boom"),
            ],
        )
    assert store.outcomes_for(rid, "Contacts", ["1", "2"]) == {"1": ("loaded", "created")}
    # same key, other map or other run: fine
    store.record_outcome(rid, "Patient_Details", "1", "loaded", "created")
    store.record_outcome(store.start_run("m"), "Contacts", "1", "loaded", "unchanged")
    with pytest.raises(StateError, match="needs detail"):
        store.record_outcome(rid, "Contacts", "9", "loaded", "teleported")
    with pytest.raises(StateError, match="unknown outcome"):
        store.record_outcome(rid, "Contacts", "9", "vanished")


def test_confirm_with_duplicate_outcome_rolls_back_the_confirm(store):
    rid = store.start_run("m")
    [a] = store.plan_ops(rid, planned(1))
    store.mark_sent([a])
    store.record_outcome(rid, "Contacts", "0", "skipped", "already there")
    with pytest.raises(DuplicateOutcomeError):
        store.confirm([OpResult(a, "D0")], outcomes=[Outcome("Contacts", "0", "loaded", "created")])
    assert store.get_op(a).state == "sent"
    assert store.lookup("Contacts", "0") is None


def test_counts_add_up(store):
    rid = store.start_run("m")
    store.set_extracted(rid, "Contacts", 9)
    store.set_extracted(rid, "Leads", 2)
    store.record_outcomes(
        rid,
        [
            Outcome("Contacts", "1", "loaded", "created"),
            Outcome("Contacts", "2", "loaded", "created"),
            Outcome("Contacts", "3", "loaded", "updated"),
            Outcome("Contacts", "4", "loaded", "unchanged"),
            Outcome("Contacts", "5", "skipped", "routed to Leads"),
            Outcome("Contacts", "6", "failed", "HTTP 500"),
            Outcome("Leads", "5", "loaded", "created"),
            Outcome("Leads", "7", "skipped", "where"),
            Outcome("Notes", "n1", "loaded", "created"),
        ],
    )
    store.quarantine(
        rid,
        [
            QuarantineItem(
                "patients",
                "7",
                "Contacts",
                "invalid date",
                field="dob",
                value="31/02/1990",
                sensitive=True,
            )
        ],
    )
    counts = store.counts(rid)
    assert counts["Contacts"] == {
        "extracted": 9,
        "created": 2,
        "updated": 1,
        "unchanged": 1,
        "skipped": 1,
        "quarantined": 1,
        "failed": 1,
        "pending": 2,
    }
    assert counts["Leads"]["pending"] == 0
    assert counts["Notes"]["extracted"] == 1  # never set: the outcomes
    for c in counts.values():
        done = sum(
            c[k] for k in ("created", "updated", "unchanged", "skipped", "quarantined", "failed")
        )
        assert done + c["pending"] == c["extracted"]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["A", "B"]),
            st.integers(0, 30),
            st.sampled_from(
                ["created", "updated", "unchanged", "skipped", "quarantined", "failed"]
            ),
        ),
        max_size=40,
    )
)
def test_counts_match_distinct_outcomes(items):
    with StateStore(":memory:") as s:
        rid = s.start_run("m")
        expected: dict[str, dict[str, int]] = {}
        for m, k, kind in items:
            o = (
                Outcome(m, str(k), "loaded", kind)
                if kind in ("created", "updated", "unchanged")
                else Outcome(m, str(k), kind, "why")
            )
            try:
                s.record_outcomes(rid, [o])
            except DuplicateOutcomeError:
                continue
            expected.setdefault(m, {}).setdefault(kind, 0)
            expected[m][kind] += 1
        counts = s.counts(rid)
        assert set(counts) == set(expected)
        for m, kinds in expected.items():
            assert {k: v for k, v in counts[m].items() if v and k not in ("extracted",)} == kinds
            assert counts[m]["extracted"] == sum(kinds.values())


# -- quarantine and masking ------------------------------------------------------------------------


def test_mask():
    assert mask(None) == "<null>"
    assert mask("") == "<empty>"
    assert mask("943 476 5919") == "*** (str, 12 chars)"
    assert mask(19800229) == "*** (int)"
    assert mask(["a", "b"]) == "*** (list, 2 items)"
    assert "943" not in mask("943 476 5919")


def test_quarantine_masks_sensitive_values_and_records_one_outcome(store):
    rid = store.start_run("m")
    n = store.quarantine(
        rid,
        [
            QuarantineItem(
                "patients",
                "p1",
                "Contacts",
                "not a date",
                field="dob",
                value="31/02/1990",
                rule="date('%d/%m/%Y')",
                location="aerona_zoho.fmap:42",
                sensitive=True,
            ),
            QuarantineItem(
                "patients",
                "p1",
                "Contacts",
                "unmapped value",
                field="gender",
                value="X",
                rule="valuemap gender",
                location="aerona_zoho.fmap:12",
            ),
            QuarantineItem("patients", "p2", "Contacts", "bad row", value={"n": 1}),
        ],
    )
    assert n == 3
    rows = list(store.quarantined(rid))
    assert rows[0]["value"] == "*** (str, 10 chars)" and "1990" not in json.dumps(rows[0])
    assert rows[0]["location"] == "aerona_zoho.fmap:42"
    assert rows[1]["value"] == "X"
    assert rows[2]["value"] == '{"n":1}'
    assert store.outcomes_for(rid, "Contacts", ["p1", "p2"]) == {
        "p1": ("quarantined", "not a date"),
        "p2": ("quarantined", "bad row"),
    }


# -- watermarks ------------------------------------------------------------------------------------


def test_watermark_ties(store):
    assert store.get_watermark("patients") is None
    w = store.advance_watermark("patients", "2024-05-01T10:00:00Z", ["a"])
    assert w.keys == {"a"}
    w = store.advance_watermark("patients", "2024-05-01T10:00:00+00:00", ["b"])  # same instant
    assert w.modified_at == "2024-05-01T10:00:00Z" and w.keys == {"a", "b"}
    assert store.advance_watermark("patients", "2024-04-01T00:00:00Z", ["z"]).keys == {"a", "b"}
    stored = store.get_watermark("patients")
    assert stored.keys == {"a", "b"}
    assert not stored.admits("2024-05-01T10:00:00Z", "a")
    assert stored.admits("2024-05-01T10:00:00Z", "c")  # same timestamp, not yet processed
    assert not stored.admits("2024-04-30T10:00:00Z", "c")
    assert stored.admits("2024-05-01T10:00:01Z", "a")
    assert stored.admits(None, "a")
    w = store.advance_watermark("patients", "2024-06-01T00:00:00Z", ["c"], run_id=None)
    assert store.get_watermark("patients").keys == {"c"} == w.keys
    store.reset_watermark("patients")
    assert store.get_watermark("patients") is None


# -- audit -----------------------------------------------------------------------------------------


def test_audit_export_csv_and_jsonl(store, tmp_path):
    rid = store.start_run("m")
    ids = store.plan_ops(
        rid,
        planned(2)
        + [
            PlannedOp(
                "Contacts",
                "Contacts",
                "update",
                source_key="9",
                before_image={"Email": "secret@example.org"},
            )
        ],
    )
    store.mark_sent(ids)
    store.confirm([OpResult(ids[0], "D0")])
    store.fail([(ids[1], "HTTP 400")])
    assert store.export_audit(rid, tmp_path / "a.csv") == 3
    with open(tmp_path / "a.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["state"] for r in rows] == ["confirmed", "failed", "sent"]
    assert rows[0]["destination_id"] == "D0" and rows[0]["op"] == "create"
    assert "secret" not in (tmp_path / "a.csv").read_text()
    assert store.export_audit(rid, tmp_path / "a.jsonl", fmt="jsonl") == 3
    lines = [json.loads(x) for x in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert lines[1]["error"] == "HTTP 400" and "before_image" not in lines[2]
    store.export_audit(rid, tmp_path / "b.jsonl", fmt="jsonl", include_before_image=True)
    full = [json.loads(x) for x in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert full[2]["before_image"] == {"Email": "secret@example.org"}
    with pytest.raises(StateError, match="unknown audit format"):
        store.export_audit(rid, tmp_path / "x", fmt="xml")
    with pytest.raises(StateError, match="no run 99"):
        store.export_audit(99, tmp_path / "x")


def test_request_hash_is_canonical():
    assert request_hash({"a": 1, "b": [Decimal("1.10")]}) == request_hash({"b": ["1.10"], "a": 1})
    assert request_hash({"a": 1}) != request_hash({"a": 2})
