"""voip.ms provider, receiving: the "SMS URL Callback" against the real adapter.

The fake carrier calls the template `provider urls` prints, as the carrier
would once the operator pasted it in the portal.
"""

import pytest

from tests.app_client import User
from tests.conftest import wait_for
from tests.providers.fake_voipms import (  # noqa: F401 (fixtures)
    NAME, OUR_DID, OUR_NUMBER, REMOTE, REMOTE_DIGITS, adapter, alice, cli_lines, fake, http,
)


@pytest.fixture
def template(adapter, capsys) -> str:
    return portal_urls(adapter, capsys)["inbound"]


def portal_urls(adapter, capsys) -> dict[str, str]:
    lines = cli_lines(adapter, capsys, "provider", "urls", NAME)
    return dict(line.split(" ", 1) for line in lines)


def deliver(fake, template, id="5001", sender=REMOTE_DIGITS, to=OUR_DID, message="hello"):
    return fake.deliver(template, id=id, sender=sender, to=to, message=message)


def assert_acked(response) -> None:
    """The carrier stops re-sending only on a plain "ok"."""
    assert response.status_code == 200
    assert response.text == "ok"
    assert response.headers["content-type"].startswith("text/plain")


def texts(user: User) -> list[str]:
    return [m["sms_text"] for m in user.received()]


def test_provider_urls_print_the_callback_template_and_a_status_line(adapter, capsys):
    urls = portal_urls(adapter, capsys)
    inbound, status = urls["inbound"], urls["status"]
    base, secret = inbound.split("?token=", 1)[0], inbound.split("?token=", 1)[1].split("&")[0]
    assert base == adapter.config.public(f"/hooks/{NAME}/inbound")
    assert len(secret) >= 32
    assert inbound.endswith(f"?token={secret}&id={{ID}}&date={{TIMESTAMP}}&from={{FROM}}"
                            "&to={TO}&message={MESSAGE}")
    assert status == adapter.config.public(f"/hooks/{NAME}/status?token={secret}")


def test_an_inbound_message_reaches_the_account_and_is_acked_ok(alice, fake, template):
    text = "Hi Alice & co — 50% off? ünïcödé 👋 a+b=c"
    assert_acked(deliver(fake, template, message=text))

    [message] = alice.received()
    assert message["sms_text"] == text
    assert message["sender"] == REMOTE


def test_numbers_in_other_notations_are_accepted(alice, fake, template):
    assert_acked(deliver(fake, template, sender="1" + REMOTE_DIGITS, to="+1" + OUR_DID))
    assert [m["sender"] for m in alice.received()] == [REMOTE]


def test_a_repeated_callback_is_stored_once_and_acked_again(alice, fake, template):
    for _ in range(3):
        assert_acked(deliver(fake, template, id="777", message="only once"))
    assert_acked(deliver(fake, template, id="778", message="a new one"))

    assert texts(alice) == ["only once", "a new one"]


def test_a_callback_without_the_secret_is_refused(alice, fake, template):
    for spoiled in (template.replace("token=", "tok="), template.replace("token=", "token=x"),
                    template.replace("token=", "token=&")):
        response = deliver(fake, spoiled, message="forged")
        assert response.status_code == 401, spoiled
        assert response.text != "ok"
    assert alice.received() == []


def test_unusable_callbacks_are_400_and_store_nothing(alice, fake, template):
    without = {name: template.replace(f"&{name}={{{name.upper()}}}", "")
               for name in ("id", "from", "to", "message")}
    for url, change in [*((url, {}) for url in without.values()),
                        (template, {"sender": "not-a-number"}), (template, {"to": "12"}),
                        (template, {"id": " "})]:
        response = deliver(fake, url, **{"id": "900", **change})
        assert response.status_code == 400, (url, change)
    assert alice.received() == []
    # Nothing was recorded as seen: the carrier's next, good try is stored.
    assert_acked(deliver(fake, template, id="900", message="second try"))
    assert texts(alice) == ["second try"]


def test_stop_is_recorded_delivered_and_blocks_sends_until_start(alice, fake, template):
    assert_acked(deliver(fake, template, id="1", message=" stop "))
    assert texts(alice) == [" stop "]  # the user still sees it

    refused = alice.send(REMOTE, "but wait")
    assert refused.status_code == 403
    assert "opted out" in refused.json()["message"]
    assert "START" in refused.json()["message"]

    assert_acked(deliver(fake, template, id="2", message="START"))
    alice.send_ok(REMOTE, "welcome back")
    wait_for(lambda: [s["message"] for s in fake.sends] == ["welcome back"], what="send after START")


def test_a_number_shared_by_two_accounts_reaches_both(alice, fake, template, add_account, http):
    add_account("alice-desk", OUR_NUMBER, password="desk-pw", provider=NAME)
    desk = User(http, "alice-desk", "desk-pw", OUR_NUMBER)

    assert_acked(deliver(fake, template, id="42", message="for both of you"))

    assert texts(alice) == ["for both of you"]
    assert texts(desk) == ["for both of you"]


def test_a_message_for_a_number_no_account_holds_is_acked_and_dropped(alice, fake, template):
    # Acked all the same: a refusal would make the carrier retry it forever.
    assert_acked(deliver(fake, template, to="2025550177", message="wrong number"))
    assert alice.received() == []
