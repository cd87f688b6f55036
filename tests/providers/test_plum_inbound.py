"""Plum's calls to the adapter: inbound messages on the Application URL, their
ack, repeats, opt-out keywords, and the secret every callback must carry."""

from __future__ import annotations

import json

import pytest

from adapter.providers.plum import EMPTY_REPLY
from tests.providers.fake_plum import plum_ack_problems, post
from tests.providers.test_plum import (  # noqa: F401  (fixtures)
    ALICE, REMOTE, adapter, alice, fake, hook_urls, http, plum_user, queued, settled,
)

PLUM_ALICE, PLUM_REMOTE = ALICE[1:], REMOTE[1:]  # as Plum writes numbers


@pytest.fixture
def urls(adapter, capsys) -> dict[str, str]:
    return hook_urls(adapter, capsys)


def conversation(user) -> list[tuple[str, str]]:
    return [(m["sender"], m["sms_text"]) for m in user.received()]


@pytest.mark.parametrize("sender", [PLUM_REMOTE, REMOTE, "2025550199"])
def test_an_inbound_message_reaches_the_account_and_is_acked_the_plum_way(fake, alice, urls,
                                                                          sender):
    response = fake.deliver(urls["inbound"], sender, PLUM_ALICE, "Hi Alice 👋 & <you>")
    assert response.status_code == 200
    assert response.content == EMPTY_REPLY == b'<?xml version="1.0"?><reply/>'
    assert plum_ack_problems(response) == []
    # The ack came after the commit: the message is there without waiting.
    assert conversation(alice) == [(REMOTE, "Hi Alice 👋 & <you>")]


def test_an_inbound_message_may_come_as_json(alice, urls):
    response = post(urls["inbound"], json={"sms_message_id": "a" * 32, "to": PLUM_ALICE,
                                           "from": PLUM_REMOTE, "body": "as JSON"})
    assert plum_ack_problems(response) == []
    assert conversation(alice) == [(REMOTE, "as JSON")]


def test_a_repeated_inbound_message_is_stored_once_and_acked_again(fake, alice, urls):
    first = fake.deliver(urls["inbound"], PLUM_REMOTE, PLUM_ALICE, "once", ref="b" * 32)
    again = fake.deliver(urls["inbound"], PLUM_REMOTE, PLUM_ALICE, "once", ref="b" * 32)
    assert first.content == again.content == EMPTY_REPLY
    other = fake.deliver(urls["inbound"], PLUM_REMOTE, PLUM_ALICE, "once", ref="c" * 32)
    assert other.status_code == 200
    assert conversation(alice) == [(REMOTE, "once"), (REMOTE, "once")]


def test_an_inbound_message_to_a_shared_number_reaches_every_account(http, add_account, fake,
                                                                     alice, urls):
    desk = plum_user(http, add_account, "alice-desk", ALICE)
    fake.deliver(urls["inbound"], PLUM_REMOTE, PLUM_ALICE, "to both")
    assert conversation(alice) == conversation(desk) == [(REMOTE, "to both")]


def test_an_inbound_message_for_a_number_nobody_holds_is_acked(fake, alice, urls):
    response = fake.deliver(urls["inbound"], PLUM_REMOTE, "12025550142", "lost")
    assert plum_ack_problems(response) == []  # or Plum would keep trying
    assert alice.received() == []


@pytest.mark.parametrize("change", [
    {"body": None}, {"from": None}, {"to": None}, {"sms_message_id": None},
    {"from": "12"}, {"to": "not a number"},
])
def test_an_unusable_inbound_message_is_refused_and_nothing_stored(alice, urls, change):
    fields = {"sms_message_id": "d" * 32, "to": PLUM_ALICE, "from": PLUM_REMOTE, "body": "x",
              **change}
    response = post(urls["inbound"], data={k: v for k, v in fields.items() if v is not None})
    assert response.status_code == 400
    assert alice.received() == []


def without_token(url: str) -> str:
    return url.split("?", 1)[0]


@pytest.mark.parametrize("spoil", [without_token, lambda url: url[:-4] + "XXXX"])
def test_callbacks_without_the_secret_are_refused(adapter, fake, alice, urls, capsys, spoil):
    inbound = fake.deliver(spoil(urls["inbound"]), PLUM_REMOTE, PLUM_ALICE, "forged")
    assert inbound.status_code == 401
    alice.send_ok(REMOTE, "sent", disposition_notification="f.1:positive-delivery")
    [message] = queued(fake)
    settled(adapter, capsys, "done")
    status = fake.report(message.ids[0], "received", url=spoil(urls["status"]))
    assert status.status_code == 401
    assert alice.received() == []
    # The genuine URL works: the refusals above were about the secret alone.
    assert fake.report(message.ids[0], "received", url=urls["status"]).status_code == 200
    [receipt] = alice.received()
    assert json.loads(receipt["sms_text"])["message-id"] == "f.1"


def test_stop_is_delivered_recorded_and_start_allows_sending_again(fake, alice, urls):
    fake.deliver(urls["inbound"], PLUM_REMOTE, PLUM_ALICE, "Stop")
    assert conversation(alice) == [(REMOTE, "Stop")]
    refused = alice.send(REMOTE, "are you there?")
    assert refused.status_code == 403
    assert "opted out" in refused.json()["message"]
    assert "START" in refused.json()["message"]
    assert fake.requests == []
    fake.deliver(urls["inbound"], PLUM_REMOTE, PLUM_ALICE, " start ")
    assert conversation(alice) == [(REMOTE, "Stop"), (REMOTE, " start ")]
    alice.send_ok(REMOTE, "welcome back")
    [message] = queued(fake)
    assert message.form["body"] == "welcome back"
