"""`fmap run` says how many files `oversize skip` left out on a record map (their records were
loaded without them): counts only, no file names (they are often patient names)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from fmap.cli import app

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "executor" / "cli"
ENV = {"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}


def test_run_prints_the_files_left_out(tmp_path, monkeypatch):
    shutil.copytree(FIX, tmp_path, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    fmap = (tmp_path / "clinic.fmap").read_text("utf-8").replace(
        "  Date_of_Birth = dob | date(\"%d/%m/%Y\")\n",
        "  Date_of_Birth = dob | date(\"%d/%m/%Y\")\n"
        "  attach photo as photo_name limit 1KB oversize skip\n")
    (tmp_path / "clinic.fmap").write_text(fmap, "utf-8")
    patients = json.loads((tmp_path / "src" / "patients.json").read_text("utf-8"))
    patients[0].update(photo="smith-portrait.jpg", photo_name="smith-portrait.jpg")
    (tmp_path / "src" / "patients.json").write_text(json.dumps(patients), "utf-8")
    (tmp_path / "src" / "smith-portrait.jpg").write_bytes(b"x" * 2048)
    result = CliRunner().invoke(app, [
        "run", "clinic.fmap", "--source", "src", "--target", "sandbox:zoho?users=users.json",
        "--state", str(tmp_path / "st" / "state.sqlite"), "--files-root", "src"], env=ENV)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Contacts: 1 file(s) over the size limit were not uploaded" in result.output
    assert "smith" not in result.output.lower()
