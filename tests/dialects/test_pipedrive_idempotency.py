"""The pieces that let a new Pipedrive client find writes an earlier process made: the note
marker line (written, read back without it, kept on update, left out when it would overflow the
content limit), the on-disk sent log, and lookups by a client that never sent the record (notes
by marker without the parent, files by parent/name/size from the log, products by the mapping's
own external-id value)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.destinations.base import User, WriteItem
from runtime.dialects import get_dialect
from runtime.dialects.pipedrive import open_sandbox
from runtime.dialects.pipedrive.client import note_marker, strip_note_marker
from runtime.dialects.pipedrive.sentlog import Sent, SentLog
from runtime.schema.changes import apply_changes

USERS = [User("21000001", "pm@example.com", "Practice Manager")]
CHANGES = [
    {"action": "create_field", "object": "Person", "field": "Source_System_ID",
     "type": "text(50)", "details": {"external_id": True}},
    {"action": "create_field", "object": "Product", "field": "Source_System_ID",
     "type": "text(50)", "details": {"external_id": True}},
    {"action": "create_field", "object": "Activity", "field": "Source_System_ID",
     "type": "text(50)", "details": {"external_id": True}},
]


def _open(tmp_path: Path, **opts):
    schema = apply_changes(get_dialect("pipedrive").standard_schema(), CHANGES)
    return open_sandbox(schema, tmp_path / "org.sqlite", USERS, {"clock": "virtual", **opts})


def test_marker_round_trip_and_exact_match():
    content = "Clinical note\n\nline [fmap-ref not-at-the-end] text"
    marked = content + note_marker("clinical_notes:12 #3/ü")
    assert strip_note_marker(marked) == (content, "clinical_notes:12 #3/ü")
    assert strip_note_marker(content) == (content, None)
    assert strip_note_marker(marked + "<br/>") == (content, "clinical_notes:12 #3/ü")
    assert strip_note_marker(None) == (None, None)
    # a marker is one exact id: a prefix of another id does not match it
    assert strip_note_marker("x" + note_marker("n:1"))[1] != "n:12"


def test_note_carries_its_marker_and_reads_back_without_it(tmp_path):
    c = _open(tmp_path)
    try:
        pid = c.create("Person", [WriteItem("p:1", "p:1", {"name": "Ann"})])[0].dest_id
        nid = c.create("Note", [WriteItem("n:1", "n:1", {"content": "hello",
                                                          "person_id": pid})])[0].dest_id
        raw = c.sandbox.store.get("Note", [nid])[nid]
        assert raw["content"] == "hello" + note_marker("n:1")
        rec = c.get("Note", [nid])[nid]
        assert rec["content"] == "hello" and rec["$external_id"] == "n:1"
        c.update("Note", [WriteItem("n:1", None, {"content": "changed"}, nid)])
        assert c.sandbox.store.get("Note", [nid])[nid]["content"] == \
            "changed" + note_marker("n:1")
        # content at the limit: no room for the marker, the note is still written as is
        full = "x" * 100_000
        big = c.create("Note", [WriteItem("n:2", "n:2", {"content": full,
                                                          "person_id": pid})])[0]
        assert big.ok
        assert c.sandbox.store.get("Note", [big.dest_id])[big.dest_id]["content"] == full
    finally:
        c.close()


def test_a_new_client_finds_notes_files_and_own_values(tmp_path):
    """Everything written by one client; a second client on the same org and sent log (a
    restarted process) finds each record by the executor's external id."""
    f = tmp_path / "scan.pdf"
    f.write_bytes(b"%PDF-1.4 scan")
    first = _open(tmp_path)
    try:
        pid = first.create("Person", [WriteItem("p:1", "p:1", {"name": "Ann"})])[0].dest_id
        nid = first.create("Note", [WriteItem("n:1", "n:1", {"content": "hi",
                                                              "person_id": pid})])[0].dest_id
        up = first.upload_attachment("Person", pid, "scan.pdf", f, "File:d1")
        prod = first.create("Product", [WriteItem("Product:SKU-1", "Product:SKU-1", {
            "name": "Floss", "Source_System_ID": "77"})])[0].dest_id
    finally:
        first.close()
    second = _open(tmp_path)
    try:
        assert second.find_by_external_id("Note", ["n:1", "n:9"]) == {"n:1": nid}
        assert second.find_by_external_id("File", ["File:d1"]) == {"File:d1": up.dest_id}
        assert second.find_by_external_id("Product", ["Product:SKU-1"]) == \
            {"Product:SKU-1": prod}
        # a re-upload after the resume finds the file instead of attaching it twice
        again = second.upload_attachment("Person", pid, "scan.pdf", f, "File:d1")
        assert again.ok and again.created is False and again.dest_id == up.dest_id
        assert len(second.list_records("File")) == 1
    finally:
        second.close()
    third = _open(tmp_path, sent_log="off")  # no log: the marker alone still finds the note
    try:
        assert third.find_by_external_id("Note", ["n:1"]) == {"n:1": nid}
        assert third.find_by_external_id("Product", ["Product:SKU-1"]) == {}
    finally:
        third.close()


def test_sent_log_keeps_the_first_send_time(tmp_path):
    log = SentLog(tmp_path / "sent.db")
    log.record("Activity", "a:1", Sent(100.0, own="1"))
    log.record("Activity", "a:1", Sent(250.0, own="1"))
    assert log.get("Activity", "a:1") == Sent(100.0, own="1")
    assert log.get("Activity", "a:2") is None
    log.close()
    reopened = SentLog(tmp_path / "sent.db")
    assert reopened.get("Activity", "a:1").sent_at == 100.0
    reopened.close()


@pytest.mark.parametrize("hint", [{"sent_at": "2020-01-01T00:00:00+00:00"}, {}])
def test_activity_scan_window_from_hints(tmp_path, hint):
    """A resumed run that passes the journal's ``sent_at`` narrows the activity scan to that
    window (``updated_since``); without it the scan covers every activity."""
    c = _open(tmp_path, sent_log="off")
    try:
        seen = []
        orig = c._request

        def spy(method, version, path, **kw):
            if path == "/activities":
                seen.append((kw.get("params") or {}).get("updated_since"))
            return orig(method, version, path, **kw)

        c._request = spy
        c.find_by_external_id("Activity", ["a:1"], hints={"a:1": hint} if hint else None)
        assert seen == (["2019-12-31T23:50:00Z"] if hint else [None])
    finally:
        c.close()
