"""The JSONL directory destination, for ``fmap run --dry-run`` and inspection.

Every write call appends one JSON line per item to ``<dir>/<object>.jsonl``::

    {"op": "create", "key": "P-1", "external_id": "P-1", "id": "contacts-000001",
     "record": {"Last_Name": "Smith", "Date_of_Birth": "1980-02-01"}}

``op`` is ``create``, ``upsert`` (with ``"created": true|false``), ``update``, ``delete`` or
``attachment`` (record: ``file_name``, ``size``, ``sha256``, ``parent``; size/hash are null when the
local file does not exist, since a dry run may not have it). Decimals, dates and datetimes are
written as strings (``str``/``isoformat``).

Nothing is validated: the point is to see what would be sent. Ids are deterministic
(``<object lower>-000001``, a per-object counter) unless an ``id_factory`` is given. An in-memory
index (external id -> id, id -> merged current record, deleted ids) answers ``get``, ``count``,
``find_by_external_id`` and ``list_records``; it is rebuilt by replaying the files when a directory
is reopened, so a resumed dry run continues where it stopped. There are no timestamps, so
``list_records(modified_since=...)`` returns every record (a safe superset).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

from runtime.destinations.base import (
    CallStats,
    DestinationCapabilities,
    User,
    WriteItem,
    WriteResult,
)
from runtime.schema.model import SystemSchema

__all__ = ["JsonlDestination"]

EXTERNAL_ID_KEY = "$external_id"
_ID_RE = re.compile(r"^(?P<prefix>.+)-(?P<n>\d{6,})$")


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


class JsonlDestination:
    """Writes to ``<directory>/<object>.jsonl``; never validates. Thread-safe (one lock)."""

    def __init__(
        self,
        directory: str | Path,
        schema: SystemSchema | None = None,
        *,
        capabilities: DestinationCapabilities | None = None,
        users: list[User] | None = None,
        id_factory: Callable[[str], str] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._schema = schema or SystemSchema(system="jsonl")
        self.capabilities = capabilities or DestinationCapabilities(name="jsonl", batch_size=1000)
        self._users = list(users or [])
        self._id_factory = id_factory
        self.stats = CallStats()
        self._lock = threading.RLock()
        self._counters: dict[str, int] = {}
        self._by_ext: dict[str, dict[str, str]] = {}
        self._records: dict[str, dict[str, dict[str, Any]]] = {}
        self._ext_of: dict[str, dict[str, str | None]] = {}
        self._reload()

    # ------------------------------------------------------------------ index

    def _file(self, obj: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.$-]", "_", obj)
        return self.directory / f"{safe}.jsonl"

    def _reload(self) -> None:
        for path in sorted(self.directory.glob("*.jsonl")):
            with path.open(encoding="utf-8") as fh:
                for line in fh:
                    line = line.strip()
                    if not line:
                        continue
                    try:
                        entry = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a torn last line from a killed run
                    self._apply(entry.get("object") or path.stem, entry)

    def _apply(self, obj: str, entry: dict[str, Any]) -> None:
        op, rid = entry.get("op"), entry.get("id")
        if op == "attachment" or rid is None:
            return
        records = self._records.setdefault(obj, {})
        ext_of = self._ext_of.setdefault(obj, {})
        by_ext = self._by_ext.setdefault(obj, {})
        m = _ID_RE.match(rid)
        if m and m["prefix"] == obj.lower():
            self._counters[obj] = max(self._counters.get(obj, 0), int(m["n"]))
        if op == "delete":
            records.pop(rid, None)
            ext = ext_of.pop(rid, None)
            if ext is not None and by_ext.get(ext) == rid:
                del by_ext[ext]
            return
        rec = records.setdefault(rid, {})
        rec.update(entry.get("record") or {})
        ext = entry.get("external_id")
        if ext is not None:
            old = ext_of.get(rid)
            if old is not None and old != ext and by_ext.get(old) == rid:
                del by_ext[old]
            ext_of[rid] = ext
            by_ext[ext] = rid
        else:
            ext_of.setdefault(rid, None)

    def _new_id(self, obj: str) -> str:
        if self._id_factory is not None:
            return str(self._id_factory(obj))
        n = self._counters.get(obj, 0) + 1
        self._counters[obj] = n
        return f"{obj.lower()}-{n:06d}"

    def _append(self, obj: str, entries: list[dict[str, Any]]) -> None:
        lines = "".join(json.dumps({**e, "object": obj}, default=_default, ensure_ascii=False,
                                   sort_keys=True) + "\n" for e in entries)
        with self._file(obj).open("a", encoding="utf-8") as fh:
            fh.write(lines)
            fh.flush()
        for e in entries:
            # round-trip through JSON so the index holds what a reload would
            self._apply(obj, json.loads(json.dumps(e, default=_default)))

    def _check_batch(self, keys: Sequence[str]) -> None:
        if len(keys) > self.capabilities.batch_size:
            raise ValueError(f"{len(keys)} items in one call; batch_size is "
                             f"{self.capabilities.batch_size}")
        if len(set(keys)) != len(keys):
            raise ValueError("item keys must be unique within a call")

    # ------------------------------------------------------------------ writes

    def schema(self) -> SystemSchema:
        return self._schema

    def _write(self, op: str, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        self._check_batch([i.key for i in items])
        with self._lock:
            self.stats.count_call(op, len(items))
            entries, results = [], []
            by_ext = self._by_ext.setdefault(obj, {})
            pending: dict[str, str] = {}  # external ids created earlier in this call
            for item in items:
                created: bool | None = None
                if op == "update":
                    if not item.dest_id:
                        results.append(WriteResult(key=item.key, ok=False, code="NOT_FOUND",
                                                   error="update without a destination id"))
                        continue
                    rid = item.dest_id
                elif op == "upsert" and item.external_id is not None and (
                        item.external_id in by_ext or item.external_id in pending):
                    rid = by_ext.get(item.external_id) or pending[item.external_id]
                    created = False
                else:
                    rid = self._new_id(obj)
                    created = True
                    if item.external_id is not None:
                        pending[item.external_id] = rid
                entry = {"op": op, "key": item.key, "external_id": item.external_id, "id": rid,
                         "record": item.record}
                if op == "upsert":
                    entry["created"] = created
                entries.append(entry)
                results.append(WriteResult(key=item.key, ok=True, dest_id=rid,
                                           created=created if op != "update" else None))
            self._append(obj, entries)
            return results

    def create(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        return self._write("create", obj, items)

    def upsert(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        return self._write("upsert", obj, items)

    def update(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        return self._write("update", obj, items)

    def delete(self, obj: str, ids: Sequence[str]) -> list[WriteResult]:
        self._check_batch(list(ids))
        with self._lock:
            self.stats.count_call("delete", len(ids))
            self._append(obj, [{"op": "delete", "key": rid, "external_id": None, "id": rid,
                                "record": {}} for rid in ids])
            return [WriteResult(key=rid, ok=True, dest_id=rid) for rid in ids]

    def upload_attachment(self, obj: str, record_id: str, file_name: str, path: Path,
                          key: str) -> WriteResult:
        size: int | None = None
        digest: str | None = None
        p = Path(path)
        if p.is_file():
            h = hashlib.sha256()
            size = 0
            with p.open("rb") as fh:
                while chunk := fh.read(1 << 16):
                    size += len(chunk)
                    h.update(chunk)
            digest = h.hexdigest()
        with self._lock:
            self.stats.count_call("upload_attachment", 1)
            aid = self._new_id("Attachments")
            self._append(obj, [{"op": "attachment", "key": key, "external_id": None, "id": aid,
                                "record": {"file_name": file_name, "size": size,
                                           "sha256": digest, "parent": record_id,
                                           "path": str(p)}}])
            return WriteResult(key=key, ok=True, dest_id=aid, created=True)

    # ------------------------------------------------------------------ reads

    def delete_attachments(self, ids: Sequence[str]) -> list[WriteResult]:
        """Logged, like every other call (a dry run never removes anything real)."""
        self._append("Attachments", [{"op": "delete_attachment", "key": i, "external_id": None,
                                      "id": i, "record": {}} for i in ids])
        return [WriteResult(key=i, ok=True, dest_id=i) for i in ids]

    def _view(self, obj: str, rid: str) -> dict[str, Any]:
        rec = dict(self._records[obj][rid])
        rec["id"] = rid
        rec[EXTERNAL_ID_KEY] = self._ext_of.get(obj, {}).get(rid)
        return rec

    def get(self, obj: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        with self._lock:
            self.stats.count_call("get")
            records = self._records.get(obj, {})
            return {rid: self._view(obj, rid) for rid in ids if rid in records}

    def find_by_external_id(self, obj: str, external_ids: Sequence[str]) -> dict[str, str]:
        with self._lock:
            self.stats.count_call("find_by_external_id")
            by_ext = self._by_ext.get(obj, {})
            return {e: by_ext[e] for e in external_ids if e in by_ext}

    def list_users(self) -> list[User]:
        return list(self._users)

    def count(self, obj: str) -> int:
        with self._lock:
            return len(self._records.get(obj, {}))

    def list_records(self, obj: str, *, modified_since: str | None = None
                     ) -> Iterable[dict[str, Any]]:
        with self._lock:
            self.stats.count_call("list_records")
            return [self._view(obj, rid) for rid in sorted(self._records.get(obj, {}))]

    def close(self) -> None:
        pass

    def __enter__(self) -> JsonlDestination:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
