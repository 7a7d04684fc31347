"""`fmap report` on a run with more quarantined records than a report shows: the HTML says how
many more and names the CSV beside it, which lists every one, masked."""

from __future__ import annotations

import csv

from typer.testing import CliRunner

from fmap.cli import app
from runtime.reports import ROW_CAP
from runtime.state import QuarantineItem, StateStore

ENV = {"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}


def test_report_writes_the_complete_quarantine_beside_a_capped_report(tmp_path):
    state = tmp_path / "state.sqlite"
    n = ROW_CAP + 37
    with StateStore(state) as store:
        run_id = store.start_run("m")
        store.quarantine(run_id, [QuarantineItem("patients", f"p{i}", "Contacts", "bad email",
                                                 "Email", f"p{i}@private.example")
                                  for i in range(n)])
        store.finish_run(run_id, "completed")
    out = tmp_path / "reports"
    result = CliRunner().invoke(app, ["report", str(run_id), "--state", str(state), "-o",
                                      str(out)], env=ENV)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    html = (out / "run.html").read_text("utf-8")
    assert "37 more (Contacts 37)" in html and "run-quarantine.csv" in html
    with open(out / "run-quarantine.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert [r[1] for r in rows[1:]] == [f"p{i}" for i in range(n)]
    assert "private.example" not in (out / "run-quarantine.csv").read_text("utf-8")
    assert "private.example" not in html
