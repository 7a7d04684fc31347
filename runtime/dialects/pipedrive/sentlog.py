"""The Pipedrive client's own write-ahead note of what it sent, kept on disk.

Pipedrive has no idempotency key and no upsert: after a process dies with a write in flight, the
next process must find out whether the record exists before sending it again. The record itself
carries what identifies it (the external-id custom field, a note's marker line, a file's parent,
name and size), but three things the lookup needs are only known at send time: the value the
mapping wrote into the external-id field when it is not the executor's external id (a product keyed
by SKU whose ``Source_System_ID`` is the source id), the parent a note or file was sent to (so its
notes/files are listed instead of the company's), and when it was sent (so a scan of an object
without a search endpoint starts there). The executor passes the journal's send time and payload as
``hints`` (the ``find_hints`` capability), which covers a run resumed from the state store; this
log keeps the rest, committed before the request goes out, so it survives a SIGKILL even when the
journal cannot say (a run started without the state file, another client). It holds ids, times and
sizes only: no field values beyond the external-id value (no PHI: note content is never stored).
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SentLog", "Sent"]


@dataclass(frozen=True)
class Sent:
    sent_at: float
    own: str | None = None  # the external-id field's value when it differs from the ext id
    link: str | None = None  # person_id, org_id, deal_id... of a note or file
    parent: str | None = None
    name: str | None = None  # a file's name
    size: int | None = None  # a file's size


class SentLog:
    """``(object, external id) -> Sent`` in a small SQLite file (WAL; a row per send)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # a process kill loses nothing committed
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS sent (obj TEXT NOT NULL, ext TEXT NOT NULL, "
            "sent_at REAL NOT NULL, own TEXT, link TEXT, parent TEXT, name TEXT, size INTEGER, "
            "PRIMARY KEY (obj, ext))")

    def record(self, obj: str, ext: str, sent: Sent) -> None:
        """Before a send. A re-send keeps the first time (the window must cover every try)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO sent VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (obj, ext) DO UPDATE SET "
                "own=excluded.own, link=excluded.link, parent=excluded.parent, "
                "name=excluded.name, size=excluded.size, sent_at=min(sent_at, excluded.sent_at)",
                (obj, ext, sent.sent_at, sent.own, sent.link, sent.parent, sent.name, sent.size))

    def get(self, obj: str, ext: str) -> Sent | None:
        with self._lock:
            row = self._db.execute(
                "SELECT sent_at, own, link, parent, name, size FROM sent WHERE obj=? AND ext=?",
                (obj, ext)).fetchone()
        return Sent(*row) if row else None

    def close(self) -> None:
        with self._lock:
            self._db.close()
