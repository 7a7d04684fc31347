"""Compile a ``.fmap`` and import the generated module, as ``fmap run`` does.

The end-to-end and seed-pair tests each need the real generated module of one mapping; this is the
one place that compiles it, fails the test with the diagnostics when it does not compile, writes
the ``.py`` next to the test's other files and loads it.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

__all__ = ["compile_and_load"]


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
