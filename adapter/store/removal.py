"""Removing an account in short transactions (see ``Store.remove_account``).

An account may hold years of messages, each with its outbox jobs and
carrier refs. Deleted in one transaction, they held SQLite's one write lock
for as long as that took, and every write of the running service failed
behind it. So the messages go in batches, each its own transaction, oldest
first, and the account itself goes last with whatever arrived meanwhile.
Every delete finds its rows through an index (``tests/store/test_removal.py``).
"""

from __future__ import annotations

import sqlalchemy as sa

from .accounts import ids_holding
from .schema import accounts, messages, numbers

_ACCOUNT = messages.c.account_id == sa.bindparam("account_id")
_OLDEST = (
    sa.select(messages.c.sms_id)
    .where(_ACCOUNT & (messages.c.sms_id <= sa.bindparam("up_to", type_=sa.BigInteger)))
    .order_by(messages.c.sms_id)
    .limit(sa.bindparam("limit"))
    .subquery()
)
_BATCH_END = sa.select(sa.func.max(_OLDEST.c.sms_id))
# The batch is a range of the account's sms_ids: the (account_id, sms_id)
# index finds it, and the statements need no list of ids.
_IN_BATCH = _ACCOUNT & (messages.c.sms_id <= sa.bindparam("batch_end", type_=sa.BigInteger))
# Their jobs and carrier refs go by the foreign keys' cascades, one index
# lookup per message: a statement deleting a batch's jobs at once was planned
# on PostgreSQL as a scan of the whole outbox.
_DELETE_MESSAGES = messages.delete().where(_IN_BATCH)
_LAST_MESSAGE = sa.select(accounts.c.id, accounts.c.last_message_id).where(
    accounts.c.username == sa.bindparam("username"))
_NUMBER = sa.select(accounts.c.number).where(accounts.c.id == sa.bindparam("account_id"))
_COUNT_MESSAGES = sa.select(sa.func.count()).select_from(messages).where(_ACCOUNT)


def last_message(conn: sa.Connection, username: str) -> tuple[int, int] | None:
    """The account's id and the sms_id of its newest message, if it exists."""
    row = conn.execute(_LAST_MESSAGE, {"username": username}).first()
    return (row.id, row.last_message_id) if row else None


def remove_messages(conn: sa.Connection, account_id: int, up_to: int, limit: int) -> int:
    """Delete up to ``limit`` of the account's oldest messages with an sms_id
    up to ``up_to``, with their jobs and refs; returns how many went."""
    params = {"account_id": account_id, "up_to": up_to, "limit": limit}
    batch_end = conn.execute(_BATCH_END, params).scalar()
    if batch_end is None:
        return 0
    params = {"account_id": account_id, "batch_end": batch_end}
    return conn.execute(_DELETE_MESSAGES, params).rowcount


def remove_account(conn: sa.Connection, account_id: int) -> int | None:
    """Delete the account, with its devices' cursors and push tokens and any
    messages still left (by cascade), and its number when no other account
    holds it. Returns how many messages went with it; None when it was gone."""
    number = conn.execute(_NUMBER, {"account_id": account_id}).scalar()
    if number is None:
        return None
    left = conn.execute(_COUNT_MESSAGES, {"account_id": account_id}).scalar_one()
    conn.execute(accounts.delete().where(accounts.c.id == account_id))
    if not ids_holding(conn, number):
        conn.execute(numbers.delete().where(numbers.c.e164 == number))
    return left
