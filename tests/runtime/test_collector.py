"""The collector's schedule while records are staged (runtime/executor/collector.py): automatic
collection paused, explicit collections between batches, the caller's setting restored. The
point is speed (bench/bench_transform.py); what must not break is memory: a cycle a record makes
is still freed a batch later, not at the end of the run."""

from __future__ import annotations

import gc
import sys
import weakref
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "executor"))
import execfix  # noqa: E402

from runtime.executor import RunOptions, run_migration  # noqa: E402
from runtime.executor.collector import BatchCollector  # noqa: E402
from runtime.sources import open_source  # noqa: E402
from runtime.state import StateStore  # noqa: E402


@pytest.fixture
def restore_gc():
    was = gc.isenabled()
    yield
    gc.enable() if was else gc.disable()


@pytest.mark.parametrize("enabled", [True, False])
def test_the_callers_setting_comes_back(enabled, restore_gc):
    gc.enable() if enabled else gc.disable()
    with BatchCollector():
        assert not gc.isenabled()
    assert gc.isenabled() is enabled


def test_restored_when_the_body_raises(restore_gc):
    gc.enable()
    with pytest.raises(RuntimeError), BatchCollector():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_generations_follow_the_default_ratios(restore_gc):
    seen: list[int] = []

    def note(phase, info):
        if phase == "start":
            seen.append(info["generation"])

    gc.callbacks.append(note)
    try:
        with BatchCollector() as collector:
            returned = [collector.batch_done() for _ in range(200)]
    finally:
        gc.callbacks.remove(note)
    assert returned == seen  # each batch_done is one real collection of what it says
    assert returned.count(2) == 2 and returned.index(2) == 99
    assert returned.count(1) == 18 and returned.index(1) == 9
    assert returned.count(0) == 180


class _Cyclic:
    def __init__(self) -> None:
        self.me = self  # garbage only the cyclic collector can free


class _Watch:
    """A source that notes, per patient, whether automatic collection is on and how many of the
    cycles made for earlier patients are still alive."""

    def __init__(self, inner, batch: int):
        self._inner = inner
        self._batch = batch
        self.enabled: list[bool] = []
        self.alive: dict[int, int] = {}  # patients read -> cycles of finished batches alive
        self._refs: list[weakref.ref] = []

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def records(self, obj):
        for srec in self._inner.records(obj):
            self.enabled.append(gc.isenabled())
            if obj == "patients":
                n, b = len(self._refs), self._batch
                if n % b == b // 2 and n > b:  # mid-batch: the batches before were collected
                    self.alive[n] = sum(r() is not None for r in self._refs[:n - b // 2])
                self._refs.append(weakref.ref(_Cyclic()))
            yield srec


def test_staging_pauses_automatic_collection_and_still_frees_cycles(tmp_path, restore_gc,
                                                                   monkeypatch):
    from runtime.executor import extract

    batch = 40  # BATCH records in production; a small batch keeps the run short
    monkeypatch.setattr(extract, "BATCH", batch)
    module = execfix.compile_module(tmp_path / "build")
    src = tmp_path / "src"
    counts = execfix.generate_source(src, 400, seed=3)
    assert counts["patients"] > 4 * batch
    gc.enable()
    source = _Watch(open_source(str(src)), batch)
    try:
        res = run_migration(module, source, execfix.store(), StateStore(":memory:"),
                            tmp_path / "stage", source_id=str(src), options=RunOptions())
    finally:
        source._inner.close()
    assert res.status == "completed"
    assert source.enabled and not any(source.enabled)  # paused for every record read
    # mid-batch, the cycles of every finished batch have been freed by the collection after it
    assert len(source.alive) >= 3 and set(source.alive.values()) == {0}
    assert gc.isenabled()
