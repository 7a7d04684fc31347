"""Syntax errors (FM1xx): each code from a realistic mistake, with its position and hint; wording
in the user's terms (never a terminal name); recovery per declaration; rendered carets."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

from dsl.codes import CODES
from dsl.diagnostics import render_text
from dsl.parser import get_parser, parse_text


class TextSnapshot(SingleFileSnapshotExtension):
    file_extension = "txt"
    _file_extension = "txt"  # syrupy < 5
    _write_mode = WriteMode.TEXT


@dataclass(frozen=True)
class Err:
    code: str
    src: str
    line: int
    column: int
    message: str  # a substring of the message
    hint: str | None = None  # a substring of the hint


CASES: dict[str, Err] = {
    # FM100: something unexpected that no more specific code explains
    "fm100_stray_brace": Err("FM100", "map a -> B {\n  key id\n}\n}\n", 4, 1, '"}" closes nothing',
                             "missing opening bracket"),
    # FM101: an unclosed block, named, with where it was opened
    "fm101_map_at_eof": Err("FM101", "map a -> B {\n  key id\n  X = y\n", 3, 7,
                            'expected "}" to close the `map` block opened at 1:12', 'add "}"'),
    "fm101_map_before_next_decl": Err(
        "FM101", 'migration "m"\nmap a -> B {\n  X = y\n\nmap c -> D {\n  key id\n}\n', 3, 7,
        'expected "}" to close the `map` block opened at 2:12'),
    "fm101_valuemap": Err("FM101", 'valuemap v {\n  "a" -> "b"\n', 2, 12,
                          "close the `valuemap` block opened at 1:12"),
    "fm101_test": Err("FM101", 'test "t" {\n  given a {x: 1}\n', 2, 16,
                      "close the `test` block opened at 1:10"),
    "fm101_paren": Err("FM101", "map a -> B {\n  X = f(a, (b\n}\n", 3, 1,
                       'expected ")" to close the `(` opened at 2:12', 'add ")"'),
    "fm101_bracket": Err("FM101", "map a -> B {\n  X = [1, 2\n}\n", 3, 1,
                         'expected "]" to close the `[` opened at 2:7'),
    # FM102: missing `=`
    "fm102_target_expr": Err("FM102", "map a -> B {\n  X y\n}\n", 2, 5, 'expected "=" after `X`',
                             "write `Field = expression`"),
    "fm102_keys_typo": Err("FM102", "map a -> B {\n  keys id\n}\n", 2, 8,
                           'expected "=" after `keys`', "did you mean `key`?"),
    "fm102_param": Err("FM102", "param p 1\n", 1, 9, 'expected "=" after `p`'),
    "fm102_expect": Err("FM102", 'test "t" {\n  given a {x: 1}\n  expect B { X 1 }\n}\n', 3, 16,
                        'expected "=" after `X`'),
    # FM103: unclosed string / backtick name
    "fm103_string": Err("FM103", 'map a -> B {\n  X = "abc\n}\n', 2, 7, "never closed",
                        'closing `"`'),
    "fm103_backtick": Err("FM103", "map a -> B {\n  X = `abc\n}\n", 2, 7,
                          "backtick name is never closed"),
    # FM104: == for =
    "fm104_map": Err("FM104", "map a -> B {\n  X == y\n}\n", 2, 5, "use `=` to assign",
                     "write `Field = expression`"),
    "fm104_expect": Err("FM104", 'test "t" {\n  given a {x: 1}\n  expect B { X == 1 }\n}\n', 3,
                        16, "use `=` to assign"),
    # FM105: trailing commas
    "fm105_list": Err("FM105", "map a -> B {\n  X = [1, 2,]\n}\n", 2, 12,
                      'trailing comma before "]"', "remove the comma"),
    "fm105_args": Err("FM105", "map a -> B {\n  X = f(1, 2,)\n}\n", 2, 13,
                      'trailing comma before ")"'),
    "fm105_record": Err("FM105", 'test "t" {\n  given a {x: 1,}\n}\n', 2, 16,
                        'trailing comma before "}"'),
    "fm105_target_options": Err("FM105", 'target zoho(edition="x",)\n', 1, 24,
                                'trailing comma before ")"'),
    # FM106: unknown keyword
    "fm106_mapp": Err("FM106", "mapp a -> B {\n}\n", 1, 1, "unknown keyword `mapp`",
                      "did you mean `map`?"),
    "fm106_valuemapp": Err("FM106", 'valuemapp v { _ -> error }\n', 1, 1,
                           "unknown keyword `valuemapp`", "did you mean `valuemap`?"),
    "fm106_unknown": Err("FM106", "foo bar\n", 1, 1, "unknown keyword `foo`",
                         "a declaration starts with one of"),
    "fm106_after_decl": Err("FM106", 'migration "x"\nsorce a\n', 2, 1, "unknown keyword `sorce`",
                            "did you mean `source`?"),
    # FM107: a character that is not part of the language
    "fm107_semicolon": Err("FM107", "map a -> B {\n  X = y ;\n}\n", 2, 9,
                           "unexpected character `;`", "no separator"),
    "fm107_single_quote": Err("FM107", "map a -> B {\n  X = 'y'\n}\n", 2, 7,
                              "unexpected character `'`", "double quotes"),
    "fm107_ampersand": Err("FM107", "map a -> B {\n  X = a & b\n}\n", 2, 9,
                           "unexpected character `&`", "use `and`"),
    "fm107_nul": Err("FM107", "map a -> B {\n\tX = \x00\n}\n", 2, 6, "U+0000"),
    # FM108: missing ->
    "fm108_map": Err("FM108", "map a B {\n}\n", 1, 7, 'expected "->" before name `B`',
                     "write `source -> Target`"),
    "fm108_array_map": Err("FM108", "map a.b[] B {\n}\n", 1, 11, 'expected "->"'),
    "fm108_merge": Err("FM108", "merge a B by x {}\n", 1, 9, 'expected "->"'),
    "fm108_valuemap": Err("FM108", 'valuemap v { "a" "b" }\n', 1, 18,
                          'expected "->" before string "b"'),
    "fm108_fat_arrow": Err("FM108", 'valuemap v { "a" => "b" }\n', 1, 18, 'expected "->"',
                           "use `->`, not `=>`"),
    # FM109: missing expression
    "fm109_assign": Err("FM109", "map a -> B {\n  X =\n}\n", 3, 1,
                        'expected an expression, found "}"'),
    "fm109_key": Err("FM109", "map a -> B {\n  key\n}\n", 3, 1, "expected an expression"),
    "fm109_where": Err("FM109", "map a -> B where {\n}\n", 1, 18,
                       'expected an expression, found "{"'),
    "fm109_operator": Err("FM109", "map a -> B {\n  X = a ++\n}\n", 3, 1,
                          "expected an expression"),
    "fm109_param_eof": Err("FM109", "param p =\n", 1, 9, "expected an expression"),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_syntax_error(case: Err):
    r = parse_text(case.src, "t.fmap")
    assert len(r.diagnostics) == 1, [str(d) for d in r.diagnostics]
    (d,) = r.diagnostics
    assert (d.code, d.span.line, d.span.column) == (case.code, case.line, case.column), str(d)
    assert case.message in d.message
    if case.hint is not None:
        assert d.hint is not None and case.hint in d.hint, d.hint
    assert d.severity.value == "error"


def test_every_syntax_code_has_a_case():
    syntax_codes = {c for c in CODES if c.startswith("FM1")}
    assert syntax_codes == {c.code for c in CASES.values()}


def _terminal_names() -> set[str]:
    parser, _ = get_parser()
    return {t.name for t in parser.terminals} | {"$END"}


def _leaks(text: str, names: set[str]) -> list[str]:
    words = set(re.findall(r"\$?[A-Za-z_][A-Za-z0-9_]*", text))
    return sorted(w for w in words if w in names and not w.islower())


MUTATIONS = [
    "map a -> B {\n  X = (\n}\n", "map a -> B {\n  X = a |\n}\n", "map -> B {}\n",
    "map a -> {}\n", "valuemap {}\n", "create module {}\n", "create M {}\n",
    "map a -> B { key id X = 1 ) }\n", "test {}\n", 'test "t" { expect }\n',
    "owners by\n", "owners email else x\n", "map a -> B {\n  split X max\n}\n",
    "map a -> B {\n  attach p limit 25 XB\n}\n", "map a -> B {\n  X = ref(A)\n}\n",
    "map a -> B {\n  X = if a then b\n}\n", "not migrated\n", "import\n", "param = 1\n",
    'target zoho(edition "x")\n', "map a.b -> C {}\n", "map a -> B where x otherwise {}\n",
    "extend {}\n", "map a -> B {\n  X = [1 2]\n}\n", "map a -> B {\n  X = f(a b)\n}\n",
    'test "t" {\n  given a {x 1}\n}\n', "map a -> B {\n  mode\n}\n", "}\n", "{\n", ")\n",
]


@pytest.mark.parametrize("src", [c.src for c in CASES.values()] + MUTATIONS,
                         ids=list(CASES) + [f"mutation{i}" for i in range(len(MUTATIONS))])
def test_messages_use_the_users_words(src):
    names = _terminal_names()
    r = parse_text(src, "t.fmap")
    assert r.diagnostics, "expected a syntax error"
    for d in r.diagnostics:
        for text in (d.message, d.hint or "", *(x.message for x in d.related)):
            assert not _leaks(text, names), f"terminal name in {text!r}"


def test_five_broken_declarations_give_five_diagnostics():
    src = (
        "mapp a -> B {}\n"
        "map a B {}\n"
        "map c -> D {\n  X == 1\n}\n"
        'valuemap v { "a" "b" }\n'
        "param p =\n"
    )
    r = parse_text(src, "t.fmap")
    assert [(d.code, d.span.line) for d in r.diagnostics] == [
        ("FM106", 1), ("FM108", 2), ("FM104", 4), ("FM108", 6), ("FM109", 7),
    ]


def test_good_declarations_survive_a_broken_one():
    src = ('migration "m"\nsource s\ntarget zoho\n'
           "map a -> B {\n  key id\n  X == 1\n}\n"
           "map c -> D {\n  key id\n  Y = y\n}\n")
    r = parse_text(src, "t.fmap")
    assert [d.code for d in r.diagnostics] == ["FM104"]
    assert [m.target.value for m in r.module.maps] == ["D"]
    assert r.module.maps[0].span.line == 8


RENDERED = {
    "unclosed_map": "migration \"m\"\nmap patients -> Contacts {\n  key id\n  First_Name = first_name | trim\n\nmap clinics -> Accounts {\n  key id\n}\n",
    "keys_typo": "map patients -> Contacts {\n  keys id\n}\n",
    "double_equals": "map patients -> Contacts {\n  key id\n  Email == email | lower\n}\n",
    "unclosed_string": "map patients -> Contacts {\n  key id\n  Note = \"unterminated\n}\n",
    "tab_indent": "map patients -> Contacts {\n\tkey id\n\tX = a ;\n}\n",
}


@pytest.mark.parametrize("src", list(RENDERED.values()), ids=list(RENDERED))
def test_rendered_diagnostic(src, snapshot):
    r = parse_text(src, "mapping.fmap")
    text = render_text(r.diagnostics, {"mapping.fmap": src})
    assert text == snapshot(extension_class=TextSnapshot)


def test_caret_under_the_offending_column():
    src = "map a -> B {\n  key id\n  Email == email\n}\n"
    r = parse_text(src, "m.fmap")
    lines = render_text(r.diagnostics, {"m.fmap": src}).split("\n")
    code_line = next(x for x in lines if "Email == email" in x)
    caret_line = lines[lines.index(code_line) + 1]
    assert caret_line.index("^") == code_line.index("==")
    assert caret_line.count("^") == 2


@pytest.mark.parametrize("src,code,message", [
    ("map a -> B {\n  X = ref\n}\n", "FM100", 'unexpected "}"; expected "("'),
    ("create module M {\n  F picklist values\n}\n", "FM100", 'unexpected "}"; expected "["'),
    ("create module M {\n  F\n}\n", "FM100", 'unexpected "}"; expected a name'),
    ("map a -> B {\n  X = a -> b\n}\n", "FM100", 'unexpected "->"'),
], ids=["ref_needs_paren", "values_needs_list", "field_needs_type", "arrow_in_expression"])
def test_specific_expectations_are_not_fm109(src, code, message):
    (d,) = parse_text(src).diagnostics
    assert d.code == code and d.message.startswith(message), str(d)


@pytest.mark.parametrize("src,word,line", [
    ('owners bymail else "x@example.com"\n', "bymail", 1),
    ("map clinics -> A {\n  key id\n}\nmaps -> B {\n  key id\n}\n", "maps", 4),
    ('migration "m"\nsource s\ntargetive zoho\n', "targetive", 3),
    ('valuemap v { trues -> "Yes"  _ -> error }\n', "trues", 1),
], ids=["bymail", "maps", "targetive", "trues"])
def test_keywords_never_match_a_prefix_of_a_word(src, word, line):
    # Lark's contextual lexer read `bymail` as `by mail` and `trues` as `true s`: silently wrong
    r = parse_text(src)
    assert any(word in d.message and d.span.line == line for d in r.diagnostics), \
        [str(d) for d in r.diagnostics]
