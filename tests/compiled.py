"""Compile a ``.fmap`` and import the generated module, as ``fmap run`` does.

The end-to-end and seed-pair tests each need the real generated module of one mapping; this is the
one place that compiles it, fails the test with the diagnostics when it does not compile, writes
the ``.py`` next to the test's other files and loads it.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

__all__ = ["compile_and_load", "compile_text_and_load"]


def compile_and_load(fmap: Path, out_dir: Path, *, display: str | None = None) -> ModuleType:
    """The module generated from ``fmap``, written to ``out_dir/<stem>.py`` and imported under a
    name derived from that path (so two tests' builds never share a ``sys.modules`` entry).
    ``display`` is the path the generated header names (default: ``fmap`` as given)."""
    from compiler.compile import compile_path
    from runtime.executor import load_compiled

    result = compile_path(fmap, display=display)
    assert result.ok, [d.message for d in result.diagnostics]
    py = out_dir / f"{Path(fmap).stem}.py"
    py.write_text(result.python, "utf-8")
    return load_compiled(py)


def compile_text_and_load(text: str, out_dir: Path, stem: str) -> ModuleType:
    """``compile_and_load`` of a mapping given as text (written to ``out_dir/<stem>.fmap``, so
    a sibling schema file and diagnostics' paths work as for a file)."""
    fmap = out_dir / f"{stem}.fmap"
    fmap.write_text(text, "utf-8")
    return compile_and_load(fmap, out_dir)
