"""Rollback of a run that uploaded files through a map into an attachment object (Zoho
Attachments) as well as creating records: the files and the records are undone by one rollback
run, recorded as such; a rollback stopped by the destination is resumed in that same run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from runtime.destinations.base import TransientError
from runtime.executor import RunOptions, run_migration
from runtime.executor.load import LoadOptions
from runtime.operations import RecordingDestination, RollbackStopped, rollback_run
from runtime.sources import open_source
from runtime.state import StateStore

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fixtures" / "operations"))
from ops_harness import make_dest  # noqa: E402

from tests.compiled import compile_text_and_load  # noqa: E402

FMAP = """\
migration "rollback files"
source clinic
target zoho

map patients -> Contacts {
  key id
  Last_Name = last_name
}

map documents -> Attachments {
  key id
  Parent_Id = ref(Contacts, patient_id)
  File_Name = file_name
  attach path as file_name limit 1MB oversize skip
}
"""


@pytest.fixture(scope="module")
def module(tmp_path_factory):
    return compile_text_and_load(FMAP, tmp_path_factory.mktemp("build"), "rollback_files")


@pytest.fixture
def env(tmp_path, module):
    src = tmp_path / "src"
    src.mkdir()
    (src / "patients.json").write_text(json.dumps([
        {"id": "p1", "last_name": "One"}, {"id": "p2", "last_name": "Two"}]), "utf-8")
    (src / "documents.json").write_text(json.dumps([
        {"id": "d1", "patient_id": "p1", "file_name": "a.txt", "path": "a.txt"},
        {"id": "d2", "patient_id": "p2", "file_name": "b.txt", "path": "b.txt"}]), "utf-8")
    (src / "a.txt").write_text("a", "utf-8")
    (src / "b.txt").write_text("b", "utf-8")
    state = StateStore(tmp_path / "state.sqlite")
    dest = make_dest(module, tmp_path / "sandbox.sqlite")
    before = dest.snapshot()
    source = open_source(f"json:{src}")
    try:
        result = run_migration(module, source, RecordingDestination(dest, state), state,
                               tmp_path / "stage", options=RunOptions(
                                   load=LoadOptions(files_root=src)))
    finally:
        source.close()
    assert result.status == "completed"
    assert result.counts["Attachments"]["created"] == 2  # two files uploaded
    yield state, dest, before, result.run_id
    state.close()
    dest.close()


def _rollback_runs(state: StateStore, run_id: int):
    return [r for r in state.runs() if r.options.get("rollback_of") == run_id]


def test_files_and_records_undone_by_one_recorded_rollback_run(env):
    state, dest, before, run_id = env
    res = rollback_run(state, dest, run_id)
    assert res.ok and not res.noop
    assert res.deleted == {"Attachments": 2, "Contacts": 2}
    assert dest.snapshot() == before
    [rb] = _rollback_runs(state, run_id)
    assert res.rollback_run_id == rb.id and rb.status == "completed"
    ops = list(state.ops(rb.id))
    assert [(o.target_object, o.op, o.state) for o in ops] == (
        [("Attachments", "delete", "confirmed")] * 2 + [("Contacts", "delete", "confirmed")] * 2)
    assert state.get_run(run_id).status == "rolled_back"
    assert rollback_run(state, dest, run_id).noop
    assert len(_rollback_runs(state, run_id)) == 1


class RecordDeletesFailOnce:
    """The destination is unavailable for the first record delete (after the files went)."""

    def __init__(self, dest):
        self.dest, self.failed = dest, False

    def __getattr__(self, name):
        return getattr(self.dest, name)

    def delete(self, obj, ids):
        if not self.failed:
            self.failed = True
            raise TransientError("503 Service Unavailable", maybe_committed=False)
        return self.dest.delete(obj, ids)


def test_stopped_rollback_resumes_in_the_same_run(env):
    state, dest, before, run_id = env
    flaky = RecordDeletesFailOnce(dest)
    with pytest.raises(RollbackStopped):
        rollback_run(state, flaky, run_id)
    [rb] = _rollback_runs(state, run_id)
    assert rb.status == "stopped"
    assert state.get_run(run_id).status == "completed"
    res = rollback_run(state, flaky, run_id)
    assert res.ok and res.rollback_run_id == rb.id
    assert res.resumed_ops == 2  # the two deletes the 503 left unknown, redone
    assert res.deleted == {"Contacts": 2}  # the files went in the stopped attempt
    assert dest.snapshot() == before
    [rb] = _rollback_runs(state, run_id)
    assert rb.status == "completed"
    assert state.get_run(run_id).status == "rolled_back"
