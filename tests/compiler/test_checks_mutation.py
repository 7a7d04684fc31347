"""bench/mutation_score.py: every seeded, schema-detectable mutation of the realistic fixture is
caught at compile time on the line it touched (a smaller count than the benchmark's)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("mutation_score",
                                                  ROOT / "bench" / "mutation_score.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_every_mutation_caught_on_its_line(bench):
    rep = bench.score(count=40, seed=11)
    assert rep.total == 40
    assert set(rep.by_kind) == set(bench.KINDS)  # every kind of mutation is exercised
    assert rep.misses == [], "\n".join(f"{m.kind} line {m.line}: {m.description}: {m.found}"
                                       for m in rep.misses)
    assert rep.score == 1.0


def test_mutants_are_seeded_and_distinct_from_the_base(bench):
    text = bench.FIXTURE.read_text(encoding="utf-8")
    a = bench.mutants(text, 12, 5, bench.FIXTURE.parent)
    b = bench.mutants(text, 12, 5, bench.FIXTURE.parent)
    assert [m.text for m in a] == [m.text for m in b]
    assert all(m.text != text for m in a)


def test_cli_prints_the_score(bench, capsys):
    assert bench.main(["-n", "10", "--seed", "2"]) == 0
    assert capsys.readouterr().out.startswith("mutation score: 10/10 = 100.0%")
