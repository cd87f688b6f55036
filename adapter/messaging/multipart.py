"""Split inbound messages: joining the parts a carrier delivered separately.

The parts of one sender's split message to one recipient are held until all
have arrived (:func:`complete`), then delivered as one text (:func:`join`).
A part may never arrive (the carrier lost it), so the first part starts a
bounded wait, after which the group is delivered with what is there; the
user sees where text is missing rather than a message silently cut short,
and a part arriving after that is delivered on its own, marked the same way
(``inbound.py`` applies these in one transaction).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

# How long the first part of a split message waits for the others (seconds),
# and the most an operator may set: an SMS is expected within moments.
DEFAULT_WAIT_SECONDS = 60.0
MAX_WAIT_SECONDS = 120.0


def missing_marker(position: int, total: int) -> str:
    return f"[part {position} of {total} missing]"


def complete(parts: Collection[int], total: int) -> bool:
    """Whether the parts held are all of a group of ``total``: it is delivered now."""
    return len(parts) >= total


def missing(parts: Collection[int], total: int) -> list[int]:
    """The positions (1-based) of 1..``total`` not in ``parts``."""
    return [position for position in range(1, total + 1) if position not in parts]


def join(parts: Mapping[int, str], total: int) -> str:
    """The text of a group: its parts in order (by 1-based position), a
    marker where one is missing."""
    text = ""
    for position in range(1, total + 1):
        if position in parts:
            # Parts are cut anywhere, mid-word too: they join as they are.
            gap = " " if position > 1 and position - 1 not in parts else ""
            text += gap + parts[position]
        else:  # a marker stands apart from what is on either side
            text += (" " if position > 1 else "") + missing_marker(position, total)
    return text
