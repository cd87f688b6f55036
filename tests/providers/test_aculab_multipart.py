"""Aculab Cloud, split inbound messages: the fake Aculab calls the real inbound hook
with ``multipart_uid``/``multipart_pos``/``multipart_count``, as Aculab does.

The parts of one message are one sender's to one recipient; a group missing a
part is delivered after the provider's ``multipart_wait_seconds`` with a
marker where the part is missing (and a warning logged), and a part arriving
after that comes on its own.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import urlsplit

import httpx2
import pytest

from adapter.app import create_app
from adapter.config import load_config
from tests.app_client import ALICE, User, texts
from tests.conftest import serving, wait_for
from tests.providers.fake_aculab import (
    FakeAculab, outbox, portal_urls, provider_toml, start_alice,
)

UK = "+447700900123"
FR = "+33612345678"
WAIT = 0.3  # multipart_wait_seconds in these tests: a fraction of the default minute


@pytest.fixture
def fake():
    with FakeAculab.served() as carrier:
        yield carrier
    assert carrier.violations == []


@pytest.fixture
def alice(start_adapter, add_account, fake) -> User:
    return start_alice(start_adapter, add_account, fake,
                       extra=f"multipart_wait_seconds = {WAIT}\n")


@pytest.fixture
def inbound(alice, config_file, capsys) -> str:
    return portal_urls(config_file, "acu", capsys)["inbound"]


def deliver(fake: FakeAculab, url: str, sender: str, uid: str, position: int, total: int,
            text: str) -> None:
    """One part, under a ref of its own (Aculab's msg_ref is per part)."""
    answer = fake.deliver(url, sender, ALICE, text, ref=f"{sender}-{uid}-{position}",
                          part=(uid, position, total))
    assert (answer.status_code, answer.content) == (200, b"")


def parts_jobs(config_file, capsys) -> list[dict[str, str]]:
    return [job for job in outbox(config_file, capsys) if job.kind == "parts"]


def missing_part_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and "never arrived" in r.getMessage()]


def test_parts_of_two_senders_with_the_same_uid_stay_two_messages(alice, fake, inbound):
    deliver(fake, inbound, UK, "uid-7", 1, 2, "Hello from ")
    deliver(fake, inbound, FR, "uid-7", 1, 2, "Bonjour de ")
    deliver(fake, inbound, UK, "uid-7", 2, 2, "London")
    deliver(fake, inbound, FR, "uid-7", 2, 2, "Paris")
    received = wait_for(lambda: len(alice.received()) == 2 and alice.received(),
                        what="both messages")
    assert sorted((m["sender"], m["sms_text"]) for m in received) == [
        (FR, "Bonjour de Paris"), (UK, "Hello from London")]


def test_a_group_missing_a_part_is_delivered_after_the_wait_with_a_marker(
        alice, fake, inbound, caplog):
    caplog.set_level(logging.WARNING, "adapter.dispatch")
    started = time.monotonic()
    deliver(fake, inbound, UK, "uid-8", 3, 3, "at noon.")
    deliver(fake, inbound, UK, "uid-8", 1, 3, "Meet me at")
    [message] = wait_for(alice.received, what="the incomplete message")
    assert time.monotonic() - started >= WAIT  # it was held, not delivered at once
    assert (message["sender"], message["sms_text"]) == (
        UK, "Meet me at [part 2 of 3 missing] at noon.")
    [warning] = wait_for(lambda: missing_part_warnings(caplog), what="the warning")
    assert all(name in warning for name in ("acu", "uid-8", UK, ALICE, "part(s) 2 of 3"))
    assert "Meet me" not in warning and "noon" not in warning  # no message text in logs


def test_a_complete_group_is_delivered_once_and_its_wait_then_does_nothing(
        alice, fake, inbound, config_file, capsys, caplog):
    caplog.set_level(logging.WARNING, "adapter.dispatch")
    deliver(fake, inbound, UK, "uid-9", 2, 2, "world")
    deliver(fake, inbound, UK, "uid-9", 1, 2, "Hello ")
    assert texts(alice.received()) == ["Hello world"]  # at once, not after the wait
    wait_for(lambda: [job.state for job in parts_jobs(config_file, capsys)] == ["done"],
             what="the group's wait to end")
    assert texts(alice.received()) == ["Hello world"]
    assert missing_part_warnings(caplog) == []


def test_a_part_arriving_after_its_group_went_out_is_delivered_at_once_on_its_own(
        alice, fake, inbound, config_file, capsys):
    deliver(fake, inbound, UK, "uid-10", 1, 3, "Meet me at")
    deliver(fake, inbound, UK, "uid-10", 3, 3, "at noon.")
    wait_for(alice.received, what="the incomplete message")
    deliver(fake, inbound, UK, "uid-10", 2, 3, "the station")
    deliver(fake, inbound, UK, "uid-10", 2, 3, "the station")  # Aculab repeats a callback
    assert texts(alice.received()) == [
        "Meet me at [part 2 of 3 missing] at noon.",
        "[part 1 of 3 missing] the station [part 3 of 3 missing]"]
    assert [job.state for job in parts_jobs(config_file, capsys)] == ["done"]  # not held


def test_held_parts_and_their_wait_survive_a_restart(config_file, add_account, fake, capsys):
    wait = 2.0  # long enough for the first server to stop before it runs out
    config_file.write_text(config_file.read_text()
                           + provider_toml(fake, extra=f"multipart_wait_seconds = {wait}\n"))
    add_account("alice", ALICE, password="alice-pw", provider="acu")
    hook = urlsplit(portal_urls(config_file, "acu", capsys)["inbound"])
    hook_path = f"{hook.path}?{hook.query}"
    with serving(create_app(load_config(str(config_file), environ={}))) as url:
        deliver(fake, url + hook_path, UK, "uid-11", 1, 2, "Lost half")
        deliver(fake, url + hook_path, UK, "uid-12", 1, 2, "Before the restart, ")
    assert [job.state for job in parts_jobs(config_file, capsys)] == ["queued", "queued"]

    with (serving(create_app(load_config(str(config_file), environ={}))) as url,
          httpx2.Client(base_url=url, timeout=10.0) as http):
        alice = User(http, "alice", "alice-pw", ALICE)
        deliver(fake, url + hook_path, UK, "uid-12", 2, 2, "after it.")
        assert texts(alice.received()) == ["Before the restart, after it."]
        wait_for(lambda: len(alice.received()) == 2, timeout=wait + 10,
                 what="the held part after its wait")
        assert texts(alice.received())[1] == "Lost half [part 2 of 2 missing]"
