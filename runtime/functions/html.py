"""Rich text / HTML to plain text, with the standard library's ``html.parser`` (no dependency).

Practice-management systems store notes as HTML fragments (often sloppy: unclosed ``<p>``, ``<br>``
runs, ``&nbsp;`` padding); CRM note fields want plain text with the paragraph structure intact.
"""

from __future__ import annotations

import re
import textwrap
from html.parser import HTMLParser
from typing import Any

from .text import _str
from .values import MISSING

__all__ = ["html_to_text"]

# Paragraph-level blocks: separated from what surrounds them by a blank line.
_PARAGRAPH_TAGS = frozenset(
    {"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "ul", "ol", "dl",
     "figure", "address"}
)
# Line-level blocks: start and end on their own line.
_LINE_TAGS = frozenset(
    {"div", "tr", "li", "dt", "dd", "section", "article", "header", "footer", "nav", "aside",
     "main", "form", "fieldset", "hr", "caption", "figcaption", "details", "summary", "center"}
)
_DROP_TAGS = frozenset({"script", "style", "template", "head", "title", "noscript"})
_CELL_TAGS = frozenset({"td", "th"})
_WS = re.compile(r"\s+")
_BLANK = object()  # a paragraph separator in the line list


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[Any] = []  # str lines, or _BLANK paragraph separators
        self.buf: list[str] = []
        self.prefix = ""  # bullet and indentation of the current line ("  - ")
        self.drop_depth = 0
        self.list_depth = 0
        self.pre_depth = 0
        self.cells_in_row = 0

    # -- line management
    def _content(self) -> str:
        return _WS.sub(" ", "".join(self.buf)).strip()

    def _end_line(self, force: bool) -> None:
        """End the current line; ``force`` (a ``<br>``) keeps it even when empty."""
        content = self._content()
        if content:
            self.lines.append(self.prefix + content)
        elif force:
            self.lines.append("")
        else:
            return  # nothing written yet: a pending bullet waits for its text (<li><p>text)
        self.buf = []
        self.prefix = ""

    def _paragraph(self) -> None:
        self._end_line(False)
        if self.list_depth == 0:  # inside a list item a <p> is only a line
            self.lines.append(_BLANK)

    # -- parser callbacks
    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in _DROP_TAGS:
            self.drop_depth += 1
            return
        if tag == "br":
            self._end_line(True)
        elif tag == "li":
            self._end_line(False)
            self.prefix = "  " * max(self.list_depth - 1, 0) + "- "
        elif tag in ("ul", "ol"):
            if self.list_depth == 0:
                self._paragraph()
            else:
                self._end_line(False)
            self.list_depth += 1
        elif tag in _PARAGRAPH_TAGS:
            self._paragraph()
            if tag == "pre":
                self.pre_depth += 1
        elif tag in _LINE_TAGS:
            self._end_line(False)
            if tag == "tr":
                self.cells_in_row = 0
        elif tag in _CELL_TAGS:
            if self.cells_in_row and self._content():
                self.buf.append(" | ")
            self.cells_in_row += 1

    def handle_startendtag(self, tag: str, attrs) -> None:
        # <br/>, <hr/>: same as the start tag; a self-closed <p/> or <div/> is just a break.
        self.handle_starttag(tag, attrs)
        if tag not in ("br", "hr"):
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROP_TAGS:
            self.drop_depth = max(self.drop_depth - 1, 0)
            return
        if tag in ("ul", "ol"):
            self._end_line(False)
            self.prefix = ""
            self.list_depth = max(self.list_depth - 1, 0)
            if self.list_depth == 0:
                self.lines.append(_BLANK)
        elif tag in _PARAGRAPH_TAGS:
            if tag == "pre":
                self.pre_depth = max(self.pre_depth - 1, 0)
            self._paragraph()
        elif tag in _LINE_TAGS:
            self._end_line(False)
            if tag == "li":
                self.prefix = ""  # an empty item's bullet is dropped

    def handle_data(self, data: str) -> None:
        if self.drop_depth:
            return
        if self.pre_depth:
            # Preformatted text keeps its line structure (spaces within lines still collapse).
            lines = data.split("\n")
            for i, line in enumerate(lines):
                if i:
                    self._end_line(True)
                self.buf.append(line)
            return
        self.buf.append(data)

    def text(self) -> str:
        self._end_line(False)
        out: list[str] = []
        pending_blank = False
        for line in self.lines:
            if line is _BLANK or line == "":
                pending_blank = bool(out)
                continue
            if pending_blank:
                out.append("")
                pending_blank = False
            out.append(line)
        # a list nested with no item around it (<ul><ul><li>) would start the text indented:
        # drop the indentation every line shares (none for well-formed lists), and the text
        # never starts with a space
        return textwrap.dedent("\n".join(out)).lstrip(" ")


def html_to_text(value: Any) -> Any:
    """Convert HTML (or rich text) to plain text.

    * ``p``, ``h1``-``h6``, ``blockquote``, ``pre``, ``table`` and top-level lists are paragraphs,
      separated by one blank line; ``div``, ``tr``, ``li`` and other blocks start a new line;
      ``<br>``/``<br/>`` is a line break (two in a row give a blank line);
    * ``<li>`` becomes ``"- "``, indented two spaces per nesting level; table cells are joined with
      ``" | "``;
    * ``script``, ``style``, ``head``, ``template`` content and comments are dropped; other tags
      are removed, keeping their text;
    * entities are decoded (``&amp;`` -> ``&``, ``&nbsp;`` -> a space);
    * whitespace is collapsed within each line (except line breaks in ``<pre>``), lines are
      trimmed, and there is at most one blank line in a row, none at the start or end.

    Plain text without tags passes through with its whitespace collapsed to one line (newlines in
    HTML source are not line breaks). Null propagates. Malformed HTML never raises.
    """
    if value is MISSING or value is None:
        return value
    s = _str(value, "html_to_text")
    parser = _TextExtractor()
    parser.feed(s)
    parser.close()
    return parser.text()
