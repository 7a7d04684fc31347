"""Parse + IR throughput on a generated 10,000-line .fmap (target: >= 20,000 lines/s).

Prints lines/second for `dsl.parser.parse_text` (lexing, LALR parsing, IR construction) and, as a
baseline in the same process, for Lark alone building a plain parse tree from the same grammar
without positions, so the figure can be read as a ratio on any machine.
Run: .venv/bin/python bench/bench_parse.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_fmap import generate  # noqa: E402
from lark import Lark  # noqa: E402

from dsl.parser import get_parser, parse_text  # noqa: E402


def best_of(fn, n=5) -> float:
    best = float("inf")
    for _ in range(n):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main(lines: int = 10_000) -> None:
    text = generate(lines)
    get_parser()
    r = parse_text(text, "bench.fmap")
    assert r.module is not None and not r.diagnostics, r.diagnostics[:3]
    t_ir = best_of(lambda: parse_text(text, "bench.fmap"))
    plain = Lark.open_from_package("grammar", "fmap.lark", ("",), parser="lalr")
    t_tree = best_of(lambda: plain.parse(text))
    pos = Lark.open_from_package("grammar", "fmap.lark", ("",), parser="lalr",
                                 propagate_positions=True)
    t_pos = best_of(lambda: pos.parse(text))
    print(f"lines: {lines}")
    print(f"fmap parse+IR:                  {lines / t_ir:10,.0f} lines/s")
    print(f"lark tree only (baseline):      {lines / t_tree:10,.0f} lines/s")
    print(f"lark tree, propagate_positions: {lines / t_pos:10,.0f} lines/s")
    print(f"ratio parse+IR / tree baseline: {t_tree / t_ir:.2f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
