"""Aculab Cloud, sending: the real adapter sends through a fake Aculab over real HTTP.

Callbacks (status updates, inbound messages) are in test_aculab_hooks.py.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from adapter.http_client import Answer, new_http_client
from adapter.messaging.disposition import RECEIPT_CONTENT_TYPE
from adapter.providers import HookUrls, OutboundSms, Outcome
from adapter.providers.aculab import AculabProvider, AculabSettings, error_text
from tests.app_client import ALICE
from tests.conftest import bound_socket, run_cli, serving, wait_for
from tests.providers.fake_aculab import (
    API_KEY, USERNAME, FakeAculab, outbox, portal_urls, provider_toml, start_alice,
)

UK = "+447700900123"  # off-net: no account holds it


@pytest.fixture
def fake():
    with FakeAculab.served() as carrier:
        yield carrier
    assert carrier.violations == []


@pytest.fixture
def alice(start_adapter, add_account, fake):
    return start_alice(start_adapter, add_account, fake)


def job_settles(config_file, capsys, state: str = "done") -> dict[str, str]:
    """Wait for the (only) job to reach ``state``; returns its ``outbox list`` row."""
    def settled():
        jobs = outbox(config_file, capsys)
        return jobs and jobs[0].state == state and jobs[0]
    return wait_for(settled, what=f"the job to be {state}")


def notices(user) -> list[str]:
    return [m["sms_text"] for m in user.received() if m["sms_text"].startswith("⚠️")]


def receipts(user) -> list[dict]:
    return [json.loads(m["sms_text"]) for m in user.received()
            if m.get("content_type") == RECEIPT_CONTENT_TYPE]


def test_a_send_is_the_documented_msg_send_request(alice, fake, config_file, capsys):
    alice.send_ok(UK, "Hello from Alice ☺")
    job = job_settles(config_file, capsys)
    status_url = portal_urls(config_file, "acu", capsys)["status"]
    assert fake.sends() == [{
        "to": "447700900123", "from": "12025550101", "type": "sms",
        "content": "Hello from Alice ☺",
        "status_page": status_url, "status_method": "POST",
        "status_authentication_name": "acu",
        "status_authentication_password": parse_qs(urlsplit(status_url).query)["token"][0],
    }]
    assert [call.method for call in fake.calls] == ["POST"]
    assert (job.kind, job.provider, job.attempts, job.last_error) == ("send", "acu", 1, None)


def test_long_text_is_split_by_aculab_and_delivered_when_every_part_is(
        alice, fake, config_file, capsys):
    text = "The quick brown fox jumps over the lazy dog. " * 8  # 360 GSM-7 characters
    alice.send_ok(UK, text, disposition_notification="app-long-1:positive-delivery")
    job_settles(config_file, capsys)
    [send] = fake.sends()
    assert send["content"] == text and send["request_delivery_report"] == "true"
    refs = fake.refs()
    assert len(refs) == 3  # one ref per 153-septet part
    for ref in refs[:2]:
        assert fake.report(ref, "delivered").status_code == 200
    assert receipts(alice) == []  # a part is still on its way
    fake.report(refs[2], "delivered")
    assert [r["message-id"] for r in receipts(alice)] == ["app-long-1"]


def test_delivery_report_gives_the_sender_a_receipt(alice, fake, config_file, capsys):
    alice.send_ok(UK, "did you get this?", disposition_notification="app-7:positive-delivery")
    job_settles(config_file, capsys)
    [ref] = fake.refs()
    for status in ("submitted to carrier", "sent"):
        assert fake.report(ref, status).status_code == 200
    assert receipts(alice) == []
    answer = fake.report(ref, "delivered")
    assert (answer.status_code, answer.content) == (200, b"")  # Aculab wants 200, body ignored
    [receipt] = receipts(alice)
    assert receipt["message-id"] == "app-7"
    assert receipt["delivery-notification"]["status"] == "delivered"
    fake.report(ref, "delivered")  # a repeated report sends no second receipt
    assert len(receipts(alice)) == 1


def test_a_permanent_error_fails_the_message_with_a_notice(alice, fake, config_file, capsys):
    fake.fail_next(400, "0002", "Invalid destination number")
    alice.send_ok(UK, "never arrives")
    job = job_settles(config_file, capsys, "failed")
    assert "Invalid destination number" in job.last_error
    [notice] = notices(alice)
    assert notice.startswith("⚠️ Not delivered: \u201cnever arrives\u201d")
    assert "Invalid destination number" in notice
    assert len(fake.sends()) == 1  # not retried
    # A refusal might be a STOP: Aculab was asked about exactly this pair.
    assert fake.called("msg_list_blocked") == [{"from": "12025550101", "to": "447700900123"}]


def test_a_blocked_recipient_fails_the_send_and_is_recorded_as_opted_out(
        alice, fake, config_file, capsys):
    fake.block(ALICE, UK)
    alice.send_ok(UK, "hello?")
    job_settles(config_file, capsys, "failed")
    [notice] = notices(alice)
    assert "blocked messages from +12025550101" in notice and "START" in notice
    refused = alice.send(UK, "hello again?")
    assert refused.status_code == 403
    assert "opted out" in refused.json()["message"]
    assert len(fake.sends()) == 1


@pytest.mark.parametrize("trouble", ["outage", "rate limited"])
def test_transient_errors_are_retried_until_delivered(trouble, alice, fake, config_file, capsys):
    if trouble == "outage":
        fake.outage(times=2)
    else:
        fake.fail_next(429, "HTTP 429", "Too Many Requests", times=2)
    alice.send_ok(UK, "third time lucky")
    job = job_settles(config_file, capsys)
    assert job.attempts == 3
    assert [s["content"] for s in fake.sends()] == ["third time lucky"] * 3
    assert len(fake.refs()) == 1  # only the last attempt was taken


def test_an_unreachable_carrier_is_retried_once_it_is_back(
        start_adapter, add_account, config_file, capsys):
    sock, url = bound_socket()  # bound, not listening: connections are refused
    fake = FakeAculab()
    fake.url = url
    alice = start_alice(start_adapter, add_account, fake)
    alice.send_ok(UK, "anyone there?")
    wait_for(lambda: "cannot reach acu" in (outbox(config_file, capsys)[0].last_error or ""),
             what="a refused connection")
    with serving(fake.app, sock):
        job_settles(config_file, capsys)
    assert [s["content"] for s in fake.sends()] == ["anyone there?"]
    assert fake.violations == []


def test_a_slow_answer_is_sent_again_because_aculab_cannot_be_asked_without_refs(
        alice, fake, config_file, capsys):
    # The answer (with the refs) comes after our 0.5 s timeout. msg_status
    # needs refs and Aculab has no other lookup, so the adapter sends again:
    # the documented price is a duplicate, never a lost message.
    fake.slow_next(1.5)
    alice.send_ok(UK, "slowly")
    job = job_settles(config_file, capsys)
    assert job.attempts == 2
    assert [s["content"] for s in fake.sends()] == ["slowly", "slowly"]
    assert fake.called("msg_status") == []


def test_a_carrier_without_delivery_reports_still_sends_the_text(
        alice, fake, config_file, capsys):
    fake.delivery_reports = False
    alice.send_ok(UK, "receipt please", disposition_notification="app-9:positive-delivery")
    job_settles(config_file, capsys)
    first, second = fake.sends()
    assert first["request_delivery_report"] == "true"
    assert "request_delivery_report" not in second
    assert {**first, **second} == first  # otherwise the same request
    assert len(fake.refs()) == 1


def test_an_alphanumeric_sender_id_goes_with_the_number(start_adapter, add_account, fake,
                                                        config_file, capsys):
    alice = start_alice(start_adapter, add_account, fake,
                        extra='alphanumeric_ids = { "+12025550101" = "ACME Ltd" }\n')
    alice.send_ok(UK, "from ACME")
    job_settles(config_file, capsys)
    [send] = fake.sends()
    assert (send["alphanumeric_id"], send["from"]) == ("ACME Ltd", "12025550101")


@pytest.mark.parametrize("table, problem", [
    ('{ "+12025550101" = "ACME-Limited" }', "1-11 characters"),
    ('{ "+12025550101" = "" }', "1-11 characters"),
    ('{ "not a number" = "ACME" }', "not a phone number"),
    ('"ACME"', "must be a table"),
])
def test_a_bad_alphanumeric_id_stops_the_adapter_at_start(table, problem, config_file, capsys):
    fake = FakeAculab()
    fake.url = "http://127.0.0.1:9"
    config_file.write_text(config_file.read_text()
                           + provider_toml(fake, extra=f"alphanumeric_ids = {table}\n"))
    capsys.readouterr()
    assert run_cli(config_file, "provider", "urls", "acu") == 2
    error = capsys.readouterr().err
    assert "providers.acu.alphanumeric_ids" in error and problem in error


# -- reconcile: the provider on its own against the fake --------------------------------------
@pytest.mark.anyio
async def test_reconcile_asks_msg_status_instead_of_sending_again(fake):
    # Through the dispatcher an ambiguous Aculab send has no refs (Aculab answers
    # them all at once or not at all): this covers the check for when they are known.
    async with new_http_client() as http:
        provider = AculabProvider(
            name="acu", settings=AculabSettings(username=USERNAME, api_key=API_KEY,
                                                base_url=fake.url),
            http=http, hooks=HookUrls("https://x.example/i", "https://x.example/s", "s3cret"))
        sms = OutboundSms(message_id=1, sender=ALICE, recipient=UK, text="x" * 200,
                          status_url="https://adapter.example/hooks/acu/status?token=s3cret")
        sent = await provider.send(sms)
        assert sent.outcome is Outcome.ACCEPTED and len(sent.refs) == 2
        # The callback carries our secret: Aculab must check the certificate.
        assert fake.sends()[0]["status_ssl_check"] == "true"
        earlier = OutboundSms(**{**sms.__dict__, "refs": sent.refs})

        assert await provider.reconcile(earlier) == sent  # taken: nothing to resend
        assert fake.called("msg_status") == [{"msg_refs": "/".join(sent.refs)}]
        assert len(fake.sends()) == 1

        fake.parts[sent.refs[1]].status, fake.parts[sent.refs[1]].err = "failed", "301"
        assert (await provider.reconcile(earlier)).outcome is Outcome.TRANSIENT  # send again
        fake.parts[sent.refs[1]].err = "204"
        failed = await provider.reconcile(earlier)
        assert failed.outcome is Outcome.PERMANENT
        assert "invalid destination number (Aculab error 204)" in failed.reason

        unknown = OutboundSms(**{**sms.__dict__, "refs": ("2e891aea_0.1.1",)})
        assert await provider.reconcile(unknown) is None  # never taken: send it
        assert await provider.reconcile(sms) is None  # no refs (a timeout): cannot tell
        assert len(fake.sends()) == 1


@pytest.mark.parametrize("body", [b"[" * 5000, b'{"error": ' * 100_000])
def test_an_answer_nested_too_deeply_to_read_is_quoted_as_text(body):
    assert error_text(Answer(400, body)) == body[:200].decode()
