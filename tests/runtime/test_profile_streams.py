"""`fmap profile` keeps its per-record findings in SQLite, not Python: the same findings as the
in-memory version on a small source with every kind of dirt, a Python heap that does not grow
with the source (tracemalloc peak at 2,000 vs 20,000 patients), and report tables capped with
the complete lists in the CSVs beside them."""

from __future__ import annotations

import csv
import gc
import json
import sys
import tracemalloc
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "operations2"))
import ops2fix  # noqa: E402

from runtime.operations import profile as profile_mod  # noqa: E402
from runtime.operations.profile import StoredFindings, profile_source  # noqa: E402
from runtime.reports import write_report  # noqa: E402
from runtime.reports.preflight import build_profile_report, profile_report_lists  # noqa: E402
from runtime.sources import open_source  # noqa: E402


def _jsonl(d: Path, **objects) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for name, rows in objects.items():
        with (d / f"{name}.jsonl").open("w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps(r) + "\n")
    return d


def _profile(tmp: Path, module, src: Path, **kw):
    source = open_source(f"jsonl:{src}")
    try:
        return profile_source(module, source, tmp / "scratch", schema=ops2fix.schema(),
                              users=ops2fix.users(), **kw)
    finally:
        source.close()


@pytest.fixture(scope="module")
def module(tmp_path_factory):
    return ops2fix.compile_module(tmp_path_factory.mktemp("build"), "profile")


def _pat(i: int, clinic: str, *, email: str | None = None, first: str = "Ann",
         last: str | None = None, dob: str | None = None) -> dict:
    return {"id": f"p{i}", "first_name": first, "last_name": last or f"Last{i}",
            "clinic_id": clinic, "doctor": "doc@example.com",
            "dob": dob or f"1980-02-{i:02d}", "email": email or f"p{i}@x.com"}


CLINICS = [{"id": "c1", "name": "A", "region": "N"}, {"id": "c2", "name": "B", "region": "S"},
           {"id": "c3", "name": "C", "region": "Q"}, {"id": "c4", "name": "D", "region": "Q"},
           {"id": "c5", "name": "E", "region": "Z"}]
PATIENTS = [
    _pat(1, "c1", email="a@x.com"),
    _pat(2, "c3", email=" A@X.com"),                 # same email as p1; its clinic quarantined
    _pat(3, "c9"), _pat(4, "c9"), _pat(5, "c8"),     # orphans: no such clinic
    _pat(6, "c8"), _pat(7, "c7"), _pat(8, "c9"),
    _pat(9, "c2", first="Cy", last="Twin", dob="1970-05-05"),
    _pat(10, "c2", first="cy", last="TWIN", dob="1970-05-05"),
    _pat(11, "c2", first="Cy", last="Twin", dob="1970-05-05", email="a@x.com"),
    _pat(12, "c1", dob="31-12-1999"), _pat(13, "c1", dob="bad"),
]

# what the in-memory profile (before it streamed) reported for this source
EXPECTED = {
    "quarantine_reasons": [
        {"map": "Patients", "status": "quarantined", "field": "Patients.DOB",
         "reason": "Patients.DOB: does not match the date format '%Y-%m-%d'", "count": 2}],
    "unmapped_values": [
        {"valuemap": "region", "map": "Clinics", "field": "Clinics.Region", "value": "'Q'",
         "count": 2},
        {"valuemap": "region", "map": "Clinics", "field": "Clinics.Region", "value": "'Z'",
         "count": 1}],
    "duplicates": [
        {"map": "Patients", "match": "same email", "keys": ["p1", "p11", "p2"]},
        {"map": "Patients", "match": "same name and date of birth",
         "keys": ["p10", "p11", "p9"]}],
    "orphans": [{"map": "Patients", "field": "Clinic", "references": "Clinics", "count": 7,
                 "example_keys": ["c3", "c9", "c9", "c8", "c8"]}],
    "missing_required": [],
}


def test_same_findings_as_in_memory(tmp_path, module):
    src = _jsonl(tmp_path / "src", clinics=CLINICS, patients=PATIENTS)
    rep = _profile(tmp_path, module, src)
    assert rep.map_counts == {"Clinics": {"extracted": 5, "ready": 2, "quarantined": 3},
                              "Patients": {"extracted": 13, "ready": 11, "quarantined": 2}}
    got = rep.to_dict()
    assert {k: got[k] for k in EXPECTED} == EXPECTED
    assert isinstance(rep.duplicates, StoredFindings)
    # 2 reasons + 3 codes + 2 duplicate groups + 7 orphans
    assert rep.problems == 14
    # read back like a list, on every pass
    assert len(rep.duplicates) == 2 and rep.duplicates[-1] == EXPECTED["duplicates"][1]
    assert rep.unmapped_values[:1] == EXPECTED["unmapped_values"][:1]
    assert list(rep.unmapped_values) == list(rep.unmapped_values)


def test_a_huge_duplicate_group_lists_its_first_keys(tmp_path, module, monkeypatch):
    monkeypatch.setattr(profile_mod, "KEYS_PER_GROUP", 3)
    src = _jsonl(tmp_path / "src", clinics=CLINICS[:1],
                 patients=[_pat(i, "c1", email="front@desk.com") for i in range(1, 7)])
    rep = _profile(tmp_path, module, src)
    assert list(rep.duplicates) == [
        {"map": "Patients", "match": "same email", "keys": ["p1", "p2", "p3", "… and 3 more"]}]


def _generated(n: int) -> dict[str, list[dict]]:
    """n patients with every finding growing with n: a third of the clinics carry a code of their
    own no value map covers, emails come in pairs, names and dates of birth in threes, and every
    seventh patient references a clinic the source does not have."""
    n_clinics = max(10, n // 10)
    clinics = [{"id": f"c{i}", "name": f"C{i}",
                "region": ("N", "S", f"X{i}")[i % 3]} for i in range(n_clinics)]
    patients = [{"id": f"p{i}", "first_name": "Ann", "last_name": f"L{i // 3}",
                 "clinic_id": f"gone{i}" if i % 7 == 0 else f"c{i % n_clinics}",
                 "doctor": "doc@example.com", "dob": "1980-01-01",
                 "email": f"e{i // 2}@x.com"} for i in range(n)]
    return {"clinics": clinics, "patients": patients}


def _peak(tmp: Path, module, n: int, monkeypatch) -> tuple[int, object]:
    """Peak Python heap from the end of staging (shared with `fmap run` and measured with it,
    bench/bench_load.py) through the analysis, the report and its CSVs."""
    src = _jsonl(tmp / f"src{n}", **_generated(n))
    (tmp / f"w{n}").mkdir()
    staged = profile_mod.stage_all

    def stage_all(*a, **kw):
        out = staged(*a, **kw)
        gc.collect()
        tracemalloc.reset_peak()
        return out

    monkeypatch.setattr(profile_mod, "stage_all", stage_all)
    gc.collect()
    tracemalloc.start()
    try:
        rep = _profile(tmp / f"w{n}", module, src)
        write_report(build_profile_report(rep), tmp / f"r{n}", "profile",
                     profile_report_lists(rep))
        return tracemalloc.get_traced_memory()[1], rep
    finally:
        tracemalloc.stop()


def test_python_heap_does_not_grow_with_the_source(tmp_path, module, monkeypatch):
    small, rep_small = _peak(tmp_path, module, 2_000, monkeypatch)
    large, rep = _peak(tmp_path, module, 20_000, monkeypatch)
    # the findings did grow tenfold ...
    assert (len(rep_small.duplicates), len(rep.duplicates)) == (1_000 + 667, 10_000 + 6_667)
    assert len(rep.unmapped_values) == 666 and len(rep_small.unmapped_values) == 66
    assert rep.orphans[0]["count"] > 20_000 // 7
    # ... the Python heap did not (0.9 MB both; the in-memory version: 1.9 vs 14.4 MB)
    assert large < small + 1_000_000, (small, large)


def _read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))[1:]


def test_capped_tables_have_complete_csvs(tmp_path, module):
    data = _generated(300)
    src = _jsonl(tmp_path / "src", **data)
    rep = _profile(tmp_path, module, src)
    out = tmp_path / "reports"
    html = build_profile_report(rep, cap=5)
    write_report(html, out, "profile", profile_report_lists(rep))
    sections = {s["id"]: s for s in html["sections"]}
    for sid, lst in (("unmapped", rep.unmapped_values), ("duplicates", rep.duplicates)):
        assert len(sections[sid]["rows"]) == 5
        assert sections[sid]["complete_list"] == f"profile-{sid}.csv"
        assert sections[sid]["omitted"] == len(lst) - 5
        rows = _read_csv(out / f"profile-{sid}.csv")
        assert len(rows) == len(lst)
    assert len(rep.unmapped_values) == 10 and len(rep.duplicates) == 150 + 100
    codes = {r[2] for r in _read_csv(out / "profile-unmapped.csv")}
    assert codes == {repr(c["region"]) for c in data["clinics"] if c["region"] not in "NS"}
    dups = _read_csv(out / "profile-duplicates.csv")
    assert dups[0] == ["Patients", "same email", "p0, p1"]
    assert dups[-1] == ["Patients", "same name and date of birth", "p297, p298, p299"]
