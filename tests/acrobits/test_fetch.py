"""Fetch Messages: the Modern API's two cursors, pages, devices; the Legacy API."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

import pytest

from tests.app_client import (ALICE, BOB, FETCH, FETCH_LEGACY, RFC3339_UTC, ids,
                              texts)
from tests.store.history import insert_received_history_at

PAGE = 5
FILE_TRANSFER = "application/x-acro-filetransfer+json"
DISPOSITION = "abc.def:positive-delivery, display"
MALFORMED_CURSORS = ["", " ", "abc", "-3", "1e5", "0", "1.5", "+2", "0x10", "٣", "null",
                     "999999", "99999999999999999999999999999"]


@pytest.fixture
def config_file(config_file):
    # A top-level key: before any [table] the shared fixture writes.
    config_file.write_text(f"fetch_page_size = {PAGE}\n" + config_file.read_text())
    return config_file


@pytest.fixture
def http(live_server):
    assert live_server.config.fetch_page_size == PAGE
    with live_server.client() as client:
        yield client


def send_many(sender, to: str, count: int, prefix: str = "m") -> list[int]:
    return [int(sender.send_ok(to, f"{prefix}{i}")) for i in range(count)]


def parse_date(text: str) -> datetime:
    assert RFC3339_UTC.match(text), text
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def assert_recent(moment: datetime) -> None:
    now = datetime.now(UTC)
    assert now - timedelta(seconds=60) <= moment <= now + timedelta(seconds=1)


def drain(fetch, key: str, cursor_name: str, start: str, limit: int = 20) -> list[list[int]]:
    """Fetch pages after ``start``, each time from the newest id seen, until empty."""
    pages, cursor = [], start
    for _ in range(limit):
        page = ids(fetch(**{cursor_name: cursor})[key])
        if not page:
            return pages
        pages.append(page)
        cursor = str(page[-1])
    raise AssertionError("never drained")


# -- the items -------------------------------------------------------------------------


def test_every_field_of_a_received_and_a_sent_item(alice, bob):
    plain = alice.send_ok(BOB, "Hi")
    rich = alice.send_ok(BOB, '{"attachments": []}', content_type=FILE_TRANSFER,
                         disposition_notification=DISPOSITION)
    answer = bob.fetch()
    assert set(answer) == {"date", "received_smss", "sent_smss"}
    assert_recent(parse_date(answer["date"]))
    assert answer["sent_smss"] == []
    first, second = answer["received_smss"]
    assert set(first) == {"sms_id", "sending_date", "sender", "sms_text", "stream_id"}
    assert (first["sender"], first["stream_id"], first["sms_text"]) == (ALICE, ALICE, "Hi")
    assert second["content_type"] == FILE_TRANSFER
    assert second["disposition_notification"] == DISPOSITION
    assert set(second) == set(first) | {"content_type", "disposition_notification"}
    for item in (first, second):
        assert_recent(parse_date(item["sending_date"]))
        assert isinstance(item["sms_id"], str) and item["sms_id"].isdigit()

    sent = alice.fetch()["sent_smss"]
    assert [m["sms_id"] for m in sent] == [plain, rich]
    assert set(sent[0]) == {"sms_id", "sending_date", "recipient", "sms_text", "stream_id"}
    assert (sent[0]["recipient"], sent[0]["stream_id"]) == (BOB, BOB)
    assert sent[1]["content_type"] == FILE_TRANSFER
    assert sent[1]["disposition_notification"] == DISPOSITION
    assert sent[0]["sending_date"] <= sent[1]["sending_date"]


def test_stream_id_is_the_peer_in_both_directions(alice, bob):
    alice.send_ok("(202) 555-0102", "to bob")
    bob.send_ok("tel:+1-202-555-0101", "to alice")
    for user, peer in ((alice, BOB), (bob, ALICE)):
        answer = user.fetch()
        [received], [sent] = answer["received_smss"], answer["sent_smss"]
        assert received["stream_id"] == received["sender"] == peer
        assert sent["stream_id"] == sent["recipient"] == peer


# -- cursors ---------------------------------------------------------------------------


def test_cursors_select_newer_messages_oldest_first(alice, bob):
    # Interleave both directions: ids are one sequence per account.
    sent, received = [], []
    for i in range(4):
        sent.append(int(alice.send_ok(BOB, f"out{i}")))
        bob.send_ok(ALICE, f"in{i}")
        received.append(sent[-1] + 1)
    assert ids(alice.fetch()["received_smss"]) == received
    answer = alice.fetch(last_id=str(received[1]), last_sent_id=str(sent[2]))
    assert ids(answer["received_smss"]) == received[2:]
    assert texts(answer["received_smss"]) == ["in2", "in3"]
    assert ids(answer["sent_smss"]) == sent[3:]
    # A cursor between two ids of that direction works too.
    assert ids(alice.fetch(last_sent_id=str(sent[0] + 1))["sent_smss"]) == sent[1:]
    caught_up = alice.fetch(last_id=str(received[-1]), last_sent_id=str(sent[-1]))
    assert caught_up["received_smss"] == caught_up["sent_smss"] == []


def test_cursor_spellings_of_the_app_variables(http, alice, bob):
    sent = send_many(alice, BOB, 3)
    answer = http.post(FETCH, json={**bob.credentials, "last_known_sms_id": str(sent[0]),
                                    "last_known_sent_sms_id": ""}).json()
    assert ids(answer["received_smss"]) == sent[1:]


def test_pages_are_bounded_and_drain_with_the_returned_ids(alice, bob):
    first = send_many(alice, BOB, 1, "first")
    later = send_many(alice, BOB, 12)
    received_pages = drain(bob.fetch, "received_smss", "last_id", str(first[0]))
    assert received_pages == [later[:5], later[5:10], later[10:]]
    sent_pages = drain(alice.fetch, "sent_smss", "last_sent_id", str(first[0]))
    assert sent_pages == received_pages  # alice's ids match bob's: nobody else wrote


def test_a_new_device_gets_the_recent_window(alice, bob):
    sent = send_many(alice, BOB, 12)
    window = bob.fetch()["received_smss"]
    assert ids(window) == sent[-PAGE:]
    assert texts(window) == [f"m{i}" for i in range(12 - PAGE, 12)]
    assert ids(alice.fetch()["sent_smss"]) == sent[-PAGE:]


@pytest.mark.parametrize("cursor", MALFORMED_CURSORS)
def test_malformed_and_unknown_cursors_give_the_recent_window(alice, bob, cursor):
    sent = send_many(alice, BOB, 7)
    answer = bob.fetch(last_id=cursor, last_sent_id=cursor)
    assert ids(answer["received_smss"]) == sent[-PAGE:]
    assert ids(alice.fetch(last_id=cursor, last_sent_id=cursor)["sent_smss"]) == sent[-PAGE:]
    legacy = alice.fetch(path=FETCH_LEGACY, last_known_sms_id=cursor)
    assert ids(legacy["sent_smss"]) == sent[-PAGE:]


def test_an_empty_account_fetches_empty_lists(alice):
    answer = alice.fetch(last_id="3", last_sent_id="abc", device="phone")
    assert answer["received_smss"] == answer["sent_smss"] == []
    assert_recent(parse_date(answer["date"]))


# -- devices -------------------------------------------------------------------------------


def test_the_sent_id_is_the_same_on_every_device(alice, bob):
    phone_id = alice.send_ok(BOB, "from the phone", device="phone")
    desk_id = alice.send_ok(BOB, "from the desk", device="desk")
    for device in ("phone", "desk", "tablet"):
        sent = alice.fetch(device=device)["sent_smss"]
        assert [(m["sms_id"], m["sms_text"]) for m in sent] == [
            (phone_id, "from the phone"), (desk_id, "from the desk")]


def test_a_message_sent_from_one_device_reaches_the_others_sent_list(alice, bob):
    alice.fetch(device="desk")  # the desk is up to date (nothing yet)
    sms_id = alice.send_ok(BOB, "typed on the phone", device="phone")
    [item] = alice.fetch(device="desk")["sent_smss"]
    assert (item["sms_id"], item["sms_text"]) == (sms_id, "typed on the phone")
    # The desk's cursor moved: the same fetch again brings nothing.
    assert alice.fetch(last_sent_id=sms_id, device="desk")["sent_smss"] == []


def test_a_device_cursor_is_the_lower_of_reported_and_reached(alice, bob):
    alice.send_ok(BOB, "seen by all")
    phone = alice.fetch(device="phone")
    reached = phone["sent_smss"][-1]["sms_id"]
    desk_ids = send_many(alice, BOB, 2, "desk")
    own = int(alice.send_ok(BOB, "phone's own", device="phone"))
    # The phone reports its own newest id; its last fetch reached less, so it
    # still gets what the desk sent in between.
    answer = alice.fetch(last_sent_id=str(own), device="phone")
    assert ids(answer["sent_smss"]) == desk_ids + [own]
    # Without a device name the reported cursor is all there is.
    assert alice.fetch(last_sent_id=str(own))["sent_smss"] == []
    # A report below the recorded cursor wins: the device asked again.
    again = alice.fetch(last_sent_id=reached, device="phone")
    assert ids(again["sent_smss"]) == desk_ids + [own]


def test_a_device_new_to_the_adapter_pages_forward_from_its_cursor(live_server, alice, bob):
    # Issue 10 point 9: the device got the newest page and never saw 5001-7295.
    insert_received_history_at(live_server.config.database_url, "bob", 7_300, peer=ALICE)
    fetch = functools.partial(bob.fetch, device="new-phone")
    pages = drain(fetch, "received_smss", "last_id", "5000", limit=500)
    assert [sms_id for page in pages for sms_id in page] == list(range(5001, 7301))
    # The same for the sent cursor.
    sent = send_many(alice, BOB, 3)
    answer = alice.fetch(last_sent_id=str(sent[0]), device="tablet")
    assert ids(answer["sent_smss"]) == sent[1:]


def test_a_new_device_whose_sent_cursor_is_its_own_message_gets_the_recent_window(alice, bob):
    # The app moved its sent cursor to the message it sent: that is no
    # sign it holds what the account's other devices sent before.
    sent = send_many(alice, BOB, 8)
    own = alice.send_ok(BOB, "new device's first", device="tablet")
    answer = alice.fetch(last_sent_id=own, device="tablet")
    assert ids(answer["sent_smss"]) == (sent + [int(own)])[-PAGE:]
    # Another device's message, or no device name, is a cursor like any other.
    assert alice.fetch(last_sent_id=own, device="phone")["sent_smss"] == []
    assert alice.fetch(last_sent_id=str(sent[-2]))["sent_smss"][0]["sms_id"] == str(sent[-1])


def test_a_new_device_with_a_cursor_beyond_the_newest_gets_the_recent_window(alice, bob):
    sent = send_many(alice, BOB, 8)
    answer = bob.fetch(last_id=str(sent[-1] + 1000), device="knew-another-database")
    assert ids(answer["received_smss"]) == sent[-PAGE:]


def test_devices_drain_a_backlog_with_their_own_cursors(alice, bob):
    alice.send_ok(BOB, "start")
    last = bob.fetch(device="phone")["received_smss"][-1]["sms_id"]
    bob.fetch(device="desk")
    backlog = send_many(alice, BOB, 7)
    phone_pages = drain(lambda **c: bob.fetch(device="phone", **c),
                        "received_smss", "last_id", last)
    assert phone_pages == [backlog[:5], backlog[5:]]
    desk_pages = drain(lambda **c: bob.fetch(device="desk", installid="ignored", **c),
                       "received_smss", "last_id", last)
    assert desk_pages == phone_pages


def test_installid_names_the_device_too(http, alice, bob):
    alice.send_ok(BOB, "seen")
    reached = alice.fetch(installid="phone")["sent_smss"][-1]["sms_id"]
    between = alice.send_ok(BOB, "from elsewhere")
    own = alice.send_ok(BOB, "mine", installid="phone")
    answer = alice.fetch(last_sent_id=own, installid="phone")
    assert [m["sms_id"] for m in answer["sent_smss"]] == [between, own]
    assert int(reached) < int(between)


# -- the Legacy API ----------------------------------------------------------------------


def test_legacy_fetch_one_cursor_two_lists(alice, bob):
    out = int(alice.send_ok(BOB, "out", content_type=FILE_TRANSFER))
    bob.send_ok(ALICE, "in", disposition_notification=DISPOSITION)
    answer = alice.fetch(path=FETCH_LEGACY, last_known_sms_id="")
    assert set(answer) == {"date", "unread_smss", "sent_smss"}
    assert_recent(parse_date(answer["date"]))
    [unread], [sent] = answer["unread_smss"], answer["sent_smss"]
    assert (unread["sender"], unread["stream_id"], unread["sms_text"]) == (BOB, BOB, "in")
    assert unread["disposition_notification"] == DISPOSITION
    assert int(unread["sms_id"]) == out + 1
    assert (sent["recipient"], sent["sms_id"], sent["content_type"]) == (BOB, str(out), FILE_TRANSFER)
    newer = alice.fetch(path=FETCH_LEGACY, last_known_sms_id=str(out))
    assert (ids(newer["unread_smss"]), newer["sent_smss"]) == ([out + 1], [])
    assert alice.fetch(path=FETCH_LEGACY, last_known_sms_id=str(out + 1))["unread_smss"] == []


def test_legacy_fetch_pages_too(alice, bob):
    first = send_many(bob, ALICE, 1)
    more = send_many(bob, ALICE, 6)
    pages = drain(lambda **c: alice.fetch(path=FETCH_LEGACY, **c), "unread_smss",
                  "last_known_sms_id", str(first[0]))
    assert pages == [more[:5], more[5:]]


# -- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [FETCH, FETCH_LEGACY])
def test_fetch_needs_the_right_password(http, alice, bob, path):
    alice.send_ok(BOB, "private")
    for credentials in ({"username": "bob", "password": "alice-secret"},
                        {"username": "nobody", "password": "x"}, {}):
        response = http.post(path, json={**credentials, "last_id": ""})
        assert response.status_code == 401
        assert response.json() == {"message": "Invalid username or password"}
