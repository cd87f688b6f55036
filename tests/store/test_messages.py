"""Message storage: per-account ids, on-net copies, cursors."""

import asyncio

import pytest

from adapter.passwords import hash_password
from adapter.messaging.routing import record_send
from adapter.store import INBOUND, OUTBOUND, NewMessage, Store
from tests.store.history import insert_received_history

pytestmark = pytest.mark.anyio
PASSWORD_HASH = hash_password("pw")


@pytest.fixture
async def store(config):
    store = Store(config.database_url)
    await store.migrate()
    for username, number in [("alice", "+12025550101"), ("bob", "+12025550102"),
                             ("bob2", "+12025550102")]:
        await store.create_account(username=username, password_hash=PASSWORD_HASH,
                                   number=number, provider=None, display_name=None)
    yield store
    await store.close()


async def test_ids_are_per_account_and_shared_by_both_directions(store):
    alice, bob = await store.account("alice"), await store.account("bob")
    first = await record_send(store, alice, NewMessage("+12025550102", "one"))
    reply = await record_send(store, bob, NewMessage("+12025550101", "two"))
    pages = await store.fetch(alice.id, None, {INBOUND: None, OUTBOUND: None}, 10)
    assert first.sms_id == 1 and first.state == "delivered"
    assert len(first.delivered) == 2  # bob and bob2 share the number
    # bob's counter: received id 1 from alice, then his reply is id 2
    assert reply.sms_id == 2
    assert [m.sms_id for m in pages[OUTBOUND]] == [1]
    assert [m.sms_id for m in pages[INBOUND]] == [2]
    assert pages[INBOUND][0].peer == "+12025550102"


async def test_concurrent_sends_get_unique_increasing_ids(store):
    alice, bob = await store.account("alice"), await store.account("bob")
    await asyncio.gather(*[
        record_send(store, sender, NewMessage(to, f"m{i}"), provider="voip")
        for i in range(40)
        for sender, to in [(alice, "+14155550100"), (bob, "+14155550101")]
    ])
    pages = await store.fetch(alice.id, None, {OUTBOUND: 0}, 100)
    assert [m.sms_id for m in pages[OUTBOUND]] == list(range(1, 41))


async def test_crossed_on_net_sends_do_not_deadlock(store):
    alice, bob = await store.account("alice"), await store.account("bob")
    await asyncio.gather(*[
        record_send(store, sender, NewMessage(to, "x"))
        for _ in range(20)
        for sender, to in [(alice, bob.number), (bob, alice.number)]
    ])
    pages = await store.fetch(alice.id, None, {INBOUND: 0, OUTBOUND: 0}, 100)
    ids = sorted(m.sms_id for page in pages.values() for m in page)
    assert ids == list(range(1, 41))


async def test_removing_an_account_keeps_a_shared_number_for_the_other(store):
    assert await store.remove_account("bob") == 0
    assert [a.username for a in await store.list_accounts()] == ["alice", "bob2"]
    assert await store.remove_account("bob") is None


async def drain_received(store, account_id: int, device: str, cursor: int | None) -> list[int]:
    """Fetch as the app does (each time from the newest id it got) until nothing comes."""
    fetched = []
    for _ in range(100):
        pages = await store.fetch(account_id, device, {INBOUND: cursor, OUTBOUND: None}, 100)
        if not pages[INBOUND]:
            return fetched
        fetched += [m.sms_id for m in pages[INBOUND]]
        cursor = fetched[-1]
    raise AssertionError("never drained")


async def test_a_device_new_to_the_adapter_pages_forward_from_the_cursor_it_reports(store):
    # Issue 10 point 9: the newest 100 only, and 5001-7200 were never fetched.
    bob = await store.account("bob")
    await insert_received_history(store, bob.id, 7_300, peer="+12025550101")
    assert await drain_received(store, bob.id, "new-tablet", 5000) == list(range(5001, 7301))
    # Only an empty cursor, or one beyond the newest id (a device that knew
    # another database), means the recent window.
    assert await drain_received(store, bob.id, "new-phone", None) == list(range(7201, 7301))
    assert await drain_received(store, bob.id, "other-db", 9000) == list(range(7201, 7301))
