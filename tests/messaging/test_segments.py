"""SMS segmentation: properties over arbitrary text, plus the carrier examples."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, strategies as st

from adapter.messaging.segments import (
    GSM7_BASIC, GSM7_EXTENSION, SegmentInfo, count, encoding, length_units, split,
)

GSM_CHARS = sorted(GSM7_BASIC | GSM7_EXTENSION)
# Characters that stress the cutting rules: astral emoji, joiners, selectors,
# skin tones, flags, combining marks, Cyrillic, assorted spaces.
AWKWARD = [
    "😀", "👨", "👩", "\u200d", "\ufe0f", "\U0001f3fd", "🇺", "🇸", "\u0301", "\u0308",
    "д", "ж", " ", "\n", "\r", "\t", "\u00a0", "€", "^", "e",
]

gsm_text = st.text(alphabet=GSM_CHARS, max_size=700)
mixed_text = st.text(alphabet=st.sampled_from(GSM_CHARS + AWKWARD), max_size=500)
words = st.lists(st.text(alphabet=st.sampled_from(GSM_CHARS + AWKWARD).filter(
    lambda c: not c.isspace()), min_size=1, max_size=15), max_size=80).map(" ".join)
# No joiners or marks: every position is a grapheme boundary, so the whitespace
# rule alone decides the cuts.
plain_words = st.lists(st.text(alphabet=[c for c in GSM_CHARS if not c.isspace()] + ["😀", "д"],
                               min_size=1, max_size=15), max_size=80).map(" ".join)
any_text = st.one_of(st.text(), st.text(min_size=100, max_size=400), gsm_text, mixed_text, words)


def units_in(part: str, enc: str) -> int:
    """Measured independently of the module: septets, or UTF-16 code units."""
    if enc == "gsm7":
        return sum(2 if c in GSM7_EXTENSION else 1 for c in part)
    return len(part.encode("utf-16-le")) // 2


def check_parts(text: str, parts: list[str], limit: int) -> None:
    enc = encoding(text)
    assert "".join(parts) == text
    assert all(parts), "no empty part"
    for part in parts:
        assert units_in(part, enc) <= limit
        # Each part is whole UTF-16: no surrogate pair straddles a boundary.
        assert part.encode("utf-16-le").decode("utf-16-le") == part
        if enc == "gsm7":
            assert encoding(part) == "gsm7"


# --- the alphabet -----------------------------------------------------------

def test_basic_table_is_the_default_alphabet_without_escape():
    assert len(GSM7_BASIC) == 127  # 128 codes, one of them ESC
    assert "\x1b" not in GSM7_BASIC and not GSM7_BASIC & GSM7_EXTENSION
    ascii_missing = {chr(c) for c in range(0x20, 0x7F)} - GSM7_BASIC
    assert ascii_missing == set("`^{}\\[]~|")
    assert {"\n", "\r"} <= GSM7_BASIC and "\t" not in GSM7_BASIC
    greek = {c for c in GSM7_BASIC if unicodedata.name(c, "").startswith("GREEK CAPITAL")}
    assert {unicodedata.name(c).split()[-1] for c in greek} == {
        "DELTA", "PHI", "GAMMA", "LAMDA", "OMEGA", "PI", "PSI", "SIGMA", "THETA", "XI"}
    assert set("@£$¥èéùìòÇØøÅåÆæßÉ¤¡ÄÖÑÜ§¿äöñüà") <= GSM7_BASIC
    assert "ç" not in GSM7_BASIC  # 0x09 is the capital Ç


def test_extension_table():
    assert GSM7_EXTENSION == frozenset("\f^{}\\[]~|€")


def test_encoding_and_units():
    assert encoding("") == "gsm7" and length_units("") == 0
    assert (encoding("Hi €5 [ok]"), length_units("Hi €5 [ok]")) == ("gsm7", 13)
    assert length_units("^") == 2
    assert (encoding("Hi 😀"), length_units("Hi 😀")) == ("ucs2", 5)
    assert encoding("ça") == "ucs2" and encoding("\t") == "ucs2"


# --- examples -----------------------------------------------------------------

@pytest.mark.parametrize("text, parts, concatenated_parts", [
    ("a" * 160, [160], [160]),
    ("a" * 161, [160, 1], [153, 8]),
    ("€" * 80, [80], [80]),
    ("€" * 81, [80, 1], [76, 5]),
    ("д" * 70, [70], [70]),
    ("д" * 71, [70, 1], [67, 4]),
    ("😀" * 35, [35], [35]),
    ("😀" * 36, [35, 1], [33, 3]),
])
def test_carrier_limits(text, parts, concatenated_parts):
    assert [len(p) for p in split(text)] == parts
    assert [len(p) for p in split(text, concatenated=True)] == concatenated_parts
    assert count(text).parts == len(concatenated_parts)


def test_count():
    assert count("a" * 161) == SegmentInfo("gsm7", 161, 2)
    assert count("^" * 80) == SegmentInfo("gsm7", 160, 1)
    assert count("Hi 😀" * 20) == SegmentInfo("ucs2", 100, 2)
    assert count("") == SegmentInfo("gsm7", 0, 0)


def test_empty_and_fitting_text():
    assert split("") == [] and split("", concatenated=True) == []
    assert split("hello") == ["hello"]


def test_words_split_after_spaces():
    text = " ".join(["word%02d" % i for i in range(60)])
    parts = split(text)
    assert len(parts) == 3
    assert all(p.endswith(" ") for p in parts[:-1]) and "".join(parts) == text


def test_a_lone_word_is_cut_hard_when_no_space_is_in_the_back_half():
    parts = split("a " + "b" * 200)
    assert [len(p) for p in parts] == [160, 42]


def test_one_emoji_makes_every_part_ucs2():
    parts = split("a" * 150 + "😀")
    assert [len(p) for p in parts] == [70, 70, 11]


def test_grapheme_clusters_stay_whole():
    family = "👨\u200d👩\u200d👧"  # 8 units
    assert split("x" * 65 + family) == ["x" * 65, family]
    assert split("e" * 69 + "é\u0301") == ["e" * 69, "é\u0301"]
    flags = "🇺🇸" * 20  # 80 units: the cut falls between two flags
    assert all(len(p) % 2 == 0 for p in split(flags))
    assert split("a" * 159 + "\r\n") == ["a" * 159, "\r\n"]
    # A space that carries a combining mark is not a cut point either.
    spaced = "x" * 149 + " \u0301" + "y" * 20
    assert split(spaced, 160) == [spaced[:160], spaced[160:]]


def test_no_break_space_is_not_a_cut_point():
    text = "a" * 100 + "\u00a0" + "b" * 100  # UCS-2; 160 as if a provider counted characters
    assert split(text, 160)[0] == text[:160]


def test_limit_override_and_validation():
    assert [len(p) for p in split("a" * 300, 100)] == [100, 100, 100]
    with pytest.raises(ValueError):
        split("abc", 1)


# --- properties ---------------------------------------------------------------

@given(any_text)
def test_independent_parts_are_valid(text):
    parts = split(text)
    check_parts(text, parts, 160 if encoding(text) == "gsm7" else 70)
    assert (parts == [text]) == (0 < length_units(text) <= (160 if encoding(text) == "gsm7" else 70))


@given(any_text, st.integers(min_value=2, max_value=200))
def test_any_limit_is_respected(text, limit):
    check_parts(text, split(text, limit), limit)
    check_parts(text, split(text, limit, concatenated=True), limit)


@given(any_text)
def test_concatenated_parts_match_count(text):
    parts = split(text, concatenated=True)
    info = count(text)
    enc = encoding(text)
    assert info.encoding == enc and info.units == units_in(text, enc) == length_units(text)
    assert info.parts == len(parts)
    single, multi = (160, 153) if enc == "gsm7" else (70, 67)
    check_parts(text, parts, single if len(parts) == 1 else multi)
    # Greedy packing: no part could have taken the next part's first character.
    for part, following in zip(parts, parts[1:]):
        assert units_in(part + following[0], enc) > multi


@given(plain_words)
def test_cuts_at_the_last_space_in_the_back_half_else_hard(text):
    enc = encoding(text)
    limit = 160 if enc == "gsm7" else 70
    parts = split(text)
    for part, following in zip(parts, parts[1:]):
        spaces = [i + 1 for i, c in enumerate(part) if c == " "]
        back_half = [i for i in spaces if 2 * units_in(part[:i], enc) >= limit]
        if part.endswith(" "):
            assert back_half and back_half[-1] == len(part)
            fits = max(j for j in range(len(following) + 1)
                       if units_in(part + following[:j], enc) <= limit)
            assert " " not in following[:fits], "a later space was within the limit"
        else:
            assert not back_half
            assert units_in(part + following[0], enc) > limit
