"""voip.ms provider, sending: the real adapter over HTTP against the fake API.

An app sends through the Acrobits Send service; the dispatcher carries the
message to the fake carrier, which checks each request (see fake_voipms).
"""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from adapter.http_client import Answer
from adapter.messaging import segments
from adapter.messaging.disposition import RECEIPT_CONTENT_TYPE
from adapter.messaging.status import failure_notice
from adapter.providers import HookUrls, Outcome
from adapter.providers.voipms import VoipmsProvider, VoipmsSettings
from adapter.store import Store
from adapter.store.outbox import utc
from tests.conftest import wait_for
from tests.providers.fake_voipms import (  # noqa: F401 (fixtures)
    API_PASSWORD, API_USER, LOST, NAME, OUR_DID, REMOTE, REMOTE_DIGITS, SLOW, adapter, alice,
    cli_lines, fake, http, http_error, job_states, status, stored_refs,
)

LONG_GSM = ("The quick brown fox jumps over the lazy dog while the committee debates "
            "whether foxes, dogs or perhaps committees deserve the blame for the delay; "
            "nobody agrees, the minutes grow longer, and the coffee goes cold again. ") * 2
LONG_UCS2 = "Grüße aus Köln 👋 — wir sehen uns morgen früh am Bahnhof, gleich beim Kiosk. " * 2


def settled(adapter, capsys, state: str) -> list[tuple[str, str]]:
    """Wait until the only job reaches ``state``; returns every job."""
    return wait_for(lambda: (jobs := job_states(adapter, capsys)) and jobs[-1][0] == state
                    and jobs, timeout=15, what=f"job {state}")


def sent_texts(fake) -> list[str]:
    return [fields["message"] for fields in fake.sends]


def test_a_send_is_the_documented_request_and_the_job_finishes(alice, fake, adapter, capsys):
    alice.send_ok(REMOTE, "Hello from the adapter")

    assert settled(adapter, capsys, "done") == [("done", "")]
    assert fake.sends == [{
        "api_username": API_USER, "api_password": API_PASSWORD, "method": "sendSMS",
        "did": OUR_DID, "dst": REMOTE_DIGITS, "message": "Hello from the adapter",
    }]
    assert stored_refs(adapter, "Hello from the adapter") == [str(fake.sent()[0].id)]
    assert alice.received() == []  # no failure notice


@pytest.mark.parametrize("text, limit", [(LONG_GSM, 160), (LONG_UCS2, 70)], ids=["gsm7", "ucs2"])
def test_long_text_goes_as_ordered_independent_parts(alice, fake, adapter, capsys, text, limit):
    alice.send_ok(REMOTE, text)

    settled(adapter, capsys, "done")
    parts = sent_texts(fake)
    assert len(parts) >= 3 and "".join(parts) == text
    assert parts == segments.split(text)
    assert all(segments.length_units(part) <= limit for part in parts)
    # Cut after whitespace, so no word is torn between two messages.
    assert all(part.endswith(" ") for part in parts[:-1])
    assert stored_refs(adapter, text) == [str(sms.id) for sms in fake.sent()]


def test_parts_accepted_before_a_failure_are_not_sent_again(alice, fake, adapter, capsys):
    fake.then("success", http_error(503), "success", status("api_limit_exceeded"))
    alice.send_ok(REMOTE, LONG_GSM)

    settled(adapter, capsys, "done")
    first, second, third = segments.split(LONG_GSM)
    assert sent_texts(fake) == [first, second, second, third, third]
    assert [sms.message for sms in fake.sent()] == [first, second, third]
    assert stored_refs(adapter, LONG_GSM) == [str(sms.id) for sms in fake.sent()]


@pytest.mark.parametrize("answer, reason", [
    (status("invalid_dst"), "invalid_dst: not a valid destination number"),
    (status("sms_toolong"), "sms_toolong: the message exceeds 160 characters"),
    (status("invalid_did"), "invalid_did: the sending number is not an SMS-enabled DID of this account"),
    (status("dst_on_fire"), "dst_on_fire"),  # unknown: permanent, said as it is
    (http_error(400), f"HTTP 400 from {NAME}"),
])
def test_a_permanent_error_fails_the_message_with_a_notice(alice, fake, adapter, capsys,
                                                            answer, reason):
    fake.then(answer)
    alice.send_ok(REMOTE, "this will not arrive")

    assert settled(adapter, capsys, "failed") == [("failed", reason)]
    assert len(fake.sends) == 1  # never retried
    notice = wait_for(alice.received, what="failure notice")
    assert [m["sms_text"] for m in notice] == [failure_notice("this will not arrive", reason)]
    assert notice[0]["sender"] == REMOTE


def test_transient_errors_are_retried_and_delivered_later(alice, fake, adapter, capsys):
    answers = [http_error(503), http_error(429), status("api_limit_exceeded"),
               status("limit_reached"), status("invalid_credentials"), status("ip_not_enabled"),
               status("sms_failed"), status("service_temporarily_unavailable")]
    fake.then(*answers)
    alice.send_ok(REMOTE, "try, try again")

    settled(adapter, capsys, "done")  # any one taken as permanent would fail the job
    assert sent_texts(fake) == ["try, try again"] * (len(answers) + 1)
    assert [sms.message for sms in fake.sent()] == ["try, try again"]
    assert alice.received() == []


def test_a_rate_limited_send_waits_as_long_as_the_carrier_asked(alice, fake, adapter, capsys):
    fake.then(http_error(429, retry_after="600"))
    before = datetime.now(UTC)
    alice.send_ok(REMOTE, "not so fast")
    wait_for(lambda: job_states(adapter, capsys) == [("queued", f"HTTP 429 from {NAME}")],
             what="the job queued after the 429")
    [job] = asyncio.run(jobs(adapter))
    # The backoff alone would try again within 2 s.
    assert utc(job.due_at) >= before + timedelta(seconds=600)
    assert len(fake.sends) == 1


async def jobs(adapter):
    store = Store(adapter.config.database_url)
    try:
        return await store.jobs()
    finally:
        await store.close()


def test_an_outage_holds_the_message_until_the_carrier_is_back(alice, fake, adapter, capsys):
    fake.outage = True
    alice.send_ok(REMOTE, "after the outage")
    wait_for(lambda: len(fake.sends) >= 3, what="retries during the outage")
    waiting = wait_for(lambda: (job := job_states(adapter, capsys)[-1])[0] == "queued" and job,
                       what="the job queued for its next try")
    assert waiting == ("queued", f"HTTP 503 from {NAME}")
    assert fake.sent() == []

    fake.outage = False
    settled(adapter, capsys, "done")
    assert [sms.message for sms in fake.sent()] == ["after the outage"]


def test_a_send_whose_answer_was_lost_is_reconciled_not_resent(alice, fake, adapter, capsys):
    # An identical text sent an hour ago must not be taken for this one.
    older = fake.remember(OUR_DID, REMOTE_DIGITS, "did it go?", datetime.now(UTC) - timedelta(hours=1))
    fake.then(SLOW)
    alice.send_ok(REMOTE, "did it go?")

    settled(adapter, capsys, "done")
    assert len(fake.sends) == 1
    taken = fake.sent()[-1]
    assert taken.id != older.id
    assert stored_refs(adapter, "did it go?") == [str(taken.id)]
    lookup = fake.lookups[0]
    assert (lookup["did"], lookup["contact"], lookup["type"]) == (OUR_DID, REMOTE_DIGITS, "0")


def test_a_send_the_carrier_never_took_is_sent_again(alice, fake, adapter, capsys):
    fake.then(LOST)
    alice.send_ok(REMOTE, "lost in transit")

    settled(adapter, capsys, "done")
    assert len(fake.sends) == 2 and len(fake.lookups) >= 1
    assert [sms.message for sms in fake.sent()] == ["lost in transit"]


def test_while_the_history_is_unreadable_it_asks_again_instead_of_resending(
        alice, fake, adapter, capsys):
    fake.then(SLOW)
    alice.send_ok(REMOTE, "still there?")
    wait_for(lambda: fake.sends, what="the send")
    fake.outage = True  # the slow send is past the door; getSMS now fails
    wait_for(lambda: len(fake.lookups) >= 3, what="repeated history lookups")
    assert len(fake.sends) == 1

    fake.outage = False
    settled(adapter, capsys, "done")
    assert len(fake.sends) == 1
    assert stored_refs(adapter, "still there?") == [str(fake.sent()[0].id)]


def test_a_lost_answer_mid_message_resumes_after_the_reconciled_part(alice, fake, adapter,
                                                                     capsys):
    fake.then("success", SLOW)
    alice.send_ok(REMOTE, LONG_GSM)

    settled(adapter, capsys, "done")
    parts = segments.split(LONG_GSM)
    assert sent_texts(fake) == parts  # the slow second part was not sent twice
    assert stored_refs(adapter, LONG_GSM) == [str(sms.id) for sms in fake.sent()]


def test_recipients_outside_nanp_are_refused_at_send(alice, fake, adapter, capsys):
    refused = alice.send("+442071838750", "to London")
    assert refused.status_code == 403
    assert "+442071838750" in refused.json()["message"]
    assert "CA, US" in refused.json()["message"]
    assert alice.sent() == [] and fake.sends == []


def test_a_carrier_opt_out_answer_blocks_later_sends(alice, fake, adapter, capsys):
    fake.then(status("recipient_unsubscribed"))
    alice.send_ok(REMOTE, "are you there?")
    settled(adapter, capsys, "failed")

    refused = alice.send(REMOTE, "hello again")
    assert refused.status_code == 403
    assert "opted out" in refused.text
    assert len(fake.sends) == 1


def test_there_are_no_delivery_reports_to_relay(alice, fake, adapter, capsys, http):
    alice.send_ok(REMOTE, "tell me when it lands", disposition_notification="a.b:positive-delivery")
    settled(adapter, capsys, "done")

    # The status URL exists (`provider urls` prints it) but voip.ms never
    # calls it, and anything that does is refused: no receipt is made up.
    [status_url] = [line.split(" ", 1)[1] for line in
                    cli_lines(adapter, capsys, "provider", "urls", NAME) if line.startswith("status ")]
    answer = http.post(status_url, data={"id": str(fake.sent()[0].id), "status": "delivered"})
    assert answer.status_code == 400
    assert alice.received() == []
    assert RECEIPT_CONTENT_TYPE not in str(alice.fetch())


@pytest.mark.parametrize("body", [b"[" * 5000, b'{"status": ' * 100_000])
def test_an_answer_nested_too_deeply_to_read_is_ambiguous(body):
    provider = VoipmsProvider(name="voip", settings=VoipmsSettings(api_username="u",
                                                                    api_password="p"), http=None,
                              hooks=HookUrls("https://x.example/i", "https://x.example/s", "s"))
    result = provider.classify(Answer(200, body))
    assert result.outcome is Outcome.AMBIGUOUS and "unreadable answer" in result.reason
