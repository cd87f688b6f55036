"""Pushes for what carriers bring: inbound messages and failure notices.

The carrier is the strict fake voip.ms (tests/providers/fake_voipms.py); its
inbound callback is the template ``provider urls`` prints, called by GET as
voip.ms does.
"""

from __future__ import annotations

import pytest

from tests.app_client import User
from tests.conftest import outbox_jobs, serving, wait_for
from tests.providers.fake_voipms import (  # noqa: F401 (fixture)
    API_PASSWORD, API_USER, NAME, OUR_DID, OUR_NUMBER, REMOTE, REMOTE_DIGITS, SLOW,
    TIMEOUT_SECONDS, FakeVoipms, cli_lines, fake, status,
)
from tests.push.fake_push import push_jobs, push_toml, report_token

APP = "com.acrobits.cloudsoftphone"
SELECTOR = "12869E0E6E553673C54F29105A0647204C416A2A:7C3A0D14"


def voipms_toml(carrier: FakeVoipms, timeout_seconds: float = TIMEOUT_SECONDS) -> str:
    return (f"\n[providers.{NAME}]\ntype = \"voipms\"\n"
            f"api_username = \"{API_USER}\"\napi_password = \"{API_PASSWORD}\"\n"
            f"base_url = \"{carrier.url}/api/v1\"\ntimeout_seconds = {timeout_seconds}\n")


@pytest.fixture
def adapter(fake, push_service, start_adapter):
    return start_adapter(voipms_toml(fake) + push_toml(push_service))


@pytest.fixture
def alice(adapter, add_account):
    add_account("alice", OUR_NUMBER, password="alice-pw", provider=NAME, display_name="Alice")
    with adapter.client() as http:
        user = User(http, "alice", "alice-pw", OUR_NUMBER)
        assert report_token(http, user, SELECTOR, other=("alice-token", APP)).status_code == 200
        yield user


@pytest.fixture
def inbound_template(adapter, capsys) -> str:
    lines = cli_lines(adapter, capsys, "provider", "urls", NAME)
    return dict(line.split(" ", 1) for line in lines)["inbound"]


def pushed(service, count: int) -> list[dict]:
    return wait_for(lambda: len(service.to("alice-token")) >= count and service.to("alice-token"),
                    what=f"{count} push(es)")


def test_an_inbound_sms_is_pushed_with_the_id_fetch_returns(alice, fake, push_service,
                                                            inbound_template, adapter):
    answer = fake.deliver(inbound_template, id="9001", sender=REMOTE_DIGITS, to=OUR_DID,
                          message="Your code is 123456")
    assert answer.status_code == 200
    [push] = pushed(push_service, 1)
    [received] = alice.received()
    assert push["Id"] == received["sms_id"]
    assert push["ThreadId"] == push["UserName"] == received["sender"] == REMOTE
    assert push["Message"] == "Your code is 123456" and push["Badge"] == 1
    assert "UserDisplayName" not in push  # a carrier sender has no name we know
    # The carrier repeats its callback: nothing new is stored, nothing pushed again.
    assert fake.deliver(inbound_template, id="9001", sender=REMOTE_DIGITS, to=OUR_DID,
                        message="Your code is 123456").status_code == 200
    assert len(push_jobs(adapter.config.database_url)) == 1


def test_a_failure_notice_is_pushed(alice, fake, push_service):
    fake.then(status("invalid_dst"))
    alice.send_ok(REMOTE, "this will bounce")
    [push] = pushed(push_service, 1)
    [notice] = alice.received()
    assert push["Id"] == notice["sms_id"]
    assert push["ThreadId"] == REMOTE
    assert push["Message"].startswith("⚠️ Not delivered") and "this will bounce" in push["Message"]


def test_pushes_are_not_held_behind_a_carrier_outage(alice, fake, push_service, inbound_template,
                                                     adapter, capsys):
    fake.outage = True
    alice.send_ok(REMOTE, "stuck until the carrier is back")
    wait_for(lambda: len(fake.sends) >= 2, what="the send to be retrying")
    fake.deliver(inbound_template, id="9002", sender=REMOTE_DIGITS, to=OUR_DID, message="are you there?")
    [push] = pushed(push_service, 1)
    assert push["Message"] == "are you there?"
    jobs = outbox_jobs(adapter.config_file)
    assert [job.state for job in jobs if job.kind == "send"] == ["queued"]
    assert fake.sent() == []
    fake.outage = False


def test_pushes_do_not_wait_for_a_slow_carrier_send(push_service, start_adapter, add_account,
                                                    capsys):
    carrier = FakeVoipms(API_USER, API_PASSWORD, dids={OUR_DID}, slow_seconds=4.0)
    with serving(carrier.app) as url:
        carrier.url = url
        # The send below stays in flight for 3 s (the carrier answers after 4).
        adapter = start_adapter(voipms_toml(carrier, timeout_seconds=3.0) + push_toml(push_service))
        add_account("alice", OUR_NUMBER, password="alice-pw", provider=NAME)
        with adapter.client() as http:
            alice = User(http, "alice", "alice-pw", OUR_NUMBER)
            report_token(http, alice, SELECTOR, other=("alice-token", APP))
            carrier.then(SLOW)
            alice.send_ok(REMOTE, "a slow carrier")
            wait_for(lambda: carrier.sends, what="the send to be under way")
            inbound = dict(line.split(" ", 1) for line in
                           cli_lines(adapter, capsys, "provider", "urls", NAME))["inbound"]
            carrier.deliver(inbound, id="9003", sender=REMOTE_DIGITS, to=OUR_DID, message="meanwhile")
            [push] = pushed(push_service, 1)
            assert push["Message"] == "meanwhile"
            jobs = outbox_jobs(adapter.config_file)
            assert [job.state for job in jobs if job.kind == "send"] == ["leased"]  # still sending
