"""`fmap run` and `fmap audit` through the CLI: dry runs, sandbox runs, exit codes, the summary table,
audit exports, and usage errors (exit 2, a clear message, no traceback)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fmap.cli import app

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "executor" / "cli"
ENV = {"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}


@pytest.fixture
def proj(tmp_path, monkeypatch):
    for item in FIX.iterdir():
        if item.is_dir():
            shutil.copytree(item, tmp_path / item.name)
        else:
            shutil.copy(item, tmp_path / item.name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def fmap(*args: str):
    result = CliRunner().invoke(app, list(args), env=ENV)
    assert "Traceback" not in result.output, result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"uncaught {result.exception!r}\n{result.output}")
    return result


def run_args(proj: Path, *extra: str, source: str = "src") -> list[str]:
    return ["run", "clinic.fmap", "--source", source,
            "--state", str(proj / "st" / "state.sqlite"), *extra]


def summary_rows(output: str) -> dict[str, list[int]]:
    rows = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.replace("┃", "│").split("│") if c.strip()]
        if len(cells) == 8 and cells[1].replace(",", "").isdigit():
            rows[cells[0]] = [int(c.replace(",", "")) for c in cells[1:]]
    return rows


def test_run_into_sandbox_clean_exit_0_and_summary(proj):
    r = fmap(*run_args(proj, "--target", "sandbox:zoho?users=users.json"))
    assert r.exit_code == 0, r.output
    assert "run 1: completed" in r.output
    rows = summary_rows(r.output)
    #             extracted created updated unchanged skipped quarantined failed
    assert rows["Accounts"] == [2, 2, 0, 0, 0, 0, 0]
    assert rows["Contacts"] == [3, 1, 0, 0, 1, 1, 0]
    assert rows["Leads"] == [3, 1, 0, 0, 2, 0, 0]
    assert rows["Tasks"] == [2, 2, 0, 0, 0, 0, 0]
    assert rows["total"] == [10, 6, 0, 0, 3, 1, 0]
    for name, (ext, *rest) in rows.items():
        assert ext == sum(rest), name
    assert "fmap audit 1" in r.output
    # the sandbox org persisted next to the state file
    assert (proj / "st" / "sandbox-zoho.sqlite").is_file()
    # a second run changes nothing
    r2 = fmap(*run_args(proj, "--target", "sandbox:zoho?users=users.json"))
    assert r2.exit_code == 0
    assert summary_rows(r2.output)["total"] == [10, 0, 0, 6, 3, 1, 0]


def test_run_with_failures_exit_1(proj):
    patients = json.loads((proj / "src" / "patients.json").read_text())
    patients[0]["appointments"].append({"id": "a3", "status": "Weird"})
    (proj / "src" / "patients.json").write_text(json.dumps(patients))
    r = fmap(*run_args(proj, "--target", "sandbox:zoho?users=users.json"))
    assert r.exit_code == 1, r.output
    assert summary_rows(r.output)["Tasks"] == [3, 2, 0, 0, 0, 0, 1]


def test_unmatched_owner_reported(proj):
    patients = json.loads((proj / "src" / "patients.json").read_text())
    patients[1]["dob"] = "01/01/1970"  # p2 now loads, owner nobody@example.com -> fallback
    (proj / "src" / "patients.json").write_text(json.dumps(patients))
    r = fmap(*run_args(proj, "--target", "sandbox:zoho?users=users.json"))
    assert r.exit_code == 0, r.output
    assert "1 record(s) name an owner with no destination user" in " ".join(r.output.split())


def test_dry_run_writes_jsonl(proj):
    # the dry-run destination knows one user (admin@example.com): make it the fallback owner
    r = fmap(*run_args(proj, "--dry-run", "--param", "fallback_owner=admin@example.com"))
    assert r.exit_code == 0, r.output
    out = proj / "st" / "dry-run"
    lines = [json.loads(x) for x in (out / "Contacts.jsonl").read_text().splitlines()]
    assert [x["record"]["Last_Name"] for x in lines] == ["Smith"]
    assert lines[0]["record"]["Date_of_Birth"] == "1980-02-01"
    assert (out / "Tasks.jsonl").is_file()
    assert not (proj / "st" / "sandbox-zoho.sqlite").exists()


def test_dry_run_keeps_target_users(proj):
    r = fmap(*run_args(proj, "--dry-run", "--target", "sandbox:zoho?users=users.json"))
    assert r.exit_code == 0, r.output
    lines = (proj / "st" / "dry-run" / "Contacts.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["record"]["Owner"] == "u2"


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_audit_exports(proj, fmt):
    assert fmap(*run_args(proj, "--target", "sandbox:zoho?users=users.json")).exit_code == 0
    out = proj / f"audit.{fmt}"
    r = fmap("audit", "1", "--state", str(proj / "st" / "state.sqlite"), "--format", fmt,
             "-o", str(out))
    assert r.exit_code == 0, r.output
    if fmt == "csv":
        rows = list(csv.DictReader(out.open()))
    else:
        rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 6  # one op per loaded record
    assert {r["state"] for r in rows} == {"confirmed"}
    assert {r["map"] for r in rows} == {"Accounts", "Contacts", "Leads", "Tasks"}
    assert all(r["destination_id"] for r in rows)
    assert "before_image" not in rows[0]  # PHI stays out unless asked for


def test_audit_table_and_errors(proj):
    assert fmap(*run_args(proj, "--target", "sandbox:zoho?users=users.json")).exit_code == 0
    r = fmap("audit", "1", "--state", str(proj / "st" / "state.sqlite"))
    assert r.exit_code == 0 and "confirmed" in r.output
    r = fmap("audit", "9", "--state", str(proj / "st" / "state.sqlite"))
    assert r.exit_code == 2 and "no run 9" in r.output
    r = fmap("audit", "1", "--state", str(proj / "nope.sqlite"))
    assert r.exit_code == 2 and "no state file" in r.output


@pytest.mark.parametrize("source, target, message", [
    ("does-not-exist", "sandbox:zoho", "source error"),
    ("ftp://example.com/x", "sandbox:zoho", "source error"),
    ("src", "nosuch:thing", "unknown target"),
    ("src", "sandbox:dynamics", "target error"),
    ("src", "sandbox:zoho?users=missing.json", "cannot read users file"),
])
def test_bad_source_or_target_exit_2(proj, source, target, message):
    r = fmap(*run_args(proj, "--target", target, source=source))
    assert r.exit_code == 2, r.output
    assert message in " ".join(r.output.split())


def test_missing_target_is_usage_error(proj):
    r = fmap(*run_args(proj))
    assert r.exit_code == 2
    assert "--target" in r.output


def test_resume_a_finished_run_is_refused_cleanly(proj):
    assert fmap(*run_args(proj, "--target", "sandbox:zoho?users=users.json")).exit_code == 0
    r = fmap(*run_args(proj, "--target", "sandbox:zoho?users=users.json", "--resume", "1"))
    assert r.exit_code == 2, r.output
    assert "completed" in r.output
