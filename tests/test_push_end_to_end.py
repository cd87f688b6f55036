"""Pushes end to end: app emulators that know only their Account XML register
their tokens, messages arrive from a carrier (the fake voip.ms) and from
another app user, and every registered device is pushed an Id its next
fetch returns. Dead tokens go after one 404; removed accounts get nothing.
"""

from __future__ import annotations

import pytest

from adapter import cli
from tests.conftest import wait_for
from tests.emulator import AppEmulator
from tests.providers.fake_voipms import (  # noqa: F401 (fixture)
    API_PASSWORD, API_USER, NAME, OUR_DID, OUR_NUMBER, REMOTE_DIGITS, TIMEOUT_SECONDS,
    cli_lines, fake,
)
from tests.push.fake_push import push_jobs, push_toml, stored_devices

BOB = "+12025550102"
APP = "com.acrobits.cloudsoftphone"


@pytest.fixture
def adapter(fake, push_service, start_adapter, add_account):
    server = start_adapter(
        f"\n[providers.{NAME}]\ntype = \"voipms\"\n"
        f"api_username = \"{API_USER}\"\napi_password = \"{API_PASSWORD}\"\n"
        f"base_url = \"{fake.url}/api/v1\"\ntimeout_seconds = {TIMEOUT_SECONDS}\n"
        + push_toml(push_service))
    add_account("alice", OUR_NUMBER, password="alice-pw", provider=NAME)
    add_account("bob", BOB, password="bob-pw", display_name="Bob")
    return server


def emulator(adapter, capsys, username: str, password: str, installid: str) -> AppEmulator:
    capsys.readouterr()
    assert cli.main(["--config", str(adapter.config_file), "account-xml", username]) == 0
    return AppEmulator(capsys.readouterr().out, password, installid)


def test_registered_devices_are_pushed_an_id_their_fetch_returns(adapter, fake, push_service,
                                                                 capsys):
    database = adapter.config.database_url
    inbound = dict(line.split(" ", 1) for line in
                   cli_lines(adapter, capsys, "provider", "urls", NAME))["inbound"]
    phone = emulator(adapter, capsys, "alice", "alice-pw", "alice-phone")
    tablet = emulator(adapter, capsys, "alice", "alice-pw", "alice-tablet")  # an older app
    old = emulator(adapter, capsys, "alice", "alice-pw", "alice-old-phone")  # uninstalled
    bob = emulator(adapter, capsys, "bob", "bob-pw", "bob-phone")
    assert phone.report_push_token("phone-token", APP, "phone-voip", APP + ".voip")["stored"] == \
        ["other", "call"]
    assert tablet.report_push_token(token="tablet-token", appid=APP)["stored"] == ["legacy"]
    assert old.report_push_token("dead-token", APP)["stored"] == ["other"]
    assert bob.report_push_token("bob-token", APP)["stored"] == ["other"]
    push_service.unregistered.add("dead-token")

    arrivals = [
        lambda: fake.deliver(inbound, id="7001", sender=REMOTE_DIGITS, to=OUR_DID, message="code 1234"),
        lambda: bob.send(OUR_NUMBER, "Hi Alice, it's Bob"),
        lambda: fake.deliver(inbound, id="7002", sender=REMOTE_DIGITS, to=OUR_DID, message="second"),
        lambda: bob.send("+1 202 555 0101", "read this", disposition_notification="b1:display"),
    ]
    for n, arrive in enumerate(arrivals, start=1):
        arrive()
        for device, token in ((phone, "phone-token"), (tablet, "tablet-token")):
            push = wait_for(lambda: len(push_service.to(token)) >= n and push_service.to(token)[-1],
                            what=f"push {n} to {token}")
            assert push["Selector"] == device.selector
            fetched = device.fetch()["received_smss"]
            assert [item["sms_id"] for item in fetched] == [push["Id"]]
            assert fetched[0]["sender"] == push["ThreadId"]
        if n == 1:  # the uninstalled app's token went after its one 404
            wait_for(lambda: old.selector not in stored_devices(database), what="the dead token")
    assert len(push_service.attempts("dead-token")) == 1
    assert push_service.to("phone-token")[1]["UserDisplayName"] == "Bob"
    assert push_service.to("bob-token") == []  # bob received nothing; his sends push only alice

    # alice's phone answers; bob is pushed, none of alice's devices are.
    phone.send("+12025550102", "thanks")
    wait_for(lambda: push_service.to("bob-token"), what="bob's push")
    assert bob.fetch()["received_smss"][0]["sms_id"] == push_service.to("bob-token")[0]["Id"]

    # The tablet's account is removed from the app: it is not pushed any more.
    assert tablet.report_account_removal() == {"selector": tablet.selector, "removed": True}
    bob.send(OUR_NUMBER, "are you there?")
    jobs = push_jobs(database)  # queued with the message: only the phone's
    assert [j["selector"] for j in jobs if j["message_id"] == jobs[-1]["message_id"]] == \
        [phone.selector]
    push = wait_for(lambda: len(push_service.to("phone-token")) == 5 and push_service.to("phone-token")[-1],
                    what="the last push")
    assert phone.fetch()["received_smss"][0]["sms_id"] == push["Id"]
    assert len(push_service.to("tablet-token")) == 4
    for device in (phone, tablet, old, bob):
        device.close()
