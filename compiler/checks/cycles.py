"""FM401 in `fmap check`: dependency cycles no deferred update can break (from the load planner)."""

from __future__ import annotations

from compiler.plan import build_plan
from compiler.program import Program
from compiler.schemas import Schemas
from dsl.diagnostics import Diagnostic

__all__ = ["check_cycles"]


def check_cycles(prog: Program, s: Schemas) -> list[Diagnostic]:
    _plan, diags = build_plan(prog.module)
    return [d for d in diags if d.code == "FM401"]
