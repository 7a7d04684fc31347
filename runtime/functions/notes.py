"""Splitting long notes into numbered parts that each fit a CRM's note-length limit."""

from __future__ import annotations

import re
from typing import Any

from .errors import ConversionError, report
from .text import _str
from .values import MISSING

__all__ = ["split_note"]

DEFAULT_PREFIX = "({n}/{total}) "

_PARAGRAPH = re.compile(r"\n[ \t\r\f\v]*\n")
_SENTENCE = re.compile(r"[.!?][\"')\]]*(?=\s)")
_SPACE = re.compile(r"\s")


def _cut(s: str, room: int) -> tuple[int, bool]:
    """Where to cut the (longer than ``room``, non-whitespace-leading) text ``s``.

    Returns (end of this part, whether a word was cut). Preference: a paragraph break, then a
    sentence end, each only if it keeps at least half the room (so parts are not needlessly tiny);
    then the last whitespace; then a hard cut mid-word at ``room``.
    """
    window = s[: room + 1]  # whitespace right after `room` characters is a valid cut
    half = room // 2
    for pattern, at_end in ((_PARAGRAPH, False), (_SENTENCE, True)):
        best = -1
        for m in pattern.finditer(window):
            pos = m.end() if at_end else m.start()
            if pos <= room:
                best = pos
        if best >= half and best > 0:
            return best, False
    best = -1
    for m in _SPACE.finditer(window):
        best = m.start()
    if best > 0:
        return best, False
    return room, True


class _TooManyParts(Exception):
    pass


def _split(s: str, rooms, max_parts: int) -> tuple[list[str], int]:
    """Greedy split of stripped text ``s``; ``rooms(n)`` is the room of part n. Returns the parts
    and the number of words cut; raises ``_TooManyParts`` past ``max_parts``."""
    parts: list[str] = []
    words_cut = 0
    rest = s
    while rest:
        n = len(parts) + 1
        if n > max_parts:
            raise _TooManyParts
        room = rooms(n)
        if len(rest) <= room:
            parts.append(rest)
            break
        end, cut_word = _cut(rest, room)
        words_cut += cut_word
        parts.append(rest[:end].rstrip())
        rest = rest[end:].lstrip()
    return parts, words_cut


def split_note(value: Any, max_len: int, prefix: str = DEFAULT_PREFIX) -> Any:
    """Split long text into parts of at most ``max_len`` characters *including* the rendered prefix.

    ``prefix`` is a ``str.format`` template with ``{n}`` (1-based part number) and ``{total}``
    (number of parts), default ``"({n}/{total}) "``. Text that fits in ``max_len`` is returned as a
    single part *without* prefix. Splits go preferably at a paragraph break, then after a sentence
    end, then at whitespace (a candidate must keep at least half the room, else the next kind is
    tried), and mid-word only when a single word is longer than the room (reported, kind
    ``"split_mid_word"``). Whitespace at the split points is dropped, as is leading/trailing
    whitespace of a multi-part note; concatenating the parts without prefixes gives the original
    text modulo that whitespace. ``total`` is exact even when its digit count changes the prefix
    width (9 -> 10 parts). A ``max_len`` too small to hold the prefix raises ``ConversionError``.
    Null propagates.
    """
    if value is MISSING or value is None:
        return value
    s = _str(value, "split_note")
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1:
        raise ConversionError("split_note", value, "max_len must be a positive integer")
    if len(s) <= max_len:
        return [s]
    s = s.strip()
    if len(s) <= max_len:
        return [s]
    if prefix is None:
        prefix = ""
    if not isinstance(prefix, str):
        raise ConversionError("split_note", value, "prefix must be text")
    try:
        prefix.format(n=1, total=1)
    except (KeyError, IndexError, ValueError, AttributeError):
        raise ConversionError("split_note", value, "prefix may only use {n} and {total}") from None
    # Guess the digit count of `total`: with d digits there are at most 10**d - 1 parts, and the
    # prefix width of part n is exact for every n of that range. More digits only shrink the room,
    # so going up from 1 finds the smallest consistent count.
    digits = 1
    while True:
        placeholder = "9" * digits

        def rooms(n: int, _t=placeholder) -> int:
            return max_len - len(prefix.format(n=n, total=_t))

        if rooms(10**digits - 1) <= 0:
            raise ConversionError("split_note", value, "max_len is too small for the prefix")
        try:
            parts, words_cut = _split(s, rooms, 10**digits - 1)
            break
        except _TooManyParts:
            digits += 1
    for _ in range(words_cut):
        report("split_mid_word", "a word longer than a note part was split across parts")
    total = len(parts)
    return [prefix.format(n=i, total=total) + p for i, p in enumerate(parts, 1)]
