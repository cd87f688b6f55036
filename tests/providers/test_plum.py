"""The plum provider, driven through the real adapter against a fake Plum DEV.

Sending: the exact Queue SMS request, each documented answer, outages and
late answers. Receipts and failure notices reach the sender's fetch.
Inbound messages, repeats, opt-out keywords and webhook authentication are
in test_plum_inbound.py.
"""

from __future__ import annotations

import json

import pytest

from adapter import cli
from adapter.http_client import Answer
from adapter.providers import Outcome
from adapter.providers.plum import classify
from adapter.store import Job
from tests.app_client import User
from tests.conftest import outbox_jobs, serving, wait_for
from tests.providers.fake_plum import PART, FakePlum

ALICE = "+12025550101"
REMOTE = "+12025550199"  # off-net: only Plum reaches it
PLUM_USER, PLUM_PASSWORD = "dev-login@example.com", "pass:with colon"
RECEIPT = "application/x-acro-disposition-notification"


@pytest.fixture
def fake():
    fake = FakePlum(PLUM_USER, PLUM_PASSWORD, numbers={ALICE[1:]})
    with serving(fake.app) as url:
        fake.url = url
        yield fake
    assert fake.violations == []


@pytest.fixture
def adapter(start_adapter, fake):
    return start_adapter(
        f'[providers.plum]\ntype = "plum"\nusername = "{PLUM_USER}"\n'
        f'password = "{PLUM_PASSWORD}"\nbase_url = "{fake.url}/ws/sms"\n'
        "timeout_seconds = 1.0\n"
    )


@pytest.fixture
def http(adapter):
    with adapter.client() as client:
        yield client


def plum_user(http, add_account, username: str, number: str = ALICE) -> User:
    password = f"{username}-secret"
    add_account(username, number, password=password, provider="plum")
    return User(http, username, password, number)


@pytest.fixture
def alice(http, add_account) -> User:
    return plum_user(http, add_account, "alice")


def cli_lines(adapter, capsys, *args: str) -> list[str]:
    capsys.readouterr()
    assert cli.main(["--config", str(adapter.config_file), *args]) == 0
    return capsys.readouterr().out.splitlines()


def hook_urls(adapter, capsys) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in cli_lines(adapter, capsys, "provider", "urls", "plum"))


def settled(adapter, capsys, state: str) -> Job:
    """Wait until the only job is in ``state``; returns it."""
    def only_job():
        jobs = outbox_jobs(adapter.config_file)
        return jobs[0] if len(jobs) == 1 and jobs[0].state == state else None
    return wait_for(only_job, timeout=10, what=f"the job to be {state}")


def queued(fake: FakePlum, count: int = 1):
    return wait_for(lambda: fake.queued if len(fake.queued) >= count else None,
                    what=f"{count} message(s) queued at Plum")


# -- the request -------------------------------------------------------------------


def test_a_send_is_the_documented_queue_request(adapter, fake, alice, capsys):
    text = "Hello from the adapter ✓ & ünïcode"
    sms_id = alice.send_ok(REMOTE, text)
    [message] = queued(fake)
    assert message.form == {"to": "12025550199", "from": "12025550101", "body": text,
                            "result_url": hook_urls(adapter, capsys)["status"]}
    row = settled(adapter, capsys, "done")
    assert (row.provider, row.attempts) == ("plum", 1)
    assert [m["sms_id"] for m in alice.sent()] == [sms_id]
    assert len(fake.requests) == 1


def test_long_text_goes_whole_and_is_delivered_when_every_part_is(adapter, fake, alice,
                                                                  capsys):
    text = " ".join(f"word{i}" for i in range(70))  # about 450 characters
    alice.send_ok(REMOTE, text, disposition_notification="long.1:positive-delivery")
    [message] = queued(fake)
    assert message.form["body"] == text  # Plum splits; we do not
    assert len(message.ids) == -(-len(text) // PART) == 3
    settled(adapter, capsys, "done")
    for ref in message.ids[:-1]:
        assert fake.report(ref, "received").status_code == 200
    assert alice.received() == []  # one part still on its way
    fake.report(message.ids[-1], "received")
    [receipt] = alice.received()
    assert json.loads(receipt["sms_text"])["message-id"] == "long.1"


# -- status callbacks ----------------------------------------------------------------


def test_delivery_report_gives_the_sender_a_receipt(adapter, fake, alice, capsys):
    alice.send_ok(REMOTE, "did it arrive?", disposition_notification="app.7:positive-delivery")
    [message] = queued(fake)
    settled(adapter, capsys, "done")  # refs are stored with the job's outcome
    for status in ("queued", "sent"):
        assert fake.report(message.ids[0], status).status_code == 200
    assert alice.received() == []
    assert fake.report(message.ids[0], "received").status_code == 200
    [receipt] = alice.received()
    assert receipt["content_type"] == RECEIPT
    assert receipt["sender"] == REMOTE
    body = json.loads(receipt["sms_text"])
    assert body["message-id"] == "app.7"
    assert body["delivery-notification"]["status"] == "delivered"
    fake.report(message.ids[0], "received")  # a repeat changes nothing
    assert len(alice.received()) == 1


@pytest.mark.parametrize("fields", [
    {"id": "{ref}", "sms_status": "received"},
    {"message_id": "{ref}", "status": "delivered"},
])
def test_status_callback_field_variants_are_understood(adapter, fake, alice, capsys, fields):
    alice.send_ok(REMOTE, "variant", disposition_notification="v.1:positive-delivery")
    [message] = queued(fake)
    settled(adapter, capsys, "done")
    data = {name: value.format(ref=message.ids[0]) for name, value in fields.items()}
    url = message.form["result_url"]
    with adapter.client() as client:  # and as JSON rather than a form
        assert client.post(url.removeprefix(adapter.url), json=data).status_code == 200
    [receipt] = alice.received()
    assert receipt["content_type"] == RECEIPT


def test_a_failed_report_gives_the_sender_a_notice(adapter, fake, alice, capsys):
    alice.send_ok(REMOTE, "will fail later")
    [message] = queued(fake)
    settled(adapter, capsys, "done")
    fake.report(message.ids[0], "failed", error="Carrier rejected the message")
    [notice] = alice.received()
    assert "Not delivered" in notice["sms_text"]
    assert "will fail later" in notice["sms_text"]
    assert "Carrier rejected the message" in notice["sms_text"]


def test_unusable_status_callbacks_are_refused_and_unknown_ones_ignored(adapter, fake, alice,
                                                                        capsys):
    alice.send_ok(REMOTE, "x", disposition_notification="u.1:positive-delivery")
    [message] = queued(fake)
    settled(adapter, capsys, "done")
    url = message.form["result_url"]
    assert fake.report("", "received", url=url).status_code == 400
    assert fake.report(message.ids[0], "", url=url).status_code == 400
    assert fake.report(message.ids[0], "teleported").status_code == 200
    assert fake.report("f" * 32, "received", url=url).status_code == 200  # not ours
    assert alice.received() == []


# -- answers to the send ------------------------------------------------------------


@pytest.mark.parametrize("answer, reason", [
    ("landline", "To number: +12025550199, is not a mobile number"),
    ("invalid_to", "Invalid 'to' phone number"),
])
def test_a_permanent_error_fails_the_message_with_a_notice(adapter, fake, alice, capsys,
                                                           answer, reason):
    fake.script = [answer]
    alice.send_ok(REMOTE, "to a landline")
    row = settled(adapter, capsys, "failed")
    assert reason in row.last_error
    [notice] = alice.received()
    assert notice["sms_text"].startswith("⚠️ Not delivered")
    assert reason in notice["sms_text"]
    assert len(fake.requests) == 1 and fake.queued == []
    # A permanent failure is no opt-out: the next message goes to Plum.
    alice.send_ok(REMOTE, "again")
    queued(fake)


def test_an_unsubscribed_recipient_fails_and_later_sends_are_refused(adapter, fake, alice,
                                                                     capsys):
    fake.script = ["unsubscribed"]
    alice.send_ok(REMOTE, "hello?")
    settled(adapter, capsys, "failed")
    [notice] = alice.received()
    assert "Attempt to send to unsubscribed recipient" in notice["sms_text"]
    refused = alice.send(REMOTE, "hello again")
    assert refused.status_code == 403
    assert "opted out" in refused.json()["message"]
    assert len(fake.requests) == 1


@pytest.mark.parametrize("script", [["outage", "outage"], ["unauthorized"]])
def test_transient_errors_are_retried_until_plum_takes_the_message(adapter, fake, alice,
                                                                   capsys, script):
    fake.script = list(script)
    alice.send_ok(REMOTE, "persistent", disposition_notification="t.1:positive-delivery")
    [message] = queued(fake)
    row = settled(adapter, capsys, "done")
    assert row.attempts == len(script) + 1
    assert len(fake.requests) == len(script) + 1
    assert all(form == message.form for form in fake.requests)
    fake.report(message.ids[0], "received")
    assert json.loads(alice.received()[0]["sms_text"])["message-id"] == "t.1"


def test_a_late_answer_is_ambiguous_and_the_message_is_sent_again(adapter, fake, alice,
                                                                 capsys):
    # Plum has no way to find a message whose id the lost answer carried
    # (see adapter/providers/plum.py), so the adapter resends: Plum queues
    # it twice, and the second answer's id is the one tracked.
    fake.script = ["slow"]
    alice.send_ok(REMOTE, "slow network", disposition_notification="s.1:positive-delivery")
    lost, tracked = sorted(queued(fake, 2), key=lambda q: not q.late)
    assert lost.late and not tracked.late
    assert lost.form == tracked.form
    row = settled(adapter, capsys, "done")
    assert row.attempts == 2
    fake.report(lost.ids[0], "received")  # the lost answer's id is unknown to us
    assert alice.received() == []
    fake.report(tracked.ids[0], "received")
    assert json.loads(alice.received()[0]["sms_text"])["message-id"] == "s.1"
    assert len(fake.requests) == 2


@pytest.mark.parametrize("body", [b"[" * 5000, b'{"result": ' * 100_000])
def test_an_answer_nested_too_deeply_to_read_is_ambiguous(body):
    result = classify(Answer(200, body))
    assert result.outcome is Outcome.AMBIGUOUS and "unreadable answer" in result.reason
