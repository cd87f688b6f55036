"""Removing an account in batches: all of it goes, nothing of anyone else, and
every delete on the way finds its rows through an index."""

import asyncio

import pytest
import sqlalchemy as sa

from adapter.passwords import HashCost, hash_password
from adapter.messaging.routing import record_send
from adapter.store import AccountGone, MessageState, NewMessage, Registration, Store, TokenPair
from adapter.store import removal
from adapter.store.schema import (
    accounts, carrier_refs, device_cursors, jobs, messages, metadata, numbers, push_tokens,
)

pytestmark = pytest.mark.anyio
PASSWORD_HASH = hash_password("pw", HashCost(1, 8, 1))
ALICE, BOB, NOBODY = "+12025550101", "+12025550102", "+12025550199"


@pytest.fixture
async def store(config):
    store = Store(config.database_url)
    await store.migrate()
    for username, number in [("alice", ALICE), ("bob", BOB)]:
        await store.create_account(username=username, password_hash=PASSWORD_HASH,
                                   number=number, provider="voip", display_name=None)
    yield store
    await store.close()


async def traffic(store, account, peer, device):
    """A device with a push token, messages both ways on-net (with pushes),
    off-net sends carried upstream (with carrier refs), a fetch cursor."""
    await store.report_push_token(account.id, Registration(
        f"{account.username}-phone", device, other=TokenPair(f"{account.username}-token", "app")))
    for n in range(3):
        await record_send(store, peer, NewMessage(account.number, f"to {account.username} {n}"))
        await record_send(store, account, NewMessage(peer.number, f"from {account.username} {n}"))
        await record_send(store, account, NewMessage(NOBODY, f"off-net {n}"), provider="voip")
    await store.fetch(account.id, device, {"in": 0, "out": 0}, 100)


async def carry_sends(store):
    for job in await store.lease_jobs("w", 100, 60):
        if job.kind == "send":
            def settle(rows, job=job):
                assert rows.finish_job(job, "w", "done")
                rows.add_refs(job.provider, job.message_id, [f"ref-{job.id}"])
                rows.set_state(job.message_id, MessageState.SUBMITTED)

            await store.write(settle)


def everything(conn) -> dict[str, set[tuple]]:
    return {t.name: {tuple(row) for row in conn.execute(sa.select(t))}
            for t in metadata.sorted_tables if t.name != "schema_migrations"}


def of_account(conn, account_id: int, number: str) -> dict[str, set[tuple]]:
    """The rows that belong to the account, table by table."""
    mine = sa.select(messages.c.id).where(messages.c.account_id == account_id)

    def rows(table, condition):
        return {tuple(row) for row in conn.execute(sa.select(table).where(condition))}

    return {
        "accounts": rows(accounts, accounts.c.id == account_id),
        "numbers": rows(numbers, numbers.c.e164 == number),
        "messages": rows(messages, messages.c.account_id == account_id),
        "jobs": rows(jobs, jobs.c.message_id.in_(mine)),
        "carrier_refs": rows(carrier_refs, carrier_refs.c.message_id.in_(mine)),
        "device_cursors": rows(device_cursors, device_cursors.c.account_id == account_id),
        "push_tokens": rows(push_tokens, push_tokens.c.account_id == account_id),
    }


async def test_batched_removal_takes_all_of_the_account_and_nothing_else(store):
    alice, bob = await store.account("alice"), await store.account("bob")
    await traffic(store, bob, alice, "bob-device")
    await traffic(store, alice, bob, "alice-device")
    await carry_sends(store)
    before = await store._db.read(everything)
    bobs = await store._db.read(lambda conn: of_account(conn, bob.id, BOB))
    assert all(bobs.values()), {name: len(rows) for name, rows in bobs.items()}
    kind = jobs.c.keys().index("kind")
    assert {row[kind] for row in bobs["jobs"]} == {"push", "send"}

    assert await store.remove_account("bob", batch=2) == len(bobs["messages"])

    after = await store._db.read(everything)
    assert after == {name: rows - bobs.get(name, set()) for name, rows in before.items()}
    assert await store.account("bob") is None
    assert await store.remove_account("bob") is None


async def test_messages_arriving_during_the_removal_go_with_it(store):
    alice, bob = await store.account("alice"), await store.account("bob")
    for n in range(6):
        await record_send(store, alice, NewMessage(BOB, f"old {n}"))
    oldest = sa.select(sa.func.count()).select_from(messages).where(
        (messages.c.account_id == bob.id) & (messages.c.sms_id <= 6))
    removing = asyncio.ensure_future(store.remove_account("bob", batch=2))
    arrived = 0
    # Sent until the last old message is gone: the pause after that batch
    # comes before the final step, so no send races the account's own delete.
    while await store._db.read(lambda conn: conn.execute(oldest).scalar_one()):
        arrived += len((await record_send(store, alice, NewMessage(BOB, "new"))).delivered)
    assert arrived > 0
    assert await asyncio.wait_for(removing, timeout=30) == 6 + arrived
    left = await store._db.read(lambda conn: conn.execute(
        sa.select(sa.func.count()).select_from(messages).where(
            messages.c.account_id == bob.id)).scalar_one())
    assert left == 0


async def test_a_batch_takes_the_oldest_and_nothing_past_the_limit(store):
    alice, bob = await store.account("alice"), await store.account("bob")
    for n in range(5):
        await record_send(store, alice, NewMessage(BOB, f"m{n}"))

    def sms_ids(conn):
        return sorted(conn.execute(sa.select(messages.c.sms_id).where(
            messages.c.account_id == bob.id)).scalars())

    # What arrives after the removal began (past up_to) waits for the last
    # step, so the batches end however fast messages keep coming.
    assert await store._db.write(lambda conn: removal.remove_messages(conn, bob.id, 4, 3)) == 3
    assert await store._db.read(sms_ids) == [4, 5]
    assert await store._db.write(lambda conn: removal.remove_messages(conn, bob.id, 4, 3)) == 1
    assert await store._db.write(lambda conn: removal.remove_messages(conn, bob.id, 4, 3)) == 0
    assert await store._db.read(sms_ids) == [5]


def indexed_prefixes(inspector, table: str) -> list[list[str]]:
    found = [inspector.get_pk_constraint(table)["constrained_columns"]]
    found += [index["column_names"] for index in inspector.get_indexes(table)]
    found += [unique["column_names"] for unique in inspector.get_unique_constraints(table)]
    return found


async def test_every_foreign_key_leads_an_index(store):
    """A delete of the referenced row looks the referencing rows up by the
    key (to cascade, or to refuse): unindexed, it scans the whole table."""
    def unindexed(conn):
        inspector = sa.inspect(conn)
        missing = []
        for table in inspector.get_table_names():
            for key in inspector.get_foreign_keys(table):
                columns = key["constrained_columns"]
                if not any(found[:len(columns)] == columns
                           for found in indexed_prefixes(inspector, table)):
                    missing.append(f"{table}({', '.join(columns)})")
        return missing

    assert await store._db.migrate(unindexed) == []


@pytest.mark.parametrize("child", [jobs, carrier_refs], ids=lambda table: table.name)
async def test_a_deleted_message_s_rows_are_found_by_index(store, child):
    """What the cascade from a deleted message runs, on either engine."""
    by_message = child.delete().where(child.c.message_id == sa.bindparam("message_id"))

    def plan(conn):
        compiled = by_message.compile(dialect=conn.dialect)
        params = (1,)
        if conn.dialect.name == "sqlite":
            return [row[-1] for row in
                    conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", params)]
        # On a near-empty table a scan is cheapest: ask what it would do at scale.
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        return [row[0] for row in conn.exec_driver_sql(f"EXPLAIN {compiled}", params)]

    text = "\n".join(await store._db.migrate(plan))
    assert f"ix_{child.name}_message_id" in text, text
    assert f"SCAN {child.name}" not in text and f"Seq Scan on {child.name}" not in text, text


async def test_a_send_by_an_account_removed_meanwhile_stores_nothing(store):
    # The request looked bob up, then `account remove` committed.
    bob = await store.account("bob")
    assert await store.remove_account("bob") == 0
    with pytest.raises(AccountGone):
        await record_send(store, bob, NewMessage(ALICE, "too late"))
    alice = await store.account("alice")
    assert (await store.fetch(alice.id, None, {"in": None, "out": None}, 100))["in"] == []
