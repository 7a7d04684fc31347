"""A destination wrapper that journals the field values of every write (``ops.written``).

The executor journals each op's request hash; rollback's conflict check and reconciliation's spot
check need the values themselves. A writer that passes ``PlannedOp.payload`` gets them stored by
:meth:`StateStore.plan_ops`; for one that does not, wrap the destination in this class: before each
create/upsert/update call it stores each item's record on the op that is ``sent`` with the item's
external id (or the item's key, which the executor sets to the external id; else its
destination id) in the same target object.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from runtime.destinations.base import WriteItem, WriteResult
from runtime.state import StateStore

__all__ = ["RecordingDestination"]


class RecordingDestination:
    def __init__(self, dest: Any, store: StateStore) -> None:
        self._dest = dest
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dest, name)

    def _record(self, obj: str, items: Sequence[WriteItem]) -> None:
        conn = self._store.conn
        for it in items:
            row = None
            for ext in dict.fromkeys(x for x in (it.external_id, it.key) if x is not None):
                row = conn.execute(
                    "SELECT id FROM ops WHERE target_object = ? AND external_id = ? "
                    "AND state = 'sent' ORDER BY id DESC LIMIT 1", (obj, ext)).fetchone()
                if row is not None:
                    break
            if row is None and it.dest_id is not None:
                row = conn.execute(
                    "SELECT id FROM ops WHERE target_object = ? AND destination_id = ? "
                    "AND state = 'sent' ORDER BY id DESC LIMIT 1", (obj, it.dest_id)).fetchone()
            if row is not None:
                self._store.set_written(row[0], it.record)

    def create(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        self._record(obj, items)
        return self._dest.create(obj, items)

    def upsert(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        self._record(obj, items)
        return self._dest.upsert(obj, items)

    def update(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        self._record(obj, items)
        return self._dest.update(obj, items)
