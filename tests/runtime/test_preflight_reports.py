"""Profile and sample reports: every section present in the HTML, sensitive values masked."""

from __future__ import annotations

from datetime import UTC, datetime
from html.parser import HTMLParser
from types import SimpleNamespace

from runtime.operations.profile import ProfileReport
from runtime.operations.sample import RecordDiff
from runtime.reports import to_html, to_json
from runtime.reports.preflight import build_profile_report, build_sample_report

CLOCK = lambda: datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)  # noqa: E731


class _Sections(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "section":
            self.ids.append(dict(attrs).get("id"))


def _sections(html: str) -> list[str]:
    p = _Sections()
    p.feed(html)
    return p.ids


def test_profile_report_lists_every_finding():
    r = ProfileReport("m", source_counts={"patients": 3},
                      map_counts={"Contacts": {"extracted": 3, "ready": 2, "quarantined": 1}})
    r.quarantine_reasons = [{"map": "Contacts", "status": "quarantined", "field": "Contacts.DOB",
                             "reason": "not a valid date", "count": 1}]
    r.unmapped_values = [{"valuemap": "status", "map": "Tasks", "field": "Tasks.Status",
                          "value": "'Tentative'", "count": 2}]
    r.duplicates = [{"map": "Contacts", "match": "same email", "keys": ["p1", "p2"]}]
    r.owners = {"emails": 2, "unmatched": {"locum@x.org": 4}}
    rep = build_profile_report(r, clock=CLOCK, report_id="r1")
    assert rep["summary"]["headline"].startswith("5 thing(s)")  # 1 + 2 codes + 1 + 1
    html = to_html(rep)
    assert _sections(html) == ["maps", "quarantine", "unmapped", "required", "duplicates",
                               "owners", "attachments", "orphans"]
    for text in ("not a valid date", "Tentative", "p1, p2", "locum@x.org"):
        assert text in html
    assert '"report_id": "r1"' in to_json(rep)


def test_sample_report_shows_only_differences_and_masks_sensitive_fields():
    plan = SimpleNamespace(migration="m", steps=[SimpleNamespace(
        name="Contacts", kind="map", target="Contacts", sensitive=frozenset({"NHS_Number"}))])
    diffs = [RecordDiff("Contacts", "Contacts", "p1", "c-1", [
        {"field": "Description", "status": "diff", "kind": "truncated",
         "expected": "a long description", "actual": "a long des"},
        {"field": "NHS_Number", "status": "diff", "kind": "changed",
         "expected": "9434765919", "actual": "9434765918"},
        {"field": "Last_Name", "status": "match", "kind": "equal",
         "expected": "Smith", "actual": "Smith"},
    ])]
    selection = SimpleNamespace(chosen=["p1"], primary="patients", features_total=3,
                                features_covered=3)
    rep = build_sample_report(selection, {"Contacts": {"extracted": 1, "created": 1}}, diffs,
                              plan=plan, clock=CLOCK, report_id="s1")
    html = to_html(rep)
    assert _sections(html) == ["maps", "diff"]
    assert "truncated" in html and "a long des" in html
    assert "9434765919" not in html and "9434765918" not in html  # sensitive: masked
    assert "Smith" not in html  # only differences are listed
    assert "1 differ" in rep["summary"]["headline"]
