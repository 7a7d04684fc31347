"""`fmap run --delta` through the CLI on a source whose modified-at values are not ISO-8601 (US
``MM/DD/YYYY hh:mm AM`` New York time, declared in the source schema): the compiled plan carries the
declared format to the source, so a delta run reads only the records changed since the last run,
and values that do not parse are counted in the summary (a count, never the values)."""

from __future__ import annotations

import csv
from pathlib import Path

from typer.testing import CliRunner

from fmap.cli import app

ENV = {"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}

FMAP = """migration "delta us timestamps"
source clinic "schemas/clinic.yaml"
target zoho
param fallback_owner = "owner@example.com"
owners by email else $fallback_owner

map patients -> Contacts {
  key patient_id
  Last_Name = last_name
}
"""

SCHEMA = """system: clinic
kind: source
objects:
  - api_name: patients
    key: patient_id
    modified_at: modified_date
    vendor: {file: patients.csv}
    fields:
      - {api_name: patient_id, type: id, nullable: false}
      - {api_name: last_name, type: text, nullable: false}
      - {api_name: modified_date, type: datetime, nullable: false, vendor: {date_format: "%m/%d/%Y %I:%M %p", tz: America/New_York}}
"""

USERS = '[{"id": "u1", "email": "owner@example.com", "name": "Owner"}]'

# as text, "12/30/2025" sorts after every "01/..." and "07/..." value: a text comparison would
# call the January and July changes older than the watermark
ROWS = [
    ("P1", "Adams", "07/01/2025 10:00 AM"),
    ("P2", "Baker", "12/30/2025 09:15 PM"),
    ("P3", "Clark", "03/04/2025 08:00 AM"),
    ("P4", "Davis", "11/15/2025 01:30 PM"),
]


def fmap(*args: str):
    result = CliRunner().invoke(app, list(args), env=ENV)
    assert "Traceback" not in result.output, result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"uncaught {result.exception!r}\n{result.output}")
    return result


def write_rows(src: Path, rows) -> None:
    with (src / "patients.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["patient_id", "last_name", "modified_date"])
        w.writerows(rows)


def total_row(output: str) -> list[int]:
    for line in output.splitlines():
        cells = [c.strip() for c in line.replace("┃", "│").split("│") if c.strip()]
        if len(cells) == 8 and cells[0] == "total":
            return [int(c.replace(",", "")) for c in cells[1:]]
    raise AssertionError(f"no summary total in:\n{output}")


def project(tmp_path: Path, monkeypatch) -> list[str]:
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "clinic.yaml").write_text(SCHEMA, "utf-8")
    (tmp_path / "delta.fmap").write_text(FMAP, "utf-8")
    (tmp_path / "users.json").write_text(USERS, "utf-8")
    (tmp_path / "src").mkdir()
    write_rows(tmp_path / "src", ROWS)
    monkeypatch.chdir(tmp_path)
    return ["run", "delta.fmap", "--source", "csv:src", "--target", "sandbox:zoho?users=users.json",
            "--state", str(tmp_path / "st" / "state.sqlite")]


def test_delta_run_reads_only_records_changed_since_the_watermark(tmp_path, monkeypatch):
    args = project(tmp_path, monkeypatch)
    r1 = fmap(*args)
    assert r1.exit_code == 0, r1.output
    #                      extracted created updated unchanged skipped quarantined failed
    assert total_row(r1.output) == [4, 4, 0, 0, 0, 0, 0]

    r2 = fmap(*args, "--delta")  # nothing changed: nothing read
    assert r2.exit_code == 0, r2.output
    assert total_row(r2.output) == [0, 0, 0, 0, 0, 0, 0]

    # two records change after the watermark (12/30/2025 09:15 PM): in January, earlier as text
    rows = [list(r) for r in ROWS]
    rows[0][1:] = ["Adams-Lee", "01/05/2026 09:00 AM"]
    rows[2][1:] = ["Clark", "01/06/2026 11:45 AM"]
    write_rows(tmp_path / "src", rows)
    r3 = fmap(*args, "--delta")
    assert r3.exit_code == 0, r3.output
    assert total_row(r3.output) == [2, 0, 1, 1, 0, 0, 0]
    assert "do not parse" not in r3.output

    r4 = fmap(*args, "--delta")
    assert total_row(r4.output) == [0, 0, 0, 0, 0, 0, 0]


def test_unreadable_modified_values_are_counted_in_the_summary(tmp_path, monkeypatch):
    args = project(tmp_path, monkeypatch)
    write_rows(tmp_path / "src", [*ROWS[:3], ("P4", "Davis", "2025-13-45 noon")])
    r1 = fmap(*args)
    assert r1.exit_code == 0, r1.output
    assert "patients: 1 modified-at value(s) do not parse" in r1.output
    assert "noon" not in r1.output  # the count, never the value
    r2 = fmap(*args, "--delta")  # the unreadable record is read again, the others are not
    assert total_row(r2.output) == [1, 0, 0, 1, 0, 0, 0]
    assert "patients: 1 modified-at value(s) do not parse" in r2.output


def test_a_format_declared_later_reaches_the_cached_module(tmp_path, monkeypatch):
    """The compile cache is keyed on the source schema's key/modified-at declarations too: a
    format added to the schema after a run is seen by the next one."""
    args = project(tmp_path, monkeypatch)
    schema = tmp_path / "schemas" / "clinic.yaml"
    declared = schema.read_text("utf-8")
    schema.write_text(declared.replace(
        ', vendor: {date_format: "%m/%d/%Y %I:%M %p", tz: America/New_York}', ""), "utf-8")
    r1 = fmap(*args)
    assert "patients: 4 modified-at value(s) do not parse" in r1.output
    schema.write_text(declared, "utf-8")
    r2 = fmap(*args, "--delta")  # no watermark yet (unreadable values never move it)
    assert "do not parse" not in r2.output
    assert total_row(r2.output) == [4, 0, 0, 4, 0, 0, 0]
    r3 = fmap(*args, "--delta")
    assert total_row(r3.output) == [0, 0, 0, 0, 0, 0, 0]
