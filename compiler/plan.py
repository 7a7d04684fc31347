"""The load planner: in which order the maps of a mapping load, and what must exist first.

The load graph's nodes are the object maps (fan-out targets and nested-array maps included) and the
merges. A map depends on every map its ``ref()`` lookups name (in assignments, ``key``, ``where``,
``skip``, ``attach``); a merge depends on the map it merges into. The order is topological, ties
broken by name (Kahn's algorithm with a sorted ready set), maps before merges, so the same file
always gives the same plan.

Cycles (Contacts.Primary_Referral -> Referrals and Referrals.Contact -> Contacts) are broken by
loading without the cyclic lookup and writing it in the deferred update pass, once both records
exist. Only lookups in plain field assignments can be deferred: a ref in ``key``, ``where``,
``skip``, ``attach`` or a merge's ``by`` decides which record is written at all. Deferral is chosen
deterministically: a self-reference is always deferred; for other cycles, the shortest cycle through
the first node (by name) of the first strongly connected component is broken at its first deferrable
edge, ordered by (dependent map, referenced map), so the map whose lookup is deferred is the one
that loads first. A cycle with no deferrable lookup is FM401.

The schema-setup phase lists the custom modules and fields to create before loading
(``create module/object`` and ``extend`` blocks).
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from compiler.mapping_table import MappingRow, build_mapping_table, md_cell
from dsl import ir
from dsl.codes import diag
from dsl.diagnostics import Diagnostic
from dsl.walk import map_exprs, walk

__all__ = [
    "SchemaChange", "PlanStep", "Phase", "MappingRow", "LoadPlan", "PHASES",
    "build_plan", "render_text", "render_markdown",
]

PHASES = ("schema setup", "load", "merge", "deferred updates")


class SchemaChange(BaseModel):
    action: Literal["create_module", "create_field"]
    object: str
    field: str | None = None
    type: str | None = None
    details: dict = {}
    line: int


class PlanStep(BaseModel):
    name: str
    kind: Literal["map", "merge"]
    source: str
    target: str
    depends_on: list[str]
    deferred_fields: list[str]
    line: int


class Phase(BaseModel):
    name: str
    steps: list[str]
    description: str


class LoadPlan(BaseModel):
    migration: str | None
    source: str | None
    target: str | None
    schema_changes: list[SchemaChange]
    steps: list[PlanStep]
    phases: list[Phase]
    mapping_table: list[MappingRow]
    not_migrated: list[tuple[str, str]]


# ------------------------------------------------------------------------------------ the graph


@dataclass(frozen=True)
class _Use:
    """One map name inside one `ref()` of one statement."""

    target: str
    stmt: object
    span: object  # the target name's span
    where: str  # "assignment to X", "key", "where", ...

    @property
    def field(self) -> str | None:
        return self.stmt.target.value if isinstance(self.stmt, ir.Assign) else None


@dataclass
class _Node:
    name: str
    decl: ir.ObjectMap | ir.MergeMap
    uses: list[_Use]
    parent: str | None  # merges: the map merged into


def _sort_key(name: str) -> tuple[str, str]:
    return (name.casefold(), name)


def _where(stmt) -> str:
    if isinstance(stmt, ir.Assign):
        return f"assignment to `{stmt.target.value}`"
    if isinstance(stmt, ir.KeyStmt):
        return "`key`"
    if isinstance(stmt, ir.Route):
        return "`where`"
    if isinstance(stmt, ir.SkipStmt):
        return "`skip when`"
    if isinstance(stmt, ir.AttachStmt):
        return "`attach`"
    if isinstance(stmt, ir.MergeMap):
        return "merge `by`"
    return "statement"


def step_names(module: ir.Module) -> list[tuple[str, ir.ObjectMap | ir.MergeMap]]:
    """Every map and merge with its step name: its own name, or ``name@line`` for a second
    declaration with the same name (two merges of one child object into one map are legitimate;
    two maps of one name are FM201). The planner and the code generator both name steps here."""
    out: list[tuple[str, ir.ObjectMap | ir.MergeMap]] = []
    seen: set[str] = set()
    for decl in [*module.maps, *module.merges]:
        name = decl.name
        if name in seen:
            name = f"{name}@{decl.span.line}"
        seen.add(name)
        out.append((name, decl))
    return out


def _nodes(module: ir.Module) -> dict[str, _Node]:
    nodes: dict[str, _Node] = {}
    for name, decl in step_names(module):
        uses = []
        for stmt, expr in map_exprs(decl):
            for e in walk(expr):
                if e.kind == "ref":
                    uses.extend(_Use(t.value, stmt, t.span, _where(stmt)) for t in e.targets)
        parent = decl.target.value if isinstance(decl, ir.MergeMap) else None
        nodes[name] = _Node(name, decl, uses, parent)
    names = set(nodes)
    for n in nodes.values():  # refs to unknown maps are FM225 (check); they order nothing
        n.uses = [u for u in n.uses if u.target in names]
        if n.parent not in names:
            n.parent = None
    return nodes


class _Graph:
    def __init__(self, nodes: dict[str, _Node]):
        self.nodes = nodes
        self.deferred: dict[str, list[str]] = {n: [] for n in nodes}
        self.forced: set[tuple[str, str]] = set()  # undeferrable edges ignored for ordering

    def active(self, n: str) -> list[_Use]:
        d = self.deferred[n]
        return [u for u in self.nodes[n].uses if u.field is None or u.field not in d]

    def needs(self, n: str) -> set[str]:
        """Every map `n` needs loaded first (self and forced edges included)."""
        out = {u.target for u in self.active(n)}
        if self.nodes[n].parent is not None:
            out.add(self.nodes[n].parent)
        return out

    def edges(self, n: str) -> set[str]:
        return {t for t in self.needs(n) if t != n and (n, t) not in self.forced}

    def defer(self, n: str, target: str) -> None:
        for u in self.active(n):
            if u.target == target and u.field not in self.deferred[n]:
                self.deferred[n].append(u.field)

    def deferrable(self, n: str, target: str) -> bool:
        if self.nodes[n].parent == target:
            return False
        uses = [u for u in self.active(n) if u.target == target]
        return bool(uses) and all(u.field is not None for u in uses)


def _sccs(nodes: list[str], edges) -> list[list[str]]:
    """Tarjan's algorithm, iterative, visiting nodes and successors in sorted order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(sorted(edges(root), key=_sort_key)))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(edges(w), key=_sort_key))))
                    advanced = True
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                out.append(sorted(comp, key=_sort_key))
    return out


def _shortest_cycle(start: str, comp: set[str], edges) -> list[str]:
    """The shortest cycle through `start` inside a component (BFS, sorted successors)."""
    prev: dict[str, str] = {}
    queue = deque([start])
    seen = {start}
    while queue:
        v = queue.popleft()
        for w in sorted(edges(v), key=_sort_key):
            if w not in comp:
                continue
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(prev[path[-1]])
                return list(reversed(path))
            if w not in seen:
                seen.add(w)
                prev[w] = v
                queue.append(w)
    return [start]  # unreachable for a real component


def _break_cycles(g: _Graph, diags: list[Diagnostic]) -> None:
    names = sorted(g.nodes, key=_sort_key)
    # self-references: always deferred when they can be
    for n in names:
        selfuses = [u for u in g.active(n) if u.target == n]
        if not selfuses:
            continue
        if all(u.field is not None for u in selfuses):
            g.defer(n, n)
        else:
            bad = [u for u in selfuses if u.field is None]
            diags.append(diag(
                "FM401", f"dependency cycle with no deferrable lookup: `{n}` refers to itself "
                         f"in {bad[0].where}",
                bad[0].span,
                hint="a lookup in `key`, `where`, `skip` or `attach` is needed before the record "
                     "is written; look the record up in a field assignment instead",
                related=[(u.span, f"`{n}` refers to itself in {u.where}") for u in bad[1:]],
            ))
            g.forced.add((n, n))
    # other cycles, one at a time
    while True:
        comps = [c for c in _sccs(names, g.edges) if len(c) > 1]
        if not comps:
            return
        comp = min(comps, key=lambda c: _sort_key(c[0]))
        cycle = _shortest_cycle(comp[0], set(comp), g.edges)
        pairs = [(cycle[i], cycle[(i + 1) % len(cycle)]) for i in range(len(cycle))]
        ok = sorted((p for p in pairs if g.deferrable(*p)),
                    key=lambda p: (_sort_key(p[0]), _sort_key(p[1])))
        if ok:
            g.defer(*ok[0])
            continue
        related = []
        for a, b in pairs:
            if g.nodes[a].parent == b:
                related.append((g.nodes[a].decl.target.span, f"`{a}` merges into `{b}`"))
            for u in g.active(a):
                if u.target == b:
                    related.append((u.span, f"`{a}` refers to `{b}` in {u.where}"))
        shown = " -> ".join(f"`{x}`" for x in [*cycle, cycle[0]])
        diags.append(diag(
            "FM401", f"dependency cycle with no deferrable lookup: {shown}",
            related[0][0] if related else g.nodes[cycle[0]].decl.span,
            hint="a cycle can be broken only through a lookup in a field assignment, which the "
                 "deferred update pass fills in; lookups in `key`, `where`, `skip` or `attach` "
                 "are needed before the record is written",
            related=related,
        ))
        g.forced.add(min(pairs, key=lambda p: (_sort_key(p[0]), _sort_key(p[1]))))


def _order(g: _Graph) -> list[str]:
    """Kahn's algorithm; the ready set is ordered maps before merges, then by name."""
    def rank(n: str):
        return (0 if isinstance(g.nodes[n].decl, ir.ObjectMap) else 1, *_sort_key(n))

    deps = {n: g.edges(n) for n in g.nodes}
    dependents: dict[str, list[str]] = {n: [] for n in g.nodes}
    for n, ds in deps.items():
        for d in ds:
            dependents[d].append(n)
    remaining = {n: len(ds) for n, ds in deps.items()}
    ready = [rank(n) + (n,) for n, c in remaining.items() if c == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        n = heapq.heappop(ready)[-1]
        order.append(n)
        for m in dependents[n]:
            remaining[m] -= 1
            if remaining[m] == 0:
                heapq.heappush(ready, rank(m) + (m,))
    if len(order) < len(g.nodes):  # only after FM401; keep every step, by name
        order.extend(sorted((n for n in g.nodes if n not in order), key=rank))
    return order


# ------------------------------------------------------------------------------- schema changes


def _type_text(t: ir.TypeSpec) -> str:
    return t.name.value + (f"({', '.join(str(a) for a in t.args)})" if t.args else "")


def _literal(e) -> object:
    v = getattr(e, "value", None)
    return str(v) if v is not None and not isinstance(v, (str, int, bool)) else v


def _schema_changes(module: ir.Module) -> list[SchemaChange]:
    out: list[SchemaChange] = []
    for s in module.decls(ir.SchemaDecl):
        obj = s.name.value
        if s.action != "extend":
            details: dict = {"kind": s.action}
            if s.label:
                details["label"] = s.label
            out.append(SchemaChange(action="create_module", object=obj, details=details,
                                    line=s.span.line))
        for f in s.fields:
            details = {}
            if f.label:
                details["label"] = f.label
            for flag in ("required", "unique", "external_id", "sensitive"):
                if getattr(f, flag):
                    details[flag] = True
            if f.values:
                details["values"] = [_literal(v) for v in f.values]
            if f.type.name.value == "lookup" and f.type.args:
                details["lookup"] = str(f.type.args[0])
            out.append(SchemaChange(action="create_field", object=obj, field=f.name.value,
                                    type=_type_text(f.type), details=details, line=f.span.line))
    return out


# ---------------------------------------------------------------------------------------- build


def _body_order(decl, fields: list[str]) -> list[str]:
    pos = {a.target.value: i for i, a in reversed(list(enumerate(decl.assignments)))}
    return sorted(fields, key=lambda f: (pos.get(f, len(pos)), f))


def _display(dotted: str) -> str:
    """`patients.appointments` -> `patients.appointments[]` (the source path as written)."""
    head, *rest = dotted.split(".")
    return head + "".join(f".{p}[]" for p in rest)


def build_plan(module: ir.Module) -> tuple[LoadPlan, list[Diagnostic]]:
    diags: list[Diagnostic] = []
    nodes = _nodes(module)
    g = _Graph(nodes)
    _break_cycles(g, diags)
    order = _order(g)
    map_targets = {om.name: om.target.value for om in module.maps}

    steps: list[PlanStep] = []
    for n in order:
        node = nodes[n]
        decl = node.decl
        is_merge = isinstance(decl, ir.MergeMap)
        target = map_targets.get(decl.target.value, decl.target.value) if is_merge \
            else decl.target.value
        steps.append(PlanStep(
            name=n, kind="merge" if is_merge else "map", source=decl.source.dotted(),
            target=target, depends_on=sorted(g.needs(n) - {n}, key=_sort_key),
            deferred_fields=_body_order(decl, g.deferred[n]), line=decl.span.line,
        ))

    changes = _schema_changes(module)
    modules = [c for c in changes if c.action == "create_module"]
    fields = [c for c in changes if c.action == "create_field"]
    loads = [s.name for s in steps if s.kind == "map"]
    merges = [s.name for s in steps if s.kind == "merge"]
    deferred = [s for s in steps if s.deferred_fields]
    phases = [
        Phase(name="schema setup",
              steps=[c.object if c.field is None else f"{c.object}.{c.field}" for c in changes],
              description=f"Create {len(modules)} custom module(s) and {len(fields)} custom "
                          "field(s) before any data loads."),
        Phase(name="load", steps=loads,
              description="Load each map in dependency order: every lookup points at a record "
                          "loaded by an earlier step."),
        Phase(name="merge", steps=merges,
              description="Aggregate child records into one update of each parent record "
                          "already loaded."),
        Phase(name="deferred updates", steps=[s.name for s in deferred],
              description="Write the lookups left out of the first load to break dependency "
                          "cycles" + (": " + ", ".join(f"{s.name}.{f}" for s in deferred
                                                       for f in s.deferred_fields)
                                      if deferred else "") + "."),
    ]
    mig = module.first(ir.MigrationDecl)
    src = module.first(ir.SourceDecl)
    tgt = module.first(ir.TargetDecl)
    plan = LoadPlan(
        migration=mig.title if mig else None,
        source=src.name.value if src else None,
        target=tgt.name.value if tgt else None,
        schema_changes=changes,
        steps=steps,
        phases=phases,
        mapping_table=build_mapping_table(module),
        not_migrated=[(n.subject, n.reason) for n in module.decls(ir.NotMigrated)],
    )
    return plan, diags


# -------------------------------------------------------------------------------------- render


def _title(plan: LoadPlan) -> str:
    route = " -> ".join(x for x in (plan.source, plan.target) if x)
    if plan.migration:
        return plan.migration + (f" ({route})" if route else "")
    return route or "migration"


def _change_text(c: SchemaChange) -> str:
    if c.action == "create_module":
        label = c.details.get("label")
        return f"create {c.details.get('kind', 'module')} {c.object}" + (
            f' "{label}"' if label else "")
    flags = [k for k in ("required", "unique", "external_id", "sensitive") if c.details.get(k)]
    return f"create field {c.object}.{c.field} {c.type}" + (
        f" [{', '.join(flags)}]" if flags else "")


def render_text(plan: LoadPlan) -> str:
    """Phases and load order for the terminal, then the schema changes and the mapping table."""
    out = [f"Load plan: {_title(plan)}", ""]
    steps = {s.name: s for s in plan.steps}
    width = max((len(s.name) for s in plan.steps), default=4)
    num = 0
    for i, ph in enumerate(plan.phases, 1):
        out.append(f"Phase {i}: {ph.name} ({len(ph.steps)} step(s))")
        out.append(f"  {ph.description}")
        if ph.name == "schema setup":
            out.extend(f"    {_change_text(c)}" for c in plan.schema_changes)
        elif ph.name == "deferred updates":
            for n in ph.steps:
                out.append(f"    {n}: {', '.join(steps[n].deferred_fields)}")
        else:
            for n in ph.steps:
                num += 1
                s = steps[n]
                line = f"  {num:>3}. {n:<{width}}  {_display(s.source)} -> {s.target}"
                if s.depends_on:
                    line += f"  (after {', '.join(s.depends_on)})"
                if s.deferred_fields:
                    line += f"  [deferred: {', '.join(s.deferred_fields)}]"
                out.append(line)
        out.append("")
    out.append("Object mapping")
    if plan.mapping_table:
        w_src = max(len(r.source) for r in plan.mapping_table)
        w_tgt = max(len(r.target) for r in plan.mapping_table)
        for r in plan.mapping_table:
            line = f"  {r.source:<{w_src}} -> {r.target:<{w_tgt}}  {r.cardinality}"
            if r.notes:
                line += f"  # {r.notes}"
            out.append(line)
    else:
        out.append("  (no maps)")
    return "\n".join(out).rstrip() + "\n"


def _table(header: list[str], rows: list[list[object]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out.extend("| " + " | ".join(md_cell(c) for c in row) + " |" for row in rows)
    return out


def _details_text(c: SchemaChange) -> str:
    parts = []
    for k, v in c.details.items():
        if k in ("kind", "lookup"):  # the type already says lookup(X)
            continue
        if v is True:
            parts.append(k.replace("_", " "))
        elif isinstance(v, list):
            parts.append(f"{k}: " + ", ".join(str(x) for x in v))
        else:
            parts.append(f"{k}: {v}")
    return "; ".join(parts)


def render_markdown(plan: LoadPlan) -> str:
    """The customer-facing document: schema changes, load order, object mapping, not migrated."""
    out = [f"# Migration plan: {md_cell(_title(plan))}", ""]
    if plan.source or plan.target:
        out += [f"Source system: `{plan.source or '?'}`; destination: `{plan.target or '?'}`.", ""]

    out += ["## Schema changes", "",
            "Custom modules and fields created in the destination before any data loads.", ""]
    if plan.schema_changes:
        out += _table(
            ["#", "Action", "Object", "Field", "Type", "Details"],
            [[i, "create " + ("module" if c.action == "create_module" else "field"), c.object,
              c.field or "", c.type or "", _details_text(c)]
             for i, c in enumerate(plan.schema_changes, 1)])
    else:
        out.append("No custom modules or fields are needed.")
    out.append("")

    out += ["## Load order", ""]
    phase_of = {n: ph.name for ph in plan.phases if ph.name in ("load", "merge") for n in ph.steps}
    if plan.steps:
        out += _table(
            ["#", "Step", "Phase", "Source", "Target", "Loaded after", "Deferred fields"],
            [[i, s.name, phase_of.get(s.name, ""), _display(s.source), s.target,
              ", ".join(s.depends_on), ", ".join(s.deferred_fields)]
             for i, s in enumerate(plan.steps, 1)])
    else:
        out.append("Nothing to load.")
    out.append("")
    deferred = [s for s in plan.steps if s.deferred_fields]
    if deferred:
        out += ["Deferred updates: these lookups are written in a second pass, after every record "
                "above is loaded, because the records refer to each other:", ""]
        out += [f"- {md_cell(s.name)}: {md_cell(', '.join(s.deferred_fields))}" for s in deferred]
        out.append("")

    out += ["## Object mapping", ""]
    if plan.mapping_table:
        out += _table(["Source", "Target", "Cardinality", "Notes"],
                      [[r.source, r.target, r.cardinality, r.notes] for r in plan.mapping_table])
    else:
        out.append("No object maps.")
    out.append("")

    out += ["## Not migrated", ""]
    if plan.not_migrated:
        out += _table(["Item", "Reason"], [[s, r] for s, r in plan.not_migrated])
    else:
        out.append("Everything listed above is migrated.")
    return "\n".join(out).rstrip() + "\n"
