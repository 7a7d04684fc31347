"""FM309: a value the assignment can produce that the target picklist does not have.

Checked for fields with picklist values: direct literals, `if`/`??` branches, and the outputs of a
value map applied to the field (the diagnostic points at the value-map entry).
"""

from __future__ import annotations

from compiler.checks._scope import contexts, literal_outputs
from compiler.program import Program
from compiler.resolve import suggest
from compiler.schemas import Schemas
from dsl.codes import diag
from dsl.diagnostics import Diagnostic

__all__ = ["check_picklists"]


def check_picklists(prog: Program, s: Schemas) -> list[Diagnostic]:
    if s.target is None:
        return []
    out: list[Diagnostic] = []
    for om, ctx, obj in contexts(prog, s):
        if obj is None:
            continue
        for a in om.assignments:
            f = obj.field(a.target.value)
            if f is None or not f.picklist_values or f.type.value not in ("picklist",
                                                                          "multipicklist"):
                continue
            allowed = set(f.picklist_values)
            for node, value in literal_outputs(a.value, ctx):
                if str(value) in allowed:
                    continue
                near = suggest(str(value), f.picklist_values)
                out.append(diag(
                    "FM309", f"\"{value}\" is not a value of the `{obj.api_name}.{f.api_name}` "
                             "picklist", node.span,
                    hint=(f"did you mean \"{near}\"? " if near else "")
                    + "values: " + ", ".join(f'"{v}"' for v in f.picklist_values[:12])
                    + (" ..." if len(f.picklist_values) > 12 else ""),
                    related=[(a.target.span, "assigned here")] if node.span.line != a.span.line
                    else None))
    return out
