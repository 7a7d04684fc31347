"""Parse + IR throughput on a generated 10,000-line .fmap (target: >= 20,000 lines/s).

Measures `dsl.parser.parse_text` (lexing, LALR parsing, IR construction, comment collection) on a
realistic generated mapping (bench/gen_fmap.py), and in the same process, on the same text:

- `lark tree`: Lark alone (its contextual lexer, no transformer) building a plain parse tree. This
  is the baseline to read the figure against: the machine may be shared and loaded, so absolute
  lines/s vary run to run while the ratio stays put.
- `lark + IRBuilder`: the previous pipeline, Lark's own lexer and parser loop running the same IR
  builder (what `parse_text` did before the hand-written lexer and driver in `dsl/lexer.py`).
- `lark tree, propagate_positions`: for reference.

`propagate_positions` stays OFF in the real parser (PERFORMANCE.md: it roughly halves
throughput, because Lark then computes and stores a position on every tree node). The IR does not
need it: every span is built from tokens (`Token.line/column/end_line/end_column`) in the IR
builder, and composite nodes cover their first and last child.

Runs are interleaved and the best of N is kept for each variant, to damp noise from other load.
Figures are CPU time of this process (`time.process_time`): on a shared, loaded machine wall time
mostly measures the wait for a core; wall-clock figures are printed too.
Run: .venv/bin/python bench/bench_parse.py [lines] [--profile]
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_fmap import generate  # noqa: E402
from lark import Lark  # noqa: E402

from dsl.parser import get_parser, parse_text  # noqa: E402
from dsl.transform import IRBuilder  # noqa: E402


def main(lines: int = 10_000, rounds: int = 7, profile: bool = False) -> dict[str, float]:
    text = generate(lines)
    n = text.count("\n")
    get_parser()
    r = parse_text(text, "bench.fmap")
    assert r.module is not None and not r.diagnostics, r.diagnostics[:3]
    if profile:
        cProfile.runctx("parse_text(text, 'bench.fmap')", globals(), {"text": text}, "/tmp/parse.prof")
        pstats.Stats("/tmp/parse.prof").sort_stats("tottime").print_stats(20)

    tree = Lark.open_from_package("grammar", "fmap.lark", ("",), parser="lalr")
    old = Lark.open_from_package("grammar", "fmap.lark", ("",), parser="lalr",
                                 transformer=IRBuilder(), maybe_placeholders=True)
    pos = Lark.open_from_package("grammar", "fmap.lark", ("",), parser="lalr",
                                 propagate_positions=True)
    variants = {
        "fmap parse_text (parse+IR)": lambda: parse_text(text, "bench.fmap"),
        "lark tree (baseline)": lambda: tree.parse(text),
        "lark + IRBuilder (previous)": lambda: old.parse(text),
        "lark tree, propagate_positions": lambda: pos.parse(text),
    }
    best = dict.fromkeys(variants, float("inf"))
    best_wall = dict.fromkeys(variants, float("inf"))
    for _ in range(rounds):
        for name, fn in variants.items():
            t, w = time.process_time(), time.perf_counter()
            fn()
            best[name] = min(best[name], time.process_time() - t)
            best_wall[name] = min(best_wall[name], time.perf_counter() - w)
    rate = {name: n / t for name, t in best.items()}
    print(f"lines: {n}   (CPU time; wall clock in brackets)")
    for name, r_ in rate.items():
        print(f"{name:32s} {r_:10,.0f} lines/s   ({n / best_wall[name]:,.0f})")
    base = rate["lark tree (baseline)"]
    print(f"ratio parse+IR / lark tree:       {rate['fmap parse_text (parse+IR)'] / base:.2f}x")
    print(f"ratio parse+IR / previous:        "
          f"{rate['fmap parse_text (parse+IR)'] / rate['lark + IRBuilder (previous)']:.2f}x")
    return rate


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    main(int(args[0]) if args else 10_000, profile="--profile" in sys.argv)
