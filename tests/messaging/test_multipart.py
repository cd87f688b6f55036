"""Joining the parts of a split inbound message, with markers where parts are missing."""

from __future__ import annotations

from hypothesis import given, strategies as st

from adapter.messaging.multipart import complete, join, missing, missing_marker


def test_parts_join_in_position_order_as_they_are():
    # Carriers cut anywhere, mid-word too: nothing is added between parts.
    assert join({3: "end.", 1: "The fir", 2: "st part, the "}, 3) == "The first part, the end."


def test_a_missing_part_is_marked_where_it_belongs():
    assert join({1: "Meet me at", 3: "tomorrow."}, 3) == (
        "Meet me at [part 2 of 3 missing] tomorrow.")


def test_markers_at_the_ends_and_for_several_missing_parts():
    assert join({2: "middle"}, 3) == "[part 1 of 3 missing] middle [part 3 of 3 missing]"
    assert join({4: "last"}, 4) == (
        "[part 1 of 4 missing] [part 2 of 4 missing] [part 3 of 4 missing] last")


def test_a_group_is_complete_once_every_position_is_held():
    assert not complete({1: "a"}, 2) and not complete({}, 1)
    assert complete({1: "a", 2: "b"}, 2) and complete({1: "whole"}, 1)


def test_missing_lists_the_absent_positions_in_order():
    assert missing({1: "a", 3: "c"}, 4) == [2, 4]
    assert missing({1: "a", 2: "b"}, 2) == []


@given(st.integers(1, 10).flatmap(lambda total: st.tuples(
    st.just(total),
    st.dictionaries(st.integers(1, total), st.text(min_size=1, max_size=20), max_size=total))))
def test_every_part_and_every_gap_shows_in_order(case):
    total, parts = case
    text = join(parts, total)
    pieces = [parts.get(p, missing_marker(p, total)) for p in range(1, total + 1)]
    found = 0
    for piece in pieces:
        found = text.index(piece, found) + len(piece)
    if not missing(parts, total):
        assert text == "".join(pieces)
