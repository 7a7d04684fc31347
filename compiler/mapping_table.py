"""The customer-facing object-mapping table, generated from the .fmap itself.

One row per object map and merge, in file order, then one per `not migrated` item. Because it is
computed from the IR the compiler also generates code from, the table cannot disagree with what
runs. Cardinality in words a customer reads:

- ``1:1``: one target record per source record;
- ``1:1 (routed: where ...)`` / ``(routed: otherwise)``: one of several alternative targets;
- ``1:many``: a nested-array map (one record per element) or a ``split`` field;
- ``many:1``: a merge (child records aggregated into an update of an already-loaded record);
- ``fan-out: also loads X``: the same source record also feeds other maps.
"""

from __future__ import annotations

from collections import defaultdict

from pydantic import BaseModel

from dsl import ir
from dsl.formatter import format_expr

__all__ = ["MappingRow", "build_mapping_table", "md_cell"]


class MappingRow(BaseModel):
    source: str
    target: str
    cardinality: str
    notes: str
    line: int


def md_cell(value: object) -> str:
    """A Markdown table cell: `|` escaped, line breaks folded, never empty."""
    text = " ".join(str(value).split())
    text = text.replace("\\", "\\\\").replace("|", "\\|")
    return text or " "


def _notes(decl) -> str:
    return " ".join(n.strip() for n in decl.notes if n.strip())


def build_mapping_table(module: ir.Module) -> list[MappingRow]:
    maps = module.maps
    by_name = {}
    for om in maps:
        by_name.setdefault(om.name, om)
    groups: dict[str, list[ir.ObjectMap]] = defaultdict(list)
    for om in maps:
        groups[om.source.dotted()].append(om)

    rows: list[MappingRow] = []
    for decl in module.body:
        if isinstance(decl, ir.ObjectMap):
            rows.append(_map_row(decl, groups[decl.source.dotted()]))
        elif isinstance(decl, ir.MergeMap):
            parent = by_name.get(decl.target.value)
            target = parent.target.value if parent is not None else decl.target.value
            quals = [f"merged into {decl.target.value} by {format_expr(decl.by)}"]
            rows.append(MappingRow(
                source=decl.source.display(), target=target,
                cardinality=f"many:1 ({'; '.join(quals)})", notes=_notes(decl),
                line=decl.span.line,
            ))
        elif isinstance(decl, ir.NotMigrated):
            rows.append(MappingRow(source=decl.subject, target="-", cardinality="not migrated",
                                   notes=decl.reason, line=decl.span.line))
    return rows


def _map_row(om: ir.ObjectMap, group: list[ir.ObjectMap]) -> MappingRow:
    many = om.source.is_array or bool(om.stmts(ir.SplitStmt))
    quals: list[str] = []
    if om.route is not None:
        if om.route.mode == "where" and om.route.cond is not None:
            quals.append(f"routed: where {format_expr(om.route.cond)}")
        else:
            quals.append("routed: otherwise")
    for s in om.stmts(ir.SplitStmt):
        quals.append(f"split {s.target.value} into parts of at most {s.max} characters")
    plain = [m for m in group if m.route is None and m is not om]
    routed = [m for m in group if m.route is not None and m is not om]
    others = [m.target.value for m in plain]
    if routed and om.route is None:
        others.append(" or ".join(m.target.value for m in routed))
    if others:
        quals.append("fan-out: also loads " + ", ".join(others))
    card = "1:many" if many else "1:1"
    if quals:
        card += f" ({'; '.join(quals)})"
    return MappingRow(source=om.source.display(), target=om.target.value, cardinality=card,
                      notes=_notes(om), line=om.span.line)
