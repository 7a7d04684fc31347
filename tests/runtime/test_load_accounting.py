"""A record written with a file the destination rejects ends "failed", and is counted the same way
whether the destination answered for its write or the answer was lost and the record was found by
external id afterwards (Loader._settle_unknown): the stats the error budget reads agree with the
run's outcomes, and every source record has exactly one outcome (check_invariant)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "operations2"))
import ops2fix  # noqa: E402

from runtime.destinations.base import TransientError  # noqa: E402
from runtime.destinations.sandbox_store import SandboxStore  # noqa: E402
from runtime.executor import LoadOptions, RunOptions, check_invariant, run_migration  # noqa: E402
from runtime.state import StateStore  # noqa: E402

CLINICS = [{"id": "c1", "name": "North Clinic", "region": "N"}]
PATIENTS = [
    {"id": "p1", "first_name": "Ann", "last_name": "One", "clinic_id": "c1",
     "doctor": "doc@example.com", "dob": "1980-01-01", "email": "p1@x.com", "scan": "scan.bin"},
    {"id": "p2", "first_name": "Bo", "last_name": "Two", "clinic_id": "c1",
     "doctor": "doc@example.com", "dob": "1980-01-02", "email": "p2@x.com", "scan": None},
    # p2 has no file: an attachment map skips it, nothing is sent
]


class LosesFirstPatientsAnswer(SandboxStore):
    """Commits the first Patients write, then loses the response (a timeout after the CRM
    committed). Patients records take no attachments in org.json: every upload is rejected."""

    lost = False

    def upsert(self, obj, items):
        results = super().upsert(obj, items)
        if obj == "Patients" and not self.lost:
            self.lost = True
            raise TransientError("response lost", maybe_committed=True)
        return results


@pytest.fixture(scope="module")
def module(tmp_path_factory):
    return ops2fix.compile_module(tmp_path_factory.mktemp("build"), "profile")


def _run(tmp_path: Path, module, dest):
    src = ops2fix.write_src(tmp_path / "src", clinics=CLINICS, patients=PATIENTS)
    (tmp_path / "scan.bin").write_bytes(b"x" * 10)
    source = ops2fix.open_src(src, delta_fields=False)
    try:
        with StateStore(tmp_path / "state.sqlite") as state:
            return run_migration(module, source, dest, state, tmp_path / "stage", options=RunOptions(
                load=LoadOptions(files_root=tmp_path, sleep=lambda s: None)))
    finally:
        source.close()


@pytest.mark.parametrize("cls", [SandboxStore, LosesFirstPatientsAnswer],
                         ids=["answered", "answer-lost"])
def test_rejected_upload_counts_as_failed(tmp_path, module, cls):
    dest = ops2fix.store(cls)
    result = _run(tmp_path, module, dest)
    if cls is LosesFirstPatientsAnswer:
        assert dest.lost  # the settle path ran
    assert result.status == "completed"
    check_invariant(result.counts)
    assert result.counts["Patients"]["failed"] == 1  # p1: written, its file rejected
    assert result.counts["Patients"]["created"] == 1  # p2: no file, loaded without one
    failed = sum(c["failed"] for c in result.counts.values())
    loaded = sum(c["created"] + c["updated"] for c in result.counts.values())
    # stats count writes: p1's record was written (then failed on its file), p2 and c1 loaded
    assert (result.stats.written, result.stats.failed) == (loaded + failed, failed) == (3, 1)
