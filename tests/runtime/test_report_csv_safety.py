"""The complete lists written beside reports are CSVs a clinic admin opens in a spreadsheet; source
values reach them (unmasked with --show-sensitive), so text a spreadsheet would run as a formula
is quoted with a leading apostrophe. Numbers stay numbers."""

from __future__ import annotations

import csv

from runtime.reports.builders import RecordList
from runtime.reports.render import write_list


def test_formula_like_text_is_quoted(tmp_path):
    rows = [["Contacts", "=HYPERLINK(\"http://x\",\"y\")"], ["Contacts", "+44 7700 900123"],
            ["Contacts", "-2+3"], ["Contacts", "@SUM(A1)"], ["Contacts", "\tx"],
            ["Contacts", "O'Brien"], ["Contacts", -5], ["Contacts", None], ["Contacts", ["=x"]]]
    path = tmp_path / "run-quarantine.csv"
    assert write_list(RecordList("quarantine", ("map", "value"), lambda: iter(rows)), path) == 9
    with open(path, encoding="utf-8", newline="") as fh:
        got = [r[1] for r in csv.reader(fh)][1:]
    assert got == ["'=HYPERLINK(\"http://x\",\"y\")", "'+44 7700 900123", "'-2+3", "'@SUM(A1)",
                   "'\tx", "O'Brien", "-5", "", '["=x"]']
