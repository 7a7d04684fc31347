"""Report builders: deterministic JSON (syrupy snapshots), self-contained HTML with every section,
sensitive and quarantined values masked unless asked."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from syrupy.extensions.json import JSONSnapshotExtension

from runtime.destinations.base import WriteItem
from runtime.operations import FieldDiff, compare_field, reconcile_run, rollback_run
from runtime.reports import (
    RecordDiff,
    Sensitivity,
    build_diff_section,
    build_load_order,
    build_reconciliation_report,
    build_rollback_report,
    build_run_report,
    to_html,
    to_json,
    write_report,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fixtures" / "operations"))
from ops_harness import compile_fixture, make_env  # noqa: E402

CLOCK = lambda: datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)  # noqa: E731


@pytest.fixture
def snap(snapshot):
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.fixture(scope="module")
def module(tmp_path_factory):
    return compile_fixture(tmp_path_factory.mktemp("build"))


@pytest.fixture
def env(tmp_path, module):
    e = make_env(tmp_path, module)
    yield e
    e.state.close()
    e.dest.close()


def pin_runs(store):
    """Run timestamps and paths come from the wall clock and the checkout: pin them."""
    store.conn.execute("UPDATE runs SET started_at = '2025-01-01T00:00:00.000+00:00', "
                       "finished_at = '2025-01-01T00:01:00.000+00:00', fmap_path = 'ops.fmap'")


class Sections(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.tags, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        a = dict(attrs)
        if tag in ("section", "div") and "id" in a:
            self.ids.append(a["id"])
        if tag in ("link", "img") or (tag == "script"):
            raise AssertionError(f"external asset or script: <{tag}>")

    def handle_data(self, data):
        self.text.append(data)


def parse(html):
    p = Sections()
    p.feed(html)
    return p


def test_run_report_json_snapshot_and_html(env, snap):
    r = env.run()
    pin_runs(env.state)
    rep = build_run_report(env.state, r.run_id, plan=env.plan, clock=CLOCK, report_id="run-1",
                           unmatched_owners=r.unmatched_owners)
    assert json.loads(to_json(rep)) == snap
    html = to_html(rep)
    p = parse(html)
    assert p.ids == ["summary", "objects", "load_order", "reasons", "quarantine", "failures",
                     "owners"]
    assert "svg" in p.tags and "style" in p.tags
    # the quarantined value and the unmatched owner's email are masked by default
    assert "ZZTOPSECRET" not in html and "nobody@example.com" not in html
    assert "*** (str, 11 chars)" in html
    shown = to_html(build_run_report(env.state, r.run_id, plan=env.plan, clock=CLOCK,
                                     report_id="run-1", show_sensitive=True,
                                     unmatched_owners=r.unmatched_owners))
    assert "nobody@example.com" in shown
    assert "ZZTOPSECRET" not in shown  # the state store keeps quarantined values masked at rest


def test_reconciliation_report_masks_sensitive_fields(env, snap):
    r = env.run()
    p1 = env.state.lookup("Contacts", "p1")
    env.dest.update("Contacts", [WriteItem(p1, None, {"Email": "leak@x.com",
                                                      "Last_Name": "Smyth"}, p1)])
    pin_runs(env.state)
    rec = reconcile_run(env.state, env.dest, r.run_id, plan=env.plan, sample_share=1.0)
    rep = build_reconciliation_report(rec, env.state, plan=env.plan, clock=CLOCK,
                                      report_id="rec-1")
    assert json.loads(to_json(rep)) == snap
    html = to_html(rep)
    p = parse(html)
    assert p.ids == ["summary", "objects", "load_order", "explained", "flags", "spot_check"]
    # Email and Date_of_Birth are `sensitive` in the mapping: masked; Last_Name shown, highlighted
    assert "leak@x.com" not in html and "a@x.com" not in html and "1980-02-01" not in html
    assert "Smyth" in html and 'class="changed"' in html
    shown = to_html(build_reconciliation_report(rec, env.state, plan=env.plan, clock=CLOCK,
                                                report_id="rec-1", show_sensitive=True))
    assert "leak@x.com" in shown


def test_rollback_report(env, snap):
    env.run()
    p1 = env.state.lookup("Contacts", "p1")
    env.dest.update("Contacts", [WriteItem(p1, None, {"Last_Name": "Edited"}, p1)])
    res = rollback_run(env.state, env.dest, 1)
    pin_runs(env.state)
    rep = build_rollback_report([res], env.state, plan=env.plan, clock=CLOCK, report_id="rb-1")
    assert json.loads(to_json(rep)) == snap
    p = parse(to_html(rep))
    assert p.ids == ["summary", "objects", "load_order", "conflicts", "conflict_fields",
                     "failures"]


def test_diff_section_for_the_sample_command():
    diffs = [RecordDiff("Contacts", "p1", [
        _named("Email", compare_field("a@x.com", "b@x.com")),
        _named("Last_Name", compare_field("Smith", "SMITH")),
    ])]
    sec = build_diff_section(diffs, sensitivity=Sensitivity({"Contacts": {"Email"}}))
    assert sec["type"] == "diff" and sec["counts"] == {"changed": 1, "coerced": 1}
    [rec] = sec["records"]
    assert rec["differences"] == 1
    assert rec["fields"][0] == {"field": "Email", "status": "diff", "kind": "changed",
                                "expected": "*** (str, 7 chars)",
                                "actual": "*** (str, 7 chars)"}
    only = build_diff_section(diffs, only_differences=True)
    assert [f["field"] for f in only["records"][0]["fields"]] == ["Email"]
    flat = build_diff_section([_named("X", compare_field(1, 2))])
    assert flat["records"][0]["fields"][0]["kind"] == "changed"
    html = to_html({"kind": "diff", "title": "Sample <diff>", "report_id": "x",
                    "generated_at": "t", "migration": None,
                    "summary": {"headline": "h", "lines": [], "status": "ok"},
                    "sections": [sec]})
    assert "Sample &lt;diff&gt;" in html  # autoescape on
    assert "a@x.com" not in html


def _named(name, d):
    return FieldDiff(d.status, d.kind, name, d.expected, d.actual)


def test_load_order_layout_from_plan(env):
    lo = build_load_order(env.plan)
    assert [(n["name"], n["depth"]) for n in lo["nodes"]] == [
        ("Accounts", 0), ("Contacts", 1), ("patients.appointments->Contacts", 2),
        ("Accounts:deferred", 3)]
    assert ["Accounts", "Accounts:deferred"] in lo["edges"]
    assert ["Accounts", "Contacts"] in lo["edges"]
    assert ["Contacts", "patients.appointments->Contacts"] in lo["edges"]
    chained = build_load_order(None, journal_order=["A", "B", "A"])
    assert chained["edges"] == [["A", "B"]]


def test_write_report_files(env, tmp_path):
    r = env.run()
    j, h = write_report(build_run_report(env.state, r.run_id, clock=CLOCK, report_id="x"),
                        tmp_path / "out")
    assert json.loads(j.read_text())["kind"] == "run"
    assert h.read_text().startswith("<!DOCTYPE html>")
