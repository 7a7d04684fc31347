"""The .fmap lexer: one master regex, keywords by dict lookup, plugged into Lark's LALR parser.

Lark's contextual lexer tries a regex per parser state and builds tokens through its general
machinery; on a 10,000-line mapping that was a third of the parse time. This lexer produces the
same tokens (tested by tests/dsl/test_grammar.py and the IR snapshots) with one ``re.match`` per
token (leading whitespace included in the match) and the line/column arithmetic done inline.

It is contextual in the same way: it receives the parser state (Lark's "future interface"), and a
keyword the current state does not accept is emitted as a plain NAME, so a source field called
`source`, `key` or `values` is an ordinary path in an expression. Unlike Lark's contextual lexer it
matches keywords as whole words only: `mapp` is the name `mapp` (reported as an unknown keyword),
never `map` followed by `p`.

Comments are collected into ``COMMENTS`` (a thread-local list) for the formatter.
"""

from __future__ import annotations

import re
import threading
from functools import partial

from lark import Token, Tree
from lark.exceptions import UnexpectedCharacters
from lark.lexer import Lexer
from lark.visitors import _vargs_inline

__all__ = ["FmapLexer", "COMMENTS", "KEYWORDS"]

# keyword text -> terminal name (grammar/fmap.lark)
KEYWORDS = {
    "migration": "MIGRATION", "source": "SOURCE", "target": "TARGET", "import": "IMPORT",
    "param": "PARAM", "owners": "OWNERS", "reject": "REJECT", "valuemap": "VALUEMAP",
    "error": "ERROR", "passthrough": "PASSTHROUGH", "quarantine": "QUARANTINE",
    "create": "CREATE", "module": "MODULE", "object": "OBJECT", "extend": "EXTEND",
    "required": "REQUIRED", "unique": "UNIQUE", "external_id": "EXTERNAL_ID",
    "sensitive": "SENSITIVE", "values": "VALUES", "map": "MAP", "merge": "MERGE",
    "where": "WHERE", "otherwise": "OTHERWISE", "key": "KEY", "split": "SPLIT", "max": "MAX",
    "prefix": "PREFIX", "attach": "ATTACH", "limit": "LIMIT", "oversize": "OVERSIZE",
    "skip": "SKIP", "when": "WHEN", "mode": "MODE", "not": "NOT", "test": "TEST",
    "given": "GIVEN", "expect": "EXPECT", "none": "NONE", "if": "IF", "ref": "REF",
    "owner": "OWNER", "true": "TRUE", "false": "FALSE", "null": "NULL", "missing": "MISSING",
    "by": "_BY", "else": "_ELSE", "as": "_AS", "because": "_BECAUSE", "then": "_THEN",
    "or": "OR", "and": "AND", "in": "IN", "_": "UNDERSCORE",
}
_PUNCT = {
    "->": "_ARROW", "??": "QQ", "++": "CONCAT", "|": "_PIPE", "=": "_EQ", ":": "_COLON",
    ",": "_COMMA", ".": "_DOT", "{": "_LBRACE", "}": "_RBRACE", "(": "_LPAR", ")": "_RPAR",
    "[": "_LBRACK", "]": "_RBRACK", "-": "MINUS", "+": "PLUS", "==": "COMP_OP", "!=": "COMP_OP",
    "<=": "COMP_OP", ">=": "COMP_OP", "<": "COMP_OP", ">": "COMP_OP", "*": "MUL_OP",
    "/": "MUL_OP", "%": "MUL_OP",
}

# Group numbers are used for dispatch (m.lastindex): keep them in this order.
_MASTER = re.compile(
    r"[ \t\f\r\n]*(?:"
    r"([A-Za-z_][A-Za-z0-9_]*)"  # 1 word: NAME or keyword
    r'|("(?:[^"\\\n]|\\.)*")'  # 2 STRING
    r"|(->|\?\?|\+\+|==|!=|<=|>=|[-<>|=:,.{}()\[\]+*/%])"  # 3 punctuation / operators
    r"|(\d+\.\d+|\d+)"  # 4 DECIMAL / INT
    r"|(#[^\n]*)"  # 5 COMMENT
    r"|(`[^`\n]+`)"  # 6 QNAME
    r"|(\$[A-Za-z_][A-Za-z0-9_]*)"  # 7 DOLLAR_NAME
    r"|(@\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)"  # 8 DATETIME
    r"|(@\d{4}-\d{2}-\d{2})"  # 9 DATE
    r")"
)
_WS = re.compile(r"[ \t\f\r\n]*")
_NOT_TAIL = re.compile(r"[ \t]+(migrated|in)\b")
_SIZE = re.compile(r"\d+(\.\d+)?\s*(KB|MB|GB|B)\b")


class _Comments(threading.local):
    def __init__(self) -> None:
        self.items: list[Token] = []


COMMENTS = _Comments()

_str_new = str.__new__


def _token(type_: str, value: str, start: int, line: int, column: int, end_line: int,
           end_column: int, end_pos: int) -> Token:
    t = _str_new(Token, value)
    t.type = type_
    t.value = value
    t.start_pos = start
    t.line = line
    t.column = column
    t.end_line = end_line
    t.end_column = end_column
    t.end_pos = end_pos
    return t


class FmapLexer(Lexer):
    """Lark custom lexer (future interface: ``lex`` receives the parser state)."""

    __future_interface__ = 1

    def __init__(self, lexer_conf) -> None:  # noqa: D107 - Lark's constructor signature
        self.lexer_conf = lexer_conf

    def lex(self, lexer_state, parser_state):
        text = lexer_state.text
        text = getattr(text, "text", text)  # lark >= 1.3 wraps the text in a TextSlice
        states = parser_state.parse_conf.states
        comments = COMMENTS.items
        match = _MASTER.match
        keywords = KEYWORDS
        punct = _PUNCT
        n = len(text)
        pos = 0
        line = 1
        line_start = 0  # index of the first character of the current line
        while True:
            m = match(text, pos)
            if m is None:
                p = _WS.match(text, pos).end()
                if p >= n:
                    return
                line += text.count("\n", pos, p)
                nl = text.rfind("\n", pos, p)
                if nl >= 0:
                    line_start = nl + 1
                raise UnexpectedCharacters(
                    text, p, line, p - line_start + 1, state=parser_state.position,
                    terminals_by_name=self.lexer_conf.terminals_by_name,
                )
            g = m.lastindex
            start = m.start(g)
            if start != pos:
                nl = text.rfind("\n", pos, start)
                if nl >= 0:
                    line += text.count("\n", pos, nl + 1)
                    line_start = nl + 1
            end = pos = m.end()
            value = m.group(g)
            col = start - line_start + 1
            if g == 1:
                kw = keywords.get(value)
                if kw is None:
                    type_ = "NAME"
                else:
                    acc = states[parser_state.position]
                    if value == "not":
                        tail = _NOT_TAIL.match(text, end)
                        if tail is not None:
                            both = "NOT_MIGRATED" if tail.group(1) == "migrated" else "NOT_IN"
                            if both in acc or ("NOT" not in acc and "NAME" not in acc):
                                end = pos = tail.end()
                                value = text[start:end]
                                yield _token(both, value, start, line, col, line,
                                             end - line_start + 1, end)
                                continue
                    if kw in acc or "NAME" not in acc:
                        type_ = kw
                    else:
                        type_ = "NAME"
            elif g == 3:
                type_ = punct[value]
            elif g == 2:
                type_ = "STRING"
            elif g == 4:
                acc = states[parser_state.position]
                if "SIZE" in acc:
                    sm = _SIZE.match(text, start)
                    if sm is not None:
                        end = pos = sm.end()
                        value = sm.group(0)
                        yield _token("SIZE", value, start, line, col, line,
                                     end - line_start + 1, end)
                        continue
                if "." in value:
                    if "DECIMAL" not in acc and "INT" in acc:
                        value = value[: value.index(".")]
                        end = pos = start + len(value)
                        type_ = "INT"
                    else:
                        type_ = "DECIMAL"
                else:
                    type_ = "INT"
            elif g == 5:
                comments.append(_token("COMMENT", value, start, line, col, line,
                                       end - line_start + 1, end))
                continue
            elif g == 6:
                type_ = "QNAME"
            elif g == 7:
                type_ = "DOLLAR_NAME"
            elif g == 8:
                type_ = "DATETIME"
            else:
                type_ = "DATE"
            yield _token(type_, value, start, line, col, line, end - line_start + 1, end)


# --------------------------------------------------------------------------- fast LALR driver


class _Fallback(Exception):
    """The fast driver met a syntax error: the caller re-parses with Lark to get its exception."""


class _Position:
    """What the lexer reads of the parser state: the current state number and the table."""

    __slots__ = ("stack", "parse_conf")

    def __init__(self, stack: list, parse_conf) -> None:
        self.stack = stack
        self.parse_conf = parse_conf

    @property
    def position(self) -> int:
        return self.stack[-1]


class FastLALR:
    """Lark's LALR loop over Lark's own parse table and callbacks, without the per-token
    overhead: each reduce action is pre-resolved to (size, goto symbol, callback), so no Rule is
    hashed or compared while parsing. Only for valid input: on any error it raises ``_Fallback``
    and the caller re-runs Lark's parser, which produces the exception (with its interactive
    parser state) that the diagnostics are built from. Equivalence with Lark is tested by the
    IR snapshots and by ``tests/dsl/test_grammar.py``.
    """

    def __init__(self, lark_parser) -> None:
        inner = lark_parser.parser.parser.parser  # ParsingFrontend -> LALR_Parser -> _Parser
        table = inner.parse_table
        callbacks = _direct_callbacks(lark_parser, inner.callbacks)
        self.parse_conf = _ParseConf(table.states)
        self.start = table.start_states["start"]
        self.end = table.end_states["start"]
        self.lexer = lark_parser.parser.lexer
        by_rule = {}
        fast: dict[int, dict[str, tuple]] = {}
        for st, actions in table.states.items():
            row = {}
            for sym, (action, arg) in actions.items():
                sym = str(sym)  # plain str keys: Lark's Token.__eq__ is slow
                if action.name == "Shift":
                    row[sym] = (True, arg)
                else:
                    r = by_rule.get(id(arg))
                    if r is None:
                        cb = None if _is_unit(arg) else callbacks[arg]
                        r = by_rule[id(arg)] = (len(arg.expansion), str(arg.origin.name), cb)
                    row[sym] = (False, r)
            fast[st] = row
        self.table = fast

    def parse(self, text: str):
        table = self.table
        stack = [self.start]
        values: list = []
        push_state = stack.append
        push_value = values.append
        pos = _Position(stack, self.parse_conf)
        lexer_state = _LexerText(text)
        try:
            for tok in self.lexer.lex(lexer_state, pos):
                ttype = tok.type
                while True:
                    act = table[stack[-1]].get(ttype)
                    if act is None:
                        raise _Fallback
                    if act[0]:
                        push_state(act[1])
                        push_value(tok)
                        break
                    size, origin, cb = act[1]
                    if cb is None:  # `?a: b`: the child is the value, only the state changes
                        del stack[-1]
                        push_state(table[stack[-1]][origin][1])
                        continue
                    if size:
                        s = values[-size:]
                        del stack[-size:]
                        del values[-size:]
                    else:
                        s = []
                    value = cb(s)
                    push_state(table[stack[-1]][origin][1])
                    push_value(value)
            end = self.end
            while True:
                act = table[stack[-1]].get("$END")
                if act is None:
                    raise _Fallback
                if act[0]:  # pragma: no cover - $END is never shifted
                    raise _Fallback
                size, origin, cb = act[1]
                if cb is None:
                    del stack[-1]
                    push_state(table[stack[-1]][origin][1])
                    if stack[-1] == end:  # pragma: no cover - `start` is not a unit rule
                        return values[-1]
                    continue
                if size:
                    s = values[-size:]
                    del stack[-size:]
                    del values[-size:]
                else:
                    s = []
                value = cb(s)
                push_state(table[stack[-1]][origin][1])
                push_value(value)
                if stack[-1] == end:
                    return values[-1]
        except UnexpectedCharacters:
            raise _Fallback from None


def _is_unit(rule) -> bool:
    """`?a: b` with one non-inlined nonterminal and no `[..]` placeholder: Lark's callback would
    return the child unchanged (ExpandSingleChild), so the driver skips the call."""
    exp = rule.expansion
    return bool(
        rule.options.expand1 and not rule.alias and len(exp) == 1 and not exp[0].is_term
        and not exp[0].name.startswith("_") and not any(rule.options.empty_indices or ())
    )


def _direct_callbacks(lark_parser, callbacks: dict) -> dict:
    """Lark's reduce callbacks with the transformer call made directly.

    Lark wraps each `@v_args(inline=True)` transformer method in three layers of generic
    dispatch (``apply_visit_wrapper`` -> ``_vargs_inline`` -> ``_VArgsWrapper.__call__``); we
    call the bound method with the children instead. The per-rule wrapper chain (child filtering,
    `_rule` inlining, ``?rule`` single-child expansion, ``[x]`` placeholders) is Lark's own,
    reused unchanged. Rules without a transformer method build a ``Tree`` as Lark does (those are
    the `_rule`/repetition helpers that the parent's child filter inlines)."""
    builder = getattr(lark_parser, "_parse_tree_builder", None)
    transformer = lark_parser.options.transformer
    if builder is None or transformer is None:
        return callbacks
    out = dict(callbacks)
    for rule, chain in builder.rule_builders:
        name = rule.alias or rule.options.template_source or rule.origin.name
        method = getattr(transformer, name, None)
        if method is None:
            f = partial(Tree, name)
        elif getattr(method, "visit_wrapper", None) is _vargs_inline:
            f = _inline_call(method.base_func)
        else:
            continue  # keep Lark's callback
        for wrap in chain:
            f = wrap(f)
        out[rule] = f
    return out


def _inline_call(func):
    def call(children):
        return func(*children)

    return call


class _ParseConf:
    __slots__ = ("states",)

    def __init__(self, states) -> None:
        self.states = states


class _LexerText:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text
