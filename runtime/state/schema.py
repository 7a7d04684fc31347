"""The state file's SQL schema, versioned.

``schema_version`` holds one row with the version. ``MIGRATIONS`` is an ordered list of
``(version, function)``; opening a state file applies, in one ``BEGIN IMMEDIATE`` transaction, every
migration newer than the file's version, so old state files upgrade in place (and a failed upgrade
leaves the file as it was). Never edit a released migration: add the next one.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

__all__ = ["MIGRATIONS", "LATEST_VERSION", "current_version", "migrate", "StateError"]


class StateError(Exception):
    """A state-store misuse or an unreadable state file (message has no record values)."""


_V1 = [
    """CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        migration TEXT NOT NULL,
        fmap_path TEXT,
        source_sha256 TEXT,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT NOT NULL
            CHECK (status IN ('running','completed','failed','stopped','rolled_back')),
        options TEXT NOT NULL DEFAULT '{}',
        counts TEXT
    )""",
    """CREATE TABLE ops (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id INTEGER NOT NULL REFERENCES runs(id),
        map TEXT NOT NULL,
        target_object TEXT NOT NULL,
        source_object TEXT,
        source_key TEXT,
        external_id TEXT,
        op TEXT NOT NULL CHECK (op IN ('create','update','upsert','delete','restore')),
        state TEXT NOT NULL CHECK (state IN ('planned','sent','confirmed','failed','unknown')),
        destination_id TEXT,
        request_hash TEXT,
        before_image TEXT,
        error TEXT,
        planned_at TEXT NOT NULL,
        sent_at TEXT,
        finished_at TEXT
    )""",
    "CREATE INDEX ops_run_state ON ops(run_id, state)",
    "CREATE INDEX ops_map_key ON ops(map, source_key)",
    """CREATE TABLE id_map (
        map TEXT NOT NULL,
        source_key TEXT NOT NULL,
        destination_id TEXT NOT NULL,
        target_object TEXT,
        external_id TEXT,
        run_id INTEGER,
        created INTEGER NOT NULL DEFAULT 0,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (map, source_key)
    ) WITHOUT ROWID""",
    """CREATE TABLE quarantine (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id INTEGER NOT NULL REFERENCES runs(id),
        source_object TEXT,
        source_key TEXT,
        map TEXT,
        field TEXT,
        value TEXT,
        rule TEXT,
        location TEXT,
        reason TEXT NOT NULL,
        created_at TEXT NOT NULL
    )""",
    "CREATE INDEX quarantine_run ON quarantine(run_id)",
    """CREATE TABLE outcomes (
        run_id INTEGER NOT NULL REFERENCES runs(id),
        map TEXT NOT NULL,
        source_key TEXT NOT NULL,
        source_object TEXT,
        outcome TEXT NOT NULL CHECK (outcome IN ('loaded','skipped','quarantined','failed')),
        detail TEXT,
        recorded_at TEXT NOT NULL,
        PRIMARY KEY (run_id, map, source_key),
        CHECK (outcome != 'loaded' OR detail IN ('created','updated','unchanged'))
    ) WITHOUT ROWID""",
    """CREATE TABLE watermarks (
        source_object TEXT PRIMARY KEY,
        modified_at TEXT NOT NULL,
        tie_keys TEXT NOT NULL DEFAULT '[]',
        run_id INTEGER,
        updated_at TEXT NOT NULL
    )""",
]

_V2 = [
    # how many source records each map saw in a run, so counts() can show records still pending
    """CREATE TABLE extracted (
        run_id INTEGER NOT NULL REFERENCES runs(id),
        map TEXT NOT NULL,
        n INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (run_id, map)
    ) WITHOUT ROWID""",
    # re-sends after a lookup proved the record absent
    "ALTER TABLE ops ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1",
    # resume looks ops up by external id
    "CREATE INDEX ops_external ON ops(external_id)",
]

_V3 = [
    # what each op wrote (canonical JSON of the field values sent), for rollback's conflict check
    # and reconciliation's spot check; NULL when the writer did not say (older journals)
    "ALTER TABLE ops ADD COLUMN written TEXT",
    # whether the confirmed op created the destination record (create: 1; upsert: the
    # destination's answer; NULL when unknown)
    "ALTER TABLE ops ADD COLUMN created INTEGER",
    # the rollback op (delete/restore) that undid this op
    "ALTER TABLE ops ADD COLUMN undone_by INTEGER",
    "CREATE INDEX ops_destination ON ops(target_object, destination_id)",
]


def _v4(conn: sqlite3.Connection) -> None:
    """Watermark tie keys move from one JSON list per source object (read whole into memory by
    every delta run: a bulk import that stamped every row alike put every key in it) to a table of
    their own, one row a key, looked up by index. Each old list is read once, here."""
    conn.execute("""CREATE TABLE watermark_keys (
        source_object TEXT NOT NULL,
        key TEXT NOT NULL,
        PRIMARY KEY (source_object, key)
    ) WITHOUT ROWID""")
    for obj, tie_keys in conn.execute("SELECT source_object, tie_keys FROM watermarks").fetchall():
        try:
            keys = json.loads(tie_keys or "[]")
        except ValueError:
            keys = []  # an unreadable list: those records are read again, never skipped wrongly
        conn.executemany("INSERT OR IGNORE INTO watermark_keys VALUES (?, ?)",
                         ((obj, str(k)) for k in keys if k is not None))
    # rebuilt without the column (ALTER TABLE ... DROP COLUMN needs SQLite 3.35)
    conn.execute("""CREATE TABLE watermarks_v4 (
        source_object TEXT PRIMARY KEY,
        modified_at TEXT NOT NULL,
        run_id INTEGER,
        updated_at TEXT NOT NULL
    )""")
    conn.execute("INSERT INTO watermarks_v4 SELECT source_object, modified_at, run_id, updated_at "
                 "FROM watermarks")
    conn.execute("DROP TABLE watermarks")
    conn.execute("ALTER TABLE watermarks_v4 RENAME TO watermarks")


def _run(statements: list[str]) -> Callable[[sqlite3.Connection], None]:
    def apply(conn: sqlite3.Connection) -> None:
        for stmt in statements:
            conn.execute(stmt)

    return apply


MIGRATIONS: list[tuple[int, Callable[[sqlite3.Connection], None]]] = [
    (1, _run(_V1)),
    (2, _run(_V2)),
    (3, _run(_V3)),
    (4, _v4),
]
LATEST_VERSION = MIGRATIONS[-1][0]


def current_version(conn: sqlite3.Connection) -> int:
    row = conn.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND name='schema_version'"
    ).fetchone()
    if row is None:
        return 0
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(conn: sqlite3.Connection, *, upto: int | None = None) -> int:
    """Bring the file to ``upto`` (default: the latest version); returns the resulting version.
    ``conn`` must be in autocommit mode (``isolation_level=None``)."""
    target = LATEST_VERSION if upto is None else upto
    if current_version(conn) == target:
        return target  # up to date: no write lock taken (readers open alongside a running writer)
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = current_version(conn)
        if version > LATEST_VERSION:
            raise StateError(
                f"state file has schema version {version}, newer than this fmap supports "
                f"({LATEST_VERSION}); upgrade fmap"
            )
        if version == 0:
            conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            conn.execute("INSERT INTO schema_version (version) VALUES (0)")
        for number, apply in MIGRATIONS:
            if version < number <= target:
                apply(conn)
                conn.execute("UPDATE schema_version SET version = ?", (number,))
                version = number
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return version
