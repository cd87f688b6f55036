"""Two accounts, two devices each, driven only through the Account XML."""

from adapter import cli

from tests.emulator import AppEmulator


def account_xml(config_file, username, capsys) -> str:
    capsys.readouterr()
    assert cli.main(["--config", str(config_file), "account-xml", username]) == 0
    return capsys.readouterr().out


def test_four_devices_converge_on_the_same_messages_and_ids(live_server, add_account, capsys):
    add_account("alice", "+1 202 555 0101", password="alice-pw")
    add_account("bob", "(202) 555-0102", password="bob-pw")
    alice_xml = account_xml(live_server.config_file, "alice", capsys)
    bob_xml = account_xml(live_server.config_file, "bob", capsys)
    alice_phone = AppEmulator(alice_xml, "alice-pw", "alice-phone")
    alice_desk = AppEmulator(alice_xml, "alice-pw", "alice-desktop")
    bob_phone = AppEmulator(bob_xml, "bob-pw", "bob-phone")
    bob_desk = AppEmulator(bob_xml, "bob-pw", "bob-desktop")
    devices = [alice_phone, alice_desk, bob_phone, bob_desk]

    sent = [
        (alice_phone, "2025550102", 'Hi Bob, "quoted" & <tagged>\nsecond line'),
        (bob_desk, "+12025550101", "Hi Alice 👋 — Привет, 你好"),
        (alice_desk, "tel:+12025550102", "from the desktop"),
        (bob_phone, "sip:+12025550101@example.com", "from the phone\tend"),
    ]
    ids = [device.send(to, text) for device, to, text in sent]

    for device in devices:
        device.sync()

    assert alice_phone.received == alice_desk.received
    assert alice_phone.sent == alice_desk.sent
    assert bob_phone.received == bob_desk.received
    assert bob_phone.sent == bob_desk.sent
    alice_texts_sent = [m["sms_text"] for _, m in sorted(alice_phone.sent.items())]
    assert alice_texts_sent == [sent[0][2], sent[2][2]]
    bob_texts_received = [m["sms_text"] for _, m in sorted(bob_phone.received.items())]
    assert bob_texts_received == [sent[0][2], sent[2][2]]
    alice_texts_received = [m["sms_text"] for _, m in sorted(alice_desk.received.items())]
    assert alice_texts_received == [sent[1][2], sent[3][2]]
    # The ids the senders got back are the ids every device of theirs holds.
    assert set(alice_phone.sent) == {int(ids[0]), int(ids[2])}
    assert set(bob_desk.sent) == {int(ids[1]), int(ids[3])}
    for device in devices:
        assert not any(m.get("pending") for m in device.sent.values())
    for message in bob_phone.received.values():
        assert message["sender"] == message["stream_id"] == "+12025550101"
    for message in alice_phone.sent.values():
        assert message["recipient"] == message["stream_id"] == "+12025550102"
    for device in devices:
        device.close()
