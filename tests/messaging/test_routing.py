"""Routing a sent message: on-net to every account holding the number, else upstream."""

from __future__ import annotations

import pytest

from adapter.config import ConfigError, load_config
from adapter.messaging import routing
from adapter.messaging.routing import OnNet, Refusal, Upstream, record_send, route
from adapter.passwords import hash_password
from adapter.providers import HookUrls, Provider, check_providers, provider_class
from adapter.store import Job, NewMessage, Store
from tests.app_client import ALICE, BOB, CAROL, NOBODY, ids, make_user, texts
from tests.conftest import outbox_jobs

# A carrier that is never reached: jobs for it stay in the outbox, retrying.
UNREACHABLE_CARRIER = """
[providers.upstream]
type = "voipms"
api_username = "adapter@example.com"
api_password = "never-used"
base_url = "http://127.0.0.1:9/api/v1"
"""
LOOPBACK = '\n[providers.local]\ntype = "loopback"\n'


@pytest.fixture
def http(live_server):
    with live_server.client() as client:
        yield client


def users(http, add_account, *specs: tuple[str, str]):
    return [make_user(http, add_account, name, number) for name, number in specs]


def outbox_lines(config_file, capsys) -> list[Job]:
    return outbox_jobs(config_file)


# -- on-net ---------------------------------------------------------------------------


NOTATIONS = [
    "+1 (202) 555-0102", "12025550102", "2025550102", "(202) 555-0102", "202.555.0102",
    "+1-202-555-0102", "tel:+12025550102", "tel:+1-202-555-0102", "sip:+12025550102@host",
    "sips:+12025550102@host;user=phone", "SIP:2025550102@pbx.example.com", "%2B12025550102",
    "  +12025550102\n",
]


def test_every_notation_reaches_the_same_account(http, add_account):
    alice, bob = users(http, add_account, ("alice", ALICE), ("bob", BOB))
    sent = [alice.send_ok(to, f"#{i}") for i, to in enumerate(NOTATIONS)]
    received = bob.received()
    assert texts(received) == [f"#{i}" for i in range(len(NOTATIONS))]
    assert {(m["sender"], m["stream_id"]) for m in received} == {(ALICE, ALICE)}
    outgoing = alice.sent()
    assert [m["sms_id"] for m in outgoing] == sent
    assert {(m["recipient"], m["stream_id"]) for m in outgoing} == {(BOB, BOB)}


def test_the_account_number_may_be_typed_in_any_notation(http, add_account):
    alice, bob = users(http, add_account, ("alice", "(202) 555-0101"), ("bob", "tel:+1-202-555-0102"))
    alice.send_ok(BOB, "hello")
    [message] = bob.received()
    assert message["sender"] == ALICE
    bob.send_ok("2025550101", "hi back")
    assert texts(alice.received()) == ["hi back"]


def test_a_shared_number_delivers_to_every_holder(http, add_account):
    alice, bob, carol = users(http, add_account, ("alice", ALICE), ("bob", BOB), ("carol", BOB))
    sms_id = alice.send_ok("2025550102", "to the team")
    for holder in (bob, carol):
        [message] = holder.received()
        assert (message["sms_text"], message["sender"]) == ("to the team", ALICE)
    assert ids(alice.sent()) == [int(sms_id)]
    # Each holder's copy takes the next id of that holder's own sequence.
    carol.send_ok(ALICE, "carol answers")
    assert ids(carol.sent()) == [2]
    [reply] = alice.received()
    assert (reply["sender"], reply["stream_id"]) == (BOB, BOB)


def test_messages_between_holders_of_one_number(http, add_account):
    bob, carol = users(http, add_account, ("bob", BOB), ("carol", BOB))
    bob.send_ok(BOB, "note to the shared line")
    [message] = carol.received()
    assert (message["sms_text"], message["sender"]) == ("note to the shared line", BOB)
    assert texts(bob.sent()) == ["note to the shared line"]


def test_on_net_wins_over_the_carrier(start_adapter, add_account, capsys):
    server = start_adapter(UNREACHABLE_CARRIER)
    with server.client() as http:
        alice = make_user(http, add_account, "alice", ALICE)
        bob = make_user(http, add_account, "bob", BOB, provider="upstream")
        bob.send_ok(ALICE, "on-net")
        assert texts(alice.received()) == ["on-net"]
    assert outbox_lines(server.config_file, capsys) == []


# -- off-net ---------------------------------------------------------------------------


def test_a_number_nobody_holds_is_queued_for_the_carrier(start_adapter, add_account, capsys):
    server = start_adapter(UNREACHABLE_CARRIER)
    with server.client() as http:
        bob = make_user(http, add_account, "bob", BOB)
        alice = make_user(http, add_account, "alice", ALICE, provider="upstream")
        sms_id = alice.send_ok("(202) 555-0199", "off to the carrier")
        assert [(m["sms_id"], m["recipient"], m["sms_text"]) for m in alice.sent()] == [
            (sms_id, NOBODY, "off to the carrier")]
        assert alice.received() == bob.received() == []
    [job] = outbox_lines(server.config_file, capsys)
    assert job.provider == "upstream"


@pytest.mark.parametrize("provider", [None, "local"])
def test_without_a_carrier_a_number_nobody_holds_is_refused(start_adapter, add_account,
                                                            capsys, provider):
    server = start_adapter(LOOPBACK)
    with server.client() as http:
        options = {"provider": provider} if provider else {}
        alice = make_user(http, add_account, "alice", ALICE, **options)
        bob = make_user(http, add_account, "bob", BOB)
        response = alice.send(NOBODY, "lost")
        assert response.status_code == 403
        message = response.json()["message"]
        assert NOBODY in message and ALICE in message
        assert alice.sent() == bob.received() == []
    assert outbox_lines(server.config_file, capsys) == []


def test_carriers_get_text_only(start_adapter, add_account, capsys):
    server = start_adapter(UNREACHABLE_CARRIER)
    with server.client() as http:
        alice = make_user(http, add_account, "alice", ALICE, provider="upstream")
        media = alice.send(NOBODY, '{"attachments": [{"content-url": "https://x/y.jpg"}]}',
                           content_type="application/x-acro-filetransfer+json")
        assert media.status_code == 403
        assert "Only text" in media.json()["message"]
        # A receipt for someone outside the service has nowhere to go: accepted, not kept.
        receipt = alice.send(NOBODY, '{"message-id": "abc", "display-notification": {}}',
                             content_type="application/x-acro-disposition-notification")
        assert receipt.status_code == 200 and receipt.json() == {}
        assert alice.sent() == []
    assert outbox_lines(server.config_file, capsys) == []


# -- what a carrier may take ---------------------------------------------------------------


def test_what_the_carrier_cannot_take_is_refused_at_send(start_adapter, add_account, capsys):
    server = start_adapter(UNREACHABLE_CARRIER)  # voip.ms: US and Canada only
    with server.client() as http:
        alice = make_user(http, add_account, "alice", ALICE, provider="upstream")
        abroad = alice.send("+44 7911 123456", "hello London")
        assert abroad.status_code == 403
        assert "+447911123456" in abroad.json()["message"] and "CA, US" in abroad.json()["message"]
        premium = alice.send("+1 900 555 0100", "win a prize")
        assert premium.status_code == 403 and "premium-rate" in premium.json()["message"]
        # voip.ms takes 160 characters per SMS: 10 parts are the default cap.
        too_long = alice.send(NOBODY, "x" * 1601)
        assert too_long.status_code == 400
        assert "11 SMS" in too_long.json()["message"] and "10" in too_long.json()["message"]
        # The typo of issue 10: 11 digits without "+" are not read as Egypt.
        typo = alice.send("20255550102", "hi")
        assert typo.status_code == 400 and "not a valid number in US" in typo.json()["message"]
        assert alice.sent() == []
        alice.send_ok(NOBODY, "x" * 1600)
        alice.send_ok("+1 416 555 0100", "hello Toronto")
    assert len(outbox_lines(server.config_file, capsys)) == 2


def test_the_segment_cap_is_configurable_and_on_net_is_not_capped(start_adapter, add_account,
                                                                  capsys):
    server = start_adapter("[limits]\nsegments_per_message = 2\n" + UNREACHABLE_CARRIER)
    with server.client() as http:
        alice = make_user(http, add_account, "alice", ALICE, provider="upstream")
        bob = make_user(http, add_account, "bob", BOB)
        assert alice.send(NOBODY, "ж" * 141).status_code == 400  # UCS-2: 70 per part
        alice.send_ok(NOBODY, "ж" * 140)
        alice.send_ok(BOB, "x" * 5000)
        assert texts(bob.received()) == ["x" * 5000]
    assert len(outbox_lines(server.config_file, capsys)) == 1


def test_a_carrier_instance_names_its_countries(start_adapter, add_account, capsys):
    server = start_adapter(UNREACHABLE_CARRIER + 'countries = ["PR"]\n')
    with server.client() as http:
        alice = make_user(http, add_account, "alice", ALICE, provider="upstream")
        assert alice.send(NOBODY, "not to the US now").status_code == 403
        alice.send_ok("+1 787 555 0100", "to Puerto Rico")
    assert len(outbox_lines(server.config_file, capsys)) == 1


def test_a_carrier_cannot_be_given_countries_it_cannot_reach(config_file):
    config_file.write_text(config_file.read_text() + UNREACHABLE_CARRIER + 'countries = ["GB"]\n')
    with pytest.raises(ConfigError, match="providers.upstream.countries.*cannot send to GB"):
        check_providers(load_config(str(config_file), environ={}))


def test_carrier_refusal_rules():
    def carrier(kind: str, **settings) -> Provider:
        cls = provider_class(kind)
        credentials = {"username": "u", "api_key": "k"} if kind == "aculab" else {}
        return cls(name="c", settings=cls.settings_type(**credentials, **settings),
                   http=None, hooks=HookUrls("", "", ""))

    def refusal(to: str, body: str = "hi", kind: str = "aculab", cap: int = 10, **settings):
        return routing.carrier_refusal(NewMessage(to, body), carrier(kind, **settings), cap)

    # Aculab reaches any country unless told otherwise.
    assert refusal("+447911123456") is None
    assert isinstance(refusal("+447911123456", countries=("US",)), routing.Refused)
    assert isinstance(refusal("+19005550100"), routing.Refused)
    # Aculab concatenates: 153 GSM characters per part; voip.ms sends 160-character SMS.
    assert refusal(BOB, "x" * 153 * 10) is None
    assert isinstance(refusal(BOB, "x" * (153 * 10 + 1)), routing.InvalidMessage)
    assert refusal(BOB, "x" * 1600, kind="voipms", api_username="u", api_password="p") is None
    assert refusal(BOB, "x" * 100_000, cap=0) is None


# -- the routing decision -----------------------------------------------------------------


def test_local_accounts_holding_the_number_win_whatever_the_message():
    receipt = NewMessage(BOB, "{}", content_type="application/x-acro-disposition-notification")
    for message in (NewMessage(BOB, "hi"), receipt):
        assert route(message, [3, 4], None) == OnNet([3, 4])
        assert route(message, [3], "voip", carrier_refused=True,
                     opted_out=lambda: True) == OnNet([3])


def test_off_net_goes_to_the_senders_carrier():
    assert route(NewMessage(NOBODY, "hi"), [], "voip") == Upstream("voip")


def test_off_net_refusals_in_order():
    text, media = NewMessage(NOBODY, "hi"), NewMessage(NOBODY, "{}", content_type="image/jpeg")
    assert route(media, [], "voip") is Refusal.NOT_TEXT
    assert route(media, [], None) is Refusal.NOT_TEXT
    assert route(text, [], None) is Refusal.NO_CARRIER
    assert route(text, [], "voip", carrier_refused=True) is Refusal.NOT_CARRIED
    assert route(text, [], "voip", opted_out=lambda: True) is Refusal.OPTED_OUT


def test_the_opt_out_is_read_only_for_a_message_the_carrier_would_take():
    def never() -> bool:
        raise AssertionError("read the opt-out needlessly")

    assert route(NewMessage(BOB, "hi"), [1], "voip", opted_out=never) == OnNet([1])
    assert route(NewMessage(NOBODY, "hi"), [], None, opted_out=never) is Refusal.NO_CARRIER
    assert route(NewMessage(NOBODY, "hi"), [], "voip", carrier_refused=True,
                 opted_out=never) is Refusal.NOT_CARRIED


@pytest.fixture
async def store(config):
    store = Store(config.database_url)
    await store.migrate()
    await store.create_account(username="alice", password_hash=hash_password("pw"),
                               number=ALICE, provider=None, display_name=None)
    yield store
    await store.close()


@pytest.mark.anyio
async def test_off_net_send_is_queued_for_the_carrier_or_refused_without_one(store):
    alice = await store.account("alice")
    assert (await record_send(store, alice, NewMessage("+14155550100", "hi"))) is Refusal.NO_CARRIER
    stored = await record_send(store, alice, NewMessage("+14155550100", "hi"), provider="voip")
    assert stored.state == "queued"
    assert stored.delivered == ()
    [job] = await store.jobs()
    assert (job.provider, job.state, job.message_id) == ("voip", "queued", stored.message_id)
    await store.write(lambda rows: rows.set_opt_out(alice.number, "+14155550100", True,
                                                   "STOP received"))
    refused = await record_send(store, alice, NewMessage("+14155550100", "again"), provider="voip")
    assert refused is Refusal.OPTED_OUT
    assert len(await store.jobs()) == 1




# -- region ------------------------------------------------------------------------------


def test_numbers_without_a_country_code_follow_default_region(config_file, start_adapter,
                                                              add_account):
    config_file.write_text('default_region = "GB"\n' + config_file.read_text())
    with start_adapter().client() as http:
        alice, bob = users(http, add_account, ("alice", "020 7946 0958"),
                           ("bob", "07911 123456"))
        alice.send_ok("07911 123456", "hello from London")
        [message] = bob.received()
        assert message["sender"] == message["stream_id"] == "+442079460958"
        assert alice.sent()[0]["recipient"] == "+447911123456"
        # A US number needs its country code now.
        assert alice.send("2025550102", "x").status_code in (400, 403)


# -- the message rules ------------------------------------------------------------------


@pytest.mark.parametrize(("given", "stored"), [
    ("", ""), ("text/plain", ""), ("Text/Plain; charset=UTF-8", ""), ("  ", ""),
    ("application/x-acro-filetransfer+json", "application/x-acro-filetransfer+json"),
    ("application/x-acro-disposition-notification",
     "application/x-acro-disposition-notification"),
    (" image/jpeg ", "image/jpeg"),
    ("application/json; charset=utf-8", "application/json; charset=utf-8"),
])
def test_content_types_are_normalised(given, stored):
    assert routing.normalise_content_type(given) == stored


@pytest.mark.parametrize("given", ["plain", "text/", "/json", "text plain/x", "a/b/c",
                                   "application/" + "x" * 300, "<script>/x"])
def test_content_types_that_are_not_mime_types_are_refused(given):
    with pytest.raises(routing.InvalidMessage):
        routing.normalise_content_type(given)


def test_prepare_builds_the_stored_message():
    message = routing.prepare(
        to="tel:+1-202-555-0102", body=" hi ", content_type="TEXT/PLAIN",
        disposition_notification="  id.1:display ", device="phone", default_region="US")
    assert (message.peer, message.body, message.content_type) == (BOB, " hi ", "")
    assert (message.disposition_notification, message.device) == ("id.1:display", "phone")


@pytest.mark.parametrize("fields", [
    dict(to=BOB, body=""),
    dict(to=BOB, body="x", disposition_notification="a:" + "d" * 1024),
    dict(to=BOB, body="x", content_type="nonsense"),
])
def test_prepare_refuses_unusable_messages(fields):
    with pytest.raises(routing.InvalidMessage):
        routing.prepare(**fields, default_region="US")


def test_carol_is_not_bob(http, add_account):
    alice, bob, carol = users(http, add_account, ("alice", ALICE), ("bob", BOB), ("carol", CAROL))
    alice.send_ok(CAROL, "only for carol")
    assert texts(carol.received()) == ["only for carol"]
    assert bob.received() == []
