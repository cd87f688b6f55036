"""Push storage: jobs queued with received messages, unread counts, migration 3."""

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from adapter.passwords import hash_password
from adapter.store import INBOUND, OUTBOUND, NewMessage, Registration, Store, TokenPair
from adapter.store.migrations import MIGRATIONS
from adapter.store.schema import accounts, messages, schema_migrations

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
    stored = await store.record_send(alice, NewMessage(BOB, "hi"))
    assert stored.pushes == 0
    assert await store.jobs() == []


async def test_each_pushable_device_gets_one_job_in_its_own_conversation(store):
    alice, bob = await accounts_of(store)
    await store.report_push_token(bob.id, Registration("S1", "d1", other=TokenPair("t1", "a")))
    await store.report_push_token(bob.id, Registration("S2", "d2", legacy=TokenPair("t2", "a")))
    await store.report_push_token(bob.id, Registration("S3", "d3", call=TokenPair("t3", "a")))
    stored = await store.record_send(alice, NewMessage(BOB, "hi"))
    assert stored.pushes == 2
    jobs = await store.jobs()
    assert sorted(job.payload["selector"] for job in jobs) == ["S1", "S2"]
    assert {job.kind for job in jobs} == {"push"} and {job.provider for job in jobs} == {None}
    leased = await store.lease_jobs("w", 10, 60)
    # Both are leased at once: one device's push never waits for another's.
    assert len(leased) == 2
    assert {job.message["sms_id"] for job in leased} == {stored.delivered[0][1]}
    assert {job.message["account_id"] for job in leased} == {bob.id}


async def test_unread_counts_what_no_fetch_returned_and_no_receipt_displayed(store):
    alice, bob = await accounts_of(store)

    async def send(body, **fields):
        await store.record_send(alice, NewMessage(BOB, body, **fields))

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
    await store.record_send(bob, NewMessage("+12025550199", "x", content_type=RECEIPT,
                                            displays=("m1",)))
    assert await store.unread_count(bob.id) == 2
    await store.record_send(bob, NewMessage(ALICE, "x", content_type=RECEIPT, displays=("m1",)))
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
    await store.record_send(alice, NewMessage(BOB, "hi"))
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


async def test_migration_3_counts_earlier_messages_as_read(database_url):
    store = Store(database_url)
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
        await store.record_send(alice, NewMessage(BOB, "new"))
        assert await store.unread_count(bob.id) == 1
        assert await store._db.read(lambda conn: conn.execute(
            sa.select(accounts.c.read_up_to).where(accounts.c.id == bob.id)).scalar_one()) == 3
    finally:
        await store.close()


async def test_removing_an_account_removes_its_devices_and_their_jobs(store):
    alice, bob = await accounts_of(store)
    await store.report_push_token(bob.id, Registration("S1", other=TokenPair("t1", "a")))
    await store.record_send(alice, NewMessage(BOB, "hi"))
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
