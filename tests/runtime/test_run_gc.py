"""The run keeps its long-lived objects (compiled module, plan, source, destination) frozen out of
the collector's full passes while it stages and loads, and undoes that at its end: a process
running many migrations (the test suite, a service) must not keep each run's objects frozen, and
objects a caller froze itself are left frozen."""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "executor"))
import execfix  # noqa: E402

from runtime.executor import RunOptions, run_migration  # noqa: E402
from runtime.sources import open_source  # noqa: E402
from runtime.state import StateStore  # noqa: E402


@pytest.fixture(scope="module")
def module(tmp_path_factory):
    return execfix.compile_module(tmp_path_factory.mktemp("build"))


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    d = tmp_path_factory.mktemp("src")
    execfix.generate_source(d, 40, seed=2)
    return d


class _Watch:
    """Notes the frozen-object count at each write."""

    def __init__(self, inner):
        self._inner = inner
        self.capabilities = inner.capabilities
        self.frozen_at_write: list[int] = []

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def upsert(self, obj, items):
        self.frozen_at_write.append(gc.get_freeze_count())
        return self._inner.upsert(obj, items)


def run(module, src, dest, tmp_path):
    s = open_source(str(src))
    try:
        return run_migration(module, s, dest, StateStore(":memory:"), tmp_path / "stage",
                             source_id=str(src), options=RunOptions())
    finally:
        s.close()


@pytest.fixture
def clean_gc():
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.enable()


def test_loading_runs_frozen_and_the_run_unfreezes(module, src, tmp_path, clean_gc):
    dest = _Watch(execfix.store())
    res = run(module, src, dest, tmp_path)
    assert res.status == "completed"
    assert dest.frozen_at_write and min(dest.frozen_at_write) > 0
    assert gc.get_freeze_count() == 0


def test_unfrozen_even_when_the_caller_disabled_the_collector(module, src, tmp_path, clean_gc):
    gc.disable()
    for i in range(2):  # many runs in one process: nothing stays frozen
        (tmp_path / str(i)).mkdir()
        assert run(module, src, execfix.store(), tmp_path / str(i)).status == "completed"
        assert gc.get_freeze_count() == 0


def test_objects_the_caller_froze_stay_frozen(module, src, tmp_path, clean_gc):
    sentinel = [object()]  # a container the collector tracks, alive through the run
    gc.freeze()
    assert gc.get_freeze_count() > 0
    assert run(module, src, execfix.store(), tmp_path).status == "completed"
    # frozen objects are in no generation gc.get_objects() lists; unfrozen, it would list it.
    # (The freeze count itself may fall a little: a frozen object freed during the run, such as
    # a cache entry evicted, leaves the permanent generation.)
    assert gc.get_freeze_count() > 0
    assert not any(o is sentinel for o in gc.get_objects())
