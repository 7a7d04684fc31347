"""A mapping and the files it imports, parsed: the unit every compiler pass works on.

Imports bring value maps and params of other .fmap files into scope (a shared `common.fmap` of
gender codes, say). Import paths are relative to the importing file; cycles are refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dsl import ir
from dsl.codes import diag
from dsl.diagnostics import Diagnostic
from dsl.parser import parse_file, parse_text

__all__ = ["Program", "load_program", "program_from_text"]


@dataclass
class Program:
    module: ir.Module | None
    imports: list[ir.Module] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # display name -> text (for carets)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    path: Path | None = None

    @property
    def syntax_ok(self) -> bool:
        return self.module is not None and not any(
            d.severity.value == "error" for d in self.diagnostics
        )

    def valuemaps(self) -> dict[str, ir.ValueMapDecl]:
        out: dict[str, ir.ValueMapDecl] = {}
        for m in [*self.imports, *([self.module] if self.module else [])]:
            out.update(m.valuemaps)
        return out

    def params(self) -> dict[str, ir.ParamDecl]:
        out: dict[str, ir.ParamDecl] = {}
        for m in [*self.imports, *([self.module] if self.module else [])]:
            out.update(m.params)
        return out


def load_program(path: str | Path, display: str | None = None) -> Program:
    p = Path(path)
    name = display or str(path)
    result = parse_file(p, name)
    prog = Program(module=result.module, diagnostics=list(result.diagnostics), path=p)
    if result.source is not None:
        prog.sources[name] = result.source
    if result.module is not None:
        _load_imports(prog, result.module, p.parent, Path(name).parent, {p.resolve()})
    return prog


def program_from_text(text: str, name: str = "<input>", base_dir: Path | None = None) -> Program:
    result = parse_text(text, name)
    prog = Program(module=result.module, diagnostics=list(result.diagnostics))
    prog.sources[name] = text
    if result.module is not None and base_dir is not None:
        _load_imports(prog, result.module, base_dir, Path(name).parent, set())
    return prog


def _load_imports(prog: Program, module: ir.Module, base: Path, shown_base: Path,
                  seen: set[Path]) -> None:
    for imp in module.decls(ir.ImportDecl):
        target = (base / imp.path)
        shown = str(shown_base / imp.path)
        if not target.is_file():
            prog.diagnostics.append(diag(
                "FM216", f"imported file `{imp.path}` not found", imp.span,
                hint=f"paths are relative to `{shown_base or '.'}`",
            ))
            continue
        real = target.resolve()
        if real in seen:
            prog.diagnostics.append(diag("FM216", f"`{imp.path}` imports itself (a cycle)",
                                         imp.span, hint="remove the circular import"))
            continue
        result = parse_file(target, shown)
        if result.source is not None:
            prog.sources[shown] = result.source
        prog.diagnostics.extend(result.diagnostics)
        if result.module is not None:
            prog.imports.append(result.module)
            _load_imports(prog, result.module, target.parent, Path(shown).parent, seen | {real})
