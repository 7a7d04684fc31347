"""split_note: numbered parts that fit, split at the best boundary, reproduce the text."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.functions import ConversionError, collect_reports, split_note

PREFIX_RX = re.compile(r"^\((\d+)/(\d+)\) ")


def _strip_prefixes(parts: list[str]) -> list[str]:
    out = []
    for i, p in enumerate(parts, 1):
        m = PREFIX_RX.match(p)
        assert m, p
        assert int(m.group(1)) == i and int(m.group(2)) == len(parts)
        out.append(p[m.end():])
    return out


def _assert_reproduces(original: str, bodies: list[str]) -> None:
    """The bodies appear in order in the original, separated only by whitespace."""
    pos = 0
    for body in bodies:
        assert body, "no empty parts"
        while pos < len(original) and original[pos].isspace():
            pos += 1
        assert original[pos : pos + len(body)] == body
        pos += len(body)
    assert original[pos:].strip() == ""


def test_text_that_fits_is_one_part_without_prefix():
    assert split_note("short note", 20) == ["short note"]
    assert split_note("x" * 20, 20) == ["x" * 20]
    assert split_note("", 5) == [""]
    assert split_note("  padded  ", 8) == ["padded"]  # fits once trimmed


def test_prefers_paragraph_breaks():
    text = "First paragraph is here.\n\nSecond paragraph. It has two sentences."
    parts = split_note(text, 50)
    assert parts == ["(1/2) First paragraph is here.",
                     "(2/2) Second paragraph. It has two sentences."]


def test_then_sentence_ends_then_spaces():
    text = "One sentence here. Another one follows and is long."
    assert split_note(text, 38) == ["(1/2) One sentence here.", "(2/2) Another one follows and is long."]
    words = "alpha beta gamma delta epsilon zeta eta theta"
    parts = split_note(words, 20)
    assert all(len(p) <= 20 for p in parts)
    assert _strip_prefixes(parts) == ["alpha beta", "gamma delta", "epsilon zeta", "eta theta"]


def test_a_far_paragraph_break_is_not_preferred_over_a_full_part():
    text = "Hi.\n\n" + "word " * 30
    parts = split_note(text, 60)
    assert len(_strip_prefixes(parts)[0]) > 20  # did not stop at the tiny first paragraph


def test_long_word_is_cut_and_reported():
    with collect_reports() as reps:
        parts = split_note("a " + "x" * 30 + " b", 16)
    assert all(len(p) <= 16 for p in parts)
    assert "".join(_strip_prefixes(parts)).replace(" ", "") == "a" + "x" * 30 + "b"
    assert reps and {r.kind for r in reps} == {"split_mid_word"}


def test_no_report_when_only_whitespace_splits():
    with collect_reports() as reps:
        split_note("word " * 50, 30)
    assert reps == []


def test_total_is_exact_when_the_prefix_grows_from_9_to_10_parts():
    # Nine 10-character words: "(n/9) " leaves room for exactly one word per part.
    text = " ".join(["abcdefghij"] * 9)
    parts = split_note(text, 16)
    assert parts == [f"({n}/9) abcdefghij" for n in range(1, 10)]
    # Ten words: a 1-digit total would give 10 parts, so the prefix becomes "(n/10) " / "(10/10) ".
    text = " ".join(["abcdefghij"] * 10)
    parts = split_note(text, 18)
    assert parts == [f"({n}/10) abcdefghij" for n in range(1, 11)]
    assert all(len(p) <= 18 for p in parts)
    # With one character less, the 10th part ("(10/10) " is 8 wide) cannot hold a whole word:
    # the count goes to 11 and stays consistent.
    with collect_reports() as reps:
        parts = split_note(text, 17)
    assert len(parts) == 11 and parts[-1].startswith("(11/11) ")
    assert all(len(p) <= 17 for p in parts)
    assert [r.kind for r in reps] == ["split_mid_word"]


def test_custom_prefix_and_errors():
    parts = split_note("one two three four", 12, "[{n}] ")
    assert parts == ["[1] one two", "[2] three", "[3] four"]
    assert split_note("one two three four", 9, "") == ["one two", "three", "four"]
    with pytest.raises(ConversionError):
        split_note("x" * 50, 5)  # the prefix alone does not fit
    with pytest.raises(ConversionError):
        split_note("x" * 50, 20, "{page}")
    with pytest.raises(ConversionError):
        split_note("x", 0)


words = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Z", "Cc"]),
                min_size=1, max_size=25)
separators = st.sampled_from([" ", "  ", "\n", "\n\n", ". ", "! ", "\n \n", "\t"])
notes = st.lists(st.tuples(words, separators), min_size=1, max_size=60).map(
    lambda items: "".join(w + s for w, s in items)
)


@settings(max_examples=200, deadline=None)
@given(notes, st.integers(min_value=12, max_value=120))
def test_split_note_properties(text, max_len):
    parts = split_note(text, max_len)
    assert all(len(p) <= max_len for p in parts)
    if len(text) <= max_len:
        assert parts == [text]
        return
    if len(parts) == 1:
        assert parts == [text.strip()]
        return
    bodies = _strip_prefixes(parts)
    _assert_reproduces(text, bodies)
    assert all(b == b.strip() for b in bodies)


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=1, max_value=400))
def test_split_note_counts_are_consistent_for_many_parts(n_words):
    text = " ".join(f"w{i:03d}" for i in range(n_words))
    parts = split_note(text, 14)
    assert all(len(p) <= 14 for p in parts)
    if len(parts) > 1:
        _assert_reproduces(text, _strip_prefixes(parts))
