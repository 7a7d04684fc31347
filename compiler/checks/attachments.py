"""FM317: `attach` without a `limit` (or with one above the CRM's) where the dialect has a limit."""

from __future__ import annotations

from compiler.program import Program
from compiler.schemas import Schemas
from dsl import ir
from dsl.codes import diag
from dsl.diagnostics import Diagnostic

__all__ = ["check_attachments", "human_bytes"]


def human_bytes(n: int) -> str:
    for unit, size in (("GB", 1024 ** 3), ("MB", 1024 ** 2), ("KB", 1024)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} bytes"


def check_attachments(prog: Program, s: Schemas) -> list[Diagnostic]:
    d = s.dialect
    if d is None or not d.attachment_limit_bytes:
        return []
    cap = d.attachment_limit_bytes
    out: list[Diagnostic] = []
    for om in [*prog.module.maps, *prog.module.merges]:
        for st in om.stmts(ir.AttachStmt):
            if st.limit_bytes is None:
                out.append(diag(
                    "FM317", f"attachments have no size limit; {d.label} accepts at most "
                             f"{human_bytes(cap)}", st.span,
                    hint="say `limit 25MB oversize quarantine`"))
            elif st.limit_bytes > cap:
                out.append(diag(
                    "FM317", f"`limit {st.limit_text}` is above what {d.label} accepts "
                             f"({human_bytes(cap)})", st.span,
                    hint=f"lower it to at most {human_bytes(cap).replace(' ', '')}"))
    return out
