"""Walking expressions: every pass needs "all sub-expressions of X" and the statements of a map."""

from __future__ import annotations

from collections.abc import Iterator

from dsl import ir

__all__ = ["children", "walk", "map_exprs"]


def children(e) -> list:
    k = e.kind
    if k == "binop":
        return [e.left, e.right]
    if k == "unary":
        return [e.operand]
    if k == "if":
        return [e.cond, e.then, e.otherwise]
    if k == "pipe":
        return [e.value, *e.args, *(kw.value for kw in e.kwargs)]
    if k == "call":
        return [*e.args, *(kw.value for kw in e.kwargs)]
    if k == "list":
        return list(e.items)
    if k == "ref":
        return [e.key]
    if k == "owner":
        return [e.email]
    return []


def walk(e) -> Iterator:
    """Pre-order, iterative (pipe chains can be long)."""
    stack = [e]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(children(node)))


def map_exprs(m: ir.ObjectMap | ir.MergeMap) -> Iterator[tuple[object, object]]:
    """(statement-or-route, expression) for every top-level expression in a map."""
    if isinstance(m, ir.ObjectMap) and m.route is not None and m.route.cond is not None:
        yield m.route, m.route.cond
    if isinstance(m, ir.MergeMap):
        yield m, m.by
    for s in m.body:
        if isinstance(s, ir.KeyStmt):
            yield s, s.value
        elif isinstance(s, ir.Assign):
            yield s, s.value
        elif isinstance(s, ir.AttachStmt):
            yield s, s.path
            if s.file_name is not None:
                yield s, s.file_name
        elif isinstance(s, ir.SkipStmt):
            yield s, s.cond
