"""`fmap schema pull` of an object the vendor's API has no field metadata for (Pipedrive's files):
a note on stderr and the other objects written, not "the org has no File"; notes and leads are
pulled (v1 ``noteFields``/``leadFields``); and the Pipedrive ``scan_limit`` option reaches the
client (a restart's search for a lost create)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from fmap.cli import app
from runtime.dialects import get_dialect
from runtime.dialects.pipedrive import open_sandbox


def test_pull_notes_objects_without_field_metadata(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "snap.json"
    res = CliRunner().invoke(app, ["schema", "pull", f"sandbox:pipedrive?db={tmp_path / 'o.db'}",
                                   "-m", "Person", "-m", "Note", "-m", "File", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "has no field metadata for File" in res.output
    assert "for Note" not in res.output and "the org has no" not in res.output
    bundle = json.loads(out.read_text())
    assert bundle["no_field_metadata"] == ["File"]
    schema = get_dialect("pipedrive").load_metadata(bundle, source_name="snap")
    assert schema.object("Person") is not None and schema.object("Person").fields
    note = schema.object("Note")
    assert note is not None and note.field("content").required


def test_pull_of_an_unknown_object_still_fails(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["schema", "pull", f"sandbox:pipedrive?db={tmp_path / 'o.db'}",
                                   "-m", "Person", "-m", "Patient", "-o", str(tmp_path / "s.json")])
    assert res.exit_code == 1 and "the org has no Patient" in res.output


def test_scan_limit_option_reaches_the_client(tmp_path):
    schema = get_dialect("pipedrive").standard_schema()
    dest = open_sandbox(schema, tmp_path / "a.db", None, {"scan_limit": "50"})
    try:
        assert dest.scan_limit == 50
    finally:
        dest.close()
    dest = open_sandbox(schema, tmp_path / "b.db", None, {})
    try:
        assert dest.scan_limit == 20_000
    finally:
        dest.close()
