"""One chunking helper (runtime.state.store.chunked) serves the store's key lists, the loader's
staged-record cursors and the loader's journal queries, which must see every key however many
there are (an IN (...) over more keys than SQLite's variable limit fails)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from runtime.destinations.base import DestinationCapabilities
from runtime.executor.load import Loader
from runtime.state import OpResult, PlannedOp, StateStore, request_hash
from runtime.state.store import chunked


@pytest.mark.parametrize(("items", "n", "expected"), [
    pytest.param([1, 2, 3, 4, 5], 2, [[1, 2], [3, 4], [5]], id="short-last"),
    pytest.param([1, 2, 3, 4], 2, [[1, 2], [3, 4]], id="exact-multiple"),
    pytest.param([], 3, [], id="empty"),
    pytest.param((x for x in "abc"), 5, [["a", "b", "c"]], id="generator-shorter-than-n"),
    pytest.param(dict.fromkeys("aab"), 1, [["a"], ["b"]], id="dict-keys"),
])
def test_chunked(items, n, expected):
    assert list(chunked(items, n)) == expected


def test_chunked_reads_an_iterator_lazily():
    """The loader hands it a cursor over the whole stage: it must not read ahead of a chunk."""
    seen: list[int] = []

    def cursor():
        for i in range(10):
            seen.append(i)
            yield i

    first = next(chunked(cursor(), 3))
    assert first == [0, 1, 2] and seen == [0, 1, 2]


def test_chunked_default_size_stays_under_sqlite_variable_limit():
    sizes = [len(c) for c in chunked(range(2001))]
    assert sum(sizes) == 2001 and max(sizes) <= 999


def test_loader_journal_queries_see_keys_past_one_chunk(tmp_path):
    """The loader's request-hash lookup (what makes a re-run skip unchanged records) answers for
    every key of a batch bigger than one IN (...) chunk."""
    n = 1201
    with StateStore(tmp_path / "state.sqlite") as state:
        run = state.start_run("m")
        ids = state.plan_ops(run, [PlannedOp("Contacts", "Contacts", "create", "patients", str(i),
                                             f"Contacts:{i}", payload={"n": i})
                                   for i in range(n)])
        state.mark_sent(ids)
        state.confirm([OpResult(i, f"d{i}", True) for i in ids])
        dest = SimpleNamespace(capabilities=DestinationCapabilities(name="t", batch_size=100))
        loader = Loader(None, dest, state, None, run, {})
        hashes = loader._last_hashes("Contacts", [str(i) for i in range(n)])
    assert len(hashes) == n
    assert hashes["1200"] == request_hash({"n": 1200})
