"""Files that `attach` uploads to records are journaled (``<map>@file``) before and after each
upload, so:
- a run killed between a batch's record writes and its last upload resumes with every record
  holding its file, once (records were confirmed as loaded before their files, and the files of
  a killed batch were never uploaded);
- rollback removes the files it uploaded, on records the run created and on records that
  existed before it (the destination then equals its state before the run);
- a re-run of unchanged records uploads nothing, but a file the destination refused last time is
  uploaded when the record comes round again."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from runtime.destinations.base import WriteItem, WriteResult
from runtime.executor import RunOptions, run_migration
from runtime.executor.load import LoadOptions
from runtime.operations import RecordingDestination, rollback_run
from runtime.sources import open_source
from runtime.state import StateStore

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fixtures" / "operations"))
from ops_harness import make_dest  # noqa: E402

from tests.compiled import compile_text_and_load  # noqa: E402

FMAP = """\
migration "attach journal"
source clinic
target zoho

map patients -> Contacts {
  key id
  Last_Name = last_name
  attach path as file_name limit 1MB oversize skip
}
"""
N = 5


class Killed(BaseException):
    """The process dying (not an exception the loader handles)."""


class Watch:
    """Counts uploads; kills the process at upload ``kill_at``; refuses upload ``refuse_at``."""

    def __init__(self, inner, kill_at: int = 0, refuse_at: int = 0) -> None:
        self._inner, self.kill_at, self.refuse_at, self.uploads = inner, kill_at, refuse_at, 0
        self.capabilities = inner.capabilities

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def upload_attachment(self, obj, record_id, file_name, path, key) -> WriteResult:
        self.uploads += 1
        if self.uploads == self.kill_at:
            raise Killed
        if self.uploads == self.refuse_at:
            return WriteResult(key, False, code="INVALID_DATA", error="refused once")
        return self._inner.upload_attachment(obj, record_id, file_name, path, key)


@pytest.fixture(scope="module")
def module(tmp_path_factory):
    return compile_text_and_load(FMAP, tmp_path_factory.mktemp("build"), "attach_journal")


@pytest.fixture
def env(tmp_path, module):
    src = tmp_path / "src"
    src.mkdir()
    (src / "patients.json").write_text(json.dumps([
        {"id": f"p{i}", "last_name": f"Name{i}", "path": f"f{i}.txt", "file_name": f"f{i}.txt"}
        for i in range(N)]), "utf-8")
    for i in range(N):
        (src / f"f{i}.txt").write_text(f"file {i}", "utf-8")
    state = StateStore(tmp_path / "state.sqlite")
    dest = make_dest(module, tmp_path / "sandbox.sqlite")
    yield tmp_path, src, state, dest
    state.close()
    dest.close()


def run(module, env, dest, *, stage: str = "stage", resume: int | None = None):
    tmp, src, state, _ = env
    source = open_source(f"json:{src}")
    try:
        return run_migration(module, source, dest, state, tmp / stage, options=RunOptions(
            load=LoadOptions(files_root=src), resume=resume))
    finally:
        source.close()


def files_per_record(dest) -> dict[str, int]:
    snap = dest.snapshot(by="external_id")
    return {k: len(r["attachments"]) for k, r in snap["objects"].get("Contacts", {}).items()}


@pytest.mark.parametrize("kill_at", range(1, N + 1))
def test_killed_during_uploads_resumes_with_every_file_once(module, env, kill_at):
    _, _, state, dest = env
    with pytest.raises(Killed):
        run(module, env, Watch(dest, kill_at=kill_at))
    killed = state.runs()[-1].id
    res = run(module, env, dest, stage="stage2", resume=killed)
    assert res.status == "completed"
    assert res.counts["Contacts"]["created"] == N  # the run created them all
    assert sorted(files_per_record(dest).values()) == [1] * N


def test_rerun_uploads_nothing_and_a_refused_file_comes_round_again(module, env):
    _, _, state, dest = env
    first = Watch(dest, refuse_at=2)
    res = run(module, env, first)
    assert first.uploads == N
    assert res.counts["Contacts"]["created"] == N - 1 and res.counts["Contacts"]["failed"] == 1
    again = Watch(dest)
    res = run(module, env, again, stage="stage2")
    assert again.uploads == 1  # only the refused file; the others are journaled as done
    assert res.counts["Contacts"]["failed"] == 0 and res.counts["Contacts"]["unchanged"] == N
    assert sorted(files_per_record(dest).values()) == [1] * N
    third = Watch(dest)
    run(module, env, third, stage="stage3")
    assert third.uploads == 0


def test_rollback_removes_the_files_on_created_and_on_existing_records(module, env):
    _, _, state, dest = env
    # two of the records exist before the run (no files): the run updates them and adds files
    dest.create("Contacts", [WriteItem(f"Contacts:p{i}", f"Contacts:p{i}",
                                       {"Last_Name": "Before"}) for i in (0, 1)])
    before = dest.snapshot()
    res = run(module, env, RecordingDestination(dest, state))
    assert res.counts["Contacts"]["created"] == N - 2 and res.counts["Contacts"]["updated"] == 2
    assert sorted(files_per_record(dest).values()) == [1] * N
    rb = rollback_run(state, dest, res.run_id)
    assert rb.ok, rb.failed
    assert rb.deleted == {"Attachments": N, "Contacts": N - 2}
    # the two records that were there before keep no file (their fields are another matter: an
    # upsert that found them recorded no before-image, rollback's not_restorable)
    assert files_per_record(dest) == {"Contacts:p0": 0, "Contacts:p1": 0}
    assert set(dest.snapshot()["objects"]["Contacts"]) == set(before["objects"]["Contacts"])


def test_rollback_of_a_rerun_keeps_files_an_earlier_run_uploaded(module, env, tmp_path):
    _, src, state, dest = env
    first = run(module, env, RecordingDestination(dest, state))
    patients = json.loads((src / "patients.json").read_text("utf-8"))
    patients[0]["last_name"] = "Changed"  # the re-run updates p0, and re-sends its file
    (src / "patients.json").write_text(json.dumps(patients), "utf-8")
    second = run(module, env, RecordingDestination(dest, state), stage="stage2")
    assert second.counts["Contacts"]["updated"] == 1
    rb = rollback_run(state, dest, second.run_id)
    assert rb.ok and rb.restored == {"Contacts": 1} and "Attachments" not in rb.deleted
    assert sorted(files_per_record(dest).values()) == [1] * N  # the first run's files stay
    rb = rollback_run(state, dest, first.run_id)
    assert rb.ok and rb.deleted == {"Attachments": N, "Contacts": N}
    assert "Contacts" not in dest.snapshot()["objects"]


def test_on_a_record_map_the_file_is_what_is_skipped(module, env):
    """A patient with no file, or with one over the limit under `oversize skip`, is loaded
    without it (the skipped files are counted, not the records); on a map into an attachment
    object the record is the file, so there it is the record that is skipped."""
    _, src, state, dest = env
    patients = json.loads((src / "patients.json").read_text("utf-8"))
    patients[0]["path"] = None
    (src / "big.bin").write_bytes(b"x" * (1024 * 1024 + 1))
    patients[1]["path"] = "big.bin"
    (src / "patients.json").write_text(json.dumps(patients), "utf-8")
    watch = Watch(dest)
    res = run(module, env, watch)
    assert res.counts["Contacts"]["created"] == N and res.counts["Contacts"]["skipped"] == 0
    assert res.stats.files_skipped == {"Contacts": 1}  # the oversize one; no path is no file
    assert watch.uploads == N - 2
    assert files_per_record(dest) == {**{f"Contacts:p{i}": 1 for i in range(2, N)},
                                      "Contacts:p0": 0, "Contacts:p1": 0}


def test_reports_name_the_records_target_not_the_files(module, env):
    """A map's file ops (``Contacts@file``, target Attachments) sit beside its record ops in the
    journal; the run report's per-object table and reconciliation still name the records'
    object."""
    from runtime.operations.reconcile import journal_targets
    from runtime.reports.builders import build_run_report

    _, _, state, dest = env
    res = run(module, env, dest)
    assert {o.target_object for o in state.ops(res.run_id)} == {"Contacts", "Attachments"}
    rep = build_run_report(state, res.run_id)  # no plan: the journal alone names targets
    objects = next(s for s in rep["sections"] if s["id"] == "objects")
    assert [r[:2] for r in objects["rows"] if r[0] == "Contacts"] == [["Contacts", "Contacts"]]
    assert journal_targets(state, res.run_id) == {"Contacts": "Contacts"}
