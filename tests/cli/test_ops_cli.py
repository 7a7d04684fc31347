"""`fmap rollback`, `fmap reconcile`, `fmap report` and `fmap plan --estimate` end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fmap.cli import app

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "operations"
runner = CliRunner()


@pytest.fixture
def project(tmp_path):
    shutil.copy(FIXTURE / "ops.fmap", tmp_path / "ops.fmap")
    shutil.copytree(FIXTURE / "src", tmp_path / "src")
    shutil.copy(FIXTURE / "users.json", tmp_path / "users.json")
    target = f"sandbox:zoho?users={tmp_path / 'users.json'}&generic=1"
    state = tmp_path / "st" / "state.sqlite"
    res = runner.invoke(app, ["run", str(tmp_path / "ops.fmap"), "--source",
                              f"json:{tmp_path / 'src'}", "--target", target, "--state",
                              str(state)])
    assert res.exit_code == 0, res.output
    return tmp_path, target, state


def sandbox_records(state: Path) -> int:
    import sqlite3

    with sqlite3.connect(state.parent / "sandbox-zoho.sqlite") as c:
        return c.execute("SELECT COUNT(*) FROM records").fetchone()[0]


def test_report_command_writes_json_and_html(project):
    tmp, _, state = project
    res = runner.invoke(app, ["report", "1", "--state", str(state), "-o", str(tmp / "rep")])
    assert res.exit_code == 0, res.output
    assert "8 record(s) moved" in res.output
    data = json.loads((tmp / "rep" / "run.json").read_text())
    assert data["kind"] == "run" and data["summary"]["totals"]["quarantined"] == 1
    html = (tmp / "rep" / "run.html").read_text()
    assert "ZZTOPSECRET" not in html and "<svg" in html


def test_reconcile_command(project):
    tmp, target, state = project
    res = runner.invoke(app, ["reconcile", "1", "--state", str(state), "--target", target,
                              "--sample-share", "1", "-o", str(tmp / "rec"),
                              "--source", f"json:{tmp / 'src'}"])
    assert res.exit_code == 0, res.output
    data = json.loads((tmp / "rec" / "reconciliation.json").read_text())
    assert data["summary"]["status"] == "ok"
    bad = runner.invoke(app, ["reconcile", "1", "--state", str(state), "--target", target,
                              "--sample-share", "2"])
    assert bad.exit_code == 2


def test_rollback_command_then_noop(project):
    tmp, target, state = project
    assert sandbox_records(state) == 4
    res = runner.invoke(app, ["rollback", "1", "--state", str(state), "--target", target,
                              "-o", str(tmp / "rb")])
    assert res.exit_code == 0, res.output
    assert sandbox_records(state) == 0
    assert "rolled_back" in res.output
    if "could not be checked" in res.output:  # `fmap run` journals request hashes only
        assert "no written values" in " ".join(res.output.split())
    again = runner.invoke(app, ["rollback", "--all", "--state", str(state), "--target", target,
                                "-o", str(tmp / "rb2")])
    assert again.exit_code == 0, again.output
    assert "no-op" in again.output
    data = json.loads((tmp / "rb2" / "rollback.json").read_text())
    assert data["summary"]["headline"].startswith("Nothing to roll back")


def test_rollback_usage_errors(project):
    tmp, target, state = project
    assert runner.invoke(app, ["rollback", "--state", str(state), "--target", target]).exit_code == 2
    assert runner.invoke(app, ["rollback", "9", "--state", str(state),
                               "--target", target]).exit_code == 2
    assert runner.invoke(app, ["rollback", "1", "--state", str(tmp / "nope.sqlite"),
                               "--target", target]).exit_code == 2


def test_plan_estimate(tmp_path):
    shutil.copy(FIXTURE / "ops.fmap", tmp_path / "ops.fmap")
    res = runner.invoke(app, ["plan", str(tmp_path / "ops.fmap"), "--estimate", "--counts",
                              "clinics=3,patients=10050", "--tier", "professional",
                              "--users", "10"])
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert "API estimate: zoho, plan professional, 10 user(s)" in out
    # Accounts 1 credit + its deferred lookup (1 update call, 1 read); Contacts 1,005;
    # the merge 1,005 + 101 reads; list users 1
    assert "2,115" in out and "55,000 credits per 24 h" in out
    bad = runner.invoke(app, ["plan", str(tmp_path / "ops.fmap"), "--estimate"])
    assert bad.exit_code == 2
    bad = runner.invoke(app, ["plan", str(tmp_path / "ops.fmap"), "--counts", "x=1",
                              "--tier", "gold"])
    assert bad.exit_code == 2
