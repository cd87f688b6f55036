"""Push storage: jobs queued with received messages, coalesced per device, unread counts."""

import asyncio
import json
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
import sqlalchemy as sa

from adapter.passwords import hash_password
from adapter.messaging.routing import record_send
from adapter.store import INBOUND, OUTBOUND, NewMessage, Registration, Store, TokenPair
from adapter.store import messages as message_queries
from adapter.store import outbox
from adapter.store.migrations import MIGRATIONS
from adapter.store.outbox import utc
from adapter.store.schema import accounts, jobs, messages, schema_migrations

pytestmark = pytest.mark.anyio
PASSWORD_HASH = hash_password("pw")
ALICE, BOB = "+12025550101", "+12025550102"
RECEIPT = "application/x-acro-disposition-notification"


@pytest.fixture
async def store(config):
    store = Store(config.database_url)
    await store.migrate()
    for username, number in [("alice", ALICE), ("bob", BOB)]:
        await store.create_account(username=username, password_hash=PASSWORD_HASH,
                                   number=number, provider=None, display_name=None)
    yield store
    await store.close()


async def accounts_of(store):
    return await store.account("alice"), await store.account("bob")


async def test_a_send_to_an_account_without_devices_queues_no_push(store):
    alice, bob = await accounts_of(store)
    stored = await record_send(store, alice, NewMessage(BOB, "hi"))
    assert stored.pushes == 0
    assert await store.jobs() == []


async def test_each_pushable_device_gets_one_job_in_its_own_conversation(store):
    alice, bob = await accounts_of(store)
    await store.report_push_token(bob.id, Registration("S1", "d1", other=TokenPair("t1", "a")))
    await store.report_push_token(bob.id, Registration("S2", "d2", legacy=TokenPair("t2", "a")))
    await store.report_push_token(bob.id, Registration("S3", "d3", call=TokenPair("t3", "a")))
    stored = await record_send(store, alice, NewMessage(BOB, "hi"))
    assert stored.pushes == 2
    jobs = await store.jobs()
    assert sorted(job.payload["selector"] for job in jobs) == ["S1", "S2"]
    assert {job.kind for job in jobs} == {"push"} and {job.provider for job in jobs} == {None}
    leased = await store.lease_jobs("w", 10, 60)
    # Both are leased at once: one device's push never waits for another's.
    assert len(leased) == 2
    assert {job.message.sms_id for job in leased} == {stored.delivered[0][1]}
    assert {job.message.account_id for job in leased} == {bob.id}


async def test_unread_counts_what_no_fetch_returned_and_no_receipt_displayed(store):
    alice, bob = await accounts_of(store)

    async def send(body, **fields):
        await record_send(store, alice, NewMessage(BOB, body, **fields))

    await send("one")
    await send("two", disposition_notification="m1:display")
    assert await store.unread_count(bob.id) == 2
    pages = await store.fetch(bob.id, None, {INBOUND: None, OUTBOUND: None}, 10)
    assert len(pages[INBOUND]) == 2
    assert await store.unread_count(bob.id) == 0
    await send("three", disposition_notification="m1:display")
    await send("four", disposition_notification="m10:display")
    await send("receipt", content_type=RECEIPT)  # receipts are never unread
    assert await store.unread_count(bob.id) == 2
    # bob's app displayed m1: only alice's m1, not m10, not someone else's m1.
    await record_send(store, bob, NewMessage("+12025550199", "x", content_type=RECEIPT,
                                            displays=("m1",)))
    assert await store.unread_count(bob.id) == 2
    await record_send(store, bob, NewMessage(ALICE, "x", content_type=RECEIPT, displays=("m1",)))
    assert await store.unread_count(bob.id) == 1
    # A fetch that returns nothing new reads nothing (bob's ids: 1-5 received,
    # 6 the receipt to alice; the one to a stranger was not stored).
    pages = await store.fetch(bob.id, None, {INBOUND: 5, OUTBOUND: 6}, 10)
    assert pages == {INBOUND: [], OUTBOUND: []}
    assert await store.unread_count(bob.id) == 1
    # One that returns some reads up to the newest it returned.
    pages = await store.fetch(bob.id, None, {INBOUND: 3, OUTBOUND: 6}, 1)
    assert [m.body for m in pages[INBOUND]] == ["four"]
    assert await store.unread_count(bob.id) == 0


async def test_a_token_reported_again_after_a_404_survives_the_late_delete(store):
    alice, bob = await accounts_of(store)
    await store.report_push_token(bob.id, Registration("S1", other=TokenPair("old", "a")))
    await record_send(store, alice, NewMessage(BOB, "hi"))
    [job] = await store.lease_jobs("w", 10, 60)
    # The app restarted with a new token while the push to the old one was out.
    await store.report_push_token(bob.id, Registration("S1", other=TokenPair("new", "a")))
    assert await store.settle_push(job, "w", state="done", forget_token="old")
    target = await store.push_target("S1")
    assert (target.token, target.account_id) == ("new", bob.id)


def _first_two_migrations(conn):
    schema_migrations.create(conn)
    for version, description, step in MIGRATIONS[:2]:
        step(conn)
        conn.execute(schema_migrations.insert().values(
            version=version, description=description, applied_at=datetime.now(UTC)))


async def test_migration_3_counts_earlier_messages_as_read(empty_database_url):
    store = Store(empty_database_url)
    try:
        await store._db.migrate(_first_two_migrations)
        await store.create_account(username="bob", password_hash=PASSWORD_HASH, number=BOB,
                                   provider=None, display_name=None)
        bob = await store.account("bob")
        now = datetime.now(UTC)

        def old_messages(conn):
            conn.execute(accounts.update().values(last_message_id=3))
            conn.execute(messages.insert(), [
                {"account_id": bob.id, "sms_id": n, "direction": "in", "local_number": BOB,
                 "peer": ALICE, "body": f"old {n}", "status": "received",
                 "created_at": now, "updated_at": now} for n in (1, 2, 3)])

        await store._db.write(old_messages)
        assert (await store.migrate())[0] == 3
        assert await store.unread_count(bob.id) == 0
        alice = await store.create_account(username="alice", password_hash=PASSWORD_HASH,
                                           number=ALICE, provider=None, display_name=None)
        await record_send(store, alice, NewMessage(BOB, "new"))
        assert await store.unread_count(bob.id) == 1
        assert await store._db.read(lambda conn: conn.execute(
            sa.select(accounts.c.read_up_to).where(accounts.c.id == bob.id)).scalar_one()) == 3
    finally:
        await store.close()


async def test_removing_an_account_removes_its_devices_and_their_jobs(store):
    alice, bob = await accounts_of(store)
    await store.report_push_token(bob.id, Registration("S1", other=TokenPair("t1", "a")))
    await record_send(store, alice, NewMessage(BOB, "hi"))
    assert [job.kind for job in await store.jobs()] == ["push"]
    assert await store.remove_account("bob") == 1
    assert await store.push_target("S1") is None
    assert await store.jobs() == []


async def test_a_database_error_does_not_carry_the_push_token(store, database_engine):
    # A failing statement's error (and so the traceback a log would show)
    # must not hold its parameters: here a token, too long for its column.
    if database_engine != "postgresql":
        pytest.skip("SQLite keeps text of any length")
    alice, _ = await accounts_of(store)
    token = "secret-token-" + "t" * 2000
    with pytest.raises(Exception) as error:
        await store.report_push_token(alice.id, Registration(
            selector="s1", device=None, other=TokenPair(token, "app"), call=None, legacy=None))
    assert "secret-token-" not in str(error.value)


# -- coalescing a device's pushes (issue 10 point 8) -------------------------------------

T0 = datetime(2026, 1, 2, 10, 0, tzinfo=UTC)
INTERVAL = 2.0


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def deliver(store, account, seconds: float, body: str = "hi", interval: float = INTERVAL,
                  **fields) -> int:
    """A message from alice reaching ``account`` at T0 + ``seconds``; its sms_id."""
    [(_, sms_id)] = await store._db.write(partial(
        message_queries.receive, account_ids=[account.id], now=at(seconds), local_number=BOB,
        peer=ALICE, body=body, push_interval=interval, **fields))
    return sms_id


async def device_jobs(store, selector: str) -> list[tuple[str, float, int, dict]]:
    """(state, seconds after T0 it is due, sms_id it carries, payload) of each
    push job of the device, oldest first."""
    rows = await store._db.read(lambda conn: conn.execute(
        sa.select(jobs.c.state, jobs.c.due_at, jobs.c.payload, messages.c.sms_id)
        .join(messages, messages.c.id == jobs.c.message_id)
        .where(jobs.c.conversation == f"push:{selector}").order_by(jobs.c.id)).all())
    return [(row.state, (utc(row.due_at) - T0).total_seconds(), row.sms_id,
             json.loads(row.payload)) for row in rows]


async def lease_at(store, seconds: float) -> list:
    return await store._db.write(partial(outbox.lease, worker="w", limit=10, lease_seconds=60,
                                         now=at(seconds)))


async def push_to_bob(store, *selectors: str):
    alice, bob = await accounts_of(store)
    for selector in selectors:
        await store.report_push_token(bob.id, Registration(selector, f"{selector}-device",
                                                           other=TokenPair(selector, "a")))
    return bob


async def test_a_single_message_is_pushed_at_once(store):
    bob = await push_to_bob(store, "S1", "S2")
    first = await deliver(store, bob, 0)
    for selector in ("S1", "S2"):
        assert await device_jobs(store, selector) == [("queued", 0, first, {"selector": selector})]
    for job in await lease_at(store, 0.1):
        await store.settle_push(job, "w", state="done")
    # Long after the last push, the next message goes at once too.
    later = await deliver(store, bob, 60)
    assert (await device_jobs(store, "S1"))[1] == ("queued", 60, later, {"selector": "S1"})


async def test_a_burst_is_one_push_now_and_one_per_interval_carrying_the_newest(store):
    bob = await push_to_bob(store, "S1", "S2", "S3")
    first = await deliver(store, bob, 0)
    # Until a dispatcher takes it, the waiting job carries each newer message.
    newest = [await deliver(store, bob, s) for s in (0.1, 0.2, 0.3)][-1]
    assert await device_jobs(store, "S1") == [("queued", 0, newest, {"selector": "S1"})]
    out = await lease_at(store, 0.4)
    assert {job.message.sms_id for job in out} == {newest} and len(out) == 3
    assert first < newest
    # While that push is out, the next is spaced from its due time.
    await deliver(store, bob, 0.5)
    await deliver(store, bob, 0.6, sender_name="Alice")
    newest = await deliver(store, bob, 1.9, sender_name="Alice")
    expected_waiting = ("queued", INTERVAL, newest, {"selector": "S1", "name": "Alice"})
    assert (await device_jobs(store, "S1"))[1:] == [expected_waiting]
    for job in out:
        await store.settle_push(job, "w", state="done")
    assert await lease_at(store, INTERVAL - 0.01) == []
    out = await lease_at(store, INTERVAL)
    assert {job.message.sms_id for job in out} == {newest} and len(out) == 3
    # And the one after that another interval on, under the newest sender's name.
    newest = await deliver(store, bob, 2.5)
    assert (await device_jobs(store, "S2"))[2] == ("queued", 2 * INTERVAL, newest,
                                                   {"selector": "S2"})
    # 7 messages to 3 devices: 3 jobs each, not 7.
    assert [len(await device_jobs(store, s)) for s in ("S1", "S2", "S3")] == [3, 3, 3]


async def test_the_device_that_sent_a_message_keeps_its_waiting_push(store):
    bob = await push_to_bob(store, "S1", "S2")
    for_both = await deliver(store, bob, 0)
    await deliver(store, bob, 0.1, sender_device="S1-device")  # sent from S1's installation
    assert (await device_jobs(store, "S1"))[0][2] == for_both
    assert (await device_jobs(store, "S2"))[0][2] == for_both + 1


async def test_a_receipt_never_silences_a_waiting_push_of_a_text(store):
    bob = await push_to_bob(store, "S1")
    text = await deliver(store, bob, 0, body="read me")
    await deliver(store, bob, 0.1, body="{}", content_type=RECEIPT)
    await deliver(store, bob, 0.2, body="{}", content_type=RECEIPT + "; charset=utf-8")
    assert [job[2] for job in await device_jobs(store, "S1")] == [text]
    [job] = await lease_at(store, 0.3)
    await store.settle_push(job, "w", state="done")
    # A waiting receipt push gives way to a text, and to a newer receipt.
    receipt = await deliver(store, bob, 0.4, body="{}", content_type=RECEIPT)
    assert (await device_jobs(store, "S1"))[1][2] == receipt
    receipt = await deliver(store, bob, 0.5, body="{}", content_type=RECEIPT)
    assert (await device_jobs(store, "S1"))[1][2] == receipt
    text = await deliver(store, bob, 0.6, body="and me")
    assert (await device_jobs(store, "S1"))[1][2] == text


async def test_an_interval_of_zero_spaces_nothing_but_still_coalesces(store):
    bob = await push_to_bob(store, "S1")
    await deliver(store, bob, 0, interval=0)
    newest = await deliver(store, bob, 0.1, interval=0)
    assert await lease_at(store, 0.2)
    after = await deliver(store, bob, 0.3, interval=0)
    assert await device_jobs(store, "S1") == [("leased", 0, newest, {"selector": "S1"}),
                                              ("queued", 0.3, after, {"selector": "S1"})]


async def test_concurrent_deliveries_leave_one_waiting_push_per_device(store):
    # On PostgreSQL these transactions overlap: the account's id counter row
    # orders them, so none queues a second job beside another's.
    bob = await push_to_bob(store, "S1", "S2")
    alice = await store.account("alice")
    await asyncio.gather(*[record_send(store, alice, NewMessage(BOB, f"m{n}")) for n in range(40)])
    for selector in ("S1", "S2"):
        [(state, _, sms_id, _)] = await device_jobs(store, selector)
        assert (state, sms_id) == ("queued", 40)
    assert await store.unread_count(bob.id) == 40
