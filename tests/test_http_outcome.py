"""What a failed outbound call means: transport errors, HTTP statuses, Retry-After."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapter.http_client import Answer, AnswerTimeout, AnswerTooLarge, NoAnswer, NotSent
from adapter.http_outcome import (
    MAX_RETRY_AFTER_SECONDS, Failure, of_error, of_status, retry_after,
)

NOW = datetime(2026, 12, 4, 14, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize("error, failure, said", [
    (NotSent("ClientConnectorError: refused"), Failure.TRANSIENT, "cannot reach acme: "),
    (AnswerTimeout("nothing came for 15 s"), Failure.AMBIGUOUS, "acme did not answer in time"),
    (NoAnswer("ServerDisconnectedError"), Failure.AMBIGUOUS, "no answer from acme: "),
    (AnswerTooLarge("answer larger than 1048576 bytes"), Failure.AMBIGUOUS, "no answer from acme"),
])
def test_a_transport_error_is_transient_only_when_nothing_was_sent(error, failure, said):
    verdict = of_error(error, "acme")
    assert verdict.failure is failure
    assert verdict.reason.startswith(said) and str(error) in verdict.reason


@pytest.mark.parametrize("code, failure", [
    (301, Failure.MISADDRESSED), (302, Failure.MISADDRESSED), (307, Failure.MISADDRESSED),
    (400, Failure.PERMANENT), (401, Failure.UNAUTHORIZED), (403, Failure.UNAUTHORIZED),
    (404, Failure.MISADDRESSED), (405, Failure.MISADDRESSED), (408, Failure.TRANSIENT),
    (409, Failure.PERMANENT), (413, Failure.PERMANENT), (422, Failure.PERMANENT),
    (429, Failure.RATE_LIMITED), (500, Failure.TRANSIENT), (502, Failure.TRANSIENT),
    (503, Failure.TRANSIENT), (504, Failure.TRANSIENT), (599, Failure.TRANSIENT),
])
def test_each_http_status_has_one_meaning(code, failure):
    verdict = of_status(Answer(code, b"whatever the body says"))
    assert verdict.failure is failure
    assert verdict.reason == f"HTTP {code}"


@pytest.mark.parametrize("code", [200, 201, 202, 204, 299])
def test_a_success_leaves_the_body_to_the_caller(code):
    assert of_status(Answer(code, b'{"status": "failure"}')) is None


def test_a_rate_limit_carries_its_retry_after():
    verdict = of_status(Answer(429, headers={"Retry-After": "120"}))
    assert (verdict.failure, verdict.retry_after) == (Failure.RATE_LIMITED, 120.0)
    assert of_status(Answer(429)).retry_after is None
    assert of_status(Answer(503, headers={"Retry-After": "30"})).retry_after == 30.0
    assert of_status(Answer(500, headers={"Retry-After": "30"})).retry_after is None


@pytest.mark.parametrize("value, seconds", [
    ("0", 0.0), ("120", 120.0), (" 7 ", 7.0),
    ("Fri, 04 Dec 2026 14:02:00 GMT", 120.0),  # IMF-fixdate
    ("Friday, 04-Dec-26 14:00:30 GMT", 30.0),  # obsolete RFC 850
    ("Fri Dec  4 14:01:00 2026", 60.0),  # asctime: no zone, UTC
    ("Fri, 04 Dec 2026 13:00:00 GMT", 0.0),  # already past: now
    ("99999999", MAX_RETRY_AFTER_SECONDS), ("9" * 400, MAX_RETRY_AFTER_SECONDS),
    ("", None), ("soon", None), ("-5", None), ("1.5", None), ("١٢", None),
    ("Fri, 32 Dec 2026 14:02:00 GMT", None),
])
def test_retry_after_is_seconds_or_an_http_date(value, seconds):
    assert retry_after(Answer(429, headers={"Retry-After": value}), now=NOW) == seconds
