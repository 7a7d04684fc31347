"""The one writer generated code goes through (after Jinja's CodeGenerator).

``writeline(text, line=N)`` records which `.fmap` line every emitted statement comes from; the
resulting table becomes the module's ``FMAP_LINES`` so a runtime error names `mappings/x.fmap:42`.
Indentation is tracked here and nowhere else. The writer knows nothing about the language: callers
hand it finished Python text built only from ``repr``'d literals and compiler-chosen names.
"""

from __future__ import annotations

__all__ = ["CodeWriter"]


class CodeWriter:
    def __init__(self, indent: str = "    ") -> None:
        self._lines: list[str] = []
        self._level = 0
        self._indent = indent
        # (index of the emitted line, .fmap line, rule) for every statement that has a source line
        self.debug_info: list[tuple[int, int, str]] = []

    def indent(self) -> None:
        self._level += 1

    def outdent(self) -> None:
        assert self._level > 0
        self._level -= 1

    def writeline(self, text: str, line: int | None = None, rule: str = "") -> None:
        if line is not None:
            self.debug_info.append((len(self._lines), line, rule))
        self._lines.append(self._indent * self._level + text if text else "")

    def blank(self, n: int = 1) -> None:
        for _ in range(n):
            self._lines.append("")

    @property
    def lines(self) -> list[str]:
        return list(self._lines)

    def source(self) -> str:
        return "\n".join(self._lines)
