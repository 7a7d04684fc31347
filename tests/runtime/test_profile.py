"""`fmap profile` on a small source with known dirt (tests/fixtures/operations2/profile.fmap):
every kind of finding is reported with the right count, and nothing else is."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "operations2"))
import ops2fix  # noqa: E402

from runtime.operations.profile import profile_source  # noqa: E402

MB = 1048576

CLINICS = [
    {"id": "c1", "name": "North Clinic", "region": "N"},
    {"id": "c2", "name": "South Clinic", "region": "S"},
    {"id": "c3", "name": "Odd Clinic", "region": "X"},  # not in the value map: quarantined
]


def _p(i, last, first="Ann", dob=None, email=None, clinic="c1", doctor="doc@example.com",
       scan=None):
    r = {"id": f"p{i}", "first_name": first, "last_name": last, "clinic_id": clinic,
         "doctor": doctor, "dob": dob or f"1980-01-{i:02d}", "email": email or f"p{i}@x.com",
         "scan": scan}  # null: no file (an absent field too: see the test below)
    if last is None:
        del r["last_name"]
    return r


PATIENTS = [
    _p(1, "Clean", scan="scans/small.bin"),
    _p(2, "Baddate", dob="not-a-date"),                          # unparsable date
    _p(3, None),                                                  # required Last_Name missing
    _p(4, "Dupmail", email="Same@X.com"),                         # same email as p5
    _p(5, "Dupmail2", first="Bob", email="same@x.COM", clinic="c2"),
    _p(6, "Twin", first="Cy", dob="1970-05-05"),                  # same name + dob as p7
    _p(7, "Twin", first="Cy", dob="1970-05-05", clinic="c2"),
    _p(8, "Ghost", doctor="ghost@example.com"),                   # owner with no user
    _p(9, "Big", scan="scans/big.bin"),                           # attachment over the limit
    _p(10, "Orphan", clinic="c99"),                               # parent does not exist
]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("profile")
    module = ops2fix.compile_module(tmp / "build", "profile")
    src = ops2fix.write_src(tmp / "src", clinics=CLINICS, patients=PATIENTS)
    (tmp / "scans").mkdir()
    (tmp / "scans" / "small.bin").write_bytes(b"x" * 100)
    with open(tmp / "scans" / "big.bin", "wb") as f:
        f.truncate(3 * MB)  # sparse
    source = ops2fix.open_src(src, delta_fields=False)
    try:
        return profile_source(module, source, tmp / "scratch", schema=ops2fix.schema(),
                              users=ops2fix.users(), attachment_limit=MB, files_root=tmp)
    finally:
        source.close()


def test_counts(report):
    assert report.migration == "profile tests"
    assert report.source_counts == {"clinics": 3, "patients": 10}
    assert report.map_counts["Clinics"] == {"extracted": 3, "ready": 2, "quarantined": 1}
    assert report.map_counts["Patients"] == {"extracted": 10, "ready": 9, "quarantined": 1}


def test_unparsable_date_quarantined(report):
    assert len(report.quarantine_reasons) == 1
    q = report.quarantine_reasons[0]
    assert (q["map"], q["status"], q["field"], q["count"]) == (
        "Patients", "quarantined", "Patients.DOB", 1)


def test_value_not_in_value_map(report):
    assert report.unmapped_values == [
        {"valuemap": "region", "map": "Clinics", "field": "Clinics.Region", "value": "'X'",
         "count": 1}]


def test_missing_required(report):
    assert report.missing_required == [{"map": "Patients", "field": "Last_Name", "count": 1}]


def test_duplicates(report):
    assert sorted(report.duplicates, key=lambda d: d["match"]) == [
        {"map": "Patients", "match": "same email", "keys": ["p4", "p5"]},
        {"map": "Patients", "match": "same name and date of birth", "keys": ["p6", "p7"]},
    ]


def test_owner_without_user(report):
    assert report.owners["unmatched"] == {"ghost@example.com": 1}
    assert report.owners["emails"] == 2  # doc@ and ghost@


def test_oversize_attachment(report):
    assert report.missing_files == 0
    assert report.oversize_attachments == [
        {"map": "Patients", "key": "p9", "file": "big.bin", "size_mb": 3.0, "limit_mb": 1.0}]


def test_orphan(report):
    assert report.orphans == [{"map": "Patients", "field": "Clinic", "references": "Clinics",
                               "count": 1, "example_keys": ["c99"]}]


def test_nothing_else(report):
    # date 1 + uncovered code 1 + required 1 + duplicates 2 + oversize 1 + orphans 1
    # + unmatched owners 1
    assert report.problems == 8


def test_absent_attachment_field_is_no_file(tmp_path):
    module = ops2fix.compile_module(tmp_path / "build", "profile")
    src = ops2fix.write_src(tmp_path / "src", clinics=CLINICS[:1],
                            patients=[{"id": "p1", "last_name": "NoScanField", "clinic_id": "c1"}])
    source = ops2fix.open_src(src, delta_fields=False)
    try:
        rep = profile_source(module, source, tmp_path / "scratch", schema=ops2fix.schema(),
                             files_root=tmp_path)
    finally:
        source.close()
    assert rep.missing_files == 0
