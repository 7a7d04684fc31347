"""Idempotency hints from the journal: after a lost response and a resume in a fresh loader, a
destination that declares ``capabilities.find_hints`` is asked for the unsettled records with,
per external id, the journal's send time and the payload that was sent (what lets Pipedrive
search a window instead of the whole object); one that does not declare it is called with the
ids alone."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "executor"))
import execfix  # noqa: E402

from runtime.executor import LoadOptions, RunOptions, check_invariant, run_migration  # noqa: E402
from runtime.sources import open_source  # noqa: E402
from runtime.state import StateStore  # noqa: E402


@pytest.fixture(scope="module")
def module(tmp_path_factory):
    return execfix.compile_module(tmp_path_factory.mktemp("build"))


class _Killed(BaseException):
    """SIGKILL in-process: the store committed the create, the reply never came back."""


class _Dest:
    """A store that can "die" after committing its n-th create, and records what each
    find_by_external_id call was given."""

    def __init__(self, inner, *, hints: bool, kill_at: int | None = None):
        self._inner = inner
        self.capabilities = inner.capabilities.model_copy(update={"find_hints": hints})
        self.kill_at = kill_at
        self.creates = 0
        self.finds: list[tuple[str, list[str], dict | None]] = []

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def create(self, obj, items):
        result = self._inner.create(obj, items)
        self.creates += 1
        if self.creates == self.kill_at:
            raise _Killed(obj)
        return result

    def find_by_external_id(self, obj, ids, **kw):
        if not self.capabilities.find_hints:
            assert not kw, "hints passed to a destination that does not take them"
        self.finds.append((obj, list(ids), kw.get("hints")))
        return self._inner.find_by_external_id(obj, ids)


def run(module, src, dest, state, stage, **opts):
    s = open_source(str(src))
    try:
        return run_migration(module, s, dest, state, stage, source_id=str(src),
                             options=RunOptions(**opts))
    finally:
        s.close()


@pytest.mark.parametrize("hints", [True, False], ids=["find_hints", "no-hints"])
def test_resume_after_lost_response_passes_journal_hints(module, tmp_path, hints):
    src = tmp_path / "src"
    execfix.generate_source(src, 60, seed=3)
    store = execfix.store(native_upsert=False, batch_size=1)  # one create a call, as Pipedrive
    state = StateStore(tmp_path / "state.sqlite")
    with pytest.raises(_Killed):
        run(module, src, _Dest(store, hints=hints, kill_at=2), state, tmp_path / "stage")
    run_id = state.latest_run().id
    lost = [o for o in state.ops(run_id) if o.state == "sent"]
    assert len(lost) == 1 and lost[0].op == "create" and lost[0].sent_at
    op = lost[0]

    dest = _Dest(store, hints=hints)  # a fresh loader in a "new process": only the journal knows
    res = run(module, src, dest, state, tmp_path / "stage", resume=run_id)
    assert res.status == "completed", res.message
    check_invariant(res.counts)
    execfix.check_store(store)  # found, not created twice
    assert state.get_op(op.id).state == "confirmed"

    first = dest.finds[0]
    assert first[0] == op.target_object and first[1] == [op.external_id]
    if hints:
        assert first[2] == {op.external_id: {"sent_at": op.sent_at, "payload": op.written}}
        assert op.written and all(isinstance(k, str) for k in op.written)
    else:
        assert first[2] is None


class _LostTwice(_Dest):
    """The first create is lost before the store sees it; the re-send is committed and its reply
    lost too: both times the loader settles the record in-process, from the journal."""

    def create(self, obj, items):
        from runtime.destinations.base import TransientError

        self.creates += 1
        if self.creates == 2:
            self._inner.create(obj, items)
        if self.creates in (1, 2):
            raise TransientError("read timed out", retry_after=0)
        return self._inner.create(obj, items)


def test_settle_after_a_resend_searches_from_the_first_send(module, tmp_path):
    src = tmp_path / "src"
    execfix.generate_source(src, 20, seed=3)
    store = execfix.store(native_upsert=False, batch_size=1)
    state = StateStore(tmp_path / "state.sqlite")
    dest = _LostTwice(store, hints=True)
    res = run(module, src, dest, state, tmp_path / "stage", load=LoadOptions(sleep=lambda s: None))
    assert res.status == "completed", res.message
    execfix.check_store(store)
    (obj, ids1, h1), (_, ids2, h2) = dest.finds[:2]
    assert ids1 == ids2 and len(ids1) == 1
    op = next(o for o in state.ops(res.run_id) if o.external_id == ids1[0] and o.op == "create")
    assert op.state == "confirmed" and op.attempt == 2
    first_send = h1[ids1[0]]["sent_at"]
    # the journal's sent_at now is the re-send's; the hint stays at or before the first send
    assert h2[ids1[0]]["sent_at"] == op.planned_at <= first_send <= op.sent_at
    assert h2[ids1[0]]["payload"] == op.written
