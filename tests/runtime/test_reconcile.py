"""compare_field classes, and reconciliation end to end against the generic SandboxStore."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from runtime.destinations.base import WriteItem
from runtime.operations import compare_field, compare_record, reconcile_run
from runtime.schema.model import FieldSchema, FieldType

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fixtures" / "operations"))
from ops_harness import compile_fixture, make_env  # noqa: E402


def kind(e, a, f=None):
    return compare_field(e, a, f).kind


PICK = FieldSchema(api_name="Status", type=FieldType.picklist,
                   picklist_values=["Scheduled", "No Show", "Completed"])


@pytest.mark.parametrize(("expected", "actual", "schema", "want"), [
    ("Smith", "Smith", None, "equal"),
    (None, "", None, "coerced"),
    (None, None, None, "equal"),
    ("12.50", Decimal("12.5"), None, "coerced"),
    (12.5, "12.50", FieldSchema(api_name="x", type=FieldType.currency), "coerced"),
    (date(1980, 2, 1), "1980-02-01", None, "coerced"),
    ("+44 20 7946 0000", "020 7946 0000", FieldSchema(api_name="p", type=FieldType.phone),
     "coerced"),
    ("(020) 7946-0000", "020 7946 0000", None, "coerced"),
    ("  John   SMITH ", "john smith", None, "coerced"),
    (True, "true", None, "coerced"),
    (["a", "b"], ["b", "a"], None, "coerced"),
    ("A long clinical note that goes on", "A long clinical", None, "truncated"),
    ("A long clinical note", "A long clin…", None, "truncated"),
    ("Scheduled", "No Show", PICK, "picklist_replaced"),
    (datetime(2024, 3, 1, 9, 0, tzinfo=UTC), "2024-03-01T09:00:00+01:00", None,
     "timezone_shifted"),
    (datetime(2024, 3, 1, 9, 0, tzinfo=UTC), "2024-03-01T10:00:00+01:00", None,
     "timezone_shifted"),
    ("2024-03-01T09:00:00+00:00", datetime(2024, 3, 1, 9, 0, tzinfo=UTC), None, "coerced"),
    (date(2024, 3, 1), "2024-02-29", FieldSchema(api_name="d", type=FieldType.date),
     "timezone_shifted"),
    (date(2024, 3, 1), "2024-03-05", None, "changed"),
    ("x@y.com", None, None, "missing"),
    ("x@y.com", "", None, "missing"),
    (None, "someone@else.com", None, "unexpected"),
    ("Smith", "Jones", None, "changed"),
    (10, 11, None, "changed"),
])
def test_compare_field_classes(expected, actual, schema, want):
    d = compare_field(expected, actual, schema)
    assert d.kind == want
    assert d.ok == (want in ("equal", "coerced"))


def test_same_instant_other_offset_is_timezone_shift_not_equal():
    london = timezone(timedelta(hours=1))
    e = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
    assert kind(e, e.astimezone(london)) == "timezone_shifted"
    assert kind(e, e.isoformat()) == "coerced"


def test_text_field_keeps_digits_as_text():
    f = FieldSchema(api_name="NHS_Number", type=FieldType.text)
    assert kind("0123456789", "123456789", f) == "changed"


def test_compare_record_names_fields_and_unwritten_values():
    diffs = compare_record({"A": "1", "B": None}, {"A": "1", "C": "x", "$external_id": "e",
                                                   "id": "i"}, None, include_unwritten=True)
    assert [(d.field, d.kind) for d in diffs] == [("A", "equal"), ("B", "equal"),
                                                   ("C", "unexpected")]


# ------------------------------------------------------------------------ reconciliation
@pytest.fixture(scope="module")
def module(tmp_path_factory):
    return compile_fixture(tmp_path_factory.mktemp("build"))


@pytest.fixture
def env(tmp_path, module):
    e = make_env(tmp_path, module)
    yield e
    e.state.close()
    e.dest.close()


def by_obj(rec):
    return {o.target_object: o for o in rec.objects}


def test_reconciliation_explains_every_count(env):
    r = env.run()
    rec = reconcile_run(env.state, env.dest, r.run_id, plan=env.plan, sample_share=1.0)
    assert rec.ok, rec.flags
    objs = by_obj(rec)
    assert list(objs) == ["Accounts", "Contacts"]
    acc, con = objs["Accounts"], objs["Contacts"]
    assert (acc.source, acc.journal, acc.destination, acc.ours_in_destination) == (3, 2, 2, 2)
    assert acc.outcomes["quarantined"] == 1
    assert acc.explained == [
        "Accounts: 3 source record(s) = 2 created + 1 quarantined",
        "Accounts:deferred: 2 loaded record(s) whose deferred lookups to fill = 2 updated",
        "Accounts: 1 quarantined: value not in value map `clinic_kind`"]
    assert con.source == 3 and con.destination == 2
    assert "Contacts: 3 source record(s) = 2 created + 1 skipped" in con.explained
    assert ("patients.appointments->Contacts: 2 parent record(s) to update = 2 updated"
            in con.explained)
    assert any("skipped: Accounts record c9 was not loaded" in x for x in con.explained)
    # every map's outcomes add up to what it extracted
    for o in rec.objects:
        for c in o.per_map.values():
            assert c["extracted"] == sum(c[k] for k in ("created", "updated", "unchanged",
                                                        "skipped", "quarantined", "failed"))
    assert len(rec.spot_checks) == 4 and all(s.ok for s in rec.spot_checks)
    # dates came back as ISO strings, the owner as an id: still matches
    kinds = {d.kind for s in rec.spot_checks for d in s.diffs}
    assert kinds <= {"equal", "coerced"}


def test_reconciliation_flags_changed_missing_and_explains_foreign_records(env):
    r = env.run()
    p1 = env.state.lookup("Contacts", "p1")
    p2 = env.state.lookup("Contacts", "p2")
    [ok] = env.dest.update("Contacts", [WriteItem(p1, None, {"Last_Name": "Smi"}, p1)])
    assert ok.ok
    env.dest.delete("Contacts", [p2])
    env.dest.create("Accounts", [WriteItem("x", None, {"Account_Name": "Already there"})])
    rec = reconcile_run(env.state, env.dest, r.run_id, plan=env.plan, sample_share=1.0)
    assert not rec.ok
    con = by_obj(rec)["Contacts"]
    assert con.missing_in_destination == [p2]
    assert any("not in the destination" in f for f in con.flags)
    assert any("spot-checked" in f for f in con.flags)
    bad = {s.destination_id: s for s in rec.spot_checks if not s.ok}
    assert set(bad) == {p1, p2} and not bad[p2].found
    assert [(d.field, d.kind) for d in bad[p1].diffs if not d.ok] == [("Last_Name", "truncated")]
    acc = by_obj(rec)["Accounts"]
    assert acc.destination == 3 and acc.ours_in_destination == 2 and not acc.flags
    assert any("1 record(s) in the destination were not loaded by fmap" in x
               for x in acc.explained)


def test_sample_share_and_seed_are_deterministic(env):
    r = env.run()
    a = reconcile_run(env.state, env.dest, r.run_id, sample_share=0.5, seed=3)
    b = reconcile_run(env.state, env.dest, r.run_id, sample_share=0.5, seed=3)
    assert [s.destination_id for s in a.spot_checks] == [s.destination_id for s in b.spot_checks]
    assert sum(o.sampled for o in a.objects) == 2  # half of 2 Accounts + half of 2 Contacts
    none = reconcile_run(env.state, env.dest, r.run_id, sample_share=0)
    assert none.spot_checks == []


def test_source_recount_flags_a_changed_source(env):
    r = env.run()
    rec = reconcile_run(env.state, env.dest, r.run_id, plan=env.plan, sample_share=0,
                        source_counts={"clinics": 4, "patients": 3})
    assert by_obj(rec)["Accounts"].source_recount == 4
    assert rec.flags == ["Accounts: the source now holds 4 record(s); the run extracted 3"]
