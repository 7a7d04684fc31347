"""html_to_text: structure to line breaks, entities, lists, dropped scripts, sloppy HTML."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from runtime.functions import html_to_text


@pytest.mark.parametrize(
    "html, expected",
    [
        ("<p>Hello <b>world</b></p><p>Second</p>", "Hello world\n\nSecond"),
        ("<p>one</p>\n\n\n<p></p><p> </p><p>two</p>", "one\n\ntwo"),  # at most one blank line
        ("a<br>b<br/>c<br />d", "a\nb\nc\nd"),
        ("a<br><br>b", "a\n\nb"),
        ("a<br><br><br><br>b", "a\n\nb"),
        ("<div>x</div><div>y</div>", "x\ny"),
        ("<h1>Title</h1>body", "Title\n\nbody"),
        ("<h2>A</h2><h3>B</h3>", "A\n\nB"),
        ("<p>unclosed<p>next", "unclosed\n\nnext"),
        ("plain   text\n  across\tlines", "plain text across lines"),
        ("<p>  lots   of\n   space  </p>", "lots of space"),
        ("", ""),
    ],
)
def test_blocks_and_whitespace(html, expected):
    assert html_to_text(html) == expected


@pytest.mark.parametrize(
    "html, expected",
    [
        ("Fish &amp; chips", "Fish & chips"),
        ("1 &lt; 2 &gt; 0", "1 < 2 > 0"),
        ("caf&eacute; &#233; &#xE9;", "café é é"),
        ("a&nbsp;&nbsp;b", "a b"),
        ("&quot;quoted&quot; &apos;s", "\"quoted\" 's"),
        ("AT&T and &unknown;", "AT&T and &unknown;"),
    ],
)
def test_entities(html, expected):
    assert html_to_text(html) == expected


def test_lists_and_nesting():
    html = ("<p>Plan:</p><ul><li>Clean</li><li>X-ray<ul><li>bitewing</li><li>OPG</li></ul></li>"
            "<li>Review</li></ul><p>Done.</p>")
    assert html_to_text(html) == (
        "Plan:\n\n- Clean\n- X-ray\n  - bitewing\n  - OPG\n- Review\n\nDone."
    )
    assert html_to_text("<ol><li>first<li>second</ol>") == "- first\n- second"
    assert html_to_text("<ul><li><p>para in item</p></li><li>b</li></ul>") == "- para in item\n- b"
    assert html_to_text("<li>orphan item</li>") == "- orphan item"
    assert html_to_text("<ul><li></li><li>only</li></ul>") == "- only"  # empty bullets dropped
    assert html_to_text("<ul><li></li></ul>text") == "text"  # ...and never leak onto later text
    assert html_to_text("<ul><li>a<br>b</li></ul>") == "- a\nb"


def test_dropped_content():
    html = ("<head><title>t</title><style>p{color:red}</style></head>"
            "<script>alert('x<p>')</script>Visible<!-- a comment --> text<template>no</template>")
    assert html_to_text(html) == "Visible text"


def test_tables_and_pre():
    html = "<table><tr><th>Tooth</th><th>Note</th></tr><tr><td>16</td><td>MOD</td></tr></table>after"
    assert html_to_text(html) == "Tooth | Note\n16 | MOD\n\nafter"
    assert html_to_text("<pre>line 1\nline 2</pre>") == "line 1\nline 2"


def test_list_nested_without_an_item_is_not_indented_at_the_start():
    assert html_to_text("<ul><ul><li>a<li>b</ul></ul>") == "- a\n- b"
    assert html_to_text("<ul><li>a<ul><li>b</ul></ul>") == "- a\n  - b"


def test_malformed_html_never_raises():
    for html in ["<p", "</div></div>text", "<<>>", "<a href='x'>link", "<br/ >x", "&#99999999;",
                 "<ul><li>a</ul></li></ul>b", "<scr<script>ipt>x</script>"]:
        assert isinstance(html_to_text(html), str)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(["<p>", "</p>", "<br>", "<div>", "</div>", "<ul>", "<li>", "</ul>",
                                 "word", "two words", " ", "\n", "&amp;", "<b>", "</b>"]),
                max_size=30))
@example(["<ul>", "<ul>", "<li>", "word"])
@example(["<ul>", "<ul>", "<li>", "word", "</ul>", "<li>", "word"])
def test_output_invariants(tokens):
    out = html_to_text("".join(tokens))
    assert "\n\n\n" not in out
    assert out == out.strip()
    assert "<" not in out and ">" not in out
    for line in out.split("\n"):
        assert line == line.rstrip() and "  " not in line.lstrip()
