"""The staging area: transformed records waiting to be loaded, on disk.

Extract + transform write every output record here before anything is sent, so preflight (owners,
required fields, attachment sizes) sees the whole migration, loading can follow the plan's order
without holding records in memory, and a resumed run reloads exactly the same records (staging is
deterministic and is redone from scratch when it did not finish).

Payloads are pickled: they hold Decimals, dates and Ref/Owner placeholders, and the file is local
run state written and read by the same runtime (never shared, never loaded from elsewhere).
"""

from __future__ import annotations

import pickle
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from runtime.state.store import BOUNDED_MEMORY_PRAGMAS

__all__ = ["Stage", "StagedRecord"]

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS staged (
        step TEXT NOT NULL,
        seq INTEGER NOT NULL,
        source_key TEXT NOT NULL,
        status TEXT NOT NULL,          -- ready | skipped | quarantined | failed
        detail TEXT,                   -- reason / rule for the non-ready statuses
        field TEXT,
        location TEXT,
        value BLOB,                    -- pickled offending value (quarantine; masked on output)
        payload BLOB,                  -- pickled output record (ready)
        source_object TEXT,
        root_key TEXT,                 -- key of the top-level source record it came from
        PRIMARY KEY (step, source_key)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS roots (
        source_object TEXT NOT NULL,
        root_key TEXT NOT NULL,
        modified_at TEXT,
        instant REAL,                  -- modified_at as POSIX seconds; NULL: none or unreadable
        PRIMARY KEY (source_object, root_key)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS roots_instant ON roots(source_object, instant)",
    "CREATE INDEX IF NOT EXISTS staged_seq ON staged(step, seq)",
    """CREATE TABLE IF NOT EXISTS merge_children (
        step TEXT NOT NULL,
        group_key TEXT NOT NULL,
        seq INTEGER NOT NULL,
        child BLOB NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS merge_children_group ON merge_children(step, group_key, seq)",
    """CREATE TABLE IF NOT EXISTS owners (email TEXT PRIMARY KEY, n INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)""",
]


class StagedRecord:
    __slots__ = ("step", "seq", "source_key", "status", "detail", "field", "location", "value",
                 "payload", "source_object", "root_key")

    def __init__(self, row: tuple) -> None:
        (self.step, self.seq, self.source_key, self.status, self.detail, self.field,
         self.location, value, payload, self.source_object, self.root_key) = row
        self.value = pickle.loads(value) if value is not None else None
        self.payload = pickle.loads(payload) if payload is not None else None


class Stage:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.conn = sqlite3.connect(self.path)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        for pragma in BOUNDED_MEMORY_PRAGMAS:  # the stage holds the whole run on disk
            self.conn.execute(pragma)
        cols = {r[1] for r in self.conn.execute("PRAGMA table_info(roots)")}
        if cols and "instant" not in cols:  # a stage from an older fmap: staged again
            self.conn.execute("DROP TABLE roots")
            self.conn.execute("DELETE FROM meta WHERE k = 'complete'")
        for stmt in _SCHEMA:
            self.conn.execute(stmt)
        self.conn.commit()
        self._seq: dict[str, int] = {}

    # ---- lifecycle
    def complete(self) -> bool:
        row = self.conn.execute("SELECT v FROM meta WHERE k = 'complete'").fetchone()
        return row is not None and row[0] == "1"

    def reset(self) -> None:
        with self.conn:
            for table in ("staged", "merge_children", "owners", "meta", "roots"):
                self.conn.execute(f"DELETE FROM {table}")
        self._seq.clear()

    def mark_complete(self, fingerprint: str) -> None:
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO meta VALUES ('complete', '1')")
            self.conn.execute("INSERT OR REPLACE INTO meta VALUES ('fingerprint', ?)",
                              (fingerprint,))

    def fingerprint(self) -> str | None:
        row = self.conn.execute("SELECT v FROM meta WHERE k = 'fingerprint'").fetchone()
        return row[0] if row else None

    def commit(self) -> None:
        self.conn.commit()

    def close(self) -> None:
        self.conn.commit()
        self.conn.close()

    # ---- writing
    def _next(self, step: str) -> int:
        n = self._seq.get(step, 0) + 1
        self._seq[step] = n
        return n

    def add(self, step: str, source_key: str, status: str, *, payload: Any = None,
            detail: str | None = None, field: str | None = None, location: str | None = None,
            value: Any = None, source_object: str | None = None,
            root_key: str | None = None) -> bool:
        """Stage one outcome of a step for a source key. A key staged twice for one step (duplicate
        source keys) keeps the first and returns False for the second."""
        try:
            self.conn.execute(
                "INSERT INTO staged VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (step, self._next(step), source_key, status, detail, field, location,
                 pickle.dumps(value, protocol=5) if value is not None else None,
                 pickle.dumps(payload, protocol=5) if payload is not None else None,
                 source_object, root_key if root_key is not None else source_key),
            )
        except sqlite3.IntegrityError:
            return False
        return True

    def add_root(self, source_object: str, root_key: str, modified_at: str | None,
                 instant: float | None = None) -> None:
        self.conn.execute("INSERT OR IGNORE INTO roots VALUES (?, ?, ?, ?)",
                          (source_object, root_key, modified_at, instant))

    def note_unreadable_modified(self, source_object: str, n: int) -> None:
        """How many records of an object carried a modified-at value that does not parse."""
        self.conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                          (f"unreadable_modified:{source_object}", str(n)))

    def unreadable_modified(self) -> dict[str, int]:
        return {k.split(":", 1)[1]: int(v) for k, v in self.conn.execute(
            "SELECT k, v FROM meta WHERE k LIKE 'unreadable_modified:%' ORDER BY k")}

    def add_merge_child(self, step: str, group_key: str, child: Any) -> None:
        self.conn.execute("INSERT INTO merge_children VALUES (?,?,?,?)",
                          (step, group_key, self._next("merge:" + step),
                           pickle.dumps(child, protocol=5)))

    def add_owner(self, email: str) -> None:
        self.conn.execute(
            "INSERT INTO owners VALUES (?, 1) ON CONFLICT(email) DO UPDATE SET n = n + 1",
            (email,),
        )

    # ---- reading
    def records(self, step: str, status: str | None = None, batch: int = 500) -> Iterator[StagedRecord]:
        last = 0
        while True:
            q = ("SELECT step, seq, source_key, status, detail, field, location, value, payload, "
                 "source_object, root_key FROM staged WHERE step = ? AND seq > ?")
            args: list[Any] = [step, last]
            if status is not None:
                q += " AND status = ?"
                args.append(status)
            rows = self.conn.execute(q + " ORDER BY seq LIMIT ?", (*args, batch)).fetchall()
            if not rows:
                return
            for r in rows:
                yield StagedRecord(r)
            last = rows[-1][1]

    def merge_groups(self, step: str) -> Iterator[tuple[str, list[Any]]]:
        current: str | None = None
        group: list[Any] = []
        for key, child in self.conn.execute(
            "SELECT group_key, child FROM merge_children WHERE step = ? ORDER BY group_key, seq",
            (step,),
        ):
            if key != current and current is not None:
                yield current, group
                group = []
            current = key
            group.append(pickle.loads(child))
        if current is not None:
            yield current, group

    def count(self, step: str) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM staged WHERE step = ?", (step,)).fetchone()[0]

    def owner_emails(self) -> dict[str, int]:
        return dict(self.conn.execute("SELECT email, n FROM owners ORDER BY email"))
