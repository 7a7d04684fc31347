"""The two Zoho seed migrations: mappings/aeronaclinic_to_zoho.fmap and clinic_mgmt_to_zoho.fmap.

- both pass `fmap check --strict` (no errors, no warnings) and their own `test` blocks;
- their generated modules are snapshotted (as real .py files under __snapshots__/);
- end to end on a generated export of 500 patients into the in-process Zoho sandbox: every map
  loads, counts add up and reconciliation explains them, lookups and owners resolve in the
  sandbox, original timestamps are kept, long notes are split, over-limit attachments are
  quarantined before anything is sent, not-migrated items are in the plan, a delta run after
  source edits updates without duplicates, and rollback restores the store.

The source is opened *with* its source schema (object keys such as `procedures.code` and
`patients.modified_date` come from it); `fmap run` currently opens it without (see the seeds docs).
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

from compiler.check import check_path
from compiler.compile import compile_path
from runtime.executor import LoadOptions, RunOptions, run_migration
from runtime.operations import reconcile_run
from runtime.operations.rollback import rollback_run
from runtime.schema.io import load_schema
from runtime.sources import open_source
from runtime.state import StateStore
from runtime.targets import open_target
from tests.compiled import compile_and_load
from tests.mappings.samplegen import gen

ROOT = Path(__file__).resolve().parents[2]
MAPPINGS = ROOT / "mappings"
USERS = MAPPINGS / "sandbox" / "zoho_users.json"
PATIENTS = 500
SEED = 42  # the sandbox users file lists the practitioners/providers generated for seed 42

# pair -> (system, format, source schema file, fallback owner)
PAIRS = {
    "aeronaclinic_to_zoho": ("aeronaclinic", "api", "aeronaclinic_api.yaml",
                             "practice.manager@harbourdental.example"),
    "clinic_mgmt_to_zoho": ("clinic_mgmt", "csv", "clinic_mgmt_csv.yaml",
                            "practice.manager@riversidefm.example"),
}


class PySnapshot(SingleFileSnapshotExtension):
    file_extension = "py"
    _file_extension = "py"  # syrupy < 5
    _write_mode = WriteMode.TEXT


@pytest.fixture
def py_snapshot(snapshot):
    return snapshot.use_extension(PySnapshot)


# ------------------------------------------------------------------------------ compile time

@pytest.mark.parametrize("pair", sorted(PAIRS))
def test_check_strict_is_clean(pair):
    r = check_path(MAPPINGS / f"{pair}.fmap")
    assert [(d.code, d.message) for d in r.diagnostics] == []
    assert r.errors == 0 and r.warnings == 0


@pytest.mark.parametrize("pair", sorted(PAIRS))
def test_generated_module_snapshot(pair, py_snapshot, monkeypatch):
    monkeypatch.chdir(ROOT)  # the header names the .fmap by the path it was compiled from
    result = compile_path(Path("mappings") / f"{pair}.fmap")
    assert result.ok, result.diagnostics
    assert result.python == py_snapshot


@pytest.mark.parametrize("pair", sorted(PAIRS))
def test_fmap_test_blocks_pass(pair):
    from typer.testing import CliRunner

    from fmap.cli import app

    out = CliRunner().invoke(app, ["test", str(MAPPINGS / f"{pair}.fmap")])
    assert out.exit_code == 0, out.output
    assert re.search(r"(\d+) test\(s\): \1 passed, 0 failed", out.output), out.output


def test_canonical_layout():
    from typer.testing import CliRunner

    from fmap.cli import app

    files = [str(MAPPINGS / f"{p}.fmap") for p in sorted(PAIRS)] + [str(MAPPINGS / "common.fmap")]
    out = CliRunner().invoke(app, ["fmt", "--check", *files])
    assert out.exit_code == 0, out.output


@pytest.mark.parametrize("pair", sorted(PAIRS))
def test_target_snapshot_matches_declarations(pair):
    """mappings/schemas/targets/<pair>.json holds every custom module and field the .fmap declares."""
    snap = load_schema(MAPPINGS / "schemas" / "targets" / f"{pair}.json")
    text = (MAPPINGS / f"{pair}.fmap").read_text("utf-8")
    for _kind, obj, body in re.findall(r"^(create module|extend) (\w+)[^{]*\{(.*?)^\}", text,
                                      re.M | re.S):
        o = snap.object(obj)
        assert o is not None, obj
        for name in re.findall(r"^\s+(\w+)\s", body, re.M):
            assert o.field(name) is not None, f"{obj}.{name}"
        assert o.field("Source_System_ID") is not None and o.field("Source_System_ID").external_id


def test_sandbox_users_leave_the_unmatched_practitioners_out():
    emails = {u["email"] for u in json.loads(USERS.read_text("utf-8"))}
    assert {PAIRS[p][3] for p in PAIRS} <= emails
    assert not {"locum@harbourdental.example", "locum.hygiene@harbourdental.example",
                "locum@riversidefm.example"} & emails


# ------------------------------------------------------------------------------ end to end

class Pair:
    """One pair compiled, its export generated, and a state store + sandbox to run it into."""

    def __init__(self, pair: str, tmp: Path) -> None:
        self.name = pair
        system, fmt, schema_file, self.fallback = PAIRS[pair]
        self.tmp = tmp
        self.src = gen.generate(system, fmt, PATIENTS, SEED, tmp / "export", big_files="sparse")
        self.source_schema = load_schema(MAPPINGS / "schemas" / schema_file)
        self.module = compile_and_load(MAPPINGS / f"{pair}.fmap", tmp)
        self.plan = self.module.PLAN
        self.store = StateStore(tmp / "state.sqlite")
        self.dest = open_target(f"sandbox:zoho?db={tmp / 'sandbox.sqlite'}&users={USERS}",
                                schema_changes=list(self.plan.schema_changes), state_dir=tmp)

    def run(self, **kw):
        source = open_source(str(self.src), schema=self.source_schema)
        try:
            return run_migration(self.module, source, self.dest, self.store, self.tmp / "stage",
                                 source_id=str(self.src),
                                 options=RunOptions(load=LoadOptions(files_root=self.src, sleep=lambda s: None),
                                                    **kw))
        finally:
            source.close()

    def snapshot(self) -> dict:
        return self.dest.sandbox.store.snapshot()

    def close(self) -> None:
        self.dest.close()
        self.store.close()


def _by_external(snap: dict, obj: str) -> dict[str, dict]:
    return {r["external_id"]: r for r in snap["objects"].get(obj, {}).values()}


def _check_counts(result) -> None:
    assert result.status == "completed", result.message
    for name, c in result.counts.items():
        done = sum(c.get(k, 0) for k in ("created", "updated", "unchanged", "skipped",
                                          "quarantined", "failed"))
        assert done == c["extracted"], (name, c)
        assert c["failed"] == 0, (name, c)
        if name.endswith("->Billing_Records") or name.endswith("->Contacts"):
            assert c["updated"] > 0, (name, c)  # merges update their parent
        else:
            assert c["created"] > 0, (name, c)


def _check_quarantine_reasons(p: Pair, run_id: int) -> None:
    """The dirt ends quarantined or skipped with a reason, never failed."""
    rows = p.store.conn.execute(
        "SELECT map, reason FROM quarantine WHERE run_id = ?", (run_id,)).fetchall()
    assert rows
    allowed = ("Date_of_Birth", "value not in value map", "over the 25 MB limit")
    for m, reason in rows:
        assert reason and any(a in reason for a in allowed), (m, reason)
    skipped = p.store.conn.execute(
        "SELECT map, detail FROM outcomes WHERE run_id = ? AND outcome = 'skipped'",
        (run_id,)).fetchall()
    assert all(d for _, d in skipped)


def _check_oversize_attachments(p: Pair, run_id: int, docs: list[dict], size_key: str,
                                id_key: str) -> None:
    big = {str(d[id_key]) for d in docs if int(d[size_key] or 0) > 25 * 1024 * 1024}
    assert big, "the generated export has over-limit documents"
    q = dict(p.store.conn.execute(
        "SELECT source_key, reason FROM quarantine WHERE run_id = ? AND map = 'Attachments'",
        (run_id,)).fetchall())
    loaded_parent = {k for k in big if k in q}
    assert loaded_parent, q
    for k in loaded_parent:
        assert re.search(r"attachment is [\d.]+ MB, over the 25 MB limit", q[k]), q[k]
    marks = ",".join("?" * len(big))
    sent = p.store.conn.execute(
        f"SELECT source_key FROM ops WHERE map = 'Attachments' AND source_key IN ({marks})",
        sorted(big)).fetchall()
    assert sent == []  # never sent


def _check_refs_and_owners(p: Pair, snap: dict, lookups: list[tuple[str, str, tuple[str, ...]]]
                           ) -> None:
    ids = {obj: set(recs) for obj, recs in snap["objects"].items()}
    for obj, field, targets in lookups:
        values = [r["fields"].get(field) for r in snap["objects"][obj].values()]
        linked = [v for v in values if v]
        assert linked, (obj, field)
        pool = set().union(*(ids.get(t, set()) for t in targets))
        assert all(v in pool for v in linked), (obj, field)
    users = {u["email"]: u["id"] for u in json.loads(USERS.read_text("utf-8"))}
    owners = Counter(r["fields"].get("Owner") for recs in snap["objects"].values()
                     for r in recs.values() if r["fields"].get("Owner"))
    assert set(owners) <= set(users.values())
    assert owners[users[p.fallback]] > 0  # unmatched practitioners fell back to the manager


def _check_split_notes(snap: dict, long_note_ids: list[str]) -> None:
    notes = _by_external(snap, "Notes")
    assert long_note_ids
    found = 0
    for nid in long_note_ids:
        parts = sorted((k for k in notes if k.startswith(f"Notes:{nid}#")),
                       key=lambda k: int(k.rsplit("#", 1)[1]))
        if not parts:
            continue  # its patient was not loaded (quarantined/skipped)
        found += 1
        assert len(parts) >= 2
        for n, k in enumerate(parts, 1):
            content = notes[k]["fields"]["Note_Content"]
            assert len(content) <= 32000
            assert content.startswith(f"({n}/{len(parts)}) ")
    assert found


def _check_reconciliation(p: Pair, run_id: int) -> None:
    rec = reconcile_run(p.store, p.dest, run_id, plan=p.plan)
    by_obj = {o.target_object: o for o in rec.objects}
    for o in rec.objects:
        not_loaded = o.source - sum(o.outcomes.get(k, 0) for k in ("created", "updated",
                                                                      "unchanged"))
        if not_loaded > 0:
            assert o.reasons, o.target_object  # every record that did not load has its reason
        assert o.flags == [], (o.target_object, o.flags)
        assert o.missing_in_destination == []
    assert by_obj["Contacts"].ours_in_destination == by_obj["Contacts"].outcomes.get("created")


def _delta_and_rollback(p: Pair, run1, edit) -> None:
    before = p.snapshot()
    counts_before = {o: len(r) for o, r in before["objects"].items()}
    ext_id, field, new_value = edit()
    run2 = p.run(delta=True)
    assert run2.status == "completed", run2.message
    created = sum(c["created"] for c in run2.counts.values())
    updated = sum(c["updated"] for c in run2.counts.values())
    assert created == 0 and updated >= 1, run2.counts
    after = p.snapshot()
    assert {o: len(r) for o, r in after["objects"].items()} == counts_before  # no duplicates
    obj = ext_id.split(":", 1)[0]
    assert _by_external(after, obj)[ext_id]["fields"][field] == new_value
    # rollback of the delta run restores the store as it was after the first run
    rollback_run(p.store, p.dest, run2.run_id)
    assert p.snapshot() == before
    # (rolling back the whole first run works too, but journals each of its ~8,000 deletes in
    # its own synchronous transaction: about two minutes here, so it is not part of this test)


def test_aeronaclinic_to_zoho_end_to_end(tmp_path):
    p = Pair("aeronaclinic_to_zoho", tmp_path)
    try:
        patients = json.loads((p.src / "patients.json").read_text("utf-8"))
        assert len(patients) == PATIENTS
        run1 = p.run()
        _check_counts(run1)
        _check_quarantine_reasons(p, run1.run_id)
        snap = p.snapshot()
        _check_refs_and_owners(p, snap, [
            ("Contacts", "Account_Name", ("Accounts",)),
            ("Events", "Who_Id", ("Contacts",)),
            ("Events", "What_Id", ("Accounts",)),
            ("Patient_Details", "Contact", ("Contacts",)),
            ("Treatments", "Treatment_Plan", ("Treatment_Plans",)),
            ("Treatments", "Procedure", ("Products",)),
            ("Billing_Lines", "Billing_Record", ("Billing_Records",)),
            ("Billing_Lines", "Product", ("Products",)),
            ("Notes", "Parent_Id", ("Contacts", "Leads")),
            ("Tasks", "Who_Id", ("Contacts",)),
            ("Insurance", "Contact", ("Contacts",)),
        ])
        # original timestamps preserved
        contacts = _by_external(snap, "Contacts")
        leads = _by_external(snap, "Leads")
        checked = 0
        for pt in patients[:100]:
            rec = contacts.get(f"Contacts:{pt['id']}") or leads.get(f"Leads:{pt['id']}")
            if rec is None:
                continue
            got = datetime.fromisoformat(rec["fields"]["Original_Created_Time"])
            assert got == datetime.fromisoformat(pt["created_at"])
            checked += 1
        assert checked > 50
        # routing: every Lead is a referral prospect without appointments
        by_id = {str(pt["id"]): pt for pt in patients}
        for ext in leads:
            pt = by_id[ext.split(":", 1)[1]]
            assert pt["status"] in ("Prospect", "Referral Inquiry") and not pt["appointments"]
        # DNA -> No Show
        assert any(r["fields"].get("Appointment_Status") == "No Show"
                   for r in snap["objects"]["Events"].values())
        long_notes = [str(n["id"]) for pt in patients for n in pt["clinical_notes"]
                      if len(n.get("body") or "") > 33000]
        _check_split_notes(snap, long_notes)
        docs = [d for pt in patients for d in pt["documents"]]
        _check_oversize_attachments(p, run1.run_id, docs, "size_bytes", "id")
        assert "workflows" in dict(p.plan.not_migrated)
        _check_reconciliation(p, run1.run_id)

        def edit():
            pt = next(x for x in patients
                      if f"Contacts:{x['id']}" in contacts and x["last_name"].strip())
            pt["last_name"] = "Renamed"
            pt["updated_at"] = "2025-07-01T10:00:00+01:00"
            (p.src / "patients.json").write_text(json.dumps(patients), "utf-8")
            return f"Contacts:{pt['id']}", "Last_Name", "Renamed"

        _delta_and_rollback(p, run1, edit)
    finally:
        p.close()


def _read_csv(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_clinic_mgmt_to_zoho_end_to_end(tmp_path):
    p = Pair("clinic_mgmt_to_zoho", tmp_path)
    try:
        patients = _read_csv(p.src / "patients.csv")
        assert len(patients) == PATIENTS
        run1 = p.run()
        _check_counts(run1)
        _check_quarantine_reasons(p, run1.run_id)
        snap = p.snapshot()
        _check_refs_and_owners(p, snap, [
            ("Contacts", "Account_Name", ("Accounts",)),
            ("Events", "Who_Id", ("Contacts",)),
            ("Events", "What_Id", ("Accounts",)),
            ("Insurance_C", "Contact", ("Contacts",)),
            ("Billing_History_C", "Contact", ("Contacts",)),
            ("Billing_History_C", "Visit", ("Events",)),
            ("Treatment_C", "Visit", ("Events",)),
            ("Treatment_C", "Claim", ("Billing_History_C",)),
            ("Program_Enrollments_C", "Program", ("Programs_C",)),
            ("Program_Enrollments_C", "Contact", ("Contacts",)),
            ("Notes", "Parent_Id", ("Contacts", "Leads")),
        ])
        contacts = _by_external(snap, "Contacts")
        leads = _by_external(snap, "Leads")
        checked = 0
        for pt in patients[:100]:
            rec = contacts.get(f"Contacts:{pt['patient_id']}") or leads.get(f"Leads:{pt['patient_id']}")
            if rec is None:
                continue
            got = datetime.fromisoformat(rec["fields"]["Original_Created_Time"])
            local = datetime.strptime(pt["created_date"], "%m/%d/%Y %I:%M %p")
            from zoneinfo import ZoneInfo
            assert got == local.replace(tzinfo=ZoneInfo("America/New_York"))
            checked += 1
        assert checked > 50
        for ext in leads:
            pt = next(x for x in patients if x["patient_id"] == ext.split(":", 1)[1])
            assert pt["status"] in ("Prospect", "Referral Inquiry")
        # custom field values pivoted onto the Contacts' custom fields
        assert any(r["fields"].get("Employer") for r in contacts.values())
        assert any(r["fields"].get("Risk_Tier") in ("Low", "Medium", "High") for r in contacts.values())
        # referral sources typed loosely still find their Lead Source
        assert Counter(r["fields"].get("Lead_Source") for r in contacts.values()
                       if r["fields"].get("Lead_Source"))
        notes = _read_csv(p.src / "clinical_notes.csv")
        long_notes = [n["note_id"] for n in notes if len(n["body_html"]) > 33000]
        _check_split_notes(snap, long_notes)
        docs = _read_csv(p.src / "documents.csv")
        _check_oversize_attachments(p, run1.run_id, docs, "size_bytes", "document_id")
        assert "workflows" in dict(p.plan.not_migrated)
        _check_reconciliation(p, run1.run_id)

        def edit():
            path = p.src / "patients.csv"
            with path.open(newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh)
                fields, rows = reader.fieldnames, list(reader)
            row = next(r for r in rows if f"Contacts:{r['patient_id']}" in contacts)
            row["last_name"] = "Renamed"
            # the latest date both in time and as text: the delta watermark compares
            # non-ISO timestamps as strings (see test_delta_watermark_reads_us_timestamps)
            row["modified_date"] = "12/31/2025 11:59 PM"
            with path.open("w", newline="", encoding="utf-8") as fh:
                w = csv.DictWriter(fh, fieldnames=fields, lineterminator="\r\n")
                w.writeheader()
                w.writerows(rows)
            return f"Contacts:{row['patient_id']}", "Last_Name", "Renamed"

        _delta_and_rollback(p, run1, edit)
    finally:
        p.close()


@pytest.mark.parametrize("pair", sorted(PAIRS))
def test_attachments_reach_the_sandbox(pair, tmp_path):
    p = Pair.__new__(Pair)
    p.name, p.tmp = pair, tmp_path
    system, fmt, schema_file, p.fallback = PAIRS[pair]
    p.src = MAPPINGS / "samples" / ("aeronaclinic_api" if system == "aeronaclinic" else "clinic_mgmt_csv")
    p.source_schema = load_schema(MAPPINGS / "schemas" / schema_file)
    p.module = compile_and_load(MAPPINGS / f"{pair}.fmap", tmp_path)
    p.plan = p.module.PLAN
    p.store = StateStore(tmp_path / "state.sqlite")
    p.dest = open_target(f"sandbox:zoho?db={tmp_path / 'sandbox.sqlite'}&users={USERS}",
                         schema_changes=list(p.plan.schema_changes), state_dir=tmp_path)
    try:
        run = p.run()
        assert run.counts["Attachments"]["created"] > 0
        snap = p.snapshot()
        uploaded = sum(len(r["attachments"]) for recs in snap["objects"].values()
                       for r in recs.values())
        assert uploaded == run.counts["Attachments"]["created"]
    finally:
        p.close()


def test_delta_watermark_reads_us_timestamps():
    """Clinic Management's modified_date is "MM/DD/YYYY hh:mm AM" New York time (the schema's
    vendor date_format/tz): the source reads it as instants, so 07/01/2025 is after 12/30/2024
    (as text it is before), and a value in another shape is never ordered as text."""
    from runtime.sources import open_source
    from runtime.sources.base import modified_since

    source = open_source(f"csv:{MAPPINGS / 'samples' / 'clinic_mgmt_csv'}",
                         schema=load_schema(MAPPINGS / "schemas" / "clinic_mgmt_csv.yaml"))
    try:
        cfg = source.config("patients")
        parse = cfg.instant_parser()
        assert (cfg.modified_field, cfg.modified_tz) == ("modified_date", "America/New_York")
        assert modified_since("07/01/2025 10:00 AM", "12/30/2024 09:00 AM", parse)
        assert not modified_since("12/30/2024 09:00 AM", "07/01/2025 10:00 AM", parse)
        # 9:00 AM in New York (EST, UTC-5) is 14:00 UTC
        assert parse("12/30/2024 09:00 AM") == parse("2024-12-30T14:00:00Z")
        assert parse("30/12/2024 09:00") is None  # unreadable: not compared as text
        assert modified_since("30/12/2024 09:00", "07/01/2025 10:00 AM", parse)  # read again
        # the sample export: every patient's modified_date reads with the declared format
        stamps = [r.modified_at for r in source.records("patients")]
        assert stamps and all(parse(s) is not None for s in stamps if s is not None)
    finally:
        source.close()
