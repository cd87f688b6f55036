"""SMS segmentation: GSM 03.38 encoding choice, part counts and splitting.

A carrier sends text as GSM-7 when every character is in the default alphabet
and as UCS-2 (UTF-16) otherwise, so one emoji shrinks every part from 160 to 70
units. Python strings hold code points, so an escape pair (extension character)
or a surrogate pair (astral character) is one item here and can never be cut.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

GSM7 = "gsm7"
UCS2 = "ucs2"

# 3GPP TS 23.038 default alphabet in code order; 0x1B is ESC (the prefix of the
# extension table), not a character, so the set holds the other 127 codes.
GSM7_BASIC: frozenset[str] = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "\u0394_\u03a6\u0393\u039b\u03a9\u03a0\u03a8\u03a3\u0398\u039eÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Each costs two septets: ESC plus the character's code.
GSM7_EXTENSION: frozenset[str] = frozenset("\f^{}\\[]~|€")

SINGLE_LIMIT = {GSM7: 160, UCS2: 70}
# A concatenated part loses 6 octets to the user data header.
CONCATENATED_LIMIT = {GSM7: 153, UCS2: 67}

_ZWJ = "\u200d"
# Spaces a writer chose so that the words around them stay together.
_NO_BREAK_SPACES = frozenset("\u00a0\u2007\u202f")


@dataclass(frozen=True)
class SegmentInfo:
    encoding: str
    units: int
    parts: int


def encoding(text: str) -> str:
    """"gsm7" when the whole text fits the default alphabet, else "ucs2"."""
    if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text):
        return GSM7
    return UCS2


def length_units(text: str) -> int:
    """Septets for GSM-7 text, UTF-16 code units for anything else."""
    return sum(_char_units(text, encoding(text)))


def count(text: str) -> SegmentInfo:
    """Parts a concatenating carrier would bill for; 0 parts for "" (nothing to send)."""
    enc = encoding(text)
    units = _char_units(text, enc)
    return SegmentInfo(enc, sum(units), len(_concatenated_cuts(units, enc, None)))


def split(text: str, limit: int | None = None, *, concatenated: bool = False) -> list[str]:
    """Cut ``text`` into ordered parts, each within the per-part unit limit.

    By default every part is an independent SMS (160 septets / 70 UTF-16
    units), cut after whitespace when that keeps at least half a part, else
    before a grapheme cluster, else hard at the limit. ``concatenated=True``
    packs greedily to 153 / 67 like a carrier does (the phone reassembles the
    parts, so cut points are invisible and only the count matters).
    ``limit`` replaces the per-part limit in the text's encoding. The encoding
    is the whole text's: one non-GSM character makes every part UCS-2.
    "".join(parts) == text always; "" gives [] because there is nothing to send.
    """
    if limit is not None and limit < 2:
        raise ValueError("limit must be at least 2 units: any one character may need two")
    enc = encoding(text)
    units = _char_units(text, enc)
    if concatenated:
        cuts = _concatenated_cuts(units, enc, limit)
    else:
        cuts = _independent_cuts(text, units, limit or SINGLE_LIMIT[enc])
    return [text[start:end] for start, end in zip([0, *cuts], cuts)]


def _char_units(text: str, enc: str) -> list[int]:
    if enc == GSM7:
        return [2 if c in GSM7_EXTENSION else 1 for c in text]
    return [2 if ord(c) > 0xFFFF else 1 for c in text]


def _concatenated_cuts(units: list[int], enc: str, limit: int | None) -> list[int]:
    """End index of each part, packing as many characters as fit."""
    if not units:
        return []
    if sum(units) <= (limit or SINGLE_LIMIT[enc]):
        return [len(units)]
    cap = limit or CONCATENATED_LIMIT[enc]
    cuts, taken = [], 0
    for i, u in enumerate(units):
        if taken + u > cap:
            cuts.append(i)
            taken = 0
        taken += u
    cuts.append(len(units))
    return cuts


def _independent_cuts(text: str, units: list[int], limit: int) -> list[int]:
    cuts, start, n = [], 0, len(text)
    while start < n:
        end, taken = start, 0
        while end < n and taken + units[end] <= limit:
            taken += units[end]
            end += 1
        if end < n:
            end = _best_cut(text, units, start, end, limit)
        cuts.append(end)
        start = end
    return cuts


def _best_cut(text: str, units: list[int], start: int, end: int, limit: int) -> int:
    """Where to end the part text[start:end], which is full and not the last.

    The last whitespace that leaves at least half a part wins (a part of a few
    words would waste an SMS); else the last grapheme boundary; else the limit.
    """
    taken = sum(units[start:end])
    fallback = None
    for p in range(end, start, -1):
        if 2 * taken < limit and fallback is not None:
            break
        if _breakable(text, p):
            if 2 * taken >= limit and _is_break_space(text[p - 1]):
                return p
            if fallback is None:
                fallback = p
        taken -= units[p - 1]
    return end if fallback is None else fallback


def _is_break_space(c: str) -> bool:
    return c.isspace() and c not in _NO_BREAK_SPACES


def _breakable(text: str, i: int) -> bool:
    """Whether a cut between text[i-1] and text[i] leaves grapheme clusters whole.

    A heuristic, not UAX #29: marks, joiners, variation selectors, emoji
    modifiers and tags attach to what precedes them; CR LF and flag pairs stay.
    """
    before, after = text[i - 1], text[i]
    if before == _ZWJ or _extends(after):
        return False
    if before == "\r" and after == "\n":
        return False
    if _regional(before) and _regional(after):
        run = 0
        while run < i and _regional(text[i - 1 - run]):
            run += 1
        return run % 2 == 0
    return True


def _extends(c: str) -> bool:
    code = ord(c)
    return (
        c == _ZWJ
        or unicodedata.category(c).startswith("M")
        or 0xFE00 <= code <= 0xFE0F  # variation selectors (emoji / text style)
        or 0x1F3FB <= code <= 0x1F3FF  # skin tone modifiers
        or 0xE0020 <= code <= 0xE007F  # tag sequences (subdivision flags)
        or 0xE0100 <= code <= 0xE01EF  # variation selectors supplement
    )


def _regional(c: str) -> bool:
    return 0x1F1E6 <= ord(c) <= 0x1F1FF
