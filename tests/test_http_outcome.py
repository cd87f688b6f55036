"""What a failed outbound call means: transport errors, HTTP statuses, Retry-After."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapter.http_client import Answer, AnswerTimeout, AnswerTooLarge, NoAnswer, NotSent
from adapter.http_outcome import (
    MAX_RETRY_AFTER_SECONDS, Failure, of_error, of_status, retry_after,
)
from adapter.providers import Outcome, Provider
from adapter.push import PushOutcome
from adapter.push.client import classify as push_classify

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


T, P, REJECTED = Outcome.TRANSIENT, Outcome.PERMANENT, PushOutcome.REJECTED


@pytest.mark.parametrize("code, failure, carrier, push", [
    # Wrong address or credentials: the operator fixes the settings, the
    # message waits for it; the push service takes no credentials at all.
    (301, Failure.MISADDRESSED, T, REJECTED), (302, Failure.MISADDRESSED, T, REJECTED),
    (307, Failure.MISADDRESSED, T, REJECTED), (404, Failure.MISADDRESSED, T, REJECTED),
    (405, Failure.MISADDRESSED, T, REJECTED),
    (401, Failure.UNAUTHORIZED, T, REJECTED), (403, Failure.UNAUTHORIZED, T, REJECTED),
    (400, Failure.PERMANENT, P, REJECTED), (409, Failure.PERMANENT, P, REJECTED),
    (413, Failure.PERMANENT, P, REJECTED), (422, Failure.PERMANENT, P, REJECTED),
    (408, Failure.TRANSIENT, T, PushOutcome.TRANSIENT),
    (429, Failure.RATE_LIMITED, T, PushOutcome.TRANSIENT),
    (500, Failure.TRANSIENT, T, PushOutcome.TRANSIENT),
    (502, Failure.TRANSIENT, T, PushOutcome.TRANSIENT),
    (503, Failure.TRANSIENT, T, PushOutcome.TRANSIENT),
    (504, Failure.TRANSIENT, T, PushOutcome.TRANSIENT),
    (599, Failure.TRANSIENT, T, PushOutcome.TRANSIENT),
])
def test_each_http_status_has_one_meaning_for_carriers_and_pushes(code, failure, carrier, push):
    answer = Answer(code, b"whatever the body says")
    verdict = of_status(answer)
    assert verdict.failure is failure
    assert verdict.reason == f"HTTP {code}"
    assert Provider.http_failure(answer, "said").outcome is carrier
    assert push_classify(answer).outcome is push


@pytest.mark.parametrize("code", [200, 201, 202, 204, 299])
def test_a_success_leaves_the_body_to_the_caller(code):
    answer = Answer(code, b'{"status": "failure"}')
    assert of_status(answer) is None
    assert Provider.http_failure(answer, "said") is None


def test_a_rate_limited_send_carries_retry_after_to_the_dispatcher():
    answer = Answer(429, headers={"Retry-After": "120"})
    assert Provider.http_failure(answer, "slow down").retry_after == 120.0
    assert push_classify(answer).retry_after == 120.0


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
