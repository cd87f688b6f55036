"""Aculab Cloud, callbacks: the fake Aculab calls the real adapter's webhooks.

Inbound messages go to the URL ``provider urls`` prints (pasted as the Inbound
Service's notification page, authenticated by its token); status updates go to
the status page each send named, with the basic auth that send asked for.
"""

from __future__ import annotations

import pytest

from tests.app_client import ALICE, User, texts
from tests.conftest import wait_for
from tests.providers.fake_aculab import FakeAculab, Part, outbox, portal_urls, start_alice

UK = "+447700900123"


@pytest.fixture
def fake():
    with FakeAculab.served() as carrier:
        yield carrier
    assert carrier.violations == []


@pytest.fixture
def alice(start_adapter, add_account, fake) -> User:
    return start_alice(start_adapter, add_account, fake)


@pytest.fixture
def inbound(alice, config_file, capsys) -> str:
    return portal_urls(config_file, "acu", capsys)["inbound"]


def sent_ref(alice, fake, config_file, capsys, text: str = "hi", **fields) -> str:
    """Alice sends ``text`` to UK; once the job is done, the ref Aculab gave it."""
    alice.send_ok(UK, text, **fields)
    wait_for(lambda: outbox(config_file, capsys)[0].state == "done", what="the send")
    return fake.refs()[-1]


def test_an_inbound_message_reaches_the_account_and_is_acked_the_aculab_way(
        alice, fake, inbound):
    answer = fake.deliver(inbound, UK, ALICE, "Hello Alice 👋")
    assert (answer.status_code, answer.content) == (200, b"")
    [message] = alice.received()
    assert (message["sender"], message["sms_text"]) == (UK, "Hello Alice 👋")


def test_a_repeated_inbound_callback_is_stored_once(alice, fake, inbound):
    first = fake.deliver(inbound, UK, ALICE, "only once", ref="2e891aea_0.1566641192.77849")
    again = fake.deliver(inbound, UK, ALICE, "only once", ref="2e891aea_0.1566641192.77849")
    assert first.status_code == again.status_code == 200
    assert texts(alice.received()) == ["only once"]


def test_an_inbound_message_by_get(alice, fake, inbound):
    assert fake.deliver(inbound, UK, ALICE, "by GET & query", method="GET").status_code == 200
    assert texts(alice.received()) == ["by GET & query"]


@pytest.mark.parametrize("url_of", [
    lambda url: url.split("?")[0],
    lambda url: url.replace("token=", "token=x"),
    lambda url: url.split("?")[0] + "?token=",
])
def test_an_inbound_callback_without_the_secret_is_refused(url_of, alice, fake, inbound):
    refused = fake.deliver(url_of(inbound), UK, ALICE, "forged", ref="ref-1")
    assert refused.status_code == 401
    assert alice.received() == []
    # Nothing was recorded: the genuine callback with the same ref still counts.
    assert fake.deliver(inbound, UK, ALICE, "genuine", ref="ref-1").status_code == 200
    assert texts(alice.received()) == ["genuine"]


def test_the_status_page_basic_auth_does_not_open_the_inbound_url(alice, fake, inbound):
    token = inbound.split("token=")[1]
    url = inbound.split("?")[0]
    answer = fake.http.post(url, auth=("acu", token), json={
        "msg_ref": "r1", "status": "received", "to": ALICE[1:], "from": UK[1:],
        "direction": "receive", "type": "sms", "content": "sneaky"})
    assert answer.status_code == 401
    assert alice.received() == []


@pytest.mark.parametrize("fields, problem", [
    ({"from": None}, "'from'"),
    ({"to": "12"}, "not a phone number"),
    ({"content": None}, "'content'"),
    ({"msg_ref": ""}, "'msg_ref'"),
    ({"direction": "send"}, "status"),
    ({"multipart_uid": "u1", "multipart_pos": "3", "multipart_count": "2"}, "1..2"),
    ({"multipart_uid": "u1", "multipart_pos": "one", "multipart_count": "2"}, "numeric"),
])
def test_an_unusable_inbound_callback_is_a_400_and_stores_nothing(
        fields, problem, alice, fake, inbound):
    answer = fake.deliver(inbound, UK, ALICE, **{"content": "text", **fields})
    assert answer.status_code == 400
    assert problem in answer.json()["message"]
    assert alice.received() == []


def test_parts_arriving_out_of_order_and_repeated_make_one_message(alice, fake, inbound):
    parts = ["The first part, ", "the second part ", "and the end."]

    def deliver(position: int):
        answer = fake.deliver(inbound, UK, ALICE, parts[position - 1],
                              ref=f"part-ref-{position}", part=("uid-42", position, 3))
        assert answer.status_code == 200

    for position in (3, 1, 3):
        deliver(position)
    assert alice.received() == []  # the user never sees a fragment
    deliver(2)
    deliver(2)
    assert texts(alice.received()) == ["".join(parts)]


def test_stop_is_recorded_reaches_the_user_and_start_allows_sending_again(
        alice, fake, inbound):
    fake.deliver(inbound, UK, ALICE, " Stop ")
    assert texts(alice.received()) == [" Stop "]
    refused = alice.send(UK, "still there?")
    assert refused.status_code == 403
    assert "opted out" in refused.json()["message"] and "START" in refused.json()["message"]
    assert fake.sends() == []

    fake.deliver(inbound, UK, ALICE, "START")
    alice.send_ok(UK, "welcome back")
    wait_for(fake.sends, what="the send after START")
    assert [s["content"] for s in fake.sends()] == ["welcome back"]


def test_a_message_to_a_shared_number_reaches_every_account_holding_it(
        alice, add_account, fake, inbound):
    add_account("alice-desk", ALICE, password="desk-pw", provider="acu")
    desk = User(alice.http, "alice-desk", "desk-pw", ALICE)
    fake.deliver(inbound, UK, ALICE, "to both of you")
    assert texts(alice.received()) == texts(desk.received()) == ["to both of you"]


# -- status callbacks ---------------------------------------------------------------------
def test_a_status_callback_by_basic_auth_alone_is_accepted_and_a_wrong_one_refused(
        alice, fake, config_file, capsys):
    ref = sent_ref(alice, fake, config_file, capsys,
                   disposition_notification="app-1:positive-delivery")
    assert fake.report(ref, "delivered", token=False, auth=("acu", "guess")).status_code == 401
    assert fake.report(ref, "delivered", token=False, auth=None).status_code == 200
    assert [m["content_type"] for m in alice.received()] == [
        "application/x-acro-disposition-notification"]


def test_a_status_callback_by_get(alice, fake, config_file, capsys):
    ref = sent_ref(alice, fake, config_file, capsys,
                   disposition_notification="app-2:positive-delivery")
    assert fake.report(ref, "accepted", method="GET").status_code == 200
    assert '"message-id": "app-2"' in alice.received()[0]["sms_text"]


@pytest.mark.parametrize("status, err, reason", [
    ("failed (Absent subscriber)", "204",
     "Absent subscriber; invalid destination number (Aculab error 204)"),
    ("failed", "101", "detected as spam (keywords) (Aculab error 101)"),
    ("failed", "301", "please send it again (Aculab error 301)"),
    ("failed", "001", "failed at Aculab"),
    ("cancelled", "000", "cancelled"),
])
def test_a_failure_report_fails_the_message_with_the_reason(
        status, err, reason, alice, fake, config_file, capsys):
    ref = sent_ref(alice, fake, config_file, capsys, text="bad luck")
    assert fake.report(ref, status, err).status_code == 200
    [notice] = texts(alice.received())
    assert notice.startswith("⚠️ Not delivered: \u201cbad luck\u201d: ")
    assert notice.endswith(reason)
    fake.report(ref, "delivered")  # failed is final
    assert len(alice.received()) == 1


def test_unusable_status_callbacks_are_refused_and_unknown_refs_ignored(
        alice, fake, config_file, capsys):
    ref = sent_ref(alice, fake, config_file, capsys)
    assert fake.report(ref, "exploded").status_code == 400
    send = fake.parts[ref].send
    fake.parts["2e891aea_0.1.99"] = Part("2e891aea_0.1.99", send)
    assert fake.report("2e891aea_0.1.99", "delivered").status_code == 200  # not ours: acked
    received = fake.deliver(send["status_page"], UK, ALICE, "wrong URL")
    assert received.status_code == 400  # an inbound message on the status URL
    assert "notification page" in received.json()["message"]
    assert alice.received() == []
