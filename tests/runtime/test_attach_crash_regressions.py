"""Three bugs the crash harness found once it ran a migration with files (tests/runtime/
test_crash_resume.py, files variant, and bench/crash_soak.py --files):

- an upload whose answer was lost (the store kept the file; a retry, or the resumed run, was told
  "already there") was journaled as not created by the run, so rolling the run back left the file
  in the store, hanging off a deleted record;
- a run killed mid-uploads, resumed, and killed again after the resume had settled its records
  reported those records "unchanged" instead of "created" when resumed a second time (the resume
  kept "written by this run" in memory, not in the journal), so the run's counts depended on
  where it had been killed;
- an upload the destination refused with a retryable error (Zoho's and Salesforce's per-item
  "try again" codes; the fault plan's injected record errors) was not retried, unlike a record
  write: the record ended "failed" with no file, and which records did depended on the order of
  calls, so a resumed run and a crash-free one differed.

Uses test_attach_journal's migration (five Contacts, a file each) and helpers."""

from __future__ import annotations

import pytest

from runtime.destinations.base import TransientError, WriteResult
from runtime.operations import RecordingDestination, rollback_run
from tests.runtime import test_attach_journal as journal
from tests.runtime.test_attach_journal import Killed, N, Watch, files_per_record, run

module, env = journal.module, journal.env  # its fixtures: the compiled migration, a fresh store


class LosesAnswer(Watch):
    """Upload ``lose_at`` reaches the store, then its answer is lost: a timeout the loader
    retries (``kill=False``), or the process dying (``kill=True``)."""

    def __init__(self, inner, lose_at: int, kill: bool = False) -> None:
        super().__init__(inner)
        self.lose_at, self.kill = lose_at, kill

    def upload_attachment(self, obj, record_id, file_name, path, key) -> WriteResult:
        r = super().upload_attachment(obj, record_id, file_name, path, key)
        if self.uploads == self.lose_at:
            if self.kill:
                raise Killed
            raise TransientError("response lost", maybe_committed=True)
        return r


def files_in_store(dest) -> int:
    """Every file the store holds, those on deleted records too (the snapshot leaves them out)."""
    return dest._db.execute("SELECT COUNT(*) FROM attachments").fetchone()[0]


@pytest.mark.parametrize("kill", [False, True], ids=["retried", "killed-then-resumed"])
def test_rollback_removes_a_file_whose_upload_answer_was_lost(module, env, kill):
    _, _, state, dest = env
    if kill:
        with pytest.raises(Killed):
            run(module, env, RecordingDestination(LosesAnswer(dest, 3, kill=True), state))
        res = run(module, env, RecordingDestination(dest, state), stage="stage2",
                  resume=state.runs()[-1].id)
    else:
        res = run(module, env, RecordingDestination(LosesAnswer(dest, 3), state))
    assert res.status == "completed" and res.counts["Contacts"]["created"] == N
    assert sorted(files_per_record(dest).values()) == [1] * N  # the lost one uploaded once
    rb = rollback_run(state, dest, res.run_id)
    assert rb.ok and rb.deleted == {"Attachments": N, "Contacts": N}, rb
    assert files_in_store(dest) == 0


def test_killed_twice_during_uploads_still_counts_the_records_created(module, env):
    _, _, state, dest = env
    with pytest.raises(Killed):  # the batch's records written, their files partly uploaded
        run(module, env, Watch(dest, kill_at=3))
    # the resume settles the batch's records from the destination, then dies on its first upload
    with pytest.raises(Killed):
        run(module, env, Watch(dest, kill_at=1), stage="stage2", resume=state.runs()[-1].id)
    res = run(module, env, dest, stage="stage3", resume=state.runs()[-1].id)
    assert res.status == "completed"
    assert res.counts["Contacts"]["created"] == N and res.counts["Contacts"]["unchanged"] == 0
    assert sorted(files_per_record(dest).values()) == [1] * N


class RefusesOnceRetryable(Watch):
    """Upload ``refuse_at`` is refused with a retryable error (nothing stored)."""

    def upload_attachment(self, obj, record_id, file_name, path, key) -> WriteResult:
        self.uploads += 1
        if self.uploads == self.refuse_at:
            return WriteResult(key, False, code="INJECTED", error="try again", retryable=True)
        return self._inner.upload_attachment(obj, record_id, file_name, path, key)


def test_a_retryable_upload_refusal_is_retried(module, env):
    _, _, _, dest = env
    watch = RefusesOnceRetryable(dest, refuse_at=2)
    res = run(module, env, watch)
    assert watch.uploads == N + 1  # the refused one sent again
    assert res.counts["Contacts"]["created"] == N and res.counts["Contacts"]["failed"] == 0
    assert sorted(files_per_record(dest).values()) == [1] * N
