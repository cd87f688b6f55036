"""Opt-out and opt-in keywords on long codes (PROVIDERS.md)."""

from __future__ import annotations

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
