"""Send Message: authentication, validation, what is stored and the ids returned."""

from __future__ import annotations

import asyncio
import json

import httpx2
import pytest

from tests.app_client import ALICE, BOB, SEND, ids, texts, xml_answer

BAD_CREDENTIALS = {"message": "Invalid username or password"}
RECEIPT = "application/x-acro-disposition-notification"
FILE_TRANSFER = "application/x-acro-filetransfer+json"


def history(*users) -> list[list[dict]]:
    """Everything each user's fetch shows, to compare before and after."""
    return [[user.fetch()[key] for key in ("received_smss", "sent_smss")] for user in users]


# -- success ------------------------------------------------------------------------


def test_send_answers_the_id_the_message_has_in_sent_smss(alice, bob):
    first = alice.send_ok(BOB, "one")
    second = alice.send_ok(BOB, "two")
    assert int(second) > int(first)
    sent = alice.sent()
    assert [(m["sms_id"], m["sms_text"]) for m in sent] == [(first, "one"), (second, "two")]
    assert texts(bob.received()) == ["one", "two"]


def test_each_account_numbers_its_own_messages(alice, bob):
    alice.send_ok(BOB, "a1")
    alice.send_ok(BOB, "a2")
    reply = bob.send_ok(ALICE, "b1")
    # bob's received copies took ids 1 and 2 of bob's sequence; the reply is 3.
    assert ids(bob.received()) == [1, 2]
    assert reply == "3"
    assert ids(alice.received()) == [3]


TEXTS = [
    "Hello, world",
    "مرحبا بالعالم",  # Arabic, right to left
    "你好，世界",
    "Привет, мир",
    "e\u0301 a\u0300 n\u0303 — combining marks stay decomposed",
    "👩\u200d👩\u200d👧\u200d👦 family, 🏳️\u200d🌈 flag, 👍🏽 skin tone",
    "mixed: Ωmega 日本語 עברית \u200fRLM\u200f 🇺🇸",
    "quotes \" ' < > & \\ and % %25 + = ; #",
    " leading and trailing spaces ",
    "line\nbreaks\r\nand\ttabs",
    "\u00a0\u2028\u2029\ufeff odd spaces",
]


@pytest.mark.parametrize("transport", ["get", "form", "json"])
def test_text_round_trips_exactly(http, alice, bob, transport):
    for text in TEXTS:
        fields = {**alice.credentials, "to": BOB, "body": text}
        if transport == "get":
            response = http.get(SEND, params=fields)
        elif transport == "form":
            response = http.post(SEND, data=fields)
        else:
            response = http.post(SEND, json=fields)
        assert response.status_code == 200, response.text
    assert texts(bob.received()) == TEXTS
    assert texts(alice.sent()) == TEXTS


def test_a_long_text_comes_back_byte_for_byte(http, alice, bob):
    text = "".join(chr(0x41 + i % 26) if i % 7 else "é😀"[i % 2] for i in range(5000))
    assert len(text) == 5000
    sms_id = alice.send_ok(BOB, text)
    received = http.post("/acrobits/fetch", json={**bob.credentials})
    [message] = received.json()["received_smss"]
    assert message["sms_text"].encode("utf-8") == text.encode("utf-8")
    assert alice.sent()[0]["sms_id"] == sms_id


def test_plain_text_content_type_in_any_spelling_is_omitted(alice, bob):
    for spelling in ("text/plain", "TEXT/PLAIN", "text/plain; charset=utf-8", " "):
        alice.send_ok(BOB, spelling, content_type=spelling)
    for message in bob.received() + alice.sent():
        assert "content_type" not in message


def test_content_type_and_disposition_are_kept(alice, bob):
    transfer = json.dumps({"body": "pic", "attachments": [{"content-url": "https://x/y.jpg"}]})
    alice.send_ok(BOB, transfer, content_type=FILE_TRANSFER,
                  disposition_notification=" xk.tw:positive-delivery, display ")
    for message in (bob.received()[0], alice.sent()[0]):
        assert message["sms_text"] == transfer
        assert message["content_type"] == FILE_TRANSFER
        assert message["disposition_notification"] == "xk.tw:positive-delivery, display"


@pytest.mark.parametrize("receipt", [
    {"message-id": "xkXRBMCL.twvNcfC9",
     "delivery-notification": {"datetime": "2026-01-02T10:00:00Z", "status": "delivered"}},
    [{"message_id": "a.b", "display-notification": {"datetime": "2026-01-02T10:00:05Z",
                                                    "status": "displayed"}}],
])
def test_disposition_receipt_is_relayed_app_to_app(alice, bob, receipt):
    sms_id = alice.send_ok(BOB, "did you get it?", disposition_notification="a.b:display")
    body = json.dumps(receipt, indent=1)  # whitespace and newlines must survive too
    bob.send_ok(ALICE, body, content_type=RECEIPT)
    [message] = alice.received()
    assert message["content_type"] == RECEIPT
    assert message["sms_text"] == body
    assert message["sender"] == message["stream_id"] == BOB
    assert "disposition_notification" not in message
    assert alice.sent()[0]["sms_id"] == sms_id


# -- concurrency ----------------------------------------------------------------------


def test_fifty_concurrent_sends_get_fifty_increasing_ids(live_server, alice, bob):
    alice.send_ok(BOB, "warm up")  # the first send verifies the password the slow way

    async def send_all() -> list[httpx2.Response]:
        async with httpx2.AsyncClient(base_url=live_server.url, timeout=30.0) as client:
            return await asyncio.gather(*(
                client.post(SEND, json={**alice.credentials, "to": BOB, "body": f"n{i}"})
                for i in range(50)
            ))

    responses = asyncio.run(send_all())
    assert [r.status_code for r in responses] == [200] * 50
    returned = [int(r.json()["sms_id"]) for r in responses]
    assert len(set(returned)) == 50
    sent = alice.fetch()["sent_smss"]
    fetched = ids(sent)
    assert fetched == sorted(set(fetched))  # strictly increasing
    assert set(fetched[1:]) == set(returned) and len(fetched) == 51
    by_id = {int(m["sms_id"]): m["sms_text"] for m in sent}
    for response, i in zip(responses, range(50)):
        assert by_id[int(response.json()["sms_id"])] == f"n{i}"
    received = bob.received()
    assert sorted(texts(received)) == sorted(["warm up"] + [f"n{i}" for i in range(50)])
    assert ids(received) == sorted(set(ids(received)))


# -- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize("credentials", [
    {"username": "alice", "password": "wrong"},
    {"username": "mallory", "password": "alice-secret"},
    {"username": "alice", "password": ""},
    {"username": "", "password": "alice-secret"},
    {"username": "ALICE", "password": "alice-secret"},
    {"username": "a" * 1000, "password": "p" * 1000},
    {},
])
def test_bad_credentials_are_401_with_one_answer(http, alice, bob, credentials):
    before = history(alice, bob)
    response = http.post(SEND, json={**credentials, "to": BOB, "body": "hi"})
    assert response.status_code == 401
    assert response.json() == BAD_CREDENTIALS
    as_xml = http.get(SEND, params={**credentials, "to": BOB, "body": "hi", "format": "xml"})
    assert as_xml.status_code == 401
    assert xml_answer(as_xml) == BAD_CREDENTIALS
    assert history(alice, bob) == before


def test_wrong_password_and_unknown_user_answer_identically(http, alice):
    wrong = http.post(SEND, json={"username": "alice", "password": "nope", "to": BOB, "body": "x"})
    unknown = http.post(SEND, json={"username": "zed", "password": "nope", "to": BOB, "body": "x"})
    assert (wrong.status_code, wrong.content) == (unknown.status_code, unknown.content)
    assert wrong.headers["content-type"] == unknown.headers["content-type"]


@pytest.mark.parametrize(("fields", "words"), [
    ({"body": "no recipient"}, "recipient"),
    ({"to": "", "body": "empty recipient"}, "recipient"),
    ({"to": "   ", "body": "blank recipient"}, "recipient"),
    ({"to": BOB}, "message"),
    ({"to": BOB, "body": ""}, "message"),
    ({"to": "bob", "body": "x"}, "bob"),
    ({"to": "123", "body": "x"}, "123"),
    ({"to": "sip:bob@example.com", "body": "x"}, "sip:bob"),
    ({"to": "+1 202 555", "body": "x"}, "Invalid recipient"),
    ({"to": "tel:", "body": "x"}, "Invalid recipient"),
    ({"to": BOB, "body": "x", "content_type": "not a type"}, "content_type"),
    ({"to": BOB, "body": "x", "disposition_notification": "a:" + "d" * 1024}, "too long"),
])
def test_unusable_requests_are_400_and_store_nothing(http, alice, bob, fields, words):
    alice.send_ok(BOB, "before")
    before = history(alice, bob)
    response = http.post(SEND, json={**alice.credentials, **fields})
    assert response.status_code == 400, response.text
    assert words in response.json()["message"]
    assert history(alice, bob) == before
    # The account's id sequence did not move either.
    assert int(alice.send_ok(BOB, "after")) == int(before[0][1][-1]["sms_id"]) + 1


def test_credentials_are_checked_before_the_message(http, alice):
    response = http.post(SEND, json={"username": "alice", "password": "wrong", "to": "bob"})
    assert response.status_code == 401
    assert response.json() == BAD_CREDENTIALS


@pytest.mark.parametrize(("body", "content_type", "status"), [
    (b'{"username": "alice", "password": "alice-secret", "to": ', "application/json", 400),
    (b'[{"username": "alice"}]', "application/json", 400),
    (b'{"username": "alice", "password": "alice-secret", "to": {"n": 1}, "body": "x"}',
     "application/json", 400),
    (b"username,to\nalice,+12025550102", "text/csv", 415),
    (b"username=alice&password=alice-secret&to=%2B12025550102&body=\xff", "", 400),
])
def test_rejected_bodies_store_nothing(http, alice, bob, body, content_type, status):
    before = history(alice, bob)
    response = http.post(SEND, content=body, headers={"Content-Type": content_type})
    assert response.status_code == status
    assert history(alice, bob) == before


def test_an_overlong_content_type_is_400_on_every_engine(alice, bob):
    response = alice.send(BOB, "x", content_type="application/" + "x" * 300)
    assert response.status_code == 400, response.text
    assert "content_type" in response.json()["message"]
    assert alice.sent() == []


def test_an_overlong_device_name_is_accepted_on_every_engine(alice, bob):
    device = "d" * 300
    sms_id = alice.send_ok(BOB, "from a long-named device", device=device)
    assert alice.sent(device=device)[0]["sms_id"] == sms_id


@pytest.mark.parametrize("field", ["body", "username", "content_type", "disposition_notification",
                                   "device"])
def test_a_nul_character_is_400_on_every_engine(http, alice, bob, field):
    fields = {**alice.credentials, "to": BOB, "body": "x", "content_type": "text/x-y",
              "disposition_notification": "a:display", "device": "phone"}
    fields[field] += "\x00tail"
    response = http.post(SEND, json=fields)
    assert response.status_code == 400, response.text
    assert field in response.json()["message"]
    assert alice.sent() == []
