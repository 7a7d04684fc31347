"""Sample migrations (runtime.operations.sample) on tests/fixtures/operations2/run.fmap: the
selection covers every routing branch and picklist value and is closed under references; the
read-back diff flags a destination that silently truncates one field, and nothing else; rolling
the sample run back leaves no residue."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "operations2"))
import ops2fix  # noqa: E402

from runtime.destinations.sandbox_store import SandboxStore  # noqa: E402
from runtime.executor import RunOptions, check_invariant, run_migration  # noqa: E402
from runtime.operations.rollback import rollback_run  # noqa: E402
from runtime.operations.sample import diff_sample, select_sample, summarise_diffs  # noqa: E402
from runtime.schema.model import FieldType  # noqa: E402
from runtime.state import StateStore  # noqa: E402

N = 5
CLINICS = [
    {"id": "c1", "name": "North Clinic", "region": "N"},
    {"id": "c2", "name": "South Clinic", "region": "S"},
    {"id": "c3", "name": "Third Clinic", "region": "N"},
]
LONG = "a description well over ten characters"


def _patient(i, status, clinic, appts=(), desc=None):
    return {"id": f"p{i}", "last_name": f"Name{i}", "email": f"P{i}@X.com", "status": status,
            "clinic_id": clinic, "doctor": "doc@example.com", "notes": desc or f"desc {i} {LONG}",
            "appointments": [{"id": f"a{i}{j}", "status": s} for j, s in enumerate(appts)]}


# a run of plain Active patients first: greedy coverage must still reach the later variety
PATIENTS = (
    [_patient(i, "Active", "c3", ["Done"]) for i in range(1, 7)]
    + [_patient(7, "Inactive", "c1", ["Booked", "Done"])]
    + [_patient(8, "Active", "c3", ["Done"]) for _ in range(1)]
    + [{"id": "p9", "last_name": "Prospect9", "status": "Prospect"}]
    + [_patient(10, "Active", "c2", ["DNA"], desc="short")]
    + [_patient(i, "Active", "c3") for i in range(11, 16)]
)
NOTES = [{"id": f"n{i}", "patient_id": f"p{i}", "body": f"note {i}"} for i in (1, 7, 10, 12, 14)]


@pytest.fixture(scope="module")
def module(tmp_path_factory):
    return ops2fix.compile_module(tmp_path_factory.mktemp("build"), "run")


@pytest.fixture
def src(tmp_path):
    return ops2fix.write_src(tmp_path / "src", clinics=CLINICS, patients=PATIENTS, notes=NOTES)


def select(module, src, tmp, n=N):
    source = ops2fix.open_src(src)
    try:
        return select_sample(module, source, tmp / f"select{n}", n, schema=ops2fix.schema())
    finally:
        source.close()


def run_sample(module, src, tmp, dest, state, selection):
    source = ops2fix.open_src(src)
    try:
        res = run_migration(module, source, dest, state, tmp / "stage", source_id=str(src),
                            options=RunOptions(include=selection.includes))
    finally:
        source.close()
    assert res.status == "completed", res.message
    check_invariant(res.counts)
    return res


def test_selection_covers_branches_and_values_and_is_closed(tmp_path, module, src):
    sel = select(module, src, tmp_path)
    assert sel.primary == "patients"
    assert sel.features_covered == sel.features_total > 0
    chosen = set(sel.chosen)
    assert len(sel.chosen) == len(chosen) <= N
    assert sel.roots["patients"] == chosen  # nothing references patients from patients
    by_id = {p["id"]: p for p in PATIENTS}
    picked = [by_id[k] for k in chosen]
    # every routing branch and every picklist value present in the data
    assert {p["status"] for p in picked} == {p["status"] for p in PATIENTS}
    assert ({a["status"] for p in picked for a in p.get("appointments", ())}
            == {a["status"] for p in PATIENTS for a in p.get("appointments", ())})
    # parents: every clinic a chosen patient names; children: every note on a chosen patient
    assert sel.roots.get("clinics", set()) == {p["clinic_id"] for p in picked if "clinic_id" in p}
    assert sel.roots.get("notes", set()) == {n["id"] for n in NOTES if n["patient_id"] in chosen}


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 100])
def test_selection_never_exceeds_n(tmp_path, module, src, n):
    sel = select(module, src, tmp_path, n)
    assert len(sel.chosen) == len(set(sel.chosen)) == min(n, len(PATIENTS))
    assert sel.roots["patients"] == set(sel.chosen)
    assert sel.features_covered <= sel.features_total


def test_sample_run_lookups_all_resolve(tmp_path, module, src):
    sel = select(module, src, tmp_path)
    dest, state = ops2fix.store(), StateStore(":memory:")
    res = run_sample(module, src, tmp_path, dest, state, sel)
    assert res.ok
    snap = dest.snapshot()["objects"]
    ext = {obj: {r["external_id"] for r in recs.values()} for obj, recs in snap.items()}
    loaded = [e.split(":", 1)[1] for o in ("Patients", "Prospects") for e in ext[o]]
    assert sorted(loaded) == sorted(sel.chosen)  # each chosen patient once, down its branch
    assert ext["Clinics"] == {f"Clinics:{k}" for k in sel.roots["clinics"]}
    assert ext["Patient_Notes"] == {f"Patient_Notes:{k}" for k in sel.roots["notes"]}
    ids = {(obj, rid) for obj, recs in snap.items() for rid in recs}
    schema = dest.schema()
    lookups = 0
    for obj, recs in snap.items():
        for r in recs.values():
            for f in schema.object(obj).fields:
                v = r["fields"].get(f.api_name)
                if f.type is FieldType.lookup and v is not None:
                    lookups += 1
                    assert any((t, v) in ids for t in f.lookup_targets), (obj, r, f.api_name)
    assert lookups > 0


class TruncatingStore(SandboxStore):
    """A destination that silently keeps only the first 10 characters of Patients.Description."""

    def _cut(self, obj, items):
        if obj != "Patients":
            return items
        out = []
        for it in items:
            rec = dict(it.record)
            if isinstance(rec.get("Description"), str):
                rec["Description"] = rec["Description"][:10]
            out.append(dataclasses.replace(it, record=rec))
        return out

    def create(self, obj, items):
        return super().create(obj, self._cut(obj, items))

    def upsert(self, obj, items):
        return super().upsert(obj, self._cut(obj, items))

    def update(self, obj, items):
        return super().update(obj, self._cut(obj, items))


def test_sample_diff_flags_only_the_truncated_field(tmp_path, module, src):
    sel = select(module, src, tmp_path)
    dest, state = ops2fix.store(TruncatingStore), StateStore(":memory:")
    res = run_sample(module, src, tmp_path, dest, state, sel)
    diffs = diff_sample(module, dest, state, tmp_path / "stage", res.run_id)
    written = sum(c["created"] + c["updated"] for c in res.counts.values())
    assert len(diffs) == written > 0
    flagged = [(rd.map, rd.source_key, f["field"], f["kind"])
               for rd in diffs for f in rd.differences]
    by_id = {p["id"]: p for p in PATIENTS}
    long_desc = {k for k in sel.chosen if len(by_id[k].get("notes") or "") > 10
                 and by_id[k]["status"] != "Prospect"}
    assert long_desc and any(len(by_id[k].get("notes") or "") <= 10 for k in sel.chosen)
    assert sorted(flagged) == sorted(("Patients", k, "Description", "truncated")
                                     for k in long_desc)
    for rd in diffs:
        for f in rd.differences:
            assert f["actual"] == f["expected"][:10]
    summary = summarise_diffs(diffs)
    assert summary["differences"] == [{"map": "Patients", "field": "Description",
                                       "kind": "truncated", "count": len(long_desc)}]
    assert json.dumps(summary)


def test_sample_rollback_leaves_no_residue(tmp_path, module, src):
    sel = select(module, src, tmp_path)
    dest, state = ops2fix.store(), StateStore(":memory:")
    empty = dest.snapshot()
    res = run_sample(module, src, tmp_path, dest, state, sel)
    assert dest.snapshot() != empty
    rollback_run(state, dest, res.run_id)
    assert dest.snapshot() == empty
    assert all(dest.count(o) == 0 for o in ("Clinics", "Patients", "Prospects", "Visits",
                                            "Patient_Notes"))
