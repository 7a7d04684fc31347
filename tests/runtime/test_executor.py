"""Executor tests: in-process runs of the fixture migration (tests/fixtures/executor/exec.fmap) into a
SandboxStore enforcing a small hand-written org (required field, picklists, max lengths, lookups,
owner field, users). Every test checks the counts invariant of every run it makes:
extracted = created + updated + unchanged + skipped + quarantined + failed, per map."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "executor"))
import execfix  # noqa: E402

from runtime.destinations.base import FatalError, TransientError  # noqa: E402
from runtime.destinations.faults import FaultPlan  # noqa: E402
from runtime.executor import LoadOptions, RunOptions, check_invariant, run_migration  # noqa: E402
from runtime.sources import open_source  # noqa: E402
from runtime.state import COUNT_KEYS, StateStore  # noqa: E402

WRITE_OPS = ("create", "upsert", "update", "delete", "upload_attachment")

CLINICS = [
    {"id": "c1", "name": "North Clinic", "region": "N", "main_patient_id": "p1"},
    {"id": "c2", "name": "South Clinic", "region": "S"},
    {"id": "c3", "name": "Closed Clinic", "region": "N", "closed": "yes"},
    {"id": "c4", "name": "Odd Clinic", "region": "X"},
]
PATIENTS = [
    {"id": "p1", "last_name": " Smith ", "email": "A@X.COM", "status": "Active", "clinic_id": "c1",
     "doctor": "doc@example.com", "dob": "01/02/1980",
     "appointments": [{"id": "a1", "status": "DNA", "day": "2024-01-01"},
                      {"id": "a2", "status": "Done", "day": "2024-02-01"}]},
    {"id": "p2", "last_name": "Jones", "status": "Active", "clinic_id": "c2",
     "doctor": "nobody@example.com", "dob": "31/02/1980",
     "appointments": [{"id": "a3", "status": "Booked", "day": "2024-03-01"}]},
    {"id": "p3", "last_name": "Prospective", "status": "Prospect"},
    {"id": "p4", "last_name": "Orphan", "status": "Active", "clinic_id": "c4",
     "doctor": "doc@example.com", "dob": "01/01/1990",
     "appointments": [{"id": "a4", "status": "Weird", "day": "2024-04-01"},
                      {"id": "a5", "status": "Done", "day": "2024-04-02"}]},
    {"id": "p5", "last_name": "Ok", "status": "Active", "clinic_id": "c2", "doctor": "NOBODY@example.com",
     "dob": "01/01/1990", "appointments": [{"id": "a6", "status": "Done", "day": "2024-05-05"}]},
]
NOTES = [
    {"id": "n1", "patient_id": "p1", "body": "short note", "kind": "C"},
    {"id": "n2", "patient_id": "p5", "kind": "A",
     "body": "a long note that certainly exceeds the sixty character limit of the Body field "
             "in this test org, so it is split"},
    {"id": "n3", "patient_id": "p2", "body": "note for a quarantined patient"},
]


@pytest.fixture(scope="module")
def module(tmp_path_factory):
    return execfix.compile_module(tmp_path_factory.mktemp("build"))


def write_src(d: Path, clinics=CLINICS, patients=PATIENTS, notes=NOTES) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for name, rows in (("clinics", clinics), ("patients", patients), ("notes", notes)):
        if rows is not None:
            (d / f"{name}.json").write_text(json.dumps(rows), "utf-8")
    return d


class Env:
    """A source dir, a store, a state store and a stage path; ``run()`` checks the invariant."""

    def __init__(self, tmp: Path, module, dest=None, **src):
        self.tmp = tmp
        self.module = module
        self.src = write_src(tmp / "src", **src)
        self.dest = dest if dest is not None else execfix.store()
        self.state = StateStore(":memory:")
        self.stage = tmp / "stage"

    def run(self, src: Path | None = None, **opts):
        source = open_source(str(src or self.src))
        try:
            res = run_migration(self.module, source, self.dest, self.state, self.stage,
                                source_id=str(src or self.src), options=RunOptions(**opts))
        finally:
            source.close()
        if res.status == "completed":
            check_invariant(res.counts)
            assert all(c["pending"] == 0 for c in res.counts.values()), res.counts
        return res

    def outcome(self, run_id, m, key):
        return self.state.conn.execute(
            "SELECT outcome, detail FROM outcomes WHERE run_id=? AND map=? AND source_key=?",
            (run_id, m, key)).fetchone()

    def by_ext(self, obj):
        return {r["$external_id"]: r for r in self.dest.list_records(obj)}

    def writes(self):
        return sum(self.dest.stats.by_operation.get(op, 0) for op in WRITE_OPS)


def test_counts_and_outcomes(tmp_path, module):
    env = Env(tmp_path, module)
    res = env.run()
    assert res.status == "completed"
    c = res.counts
    assert c["Clinics"] == {"extracted": 4, "created": 2, "updated": 0, "unchanged": 0,
                            "skipped": 1, "quarantined": 1, "failed": 0, "pending": 0}
    assert c["Patients"]["extracted"] == 5 and c["Patients"]["created"] == 2
    assert c["Prospects"]["created"] == 1 and c["Prospects"]["skipped"] == 4
    assert c["Visits"]["extracted"] == 6 and c["Visits"]["failed"] == 1
    assert not res.ok  # something failed
    for m, cc in c.items():
        assert cc["extracted"] == sum(cc[k] for k in COUNT_KEYS[1:]), m


def test_routing_skips_and_skip_rules(tmp_path, module):
    env = Env(tmp_path, module)
    r = env.run().run_id
    assert env.outcome(r, "Patients", "p3") == ("skipped", "routed to Prospects")
    assert env.outcome(r, "Prospects", "p1") == ("skipped", "routed to Patients")
    assert env.outcome(r, "Prospects", "p3") == ("loaded", "created")
    assert env.outcome(r, "Clinics", "c3") == ("skipped", "clinic closed")
    assert set(env.by_ext("Prospects")) == {"Prospects:p3"}


def test_conversion_error_quarantined_with_field_and_line(tmp_path, module):
    env = Env(tmp_path, module)
    r = env.run().run_id
    q = {(x["map"], x["source_key"]): x for x in env.state.quarantined(r)}
    dob = q[("Patients", "p2")]
    assert dob["field"] == "Patients.DOB"
    assert "calendar date" in dob["reason"]
    fmap_lines = execfix.FMAP.read_text().splitlines()
    path, line = dob["location"].rsplit(":", 1)
    assert path.endswith("exec.fmap") and "DOB = dob" in fmap_lines[int(line) - 1]
    assert "31/02/1980" not in str(dob["value"])  # masked
    region = q[("Clinics", "c4")]
    assert region["field"] == "Clinics.Region" and "region" in region["reason"]
    assert env.outcome(r, "Patients", "p2")[0] == "quarantined"


def test_error_value_map_fails_record(tmp_path, module):
    env = Env(tmp_path, module)
    r = env.run().run_id
    out = env.outcome(r, "Visits", "a4")
    assert out[0] == "failed" and "visit_status" in out[1]
    assert "Visits:a4" not in env.by_ext("Visits")


def test_refs_resolve_to_destination_ids_and_children_of_unloaded_parents_skipped(tmp_path, module):
    env = Env(tmp_path, module)
    r = env.run().run_id
    patients = env.by_ext("Patients")
    clinics = env.by_ext("Clinics")
    p1 = patients["Patients:p1"]
    assert p1["Clinic"] == clinics["Clinics:c1"]["id"]
    visits = env.by_ext("Visits")
    assert visits["Visits:a1"]["Patient"] == p1["id"]
    # a1/a2 children of p1; a3 child of quarantined p2; a5 child of p4 (skipped: its clinic c4
    # was quarantined)
    assert env.outcome(r, "Patients", "p4") == (
        "skipped", "Clinics record c4 was not loaded (referenced by Clinic)")
    assert env.outcome(r, "Visits", "a3") == (
        "skipped", "Patients record p2 was not loaded (referenced by Patient)")
    assert env.outcome(r, "Visits", "a5")[0] == "skipped"
    assert env.outcome(r, "Patient_Notes", "n3")[0] == "skipped"
    assert set(visits) == {"Visits:a1", "Visits:a2", "Visits:a6"}
    # never sent: no journal entry for them
    sent = {k for (k,) in env.state.conn.execute("SELECT source_key FROM ops WHERE run_id=?", (r,))}
    assert not {"a3", "a5", "n3", "p2", "p4"} & sent
    execfix.check_store(env.dest)


def test_owners_by_email_with_fallback(tmp_path, module):
    env = Env(tmp_path, module)
    res = env.run()
    # records naming an unmatched owner: p5 (NOBODY@, case-insensitive), visits a3 and a6
    assert res.unmatched_owners == {"nobody@example.com": 3}
    patients = env.by_ext("Patients")
    assert patients["Patients:p1"]["Owner"] == "u2"  # doc@example.com
    assert patients["Patients:p5"]["Owner"] == "u1"  # fallback owner@example.com


def test_owners_reject_quarantines(tmp_path, module):
    text = execfix.FMAP.read_text().replace("owners by email else $fallback_owner",
                                            "owners by email else reject")
    mod = execfix.compile_module(tmp_path / "build", text, name="reject")
    env = Env(tmp_path, mod)
    r = env.run().run_id
    out = env.outcome(r, "Patients", "p5")
    assert out[0] == "quarantined" and "owner" in out[1]
    assert "Patients:p5" not in env.by_ext("Patients")
    assert env.by_ext("Patients")["Patients:p1"]["Owner"] == "u2"
    # p3 (no doctor) is routed to Prospects, which has no owner: fine


def test_nested_arrays_and_merge_update_parent(tmp_path, module):
    env = Env(tmp_path, module)
    r = env.run().run_id
    p1 = env.by_ext("Patients")["Patients:p1"]
    assert p1["Visit_Count"] == 2 and p1["Last_Visit"] == "2024-02-01"
    assert env.outcome(r, "patients.appointments->Patients", "p1") == ("loaded", "updated")
    assert env.outcome(r, "patients.appointments->Patients", "p2")[0] == "skipped"
    # the merge update keeps the parent's external id (found by it after a crash)
    assert env.dest.find_by_external_id("Patients", ["Patients:p1"]) == {"Patients:p1": p1["id"]}


def test_split_notes_parts(tmp_path, module):
    env = Env(tmp_path, module)
    res = env.run()
    notes = env.by_ext("Patient_Notes")
    parts = sorted(k for k in notes if k.startswith("Patient_Notes:n2#"))
    assert parts == ["Patient_Notes:n2#1", "Patient_Notes:n2#2", "Patient_Notes:n2#3"]
    assert notes[parts[0]]["Body"].startswith("(1/3) ")
    assert all(len(notes[p]["Body"]) <= 60 for p in parts)
    assert res.counts["Patient_Notes"]["extracted"] == 5  # n1, n2 x3 parts, n3


def test_deferred_update_two_map_cycle(tmp_path, module):
    env = Env(tmp_path, module)
    r = env.run().run_id
    c1 = env.by_ext("Clinics")["Clinics:c1"]
    assert c1["Main_Patient"] == env.by_ext("Patients")["Patients:p1"]["id"]
    assert env.outcome(r, "Clinics:deferred", "c1") == ("loaded", "updated")
    assert "Main_Patient" not in env.by_ext("Clinics")["Clinics:c2"]


def test_unchanged_second_run_makes_zero_writes(tmp_path, module):
    env = Env(tmp_path, module)
    env.run()
    snap = env.dest.snapshot()
    before = env.writes()
    res = env.run()
    assert env.writes() == before  # zero write calls
    assert res.stats.written == 0
    assert env.dest.snapshot() == snap
    for m, c in res.counts.items():
        assert c["created"] == 0 and c["updated"] == 0, m
    assert res.counts["Patients"]["unchanged"] == 2


def test_source_edits_update_with_before_images(tmp_path, module):
    env = Env(tmp_path, module)
    env.run()
    patients = [dict(p) for p in PATIENTS]
    patients[0]["email"] = "new@x.com"
    src2 = write_src(tmp_path / "src2", patients=patients)
    res = env.run(src2)
    assert res.counts["Patients"]["updated"] == 1 and res.counts["Patients"]["unchanged"] == 1
    assert env.by_ext("Patients")["Patients:p1"]["Email"] == "new@x.com"
    ops = [o for o in env.state.ops(res.run_id) if o.op == "update" and o.map == "Patients"]
    assert len(ops) == 1 and ops[0].source_key == "p1" and ops[0].state == "confirmed"
    assert ops[0].before_image["Email"] == "a@x.com"


def test_malformed_csv_rows_quarantined(tmp_path, module):
    src = tmp_path / "csv"
    src.mkdir()
    (src / "clinics.csv").write_text(
        "id,name,region,main_patient_id,closed\n"
        "c1,North,N,,\n"
        "c2,South,S,,,extra\n"  # wrong column count
        "c1,Dup,N,,\n"  # duplicate key
        "c3,Short\n",  # too few columns
        "utf-8")
    env = Env(tmp_path, module, clinics=None, patients=None, notes=None)
    res = env.run(src)
    c = res.counts["Clinics"]
    assert c["extracted"] == 4
    assert c["created"] == 1 and c["quarantined"] == 3
    reasons = [q["reason"] for q in env.state.quarantined(res.run_id)]
    assert any("duplicate" in r for r in reasons), reasons
    assert sum("fields" in r or "row" in r for r in reasons) >= 2, reasons


def test_bad_jsonl_line_and_duplicate_keys_quarantined(tmp_path, module):
    src = tmp_path / "jl"
    src.mkdir()
    (src / "notes.jsonl").write_text(
        '{"id": "n1", "patient_id": "p1", "body": "x"}\n'
        '{"id": "n2", "patient_id": \n'  # bad line
        '{"id": "n1", "patient_id": "p1", "body": "dup"}\n'
        '[1, 2]\n', "utf-8")
    env = Env(tmp_path, module, clinics=None, patients=None, notes=None)
    res = env.run(f"jsonl:{src}")
    c = res.counts["Patient_Notes"]
    assert c["extracted"] == 4
    assert c["quarantined"] == 3 and c["skipped"] == 1  # n1 ok but its patient was never loaded


class _Scripted:
    """A destination wrapper whose first write calls raise the given TransientErrors."""

    def __init__(self, inner, errors):
        self._inner = inner
        self._errors = list(errors)
        self.capabilities = inner.capabilities

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def _maybe(self):
        if self._errors:
            raise self._errors.pop(0)

    def upsert(self, obj, items):
        self._maybe()
        return self._inner.upsert(obj, items)

    def create(self, obj, items):
        self._maybe()
        return self._inner.create(obj, items)


def test_retries_honour_retry_after(tmp_path, module):
    sleeps: list[float] = []
    inner = execfix.store()
    dest = _Scripted(inner, [TransientError("429", retry_after=0, maybe_committed=False),
                             TransientError("429", retry_after=3, maybe_committed=False),
                             TransientError("429", retry_after=0.2, maybe_committed=False)])
    env = Env(tmp_path, module, dest=dest)
    res = env.run(load=LoadOptions(sleep=sleeps.append, seed=1))
    assert res.status == "completed"
    assert sleeps == [1.0, 3.0, 1.0]
    assert res.stats.retries == 3
    execfix.check_store(inner)


def test_throttle_faults_sleep_at_least_one_second(tmp_path, module):
    sleeps: list[float] = []
    dest = execfix.store(faults=FaultPlan(seed=3, throttle_rate=0.5, throttle_retry_after=0))
    env = Env(tmp_path, module, dest=dest)
    res = env.run(load=LoadOptions(sleep=sleeps.append, seed=1, max_retries=20))
    assert res.status == "completed"
    throttles = sum(1 for d in dest.faults.log if d.kind == "throttle")
    assert throttles > 0 and len(sleeps) == throttles and all(s >= 1.0 for s in sleeps)


def _many(n, clinic="c1"):
    clinics = [{"id": "c1", "name": "North", "region": "N"}]
    patients = [{"id": f"p{i}", "last_name": f"L{i}", "status": "Active", "clinic_id": clinic,
                 "dob": "01/01/1990"} for i in range(n)]
    return clinics, patients


def test_error_budget_stops_and_resume_finishes(tmp_path, module):
    clinics, patients = _many(300, clinic=None)
    dest = execfix.store(faults=FaultPlan(seed=7, record_error_rate=0.5))
    env = Env(tmp_path, module, dest=dest, clinics=clinics, patients=patients, notes=[])
    res = env.run(load=LoadOptions(sleep=lambda s: None, max_retries=0, error_budget_min=10,
                                   batch_size=20))
    assert res.status == "stopped" and "error budget" in res.message
    assert env.state.get_run(res.run_id).status == "stopped"
    assert sum(c["pending"] for c in res.counts.values()) > 0
    dest.faults = None
    res2 = env.run(resume=res.run_id, load=LoadOptions(sleep=lambda s: None, batch_size=20))
    assert res2.run_id == res.run_id and res2.status == "completed"
    c = res2.counts["Patients"]
    assert c["extracted"] == 300 and c["created"] + c["failed"] == 300 and c["failed"] > 0
    failed = {k for (k,) in env.state.conn.execute(
        "SELECT source_key FROM outcomes WHERE run_id=? AND map='Patients' AND outcome='failed'",
        (res.run_id,))}
    loaded = {e.split(":", 1)[1] for e in env.by_ext("Patients")}
    assert loaded == {p["id"] for p in patients} - failed
    execfix.check_store(dest)


def test_fatal_error_stops_cleanly_and_resumes(tmp_path, module):
    clinics, patients = _many(250)
    ref = Env(tmp_path / "ref", module, clinics=clinics, patients=patients)
    ref.run(load=LoadOptions(batch_size=25))
    dest = execfix.store(faults=FaultPlan(seed=1, fatal_after_calls=4))
    env = Env(tmp_path, module, dest=dest, clinics=clinics, patients=patients)
    res = env.run(load=LoadOptions(batch_size=25, sleep=lambda s: None))
    assert res.status == "stopped" and "destination refused" in res.message
    assert not res.ok
    dest.faults = None
    res2 = env.run(resume=res.run_id, load=LoadOptions(batch_size=25))
    assert res2.status == "completed" and res2.run_id == res.run_id
    execfix.check_store(dest)
    assert execfix.canonical_snapshot(dest) == execfix.canonical_snapshot(ref.dest)


def test_fatal_on_read_before_loading(tmp_path, module):
    class NoUsers(_Scripted):
        def list_users(self):
            raise FatalError("401 invalid token")

    env = Env(tmp_path, module, dest=NoUsers(execfix.store(), []))
    res = env.run()
    assert res.status == "stopped" and "401" in res.message


def test_destination_rejection_fails_record_and_skips_its_children(tmp_path, module):
    patients = [dict(p) for p in PATIENTS]
    patients[0] = {**patients[0], "last_name": "X" * 31}  # max_length 30 -> STRING_TOO_LONG
    env = Env(tmp_path, module, patients=patients)
    r = env.run().run_id
    out = env.outcome(r, "Patients", "p1")
    assert out[0] == "failed" and "STRING_TOO_LONG" in out[1] and "Last_Name" in out[1]
    for child in ("a1", "a2"):
        assert env.outcome(r, "Visits", child) == (
            "skipped", "Patients record p1 was not loaded (referenced by Patient)")
    assert env.outcome(r, "patients.appointments->Patients", "p1")[0] == "skipped"
    assert env.outcome(r, "Patient_Notes", "n1")[0] == "skipped"
    # the deferred Main_Patient of c1 cannot be filled: c1 keeps no dangling lookup
    assert env.outcome(r, "Clinics:deferred", "c1")[0] == "skipped"
    assert "Main_Patient" not in env.by_ext("Clinics")["Clinics:c1"]
    execfix.check_store(env.dest)


def test_required_field_empty_is_quarantined_with_field_name(tmp_path, module):
    """docs/language.md: a required target field that ends up missing, null or empty quarantines
    the record with the field's name as the reason."""
    patients = [dict(p) for p in PATIENTS]
    patients[0] = {**patients[0], "last_name": "   "}
    env = Env(tmp_path, module, patients=patients)
    r = env.run().run_id
    out = env.outcome(r, "Patients", "p1")
    assert out[0] == "quarantined" and "Last_Name" in out[1], out
    q = next(x for x in env.state.quarantined(r) if x["source_key"] == "p1")
    assert q["field"] == "Patients.Last_Name"
    line = int(q["location"].rsplit(":", 1)[1])
    assert "Last_Name = last_name" in execfix.FMAP.read_text().splitlines()[line - 1]
    assert env.dest.stats.by_operation.get("upsert", 0) > 0  # others were sent
    assert "Patients:p1" not in env.by_ext("Patients")
