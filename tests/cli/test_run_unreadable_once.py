"""`fmap run` says once that some modified-at values do not parse: the executor hands the counts
to its caller in RunResult.unreadable_modified (a library caller's to report) and the CLI prints
them in its summary; the executor does not also log them (the log line reached the terminal as a
second copy of the warning). The counts in RunResult: tests/runtime/test_delta.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.cli.test_run_delta_cli import ENV, ROWS, project, write_rows

ROOT = Path(__file__).resolve().parents[2]


def test_the_warning_appears_once(tmp_path: Path, monkeypatch):
    """In a real process: with no logging configured, Python prints a warning logged by the
    library on stderr (logging.lastResort), which pytest's own log capture would hide."""
    args = project(tmp_path, monkeypatch)
    write_rows(tmp_path / "src", [*ROWS[:3], ("P4", "Davis", "2025-13-45 noon")])
    env = {**os.environ, **ENV, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "fmap", *args], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert out.count("do not parse") == 1, out
    assert "patients: 1 modified-at value(s) do not parse" in r.stdout
    assert "noon" not in out  # the count, never the value
