"""Nothing written in a .fmap file can become Python code.

Strings, backtick names, quoted target field names, map source/target names, comments, value-map
keys and values, param values, skip reasons, `not migrated` text and the migration title are
generated full of quotes, backslashes, triple quotes, newlines (as `\\n` escapes), raw U+2028/2029,
Python keywords and injection payloads. Each file must compile to a module that (1) parses,
(2) executes nothing but its own definitions when imported into a fresh namespace (a sentinel
builtin that every payload calls is never called) and (3) behaves as specified: the transform's
output keys and values are exactly those strings.
"""

from __future__ import annotations

import ast
import builtins

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.testing import compile_text, load_module

PAYLOADS = [
    "__fmap_sentinel__()",
    "'); __fmap_sentinel__(); ('",
    '"); __fmap_sentinel__(); ("',
    '"""; __fmap_sentinel__(); """',
    "'''; __fmap_sentinel__(); '''",
    "\n__fmap_sentinel__()\n",
    "\\'); __fmap_sentinel__() #",
    "\\\"\"\"\n__fmap_sentinel__()\n\"\"\"",
    "\u2028__fmap_sentinel__()\u2029",
    "{__fmap_sentinel__()}",
    "__import__('os').system('__fmap_sentinel__')",
    "x = 1\r__fmap_sentinel__()",
]
KEYWORDS = ["class", "def", "None", "True", "import", "lambda", "return", "__class__", "P", "rec",
            "out", "MISSING", "_v1", "vm_1", "_K1"]
PIECES = ['"', "'", "\\", '"""', "'''", "\n", "\t", "\r", "\0", "\u2028", "\u2029", "#", "{", "}",
          "`", "$", "é", "\U0001f600", " ", "\x7f", "\x1b", "\ufeff"]


def _text(allow_newline: bool = True, allow_backtick: bool = True):
    piece = st.sampled_from(PIECES + KEYWORDS + PAYLOADS) | st.text(max_size=4)
    strat = st.lists(piece, min_size=1, max_size=5).map("".join)

    def ok(s: str) -> bool:
        if not s.strip(" "):
            return False
        if not allow_newline and ("\n" in s or "\r" in s):
            return False
        return allow_backtick or "`" not in s

    return strat.filter(ok)


def fmap_string(s: str) -> str:
    """A .fmap string literal for ``s`` (escapes: \\n \\t \\r \\" \\\\ \\0)."""
    out = []
    for ch in s:
        out.append({"\n": "\\n", "\t": "\\t", "\r": "\\r", '"': '\\"', "\\": "\\\\",
                    "\0": "\\0"}.get(ch, ch))
    return '"' + "".join(out) + '"'


def fmap_name(s: str) -> str:
    return f"`{s}`"


def build(t: dict) -> str:
    return "\n".join([
        f"# {t['comment']}",
        f"migration {fmap_string(t['title'])}",
        "source clinic",
        "target zoho",
        f"param p_value = {fmap_string(t['param'])}",
        f"valuemap codes {{ {fmap_string(t['vm_key'])} -> {fmap_string(t['vm_value'])}"
        f"  _ -> {fmap_string(t['vm_default'])} }}",
        f"# {t['comment']}",
        f"map {fmap_name(t['source'])} -> {fmap_name(t['target'])} {{",
        "  key id",
        f"  {fmap_string(t['f1'])} = {fmap_string(t['literal'])}",
        f"  {fmap_name(t['f2'])} = {fmap_name(t['field'])}  # {t['comment']}",
        f"  {fmap_string(t['f3'])} = code | codes",
        f"  {fmap_string(t['f4'])} = $p_value ++ {fmap_string(t['literal'])}",
        f"  skip when code == {fmap_string(t['skip'])} because {fmap_string(t['reason'])}",
        "}",
        f"not migrated {fmap_string(t['subject'])} {fmap_string(t['reason'])}",
        "",
    ])


def texts():
    line = _text(allow_newline=False, allow_backtick=False)
    anything = _text()
    fields = st.lists(anything, min_size=4, max_size=4, unique=True).filter(
        lambda fs: "\n" not in fs[1] and "\r" not in fs[1] and "`" not in fs[1])
    return st.fixed_dictionaries({
        "comment": line, "title": anything, "param": anything, "vm_key": anything,
        "vm_value": anything, "vm_default": anything, "source": line, "target": line,
        "field": line, "literal": anything, "skip": anything, "reason": anything,
        "subject": anything, "fields": fields,
    }).map(lambda d: {**d, "f1": d["fields"][0], "f2": d["fields"][1], "f3": d["fields"][2],
                      "f4": d["fields"][3]})


@pytest.fixture
def sentinel(monkeypatch):
    calls: list[tuple] = []
    monkeypatch.setattr(builtins, "__fmap_sentinel__", lambda *a: calls.append(a), raising=False)
    return calls


def check(t: dict, calls: list) -> None:
    text = build(t)
    result = compile_text(text, "safety.fmap")
    assert result.ok, [d.message for d in result.diagnostics]
    src = result.python
    tree = ast.parse(src)
    # only definitions, assignments and the two import statements run at import time
    for node in tree.body:
        assert isinstance(node, (ast.ImportFrom, ast.FunctionDef, ast.Assign, ast.Expr)), node
        if isinstance(node, ast.Expr):  # the module docstring only
            assert isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
    assert not any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                   and n.func.id in ("__fmap_sentinel__", "__import__", "exec", "eval")
                   for n in ast.walk(tree))
    mod = load_module(src, "safety.fmap.py", "safety_generated")  # a fresh namespace each time
    plan = mod.PLAN
    assert plan.migration == t["title"]
    assert plan.params == {"p_value": t["param"]}
    assert plan.not_migrated == [(t["subject"], t["reason"])]
    (step,) = plan.steps
    assert (step.source, step.target, step.name) == (t["source"], t["target"], t["target"])
    assert step.fields == (t["f1"], t["f2"], t["f3"], t["f4"])
    assert step.skips[0].reason == t["reason"]
    P = plan.params
    rec = {"id": "k1", t["field"]: t["literal"], "code": t["vm_key"]}
    out = step.transform(rec, (), P)
    assert out == {t["f1"]: t["literal"], t["f2"]: t["literal"], t["f3"]: t["vm_value"],
                   t["f4"]: t["param"] + t["literal"]}
    assert list(out) == [t["f1"], t["f2"], t["f3"], t["f4"]]
    other = step.transform({"code": t["vm_key"] + "\x00unlisted"}, (), P)
    assert other == {t["f1"]: t["literal"], t["f3"]: t["vm_default"],
                     t["f4"]: t["param"] + t["literal"]}
    assert step.key(rec, (), P) == "k1"
    assert step.skips[0].predicate({"code": t["skip"]}, (), P) is True
    assert step.skips[0].predicate({"code": t["skip"] + "x"}, (), P) is False
    assert not calls, "a payload executed"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.filter_too_much,
                                                                  HealthCheck.function_scoped_fixture])
@given(t=texts())
def test_any_text_stays_data(t, sentinel):
    check(t, sentinel)


@pytest.mark.parametrize("payload", PAYLOADS, ids=range(len(PAYLOADS)))
def test_each_payload_everywhere(payload, sentinel):
    line = payload.replace("\n", " ").replace("\r", " ").replace("`", "'")
    t = {
        "comment": line, "title": payload, "param": payload, "vm_key": payload,
        "vm_value": payload + "v", "vm_default": payload + "d", "source": line,
        "target": line + "T", "field": line, "literal": payload, "skip": payload,
        "reason": payload, "subject": payload, "f1": payload + "1", "f2": line + "2",
        "f3": payload + "3", "f4": payload + "4",
    }
    check(t, sentinel)
