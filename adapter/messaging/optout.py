"""Opt-out and opt-in keywords on long codes (PROVIDERS.md)."""

from __future__ import annotations

from dataclasses import dataclass

OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN = frozenset({"START", "YES", "UNSTOP"})


def keyword(text: str) -> str | None:
    """"out" or "in" when the whole message is one such keyword, any case."""
    word = text.strip().upper()
    if word in OPT_OUT:
        return "out"
    if word in OPT_IN:
        return "in"
    return None


@dataclass(frozen=True)
class OptOutChange:
    """What an inbound keyword does to the pair of numbers it came between."""

    opted_out: bool
    reason: str  # recorded with it, e.g. "STOP received"


def change(text: str) -> OptOutChange | None:
    """The change an inbound message makes (None for any other text): the
    opt-out is recorded and the message still reaches the user."""
    found = keyword(text)
    if found is None:
        return None
    return OptOutChange(found == "out", f"{text.strip().upper()} received")
