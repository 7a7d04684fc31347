"""Executor under destination faults: lost responses, timeouts, throttles, record errors, with and
without native upsert; an in-process "kill" (an exception the executor does not catch, raised after
the store committed) and resume; batch limits with split records."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "executor"))
import execfix  # noqa: E402

from runtime.destinations.faults import FaultPlan  # noqa: E402
from runtime.executor import LoadOptions, RunOptions, check_invariant, run_migration  # noqa: E402
from runtime.sources import open_source  # noqa: E402
from runtime.state import StateStore  # noqa: E402


@pytest.fixture(scope="module")
def module(tmp_path_factory):
    return execfix.compile_module(tmp_path_factory.mktemp("build"))


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    d = tmp_path_factory.mktemp("src")
    execfix.generate_source(d, 1500, seed=5)
    return d


def run(module, src, dest, state, stage, **opts):
    s = open_source(str(src))
    try:
        res = run_migration(module, s, dest, state, stage, source_id=str(src),
                            options=RunOptions(**opts))
    finally:
        s.close()
    if res.status == "completed":
        check_invariant(res.counts)
        assert all(c["pending"] == 0 for c in res.counts.values())
    return res


@pytest.fixture(scope="module")
def clean(module, source, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("clean")
    dest = execfix.store()
    res = run(module, source, dest, StateStore(":memory:"), tmp / "stage")
    assert res.status == "completed"
    return res.counts, execfix.canonical_snapshot(dest), {
        e for (e,) in dest._db.execute("SELECT external_id FROM records")}


@pytest.mark.parametrize("native_upsert", [True, False], ids=["upsert", "no-upsert"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_lost_responses_no_duplicates_no_missing(module, source, clean, tmp_path, native_upsert,
                                                 seed):
    counts, snap, ext = clean
    faults = FaultPlan(seed=seed, lost_response_rate=0.05, timeout_rate=0.03, throttle_rate=0.03,
                       throttle_retry_after=0, record_error_rate=0.01)
    dest = execfix.store(faults=faults, native_upsert=native_upsert)
    sleeps: list[float] = []
    res = run(module, source, dest, StateStore(":memory:"), tmp_path / "stage",
              load=LoadOptions(sleep=sleeps.append, seed=seed, max_retries=30))
    assert res.status == "completed", res.message
    kinds = [d.kind for d in faults.log]
    assert kinds.count("lost_response") >= 1, "the plan injected no lost response"
    execfix.check_store(dest, expect_ext=ext)  # 0 duplicates, 0 missing, 0 orphans
    assert execfix.canonical_snapshot(dest) == snap
    assert res.counts == counts
    # every throttle (Retry-After: 0) waited at least 1 s
    assert sum(1 for s in sleeps if s >= 1.0) >= kinds.count("throttle")
    if not native_upsert:
        assert dest.stats.by_operation.get("upsert", 0) == 0


class _Killed(BaseException):
    """Stands in for SIGKILL in-process: not an Exception, so nothing in the executor catches it."""


class _KillAfterCommit:
    """Let the store commit the n-th call of ``op``, then "die" before the reply is returned."""

    def __init__(self, inner, op: str, n: int):
        self._inner = inner
        self.capabilities = inner.capabilities
        self.op = op
        self.n = n
        self.seen = 0

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def _wrap(self, op, obj, items):
        result = getattr(self._inner, op)(obj, items)
        if op == self.op:
            self.seen += 1
            if self.seen == self.n:
                raise _Killed(op)
        return result

    def create(self, obj, items):
        return self._wrap("create", obj, items)

    def upsert(self, obj, items):
        return self._wrap("upsert", obj, items)

    def update(self, obj, items):
        return self._wrap("update", obj, items)


def test_update_resent_after_crash_keeps_original_before_image(module, tmp_path):
    """Source edit -> update committed by the store, process dies before the reply; the resumed
    run re-sends the update. The journal must still hold the record as it was before the update
    (what rollback restores), not the already-updated values read back on resume."""
    src = tmp_path / "src"
    execfix.generate_source(src, 200, seed=9)
    dest = execfix.store()
    state = StateStore(tmp_path / "state.sqlite")
    assert run(module, src, dest, state, tmp_path / "stage").status == "completed"
    import json

    patients = json.loads((src / "patients.json").read_text())
    target = next(p for p in patients if p["status"] == "Active" and "doctor" in p
                  and p["dob"] != "31/02/1980")
    old_email = target["email"].lower()
    target["email"] = "changed@example.com"
    src2 = tmp_path / "src2"
    src2.mkdir()
    for f in src.iterdir():
        (src2 / f.name).write_text(f.read_text())
    (src2 / "patients.json").write_text(json.dumps(patients))
    killer = _KillAfterCommit(dest, "update", 1)
    with pytest.raises(_Killed):
        run(module, src2, killer, state, tmp_path / "stage")
    run_id = state.latest_run().id
    res = run(module, src2, dest, state, tmp_path / "stage", resume=run_id)
    assert res.status == "completed" and res.run_id == run_id
    assert res.counts["Patients"]["updated"] == 1
    ups = [o for o in state.ops(run_id) if o.op == "update" and o.map == "Patients"
           and o.state == "confirmed"]
    assert len(ups) == 1 and ups[0].source_key == target["id"]
    assert ups[0].before_image["Email"] == old_email


@pytest.mark.parametrize("op", ["upsert", "update"])
def test_in_process_kill_after_commit_then_resume(module, source, clean, tmp_path, op):
    counts, snap, ext = clean
    dest = execfix.store()
    state = StateStore(tmp_path / "state.sqlite")
    with pytest.raises(_Killed):
        run(module, source, _KillAfterCommit(dest, op, 2), state, tmp_path / "stage")
    run_id = state.latest_run().id
    res = run(module, source, dest, state, tmp_path / "stage", resume=run_id)
    assert res.status == "completed"
    assert res.counts == counts
    execfix.check_store(dest, expect_ext=ext)
    assert execfix.canonical_snapshot(dest) == snap


def test_split_parts_never_exceed_batch_size(module, tmp_path):
    src = tmp_path / "src"
    execfix.generate_source(src, 300, seed=4)
    dest = execfix.store(batch_size=3)
    res = run(module, src, dest, StateStore(":memory:"), tmp_path / "stage")
    assert res.status == "completed"
    assert any("#" in k for k in (r["$external_id"] for r in dest.list_records("Patient_Notes")))
    execfix.check_store(dest)
