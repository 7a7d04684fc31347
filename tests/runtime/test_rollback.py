"""Rollback end to end against the generic SandboxStore: exact restores (full snapshots), resume
after a crash (injected exception and a real SIGKILL), idempotence, conflicts and --force."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runtime.destinations.base import WriteItem
from runtime.operations import RollbackOptions, rollback_all, rollback_run
from runtime.state import StateError, StateStore

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fixtures" / "operations"))
from ops_harness import FIXTURE, compile_fixture, make_dest, make_env  # noqa: E402

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def module(tmp_path_factory):
    return compile_fixture(tmp_path_factory.mktemp("build"))


@pytest.fixture
def env(tmp_path, module):
    e = make_env(tmp_path, module)
    yield e
    e.state.close()
    e.dest.close()


def two_runs(env):
    """Run, edit the source, run again (updates). Returns the snapshots before each run."""
    s0 = env.dest.snapshot()
    r1 = env.run()
    assert r1.status == "completed"
    s1 = env.dest.snapshot()
    env.edit_source("patients", "p1", last_name="Smithers", appointments=[{"id": "a1"}])
    env.edit_source("clinics", "c1", phone="0999", parent_id="c2")  # + a deferred lookup
    r2 = env.run()
    assert r2.counts["Accounts:deferred"]["updated"] == 1
    assert r2.counts["Contacts"]["updated"] == 1
    assert r2.counts["Accounts"]["updated"] == 1
    assert r2.counts["patients.appointments->Contacts"]["updated"] == 1
    assert env.dest.snapshot() != s1
    return s0, s1


def test_rollback_of_update_run_restores_previous_snapshot(env):
    s0, s1 = two_runs(env)
    res = rollback_run(env.state, env.dest, 2)
    assert res.ok and res.deleted == {} and res.restored == {"Accounts": 1, "Contacts": 1}
    assert env.dest.snapshot() == s1  # merge + plain update of one Contact, both undone
    assert env.state.get_run(2).status == "rolled_back"
    assert env.state.get_run(1).status == "completed"
    rb = env.state.get_run(res.rollback_run_id)
    assert rb.options["rollback_of"] == 2 and rb.status == "completed"
    assert {o.op for o in env.state.ops(rb.id)} == {"restore"}
    # every write of run 2 (plain update, merge `step@map`, deferred `step:deferred@map`) undone
    undone = {o.map: o.undone_by is not None for o in env.state.ops(2)}
    assert undone == {"Accounts": True, "Contacts": True, "Accounts:deferred@Accounts": True,
                      "patients.appointments->Contacts@Contacts": True}
    # the id map still knows the records (they were restored, not deleted)
    assert env.state.lookup("Contacts", "p1") is not None


def test_rollback_both_runs_restores_pre_migration_snapshot(env):
    s0, _ = two_runs(env)
    results = rollback_all(env.state, env.dest)
    assert [r.run_id for r in results] == [2, 1]
    assert env.dest.snapshot() == s0
    assert results[1].deleted == {"Contacts": 2, "Accounts": 2}
    assert results[1].delete_order == ["Contacts", "Accounts"]  # children before parents
    assert env.state.conn.execute("SELECT COUNT(*) FROM id_map").fetchone()[0] == 0
    assert {r.status for r in env.state.runs() if "rollback_of" not in r.options} == {"rolled_back"}


def test_single_run_rollback_deletes_children_first(env):
    s0 = env.dest.snapshot()
    env.run()
    res = rollback_run(env.state, env.dest, 1)
    assert env.dest.snapshot() == s0
    ops = list(env.state.ops(res.rollback_run_id))
    assert [o.target_object for o in ops] == ["Contacts", "Contacts", "Accounts", "Accounts"]
    assert all(o.op == "delete" and o.state == "confirmed" for o in ops)
    # deleted records are in the recycle bin; the before-image journals what was deleted
    assert len(env.dest.recycle_bin("Contacts")) == 2
    assert ops[0].before_image["id"].startswith("contacts-")


def test_second_rollback_is_a_noop(env):
    two_runs(env)
    rollback_all(env.state, env.dest)
    runs = len(env.state.runs())
    ops = env.state.conn.execute("SELECT COUNT(*) FROM ops").fetchone()[0]
    writes = env.dest.stats.records_written
    again = rollback_all(env.state, env.dest)
    assert all(r.noop for r in again)
    assert len(env.state.runs()) == runs
    assert env.state.conn.execute("SELECT COUNT(*) FROM ops").fetchone()[0] == ops
    assert env.dest.stats.records_written == writes


def test_rollback_of_a_rollback_run_is_refused(env):
    env.run()
    res = rollback_run(env.state, env.dest, 1)
    with pytest.raises(StateError, match="itself a rollback"):
        rollback_run(env.state, env.dest, res.rollback_run_id)


class Crash(BaseException):
    pass


class DeleteThenCrash:
    """Deletes for real on the n-th delete call, then dies before the answer arrives."""

    def __init__(self, dest, n):
        self.dest, self.n, self.calls = dest, n, 0

    def __getattr__(self, name):
        return getattr(self.dest, name)

    def delete(self, obj, ids):
        self.calls += 1
        result = self.dest.delete(obj, ids)
        if self.calls == self.n:
            raise Crash("lost response")
        return result


@pytest.mark.parametrize("where", ["before_call", "after_delete"])
def test_rollback_killed_midway_resumes_to_same_end_state(env, where):
    s0, _ = two_runs(env)
    rollback_run(env.state, env.dest, 2)
    if where == "before_call":
        def boom(kind, n):
            if kind == "delete" and n == 3:
                raise Crash("killed")
        dest, opts = env.dest, RollbackOptions(batch_size=1, before_call=boom)
    else:
        dest, opts = DeleteThenCrash(env.dest, 2), RollbackOptions(batch_size=1)
    with pytest.raises(Crash):
        rollback_run(env.state, dest, 1, opts)
    assert env.state.get_run(1).status == "completed"
    assert env.dest.snapshot() != s0
    res = rollback_run(env.state, env.dest, 1, RollbackOptions(batch_size=1))
    assert res.resumed_ops == 1
    assert env.dest.snapshot() == s0
    assert env.state.get_run(1).status == "rolled_back"
    confirmed = env.state.conn.execute(
        "SELECT COUNT(*) FROM ops WHERE op = 'delete' AND state = 'confirmed'").fetchone()[0]
    assert confirmed == 4  # each created record deleted exactly once
    assert rollback_run(env.state, env.dest, 1).noop


def test_rollback_sigkilled_subprocess_resumes(env, tmp_path):
    s0 = env.dest.snapshot()
    env.run()
    env.state.close()
    env.dest.close()
    script = tmp_path / "kill.py"
    script.write_text(textwrap.dedent(f"""
        import os, signal, sys
        sys.path[:0] = [{str(HERE.parent.parent.parent)!r}, {str(FIXTURE)!r}]
        from runtime.operations import RollbackOptions, rollback_run
        from runtime.state import StateStore
        from ops_harness import compile_fixture, make_dest
        from pathlib import Path
        module = compile_fixture(Path({str(tmp_path)!r}))
        dest = make_dest(module, Path({str(tmp_path / "sandbox.sqlite")!r}))
        def kill(kind, n):
            if n == 3:
                os.kill(os.getpid(), signal.SIGKILL)
        with StateStore(Path({str(tmp_path / "state.sqlite")!r})) as st:
            rollback_run(st, dest, 1, RollbackOptions(batch_size=1, before_call=kill))
    """))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    with StateStore(tmp_path / "state.sqlite") as st:
        dest = make_dest(env.module, tmp_path / "sandbox.sqlite")
        assert st.unresolved_ops(2)  # the killed rollback left a sent delete
        res = rollback_run(st, dest, 1)
        assert res.resumed_ops == 1
        assert dest.snapshot() == s0
        assert st.get_run(1).status == "rolled_back"
        dest.close()
    assert os.path.exists(FIXTURE / "ops.fmap")


def _edit(dest, obj, dest_id, **fields):
    [r] = dest.update(obj, [WriteItem(dest_id, None, fields, dest_id)])
    assert r.ok, r


def test_changed_records_are_conflicts_left_alone_then_forced(env):
    s0 = env.dest.snapshot()
    env.run()
    p1 = env.state.lookup("Contacts", "p1")
    _edit(env.dest, "Contacts", p1, Last_Name="Smith-Edited")  # a clinic user edits a record
    res = rollback_run(env.state, env.dest, 1)
    assert not res.ok
    [c] = res.conflicts
    assert (c.action, c.destination_id, c.source_key) == ("delete", p1, "p1")
    assert [(d.field, d.kind) for d in c.diffs] == [("Last_Name", "changed")]
    assert res.deleted == {"Contacts": 1, "Accounts": 2}
    assert env.dest.get("Contacts", [p1])[p1]["Last_Name"] == "Smith-Edited"
    assert env.state.get_run(1).status == "completed"  # not fully rolled back
    # again without --force: the conflict is reported again, nothing written
    again = rollback_run(env.state, env.dest, 1)
    assert len(again.conflicts) == 1 and again.rollback_run_id is None
    forced = rollback_run(env.state, env.dest, 1, RollbackOptions(force=True))
    assert forced.ok and forced.conflicts[0].forced
    assert env.dest.snapshot() == s0
    assert env.state.get_run(1).status == "rolled_back"


def test_value_added_to_unwritten_field_is_a_conflict(env):
    env.run()
    p2 = env.state.lookup("Contacts", "p2")
    _edit(env.dest, "Contacts", p2, Mobile="07700 900123")
    res = rollback_run(env.state, env.dest, 1)
    assert [(d.field, d.kind) for d in res.conflicts[0].diffs] == [("Mobile", "unexpected")]


def test_restore_conflict_then_force(env):
    _, s1 = two_runs(env)
    p1 = env.state.lookup("Contacts", "p1")
    _edit(env.dest, "Contacts", p1, Email="new@x.com")
    res = rollback_run(env.state, env.dest, 2)
    [c] = res.conflicts
    assert c.action == "restore" and [(d.field, d.kind) for d in c.diffs] == [("Email", "changed")]
    assert res.restored == {"Accounts": 1}
    forced = rollback_run(env.state, env.dest, 2, RollbackOptions(force=True))
    assert forced.restored == {"Contacts": 1}
    assert env.dest.snapshot() == s1


def test_records_deleted_in_destination_are_not_a_failure(env):
    s0 = env.dest.snapshot()
    env.run()
    p1 = env.state.lookup("Contacts", "p1")
    env.dest.delete("Contacts", [p1])
    res = rollback_run(env.state, env.dest, 1)
    assert res.ok and res.already_gone == 1
    assert env.dest.snapshot() == s0


def test_rollback_with_reopened_store_and_destination(env, tmp_path):
    s0 = env.dest.snapshot()
    env.run()
    env.state.close()
    env.dest.close()
    with StateStore(tmp_path / "state.sqlite") as st:
        dest = make_dest(env.module, tmp_path / "sandbox.sqlite")
        rollback_run(st, dest, 1)
        assert dest.snapshot() == s0
        dest.close()
    env.state = StateStore(tmp_path / "state.sqlite")
    env.dest = make_dest(env.module, tmp_path / "sandbox.sqlite")


def test_rerun_after_full_rollback_loads_everything_again(env):
    env.run()
    s1 = env.dest.snapshot(by="external_id")
    rollback_run(env.state, env.dest, 1)
    r = env.run()
    assert r.counts["Contacts"]["created"] == 2  # creates come back (their id-map entries went)
    assert env.dest.snapshot(by="external_id") == s1  # the merge update is skipped: xfail


def test_rerun_after_rollback_of_update_run_reapplies_updates(env):
    two_runs(env)
    s2 = env.dest.snapshot()
    rollback_run(env.state, env.dest, 2)
    env.run()
    assert env.dest.snapshot() == s2
