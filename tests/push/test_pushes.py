"""Pushes for on-net messages, from the live adapter to the fake push service.

Which devices a message will push is decided when it is stored (its push
jobs commit with it), so the tests read the jobs right after the send; what
was pushed they read from the fake service.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.app_client import ALICE, BOB, make_user
from tests.conftest import wait_for
from tests.push.fake_push import (
    SLOW, http_error, push_jobs, push_toml, report_token, status, stored_devices,
)

APP = "com.acrobits.cloudsoftphone"
LEGACY_APP = "com.acrobits.softphone.legacy"
RECEIPT = "application/x-acro-disposition-notification"
S1, S2, S3, S4 = (f"{n}869E0E6E553673C54F29105A0647204C416A2A:0000000{n}" for n in range(1, 5))


@pytest.fixture
def adapter(push_service, start_adapter):
    return start_adapter(push_toml(push_service))


@pytest.fixture
def http(adapter):
    with adapter.client() as client:
        yield client


@pytest.fixture
def alice(http, add_account):
    return make_user(http, add_account, "alice", ALICE, display_name="Alice")


@pytest.fixture
def bob(http, add_account):
    return make_user(http, add_account, "bob", BOB)


def register(http, user, selector: str, token: str, device: str = "", legacy: bool = False):
    pair = (token, LEGACY_APP if legacy else APP)
    answer = report_token(http, user, selector, device=device,
                          **({"legacy": pair} if legacy else {"other": pair}))
    assert answer.status_code == 200, answer.text


def pushed(service, token: str, count: int) -> list[dict]:
    return wait_for(lambda: len(service.to(token)) >= count and service.to(token),
                    what=f"{count} push(es) to {token}")


def test_every_device_gets_the_push_its_fetch_then_matches(push_service, adapter, http, alice, bob):
    register(http, bob, S1, "t1", device="bob-phone")
    register(http, bob, S2, "t2", device="bob-desk")
    register(http, bob, S3, "t3", legacy=True)  # an older app: the legacy pair only
    report_token(http, bob, S4, call=("voip-only", APP))  # no pair for messages
    alice.send_ok(BOB, "Hi Bob, \"quoted\" & <tagged>")
    assert sorted(job["selector"] for job in push_jobs(adapter.config.database_url)) == [S1, S2, S3]
    pushes = [pushed(push_service, token, 1)[0] for token in ("t1", "t2", "t3")]

    [received] = bob.received()
    for push, (selector, token, app) in zip(pushes, [(S1, "t1", APP), (S2, "t2", APP),
                                                     (S3, "t3", LEGACY_APP)]):
        assert push == {
            "verb": "NotifyTextMessage", "AppId": app, "DeviceToken": token, "Selector": selector,
            "Id": received["sms_id"], "ThreadId": received["stream_id"],
            "UserName": received["sender"], "UserDisplayName": "Alice",
            "Message": 'Hi Bob, "quoted" & <tagged>', "Badge": 1, "Sound": "default",
        }
    assert received["sender"] == ALICE
    assert len(push_service.requests) == 3


def test_no_device_is_pushed_for_a_message_it_sent(push_service, adapter, http, alice, bob):
    register(http, alice, S1, "alice-phone", device="phone")
    register(http, alice, S2, "alice-desk", device="desk")
    # The phone holds bob's account too (one installation, two accounts).
    register(http, bob, S3, "bob-on-phone", device="phone")
    register(http, bob, S4, "bob-tablet", device="tablet")
    database = adapter.config.database_url

    alice.send_ok(ALICE, "note to self", device="phone")
    assert [job["selector"] for job in push_jobs(database)] == [S2]
    alice.send_ok(BOB, "to bob", device="phone")
    assert [job["selector"] for job in push_jobs(database)] == [S2, S4]
    pushed(push_service, "bob-tablet", 1)  # else the next would ride on its waiting push
    alice.send_ok(BOB, "sent without an installid")
    assert sorted(job["selector"] for job in push_jobs(database)[2:]) == [S3, S4]
    assert pushed(push_service, "alice-desk", 1)[0]["Message"] == "note to self"
    assert [p["Message"] for p in pushed(push_service, "bob-tablet", 2)] == \
        ["to bob", "sent without an installid"]


def test_preview_off_pushes_a_generic_text(push_service, start_adapter, add_account):
    adapter = start_adapter(push_toml(push_service, preview=False))
    with adapter.client() as http:
        alice = make_user(http, add_account, "alice", ALICE)
        bob = make_user(http, add_account, "bob", BOB)
        register(http, bob, S1, "t1")
        alice.send_ok(BOB, "the secret plan")
        [push] = pushed(push_service, "t1", 1)
    assert push["Message"] == "New message"
    assert "secret" not in json.dumps(push_service.requests)
    assert "UserDisplayName" not in push  # alice has no display name


def test_a_dead_token_is_deleted_after_one_404(push_service, adapter, http, alice, bob):
    database = adapter.config.database_url
    register(http, bob, S1, "dead")
    register(http, bob, S2, "live")
    push_service.unregistered.add("dead")
    alice.send_ok(BOB, "one")
    pushed(push_service, "live", 1)
    wait_for(lambda: S1 not in stored_devices(database), what="the dead token to be deleted")
    assert set(stored_devices(database)) == {S2}
    [dead_job] = [job for job in push_jobs(database) if job["selector"] == S1]
    assert dead_job["state"] == "done" and "404" in dead_job["error"]

    alice.send_ok(BOB, "two")
    assert [job["selector"] for job in push_jobs(database)][2:] == [S2]
    pushed(push_service, "live", 2)
    assert len(push_service.attempts("dead")) == 1


def test_5xx_answers_are_retried_and_keep_the_token(push_service, adapter, http, alice, bob):
    register(http, bob, S1, "t1")
    push_service.then(status(500), http_error(503))
    alice.send_ok(BOB, "try again")
    [push] = pushed(push_service, "t1", 1)
    attempts = push_service.attempts("t1")
    assert len(attempts) == 3 and all(a["Id"] == push["Id"] for a in attempts)
    job = wait_for(lambda: [j for j in push_jobs(adapter.config.database_url)
                            if j["state"] == "done"], what="the job to settle")[0]
    assert job["attempts"] == 3
    assert S1 in stored_devices(adapter.config.database_url)


def test_a_timeout_is_retried(push_service, adapter, http, alice, bob):
    register(http, bob, S1, "t1")
    push_service.then(SLOW)
    alice.send_ok(BOB, "slow service")
    [push] = pushed(push_service, "t1", 1)
    assert push["Message"] == "slow service"
    assert len(push_service.attempts("t1")) == 2  # the first one timed out
    assert S1 in stored_devices(adapter.config.database_url)


def test_a_refused_push_fails_without_retry_and_keeps_the_token(push_service, adapter, http,
                                                                alice, bob):
    database = adapter.config.database_url
    register(http, bob, S1, "t1")
    push_service.then(status(400))
    alice.send_ok(BOB, "refused")
    [job] = wait_for(lambda: [j for j in push_jobs(database) if j["state"] == "failed"],
                     what="the job to fail")
    assert "400" in job["error"] and job["attempts"] == 1
    assert S1 in stored_devices(database)
    # The device's next pushes are not held up by the failed one.
    alice.send_ok(BOB, "next")
    assert [p["Message"] for p in pushed(push_service, "t1", 1)] == ["next"]
    assert len(push_service.attempts("t1")) == 2


def test_the_badge_counts_unread_messages_down_after_a_fetch_and_a_display_receipt(
        push_service, http, alice, bob):
    register(http, bob, S1, "t1", device="bob-phone")
    register(http, alice, S2, "alice-phone", device="alice-phone")
    badges = []

    def send(text: str, **fields) -> None:
        alice.send_ok(BOB, text, **fields)
        badges.append(pushed(push_service, "t1", len(badges) + 1)[-1]["Badge"])

    send("one")
    send("two")
    assert badges == [1, 2]
    assert len(bob.received(device="bob-desk")) == 2  # any device's fetch reads them
    send("three")
    send("four", disposition_notification="m4:positive-delivery, display")
    assert badges == [1, 2, 1, 2]
    receipt = {"message-id": "m4", "display-notification": {
        "datetime": "2026-01-02T10:00:05Z", "status": "displayed"}}
    bob.send_ok(ALICE, json.dumps(receipt), content_type=RECEIPT, device="bob-phone")
    send("five")
    assert badges == [1, 2, 1, 2, 2]  # three and five; four was displayed

    # The receipt reached alice's phone as a silent push, and is not unread.
    [receipt_push] = pushed(push_service, "alice-phone", 1)
    assert "Message" not in receipt_push and "Sound" not in receipt_push
    assert receipt_push["Badge"] == 0
    [stored] = alice.received()
    assert stored["sms_id"] == receipt_push["Id"] and stored["content_type"] == RECEIPT


BURST = 30


def test_a_burst_rings_each_device_once_per_interval_with_the_newest_id_and_badge(
        push_service, start_adapter, add_account):
    # Issue 10 point 8: one push job per message per device, 37 minutes behind.
    interval = 2.0
    adapter = start_adapter(push_toml(push_service, min_interval=interval))
    tokens = {S1: "t1", S2: "t2", S3: "t3"}
    with adapter.client() as http:
        alice = make_user(http, add_account, "alice", ALICE)
        bob = make_user(http, add_account, "bob", BOB)
        for selector, token in tokens.items():
            register(http, bob, selector, token)
        started = time.monotonic()
        for n in range(1, BURST + 1):
            alice.send_ok(BOB, f"burst {n}")
        elapsed = time.monotonic() - started
        # bob's account held nothing before: the burst's newest is his sms_id BURST.
        lasts = {token: wait_for(lambda token=token: push_service.to(token)[-1:] and
                                 push_service.to(token)[-1]["Id"] == str(BURST) and
                                 push_service.to(token)[-1], what=f"the newest push to {token}")
                 for token in tokens.values()}
        assert bob.received()[-1]["sms_id"] == str(BURST)

    jobs = push_jobs(adapter.config.database_url)
    # One at once, one for each interval the burst lasted, one after it.
    most = 2 + int(elapsed // interval)
    for selector, token in tokens.items():
        mine = [job for job in jobs if job["selector"] == selector]
        assert 1 <= len(mine) <= most < BURST
        assert len(push_service.to(token)) == len(mine)
        assert {job["state"] for job in mine} == {"done"}
        due = [job["due_at"] for job in mine]
        assert all((b - a).total_seconds() >= interval for a, b in zip(due, due[1:]))
        last = lasts[token]
        assert (last["Message"], last["Badge"], last["Sound"]) == (f"burst {BURST}", BURST,
                                                                  "default")
