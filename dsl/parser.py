"""Source text -> IR, with syntax errors as diagnostics a consultant can act on.

The parser is built once per process (LALR, grammar shipped as package data, cached). A valid file is
parsed in one pass with the IR builder running inside the parser. When a file has syntax errors it
is re-parsed declaration by declaration (each top-level construct starts at column 1 with its
keyword), so five broken declarations give five diagnostics instead of one.

Error wording follows one rule: say what was expected in the user's words (`"}"`, "a name", "an
expression"), never a terminal name, and name the block a missing `}` would close.
"""

from __future__ import annotations

import gc
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.lexer import PatternStr
from rapidfuzz import fuzz
from rapidfuzz import process as fuzz_process

from dsl import ir
from dsl.codes import diag
from dsl.diagnostics import Diagnostic
from dsl.lexer import COMMENTS as _COMMENTS
from dsl.lexer import FastLALR, FmapLexer, _Fallback
from dsl.span import Span, make_span
from dsl.transform import MAX_EXPR_DEPTH, ExprTooDeep, IRBuilder, _mk

__all__ = ["ParseResult", "parse_text", "parse_file", "get_parser", "MAX_BYTES", "MAX_NESTING"]

MAX_BYTES = 5 * 1024 * 1024  # a real mapping is < 200 KB; this bounds time and memory
MAX_NESTING = 64  # brackets nested deeper than this are refused before parsing

TOP_KEYWORDS = (
    "migration", "source", "target", "import", "param", "owners", "valuemap", "create",
    "extend", "map", "merge", "not migrated", "test",
)
BODY_KEYWORDS = ("key", "split", "attach", "skip", "sensitive", "mode")
_CHUNK_RE = re.compile(
    r"^(?:migration|source|target|import|param|owners|valuemap|create|extend|map|merge|"
    r"not[ \t]+migrated|test)\b",
    re.M,
)
_BRACKETS_RE = re.compile(r'"(?:[^"\\\n]|\\.)*"|`[^`\n]*`|#[^\n]*|[()\[\]{}]')
_CLOSER = {"(": ")", "[": "]", "{": "}"}

_TERMINAL_WORDS = {
    "NAME": "a name",
    "QNAME": "a name",
    "STRING": "a string",
    "INT": "a number",
    "DECIMAL": "a number",
    "DATE": "a date",
    "DATETIME": "a datetime",
    "SIZE": "a size such as 25MB",
    "DOLLAR_NAME": "a $parameter",
    "COMP_OP": "a comparison",
    "ADD_OP": '"+"',
    "MUL_OP": '"*"',
    "NOT_MIGRATED": '"not migrated"',
    "_NOT_IN": '"not in"',
    "$END": "the end of the file",
}
_EXPR_STARTS = {"NAME", "QNAME", "STRING", "INT", "DECIMAL", "DOLLAR_NAME", "TRUE", "FALSE", "NULL"}
# every terminal an expression can start with
_EXPR_FIRST = _EXPR_STARTS | {"DATE", "DATETIME", "MISSING", "IF", "REF", "OWNER", "NOT", "_LPAR",
                              "_LBRACK", "MINUS"}


@dataclass
class ParseResult:
    module: ir.Module | None
    diagnostics: list[Diagnostic]
    source: str | None  # the decoded text (None when it could not be read)


@lru_cache(maxsize=1)
def get_parser() -> tuple[Lark, IRBuilder]:
    builder = IRBuilder()
    parser = Lark.open_from_package(
        "grammar",
        "fmap.lark",
        ("",),
        parser="lalr",
        transformer=builder,
        lexer=FmapLexer,
        maybe_placeholders=True,
    )
    return parser, builder


@lru_cache(maxsize=1)
def _fast_parser() -> FastLALR:
    return FastLALR(get_parser()[0])


@lru_cache(maxsize=1)
def _terminal_words() -> dict[str, str]:
    parser, _ = get_parser()
    words = dict(_TERMINAL_WORDS)
    for t in parser.terminals:
        if t.name not in words and isinstance(t.pattern, PatternStr):
            words[t.name] = f'"{t.pattern.value}"'
    return words


def _describe_expected(expected: set[str]) -> str:
    words = _terminal_words()
    names = set(expected)
    parts: list[str] = []
    if len(names & _EXPR_STARTS) >= 3:
        parts.append("an expression")
        names -= _EXPR_STARTS | {"DATE", "DATETIME", "MISSING", "IF", "REF", "OWNER", "NOT",
                                 "_LPAR", "_LBRACK"}
        if not names & {"PLUS", "MUL_OP", "CONCAT"}:
            names.discard("MINUS")  # only the unary minus that starts an expression
    described = sorted({words.get(n, n.strip("_").lower()) for n in names})
    parts.extend(described)
    if len(parts) > 7:
        parts = parts[:7] + ["..."]
    if not parts:
        return "something else"
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]


def _describe_token(tok: Token) -> str:
    if tok.type == "$END":
        return "the end of the file"
    if tok.type in ("NAME", "QNAME"):
        return f"name `{tok.value.strip('`')}`"
    if tok.type == "STRING":
        return f"string {tok.value[:40]}"
    if tok.type in ("INT", "DECIMAL"):
        return f"number {tok.value}"
    words = _terminal_words()
    return words.get(tok.type, f'"{tok.value}"')


# --------------------------------------------------------------------------- entry points


def parse_file(path: str | Path, display_name: str | None = None) -> ParseResult:
    """Read and parse a file. Unreadable, non-UTF-8, directory and oversized inputs become
    diagnostics (FM001-FM005), never exceptions."""
    p = Path(path)
    name = display_name or str(path)
    here = Span.point(name, 1, 1)
    if p.is_dir():
        return ParseResult(None, [diag("FM003", f"`{name}` is a directory, not a .fmap file", None,
                                       hint="pass the .fmap files inside it")], None)
    try:
        if p.exists() and not p.is_file():
            return ParseResult(None, [diag("FM003", f"`{name}` is not a regular file", None)], None)
        size = p.stat().st_size
        if size > MAX_BYTES:
            return ParseResult(None, [_too_large(name, size)], None)
        data = p.read_bytes()
    except FileNotFoundError:
        return ParseResult(None, [diag("FM001", f"`{name}` does not exist", None)], None)
    except OSError as exc:
        return ParseResult(None, [diag("FM001", f"cannot read `{name}`: {exc.strerror}", None)], None)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        return ParseResult(None, [diag(
            "FM002", f"invalid UTF-8 at byte offset {exc.start} (byte 0x{data[exc.start]:02x})",
            Span.point(name, line, col), hint="save the file as UTF-8",
        )], None)
    del here
    return parse_text(text, name)


def _too_large(name: str, size: int) -> Diagnostic:
    return diag(
        "FM005", f"`{name}` is {size / 1024 / 1024:.1f} MB; .fmap files are limited to "
        f"{MAX_BYTES // 1024 // 1024} MB", None,
        hint="split the mapping into several files with `import`",
    )


def parse_text(text: str, file: str = "<input>") -> ParseResult:
    """Parse source text into a Module. Never raises for bad input."""
    if text.startswith("\ufeff"):
        text = text[1:]
    if len(text) > MAX_BYTES:
        return ParseResult(None, [_too_large(file, len(text.encode("utf-8", "replace")))], text)
    deep = _nesting_problem(text, file)
    if deep is not None:
        return ParseResult(None, [deep], text)
    parser, builder = get_parser()
    try:
        items, diags, comments = _parse_chunk(parser, builder, text, file, 0)
    except UnexpectedInput:
        return _parse_recovering(parser, builder, text, file)
    except ExprTooDeep as exc:
        return ParseResult(None, [_too_deep(exc, file)], text)
    except RecursionError:
        return ParseResult(None, [diag("FM005", "the file is nested too deeply to parse",
                                       Span.point(file, 1, 1))], text)
    module = _module(file, items, comments)
    if not items:
        diags.append(diag("FM004", "the file declares nothing", make_span(file, 1, 1, 1, 1),
                          hint="start with `migration`, `source` and `target` lines"))
    return ParseResult(module, diags, text)


def _too_deep(exc: ExprTooDeep, file: str) -> Diagnostic:
    return diag("FM005", f"an expression is nested more than {MAX_EXPR_DEPTH} deep",
                Span.point(file, exc.span.line, exc.span.column),
                hint="split it into several fields, or use a value map")


def _parse_chunk(parser: Lark, builder: IRBuilder, text: str, file: str, line_offset: int):
    builder.state.file = file
    builder.state.line_offset = line_offset
    builder.state.diags = []
    builder.state.depth = {}
    _COMMENTS.items = []
    gc_was_on = gc.isenabled()
    gc.disable()  # parsing allocates many small acyclic objects; collections only cost time
    try:
        items = _fast_parser().parse(text)
    except _Fallback:
        # a syntax error: let Lark's own parser raise it, with its state for the diagnostics
        builder.state.diags = []
        _COMMENTS.items = []
        items = parser.parse(text)
    finally:
        builder.state.depth = {}
        if gc_was_on:
            gc.enable()
    comments = [
        _mk(ir.Comment, span=make_span(file, t.line + line_offset, t.column,
                                       t.end_line + line_offset, t.end_column), text=t.value[1:])
        for t in _COMMENTS.items
    ]
    return items, builder.state.diags, comments


def _module(file: str, items: list, comments: list[ir.Comment]) -> ir.Module:
    """Attach the comment lines directly above each map as its notes (they become the notes column
    of the customer-facing mapping table)."""
    by_line = {c.span.line: c for c in comments if c.span.column == 1}
    body = []
    for item in items:
        if isinstance(item, (ir.ObjectMap, ir.MergeMap)):
            notes: list[str] = []
            line = item.span.line - 1
            while line in by_line:
                notes.insert(0, by_line[line].text.strip())
                line -= 1
            if notes:
                item = _mk(type(item), **{**item.__dict__, "notes": notes})
        body.append(item)
    return _mk(ir.Module, kind="module", file=file, body=body, comments=comments)


def _nesting_problem(text: str, file: str) -> Diagnostic | None:
    depth = 0
    for m in _BRACKETS_RE.finditer(text):
        ch = m.group(0)
        if ch in "([{":
            depth += 1
            if depth > MAX_NESTING:
                line = text.count("\n", 0, m.start()) + 1
                col = m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1
                return diag("FM005", f"brackets are nested more than {MAX_NESTING} deep",
                            Span.point(file, line, col),
                            hint="split the expression into several fields or a value map")
        elif ch in ")]}":
            depth = max(depth - 1, 0)
    return None


# --------------------------------------------------------------------------- error recovery


def _parse_recovering(parser: Lark, builder: IRBuilder, text: str, file: str) -> ParseResult:
    starts = [m.start() for m in _CHUNK_RE.finditer(text)]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    starts.append(len(text))
    items: list = []
    comments: list[ir.Comment] = []
    diags: list[Diagnostic] = []
    for a, b in zip(starts, starts[1:], strict=False):
        chunk = text[a:b]
        if not chunk.strip():
            continue
        offset = text.count("\n", 0, a)
        try:
            got, d, c = _parse_chunk(parser, builder, chunk, file, offset)
        except UnexpectedInput as exc:
            diags.append(_syntax_diagnostic(exc, chunk, file, offset))
            comments.extend(_comments_of(chunk, file, offset))
            continue
        except ExprTooDeep as exc:
            diags.append(_too_deep(exc, file))
            continue
        except RecursionError:
            diags.append(diag("FM005", "the declaration is nested too deeply to parse",
                              Span.point(file, offset + 1, 1)))
            continue
        items.extend(got)
        diags.extend(d)
        comments.extend(c)
    return ParseResult(_module(file, items, comments), diags, text)


def _comments_of(chunk: str, file: str, offset: int) -> list[ir.Comment]:
    out = []
    for i, line in enumerate(chunk.split("\n")):
        if line.startswith("#"):
            span = Span.model_construct(file=file, line=offset + i + 1, column=1,
                                        end_line=offset + i + 1, end_column=len(line) + 1)
            out.append(ir.Comment.model_construct(span=span, text=line[1:]))
    return out


_EXAMPLES: dict[str, list[str]] = {
    "FM104": [
        "map a -> B {\n X == y\n}",
        'test "t" { given a {x: 1} expect B { X == 1 } }',
    ],
    "FM102": [
        "map a -> B {\n X y\n}",
        'map a -> B {\n X "y"\n}',
        "map a -> B {\n X 1\n}",
        "map a -> B {\n X $p\n}",
        'test "t" { given a {x: 1} expect B { X 1 } }',
        "param p 1",
    ],
    "FM108": [
        "map a B {}",
        "map a.b[] B {}",
        "merge a B by x {}",
        'valuemap v { "a" "b" }',
        "valuemap v { _ error }",
    ],
    "FM109": [
        "map a -> B {\n X =\n}",
        "map a -> B {\n X = \n Y = 1\n}",
        "param p =",
        "map a -> B where {\n}",
        "map a -> B {\n key\n}",
    ],
    "FM106": [
        "mapp a -> B {}",
        "foo",
        'migration "x"\nfoo',
    ],
}


def _match_example(exc: UnexpectedInput) -> str | None:
    parser, builder = get_parser()
    saved = (builder.state.file, builder.state.line_offset, builder.state.diags)

    def parse_fn(s: str):
        builder.state.diags = []
        return parser.parse(s)

    try:
        return exc.match_examples(parse_fn, _EXAMPLES, use_accepts=False)
    finally:
        builder.state.file, builder.state.line_offset, builder.state.diags = saved


def _open_brackets(text: str, upto: int) -> list[tuple[str, int]]:
    stack: list[tuple[str, int]] = []
    for m in _BRACKETS_RE.finditer(text, 0, upto):
        ch = m.group(0)
        if ch in _CLOSER:
            stack.append((ch, m.start()))
        elif ch in ")]}" and stack and _CLOSER[stack[-1][0]] == ch:
            stack.pop()
    return stack


def _line_col(text: str, pos: int) -> tuple[int, int]:
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return line, col


def _block_word(text: str, pos: int) -> str:
    """What construct a `{` opens: the first word of its line (`map`, `valuemap`, `test`...)."""
    line_start = text.rfind("\n", 0, pos) + 1
    m = re.match(r"\s*([A-Za-z_]+)", text[line_start:pos])
    word = m.group(1) if m else ""
    return word if word in {*TOP_KEYWORDS, "expect", "given", "not"} else ""


def _prev_significant(text: str, pos: int) -> str:
    """The last non-space, non-comment character before pos."""
    i = pos - 1
    while i >= 0:
        ch = text[i]
        if ch in " \t\r\n":
            i -= 1
            continue
        line_start = text.rfind("\n", 0, i) + 1
        hash_at = text.find("#", line_start, i + 1)
        if hash_at != -1 and '"' not in text[line_start:hash_at]:
            i = line_start - 1
            continue
        return ch
    return ""


def _syntax_diagnostic(exc: UnexpectedInput, chunk: str, file: str, offset: int) -> Diagnostic:
    def span_at(pos: int, length: int = 1) -> Span:
        line, col = _line_col(chunk, pos)
        return Span.model_construct(file=file, line=line + offset, column=col,
                                    end_line=line + offset, end_column=col + max(length, 1))

    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream
        ch = chunk[pos]
        if ch == '"':
            end = chunk.find("\n", pos)
            end = len(chunk) if end == -1 else end
            return diag("FM103", "this string is never closed", span_at(pos, end - pos),
                        hint='add the closing `"` on the same line (use \\n for a line break)')
        if ch == "`":
            return diag("FM103", "this backtick name is never closed", span_at(pos),
                        hint="close it with ` on the same line")
        shown = ch if ch.isprintable() and not ch.isspace() else f"U+{ord(ch):04X}"
        hint = None
        if ch == "'":
            hint = 'strings use double quotes: "text"'
        elif ch == ";":
            hint = "statements need no separator; start the next one on a new line"
        elif ch == "&":
            hint = "use `and` for boolean logic and `++` to join text"
        elif ch == "=" and chunk[pos:pos + 2] == "=>":
            hint = "use `->`"
        return diag("FM107", f"unexpected character `{shown}`", span_at(pos), hint=hint)

    if isinstance(exc, UnexpectedEOF) or (
        isinstance(exc, UnexpectedToken) and exc.token.type == "$END"
    ):
        expected = set(getattr(exc, "expected", ()) or ())
        stack = _open_brackets(chunk, len(chunk))
        end = len(chunk.rstrip())
        if stack:
            ch, at = stack[-1]
            line, col = _line_col(chunk, at)
            word = _block_word(chunk, at)
            what = f"the `{word}` block" if word and ch == "{" else f"the `{ch}`"
            return diag(
                "FM101",
                f'expected "{_CLOSER[ch]}" to close {what} opened at {line + offset}:{col}',
                span_at(max(end - 1, 0)),
                hint=f'add "{_CLOSER[ch]}"',
                related=[(span_at(at), "opened here")],
            )
        return diag("FM109" if len(expected & _EXPR_STARTS) >= 3 else "FM100",
                    f"unexpected end of file; expected {_describe_expected(expected)}",
                    span_at(max(end - 1, 0)))

    assert isinstance(exc, UnexpectedToken)
    tok = exc.token
    pos = tok.start_pos if tok.start_pos is not None else 0
    length = len(tok.value) if tok.value else 1
    expected = set(exc.accepts or exc.expected)
    where = span_at(pos, length)

    # trailing comma: a closer right after ","
    if tok.type in ("_RBRACK", "_RPAR", "_RBRACE", "_ARROW") and _prev_significant(chunk, pos) == ",":
        comma = chunk.rfind(",", 0, pos)
        return diag("FM105", f"trailing comma before {_describe_token(tok)}", span_at(comma),
                    hint="remove the comma after the last item")
    # a `}` that closes nothing open is a stray brace, not a missing one
    code = _match_example(exc)
    if code == "FM109" and not ({"INT", "DOLLAR_NAME"} & expected or tok.type == "_EQ"):
        # the examples' states also arise after a complete operand (`X = a -> b`): not FM109
        code = None
    if tok.type == "COMP_OP" and tok.value == "==" and "_EQ" in expected:
        code = "FM104"
    if code == "FM104":
        return diag("FM104", "`==` compares; use `=` to assign a field", where,
                    hint="write `Field = expression`")
    if code == "FM102" or (code is None and expected == {"_EQ"}):
        prev = _prev_word(chunk, pos)
        hint = "write `Field = expression`"
        close = _closest(prev, BODY_KEYWORDS) if prev else None
        if close and close != prev:
            hint = f"did you mean `{close}`?"
        return diag("FM102", f"expected \"=\" after `{prev}`" if prev else 'expected "="',
                    where, hint=hint)
    if code == "FM108" or (code is None and "_ARROW" in expected):
        arrow_typo = tok.type == "_EQ" and chunk[pos + 1:pos + 2] == ">"
        return diag("FM108", f'expected "->" before {_describe_token(tok)}', where,
                    hint="use `->`, not `=>`" if arrow_typo else "write `source -> Target`")
    if code == "FM109":
        return diag("FM109", f"expected an expression, found {_describe_token(tok)}", where)
    if code == "FM106" or (tok.type in ("NAME", "QNAME") and _at_top_level(chunk, pos)):
        word = tok.value.strip("`")
        close = _closest(word, TOP_KEYWORDS + BODY_KEYWORDS)
        hint = f"did you mean `{close}`?" if close else (
            "a declaration starts with one of: " + ", ".join(TOP_KEYWORDS))
        return diag("FM106", f"unknown keyword `{word}`", where, hint=hint)
    stack = _open_brackets(chunk, pos)
    if tok.type in ("_RBRACE", "_RPAR", "_RBRACK") and not stack:
        return diag("FM100", f"{_describe_token(tok)} closes nothing", where,
                    hint="remove it, or check the block above for a missing opening bracket")
    if (tok.type in ("_RBRACE", "_RPAR", "_RBRACK") and stack and stack[-1][0] in "(["
            and _CLOSER[stack[-1][0]] != tok.value):
        # `f(a, (b` then `}`: the innermost open bracket is never closed
        ch, at = stack[-1]
        line, col = _line_col(chunk, at)
        return diag("FM101", f'expected "{_CLOSER[ch]}" to close the `{ch}` opened at '
                    f"{line + offset}:{col}", where, hint=f'add "{_CLOSER[ch]}" before {_describe_token(tok)}',
                    related=[(span_at(at), "opened here")])
    if len(expected & _EXPR_STARTS) >= 3 and expected <= _EXPR_FIRST:
        return diag("FM109", f"expected an expression, found {_describe_token(tok)}", where)
    if "_RBRACE" in expected and stack and stack[-1][0] == "{" and tok.type in (
        "MAP", "MERGE", "VALUEMAP", "TEST", "CREATE", "EXTEND", "PARAM", "NOT_MIGRATED"
    ):
        line, col = _line_col(chunk, stack[-1][1])
        word = _block_word(chunk, stack[-1][1])
        what = f"the `{word}` block" if word else "the block"
        return diag("FM101", f'expected "}}" to close {what} opened at {line + offset}:{col}',
                    where, hint='add "}" before this line',
                    related=[(span_at(stack[-1][1]), "opened here")])
    return diag("FM100", f"unexpected {_describe_token(tok)}; expected {_describe_expected(expected)}",
                where)


def _prev_word(text: str, pos: int) -> str | None:
    m = re.search(r"([A-Za-z_][A-Za-z0-9_]*|`[^`\n]+`|\"[^\"\n]*\")\s*$", text[:pos])
    return m.group(1).strip('`"') if m else None


def _at_top_level(text: str, pos: int) -> bool:
    return not _open_brackets(text, pos)


def _closest(word: str, choices: tuple[str, ...]) -> str | None:
    if not word:
        return None
    best = fuzz_process.extractOne(word, choices, scorer=fuzz.ratio, score_cutoff=60)
    return best[0] if best else None


