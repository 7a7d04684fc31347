"""bench/bench_transform.py on a few records: the generated module's output equals the
hand-written mapping's on every record (the script asserts it before timing), and each collector
setting is timed and reported. Timings themselves are never asserted."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench import bench_transform  # noqa: E402


def test_bench_runs_and_checks_equality(capsys):
    assert bench_transform.main(["--records", "3000", "--slow-records", "0", "--repeat", "1",
                                 "--batch", "1000", "--no-freeze"]) == 0  # freezing would outlive the test
    out = capsys.readouterr().out
    assert "outputs equal to the hand-written ones: fmap generated (3,000 records)" in out
    for row in ("as run (executor's GC vs GC on):", "like for like, GC on:",
                "like for like, GC off:", "like for like, executor's GC:"):
        assert row in out
