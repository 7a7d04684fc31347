"""When the cyclic garbage collector runs while records are transformed.

Left to itself, CPython starts a young collection every 700 container allocations: every 100-200
records of a mapping that builds a dict, a tuple and a few placeholders each. Transforms make
almost no cycles (their garbage goes with reference counting), so those passes free nothing; they
only traverse what is alive, and cost 20-30% of a transform's time (``bench/bench_transform.py``,
GC on against GC off). The executor
therefore pauses automatic collection while it stages records and collects explicitly between
batches of ``BATCH`` records: the young generation after every batch, the middle one every 10
batches and everything every 100, the same 10:10 ratios as CPython's default thresholds, so any
cycle a batch does make (an exception's traceback, a source parser's objects) is still freed and
memory stays flat (``bench/mem_profile.py``).

The collector's state is restored on exit, whatever happened inside: a caller that had disabled
it keeps it disabled (the explicit collections still run, as they would for any caller).
"""

from __future__ import annotations

import gc

__all__ = ["BatchCollector", "BATCH"]

BATCH = 1_000


class BatchCollector:
    """``with BatchCollector() as collector:`` ... ``collector.batch_done()`` after each batch."""

    __slots__ = ("_batches", "_was_enabled")

    def __init__(self) -> None:
        self._batches = 0
        self._was_enabled = False

    def __enter__(self) -> BatchCollector:
        self._was_enabled = gc.isenabled()
        gc.disable()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._was_enabled:
            gc.enable()

    def batch_done(self) -> int:
        """Collect after a batch; returns the generation collected (0, 1 or 2)."""
        self._batches += 1
        generation = 2 if self._batches % 100 == 0 else 1 if self._batches % 10 == 0 else 0
        gc.collect(generation)
        return generation
