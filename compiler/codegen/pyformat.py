"""Format generated code with ruff and keep the `.fmap` line table right.

The emitter writes correct code with simple layout; ruff then sorts the imports and wraps long
lines. Wrapping moves statements, so the line table is rebuilt by matching AST nodes: formatting
never changes the AST, so the k-th statement before formatting is the k-th after, and every line of
its new extent maps to its `.fmap` line (a traceback inside a wrapped statement may point at any of
them). Without ruff installed the unformatted text is used as is (still valid, still mapped).
"""

from __future__ import annotations

import ast
import subprocess
from functools import lru_cache

__all__ = ["format_python", "ruff_version"]

# Settings are passed explicitly so the output does not depend on the caller's ruff config.
_FORMAT_ARGS = ["--line-length", "100", "--config", "format.quote-style='preserve'"]
_ISORT_ARGS = ["--select", "I", "--config", "lint.isort.case-sensitive=false",
               "--config", "lint.isort.combine-as-imports=true",
               "--line-length", "100"]


@lru_cache(maxsize=1)
def _ruff() -> str | None:
    try:
        from ruff.__main__ import find_ruff_bin
    except ImportError:  # pragma: no cover - ruff is a dependency
        return None
    try:
        return str(find_ruff_bin())
    except FileNotFoundError:  # pragma: no cover
        return None


@lru_cache(maxsize=1)
def ruff_version() -> str:
    exe = _ruff()
    if exe is None:
        return "none"
    return subprocess.run([exe, "--version"], capture_output=True, text=True,
                          check=False).stdout.strip()


def _run(args: list[str], text: str) -> str | None:
    exe = _ruff()
    if exe is None:
        return None
    proc = subprocess.run([exe, *args], input=text, capture_output=True, text=True,
                          check=False, env={"NO_COLOR": "1", "PATH": ""})
    if proc.returncode not in (0, 1) or not proc.stdout:
        return None
    return proc.stdout


def _anchors(tree: ast.AST) -> list[tuple[int, int]]:
    """(first line, last line) of every statement and dict entry, in a fixed traversal order."""
    out: list[tuple[int, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt):
            out.append((node.lineno, node.end_lineno or node.lineno))
        elif isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values, strict=False):
                if k is not None:
                    out.append((k.lineno, v.end_lineno or v.lineno))
    return out


def format_python(text: str, line_table: dict[int, tuple[int, str]]) -> tuple[str, dict[int, tuple[int, str]]]:
    """Format ``text`` (1-based ``line_table`` keys) and return the new text and table."""
    sorted_text = _run(["check", "--fix-only", "--exit-zero", "-q", *_ISORT_ARGS,
                        "--stdin-filename", "generated.py", "-"], text)
    if sorted_text is None:
        return text, line_table
    formatted = _run(["format", *_FORMAT_ARGS, "--stdin-filename", "generated.py", "-"],
                     sorted_text)
    if formatted is None:
        return text, line_table
    before = _anchors(ast.parse(text))
    after = _anchors(ast.parse(formatted))
    if len(before) != len(after):  # pragma: no cover - formatting changed the AST
        return text, line_table
    first_at: dict[int, int] = {}
    for i, (start, _end) in enumerate(before):
        first_at.setdefault(start, i)
    extents = []
    for line, target in sorted(line_table.items()):
        i = first_at.get(line)
        if i is not None:
            start, end = after[i]
            extents.append((end - start, start, end, target))
    # a function's extent covers its body: inner statements (smaller extents) win
    new_table: dict[int, tuple[int, str]] = {}
    for _size, start, end, target in sorted(extents, key=lambda x: (-x[0], x[1])):
        for ln in range(start, end + 1):
            new_table[ln] = target
    return formatted, new_table
