"""A long message history, inserted in bulk (thousands of sends over HTTP
would take minutes and prove nothing more about fetching them)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import sqlalchemy as sa

from adapter.store import INBOUND, Store
from adapter.store.schema import accounts, messages


async def insert_received_history(store: Store, account_id: int, count: int, peer: str) -> None:
    """``count`` received messages, sms_ids 1..count, as the account's whole history."""
    now = datetime.now(UTC)

    def work(conn):
        number = conn.execute(sa.select(accounts.c.number).where(accounts.c.id == account_id)).scalar_one()
        conn.execute(messages.insert(), [
            {"account_id": account_id, "sms_id": n, "direction": INBOUND, "local_number": number,
             "peer": peer, "body": f"m{n}", "status": "received", "created_at": now,
             "updated_at": now} for n in range(1, count + 1)])
        conn.execute(accounts.update().where(accounts.c.id == account_id)
                     .values(last_message_id=count, read_up_to=count))

    await store._db.write(work)


def insert_received_history_at(database_url: str, username: str, count: int, peer: str) -> None:
    """The same, from outside a running adapter (for the live-server tests)."""
    async def run():
        store = Store(database_url)
        try:
            account = await store.account(username)
            await insert_received_history(store, account.id, count, peer)
        finally:
            await store.close()

    asyncio.run(run())
