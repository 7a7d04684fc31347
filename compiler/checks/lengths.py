"""FM312: a value longer than the target field allows.

A string literal's length, a source field's declared `max_length` (through `trim`, `lower`... and
concatenation) or a value map's longest output, against the target field's `max_length`. `truncate`
bounds the value; `split Field max N` handles long text on purpose.
"""

from __future__ import annotations

from compiler.checks._scope import contexts, max_length
from compiler.program import Program
from compiler.schemas import Schemas
from dsl import ir
from dsl.codes import diag
from dsl.diagnostics import Diagnostic

__all__ = ["check_lengths"]


def check_lengths(prog: Program, s: Schemas) -> list[Diagnostic]:
    if s.target is None:
        return []
    out: list[Diagnostic] = []
    for om, ctx, obj in contexts(prog, s):
        if obj is None:
            continue
        split = {st.target.value for st in om.stmts(ir.SplitStmt)}
        for a in om.assignments:
            f = obj.field(a.target.value)
            if f is None or f.max_length is None or a.target.value in split or f.read_only:
                continue
            if f.type.value not in ("text", "textarea", "email", "phone", "url", "picklist"):
                continue
            found = max_length(a.value, ctx)
            if found is None or found[0] <= f.max_length:
                continue
            n, node = found
            lit = node.kind == "string" or node.span.line != a.span.line
            what = f"\"{_short(node.value)}\" is {n} characters" if node.kind == "string" \
                else f"the value can be {n} characters"
            out.append(diag(
                "FM312", f"{what}; `{obj.api_name}.{f.api_name}` holds at most {f.max_length}",
                node.span if lit else a.value.span,
                hint=f"shorten it, or write `... | truncate({f.max_length})`"
                + (f" or `split {f.api_name} max {f.max_length}`" if f.type.value == "textarea"
                   else "")))
    return out


def _short(v: str) -> str:
    return v if len(v) <= 40 else v[:37] + "..."
