"""Per-record tables in reports are capped (the first ``cap`` per map or object, in the state
file's order), say how many more there are and where; the complete list is a CSV streamed from the
state file beside the report, masked exactly as the report masks. Building the report holds the
shown rows only, not every quarantined record."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from runtime.operations import FieldDiff, compare_field
from runtime.operations.rollback import Conflict, RollbackResult
from runtime.reports import (
    RecordDiff,
    build_diff_section,
    build_rollback_report,
    build_run_report,
    rollback_report_lists,
    run_report_lists,
    to_html,
    to_json,
    write_report,
)
from runtime.state import Outcome, QuarantineItem, StateStore, mask


def _section(rep: dict, sid: str) -> dict:
    return next(s for s in rep["sections"] if s["id"] == sid)


def _read_csv(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


def _quarantine_run(store: StateStore, per_map: dict[str, int], failed: int = 0) -> int:
    run_id = store.start_run("m")
    items = []
    for m, n in per_map.items():
        for i in range(n):
            # interleaved maps: the state file's order is not grouped by map
            items.append((i, QuarantineItem("patients", f"{m}-{i}", m, "bad email", "Email",
                                            f"patient{i}@private.example", "email",
                                            "/abs/clinic.fmap:12")))
    store.quarantine(run_id, [q for _, q in sorted(items, key=lambda x: x[0])])
    store.record_outcomes(run_id, [Outcome("Accounts", f"a{i:04}", "failed", f"HTTP 400 #{i}")
                                   for i in range(failed)])
    return run_id


def test_run_report_shows_the_first_rows_per_map_and_says_where_the_rest_are(tmp_path):
    with StateStore(tmp_path / "s.sqlite") as store:
        run_id = _quarantine_run(store, {"Contacts": 250, "Leads": 7}, failed=12)
        rep = build_run_report(store, run_id, cap=100)
        q = _section(rep, "quarantine")
        keys = [r[1] for r in q["rows"]]
        assert [k for k in keys if k.startswith("Contacts")] == [f"Contacts-{i}"
                                                                  for i in range(100)]
        assert [k for k in keys if k.startswith("Leads")] == [f"Leads-{i}" for i in range(7)]
        assert keys.index("Leads-6") < keys.index("Contacts-99")  # the state file's order
        assert q["omitted"] == 150 and q["complete_list"] == "run-quarantine.csv"
        assert "150 more (Contacts 150)" in q["note"] and "run-quarantine.csv" in q["note"]
        f = _section(rep, "failures")
        assert len(f["rows"]) == 12 and "note" not in f  # under the cap: as it was
        html = to_html(rep)
        assert "run-quarantine.csv" in html and "private.example" not in html
        assert "private.example" not in to_json(rep)

        out = tmp_path / "out"
        write_report(rep, out, "run", run_report_lists(store, run_id))
        rows = _read_csv(out / "run-quarantine.csv")
        assert rows[0] == ["map", "source key", "field", "value", "reason", "rule", "location"]
        assert len(rows) == 1 + 257
        assert {r[1] for r in rows[1:]} == ({f"Contacts-{i}" for i in range(250)}
                                            | {f"Leads-{i}" for i in range(7)})
        # masked as the report masks: the same cells for the rows the report shows
        shown = {r[1]: ["" if c is None else str(c) for c in r] for r in q["rows"]}
        assert all(shown[r[1]] == r for r in rows[1:] if r[1] in shown)
        assert rows[-1][3] == mask("patient249@private.example")
        assert rows[-1][6] == "clinic.fmap:12"
        assert "private.example" not in (out / "run-quarantine.csv").read_text("utf-8")
        failures = _read_csv(out / "run-failures.csv")
        assert failures[1] == ["Accounts", "a0000", "HTTP 400 #0"] and len(failures) == 13
        assert not (out / "run-owners.csv").exists()  # no rows: no file


def test_show_sensitive_reaches_the_csv_as_it_reaches_the_report(tmp_path):
    with StateStore(tmp_path / "s.sqlite") as store:
        run_id = _quarantine_run(store, {"Contacts": 3})
        store.quarantine(run_id, [QuarantineItem("patients", "x", "Contacts", "bad dob", "DOB",
                                                 "1980-02-01", sensitive=True)])
        rep = build_run_report(store, run_id, show_sensitive=True)
        write_report(rep, tmp_path, "run", run_report_lists(store, run_id, show_sensitive=True))
        text = (tmp_path / "run-quarantine.csv").read_text("utf-8")
        assert "patient0@private.example" in text  # asked for, as in the report
        assert "1980-02-01" not in text and mask("1980-02-01") in text  # masked at rest


def test_a_stale_list_is_removed_when_a_report_has_none(tmp_path):
    with StateStore(tmp_path / "s.sqlite") as store:
        run_id = _quarantine_run(store, {})
        (tmp_path / "run-quarantine.csv").write_text("old", "utf-8")
        write_report(build_run_report(store, run_id), tmp_path, "run",
                     run_report_lists(store, run_id))
        assert not (tmp_path / "run-quarantine.csv").exists()


def _build_peak(n: int, tmp: Path) -> int:
    import tracemalloc

    with StateStore(tmp / f"s{n}.sqlite") as store:
        run_id = _quarantine_run(store, {"Contacts": n})
        tracemalloc.start()
        try:
            rep = build_run_report(store, run_id)
            write_report(rep, tmp / f"out{n}", "run", run_report_lists(store, run_id))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert len(_read_csv(tmp / f"out{n}" / "run-quarantine.csv")) == n + 1
    return peak


def test_report_memory_does_not_grow_with_the_quarantine(tmp_path):
    """Ten times the quarantined records must not cost ten times the memory: the report keeps
    the shown rows, the CSV is written row by row from the state file."""
    small, large = _build_peak(1_000, tmp_path), _build_peak(10_000, tmp_path)
    assert large < small * 2 + 256 * 1024, (small, large)


def test_rollback_report_caps_conflicts_and_lists_them_all(tmp_path):
    diff = [FieldDiff("diff", "changed", "Email", "a@x.com", "b@x.com")]
    res = RollbackResult(run_id=1, status="stopped")
    res.conflicts = [Conflict("delete", "Contacts", f"d{i}", "Contacts", f"p{i}", "changed since",
                              diff) for i in range(30)]
    res.failed = [("Accounts", f"acc{i}", "HTTP 500") for i in range(4)]
    rep = build_rollback_report([res], cap=10)
    c = _section(rep, "conflicts")
    assert [r[2] for r in c["rows"]] == [f"d{i}" for i in range(10)]
    assert c["omitted"] == 20 and c["complete_list"] == "rollback-conflicts.csv"
    fields = _section(rep, "conflict_fields")
    assert len(fields["records"]) == 10 and fields["omitted"] == 20
    assert fields["counts"] == {"changed": 30}  # counted over every record, shown or not
    assert "30 left alone" in rep["summary"]["headline"]  # the summary counts them all
    lists = rollback_report_lists([res], schema=None)
    write_report(rep, tmp_path, None, lists)
    assert len(_read_csv(tmp_path / "rollback-conflicts.csv")) == 31
    cf = _read_csv(tmp_path / "rollback-conflict_fields.csv")
    assert len(cf) == 31 and cf[1][2] == "Email"
    assert len(_read_csv(tmp_path / "rollback-failures.csv")) == 5
    assert json.loads((tmp_path / "rollback.json").read_text())["kind"] == "rollback"


def test_capped_diff_sections_keep_records_with_differences_first():
    same = compare_field("Smith", "Smith")
    recs = [RecordDiff("Contacts", f"p{i}", [FieldDiff(same.status, same.kind, "Last_Name",
                                                       "Smith", "Smith")]) for i in range(50)]
    recs += [RecordDiff("Contacts", f"bad{i}", [FieldDiff("diff", "changed", "Email", "a", "b")])
             for i in range(3)]
    sec = build_diff_section(recs, cap=5, kind="reconciliation", section_id="spot_check")
    shown = [r["record"] for r in sec["records"]]
    assert shown == ["p0", "p1", "bad0", "bad1", "bad2"]  # the differing three, in order
    assert sec["omitted"] == 48 and sec["complete_list"] == "reconciliation-spot_check.csv"
    assert "Email" not in str(build_diff_section(recs[:4], cap=5))  # under the cap: as it was
    assert "note" not in build_diff_section(recs[:4], cap=5)


def test_profile_report_caps_codes_per_value_map_and_lists_them_all(tmp_path):
    from runtime.operations.profile import ProfileReport
    from runtime.reports.preflight import build_profile_report, profile_report_lists

    # a free-text column through a value map: one row per distinct value
    report = ProfileReport("m", unmapped_values=[
        {"valuemap": "gender", "map": "Contacts", "field": "Gender", "value": f"v{i}", "count": 1}
        for i in range(30)] + [
        {"valuemap": "region", "map": "Clinics", "field": "Region", "value": "X", "count": 4}],
        owners={"unmatched": {f"u{i}@x.com": 1 for i in range(12)}})
    rep = build_profile_report(report, cap=10)
    u = _section(rep, "unmapped")
    assert [r[2] for r in u["rows"]] == [f"v{i}" for i in range(10)] + ["X"]
    assert u["omitted"] == 20 and "(gender 20)" in u["note"]
    assert "profile-unmapped.csv" in u["note"]
    o = _section(rep, "owners")
    assert len(o["rows"]) == 10 and "Showing the first 10; 2 more are listed" in o["note"]
    write_report(rep, tmp_path, None, profile_report_lists(report))
    assert len(_read_csv(tmp_path / "profile-unmapped.csv")) == 1 + 31
    assert len(_read_csv(tmp_path / "profile-owners.csv")) == 1 + 12
    assert not (tmp_path / "profile-orphans.csv").exists()
