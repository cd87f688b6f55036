"""Opt-out and opt-in keywords: the whole message, any case."""

from __future__ import annotations

import pytest

from adapter.messaging.optout import OptOutChange, change, keyword


@pytest.mark.parametrize("text", ["STOP", "stop", " Stop\n", "STOPALL", "unsubscribe", "CANCEL",
                                  "end", "Quit"])
def test_opt_out_keywords(text):
    assert keyword(text) == "out"
    assert change(text) == OptOutChange(True, f"{text.strip().upper()} received")


@pytest.mark.parametrize("text", ["START", "yes", " unstop "])
def test_opt_in_keywords(text):
    assert keyword(text) == "in"
    assert change(text) == OptOutChange(False, f"{text.strip().upper()} received")


@pytest.mark.parametrize("text", ["stop it", "please STOP", "STOP!", "", "no", "STARTED"])
def test_any_other_text_changes_nothing(text):
    assert keyword(text) is None and change(text) is None
