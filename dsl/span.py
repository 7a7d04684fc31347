"""Source positions. Every IR node and every diagnostic carries one.

Lines and columns are 1-based; ``end_column`` is exclusive (the column after the last character), as
Lark reports it, so a one-character token at column 5 has ``column=5, end_column=6``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["Span", "make_span"]


class Span(BaseModel):
    model_config = ConfigDict(frozen=True)

    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"

    def cover(self, other: Span | None) -> Span:
        """The smallest span containing both (same file)."""
        if other is None or other is self:
            return self
        a, b = self.__dict__, other.__dict__
        if (a["line"], a["column"]) <= (b["line"], b["column"]):
            line, column = a["line"], a["column"]
        else:
            line, column = b["line"], b["column"]
        if (a["end_line"], a["end_column"]) >= (b["end_line"], b["end_column"]):
            end_line, end_column = a["end_line"], a["end_column"]
        else:
            end_line, end_column = b["end_line"], b["end_column"]
        return make_span(a["file"], line, column, end_line, end_column)

    @staticmethod
    def point(file: str, line: int, column: int) -> Span:
        return make_span(file, line, column, line, column + 1)


_new = object.__new__
_set = object.__setattr__
_FIELDS = frozenset({"file", "line", "column", "end_line", "end_column"})


def make_span(file: str, line: int, column: int, end_line: int, end_column: int) -> Span:
    """Build a Span without validation. The parser creates one per token and per node, and
    pydantic's ``model_construct`` made span creation the largest single cost of parsing."""
    s = _new(Span)
    _set(s, "__dict__", {"file": file, "line": line, "column": column, "end_line": end_line,
                         "end_column": end_column})
    _set(s, "__pydantic_fields_set__", _FIELDS)
    _set(s, "__pydantic_extra__", None)
    _set(s, "__pydantic_private__", None)
    return s
