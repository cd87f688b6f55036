"""Message and fetch-cursor queries (synchronous, run inside one transaction)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from . import accounts as account_queries
from . import outbox
from . import push as push_queries
from .accounts import Account
from .schema import INBOUND, OUTBOUND, MessageState, accounts, device_cursors, messages

@dataclass(frozen=True)
class NewMessage:
    """What the sender's app handed us (already validated by messaging/routing.py)."""

    peer: str
    body: str
    content_type: str = ""
    disposition_notification: str = ""
    device: str | None = None
    # For a receipt: the disposition message-ids it reports as displayed.
    displays: tuple[str, ...] = ()


@dataclass(frozen=True)
class StoredSend:
    sms_id: int
    state: MessageState  # delivered (on-net) or queued (for a carrier)
    # (account id, sms_id) of each local copy delivered on-net.
    delivered: tuple[tuple[int, int], ...]
    message_id: int = 0  # the row's own id (outbox jobs refer to it)
    pushes: int = 0  # the recipients' devices to be pushed for it


@dataclass(frozen=True)
class MessageRow:
    sms_id: int
    peer: str
    body: str
    content_type: str
    disposition_notification: str
    created_at: datetime


# Built once: statements are compiled once per object (fastsqlite.py).
_INSERT = messages.insert()
_INSERT_RETURNING_ID = messages.insert().returning(messages.c.id)


def insert_send(
    conn: sa.Connection,
    sender: Account,
    message: NewMessage,
    state: MessageState,
    local_recipients: Sequence[int] = (),
    provider: str | None = None,
    push_interval: float = push_queries.MIN_INTERVAL_SECONDS,
) -> StoredSend:
    """Store a sent message in ``state`` with a received copy for each local
    recipient, and with ``provider`` the outbox job that carries it upstream
    (in the same transaction, so an acknowledged message is never without
    its job)."""
    now = datetime.now(UTC)
    wanted = Counter(local_recipients)
    wanted[sender.id] += 1
    ids = account_queries.allocate_sms_ids(conn, dict(wanted))
    sent_id = ids[sender.id].pop(0)
    message_id = conn.execute(
        _INSERT_RETURNING_ID,
        {
            **_content(message.body, message.content_type, message.disposition_notification, now),
            "account_id": sender.id,
            "sms_id": sent_id,
            "direction": OUTBOUND,
            "local_number": sender.number,
            "peer": message.peer,
            "status": state,
            "device": message.device,
        },
    ).scalar_one()
    deliveries = [(account_id, ids[account_id].pop(0)) for account_id in local_recipients]
    pushes = insert_received(
        conn, deliveries, local_number=message.peer, peer=sender.number, body=message.body,
        content_type=message.content_type,
        disposition_notification=message.disposition_notification, now=now,
        sender_device=message.device, sender_name=sender.display_name,
        push_interval=push_interval)
    if provider:
        outbox.enqueue(conn, message_id=message_id, provider=provider,
                       conversation=f"{sender.number}>{message.peer}", now=now)
    return StoredSend(sms_id=sent_id, state=state, delivered=tuple(deliveries),
                      message_id=message_id, pushes=pushes)


def _content(body: str, content_type: str, disposition_notification: str, now: datetime) -> dict:
    return {"body": body, "content_type": content_type,
            "disposition_notification": disposition_notification,
            "created_at": now, "updated_at": now}


def insert_received(
    conn: sa.Connection,
    deliveries: list[tuple[int, int]],
    *,
    local_number: str,
    peer: str,
    body: str,
    content_type: str = "",
    disposition_notification: str = "",
    now: datetime,
    sender_device: str | None = None,
    sender_name: str | None = None,
    push_interval: float = push_queries.MIN_INTERVAL_SECONDS,
) -> int:
    """Received copies under ids already allocated: ``(account id, sms_id)``,
    and in the same transaction a push for each device of each recipient
    (not for ``sender_device``, the installation that sent it; see
    ``push.enqueue``, spaced by ``push_interval`` seconds per device).
    Returns how many devices are to be pushed for it.

    ``sender_name``: the display name of the local account that sent it.
    """
    if not deliveries:
        return 0
    common = _content(body, content_type, disposition_notification, now)
    rows = [
        {**common, "account_id": account_id, "sms_id": sms_id, "direction": INBOUND,
         "local_number": local_number, "peer": peer, "status": MessageState.RECEIVED,
         "device": None}
        for account_id, sms_id in deliveries
    ]
    devices = {account_id: push_queries.devices(conn, account_id)
               for account_id in {account_id for account_id, _ in deliveries}}
    # The usual case, no device registered: one insert, no ids read back.
    plain = [row for row in rows if not devices[row["account_id"]]]
    if plain:
        conn.execute(_INSERT, plain)
    pushes = 0
    for row in rows:
        if devices[row["account_id"]]:
            message_id = conn.execute(_INSERT_RETURNING_ID, row).scalar_one()
            pushes += push_queries.enqueue(conn, message_id, devices[row["account_id"]],
                                           sender_device=sender_device,
                                           sender_name=sender_name, now=now,
                                           content_type=content_type, interval=push_interval)
    return pushes


def receive(
    conn: sa.Connection, account_ids: Sequence[int], *, now: datetime | None = None, **fields
) -> list[tuple[int, int]]:
    """Deliver one received message to each account (see ``insert_received``)."""
    ids = account_queries.allocate_sms_ids(conn, dict(Counter(account_ids)))
    deliveries = [(account_id, ids[account_id].pop(0)) for account_id in account_ids]
    insert_received(conn, deliveries, now=now or datetime.now(UTC), **fields)
    return deliveries


_COLUMNS = (
    messages.c.sms_id,
    messages.c.peer,
    messages.c.body,
    messages.c.content_type,
    messages.c.disposition_notification,
    messages.c.created_at,
)
_MINE = (messages.c.account_id == sa.bindparam("account_id")) & (
    messages.c.direction == sa.bindparam("direction")
)
_AFTER = (
    sa.select(*_COLUMNS)
    .where(_MINE & (messages.c.sms_id > sa.bindparam("after")))
    .order_by(messages.c.sms_id)
    .limit(sa.bindparam("limit"))
)
_NEWEST = sa.select(*_COLUMNS).where(_MINE).order_by(messages.c.sms_id.desc()).limit(sa.bindparam("limit"))
_LAST_ID = sa.select(accounts.c.last_message_id).where(accounts.c.id == sa.bindparam("account_id"))


def last_sms_id(conn: sa.Connection, account_id: int) -> int:
    return conn.execute(_LAST_ID, {"account_id": account_id}).scalar_one_or_none() or 0


def _row(row) -> MessageRow:
    created_at = row.created_at
    if created_at.tzinfo is None:  # SQLite keeps no zone; we only ever store UTC
        created_at = created_at.replace(tzinfo=UTC)
    return MessageRow(row.sms_id, row.peer, row.body, row.content_type,
                      row.disposition_notification, created_at)


def page(
    conn: sa.Connection, account_id: int, direction: str, after: int | None, limit: int
) -> list[MessageRow]:
    """Messages with ids above ``after``, oldest first, at most ``limit``.

    ``after=None`` asks for the newest ``limit`` messages (still oldest first).
    """
    params = {"account_id": account_id, "direction": direction, "limit": limit}
    if after is None:
        rows = list(conn.execute(_NEWEST, params))
        rows.reverse()
    else:
        rows = list(conn.execute(_AFTER, {**params, "after": after}))
    return [_row(r) for r in rows]


# The account's newest id and, when the device fetched before, its cursors.
_NEWEST_AND_DEVICE = (
    sa.select(accounts.c.last_message_id, device_cursors.c.last_received_id,
              device_cursors.c.last_sent_id)
    .select_from(accounts.outerjoin(device_cursors, (device_cursors.c.account_id == accounts.c.id)
                                    & (device_cursors.c.device == sa.bindparam("device"))))
    .where(accounts.c.id == sa.bindparam("account_id"))
)
# Which installation sent the account's message with this id (one seek on
# uq_messages_account_sms_id); asked only on a new device's first fetch.
_SENT_FROM = sa.select(messages.c.device).where(
    (messages.c.account_id == sa.bindparam("account_id"))
    & (messages.c.sms_id == sa.bindparam("sms_id", type_=sa.BigInteger))
    & (messages.c.direction == OUTBOUND))


def _jumped(conn: sa.Connection, account_id: int, device: str, sent_cursor: int) -> bool:
    """The device's sent cursor is a message it sent itself: the app moved
    it there on sending, which says nothing of what it had fetched."""
    return conn.execute(_SENT_FROM, {"account_id": account_id,
                                     "sms_id": sent_cursor}).scalar() == device


def sync(
    conn: sa.Connection,
    account_id: int,
    device: str | None,
    reported: dict[str, int | None],
    limit: int,
) -> tuple[dict[str, list[MessageRow]], dict[str, int]]:
    """One consistent read of each direction after the device's cursor.

    ``reported`` is what the app says it has (``None``: nothing, which gets
    the recent window). A reported cursor is paged forward from, also for a
    device new to the adapter (its history must not be skipped), except one
    beyond the account's newest id (a device that knew another database),
    which counts as none. The app's sent cursor jumps to the id of a message
    it has just sent, which would skip messages its other devices sent
    before it. So for a device that fetched before, the cursor is the lower
    of what it reports and where its last fetch reached; for one that never
    fetched, a sent cursor naming its own message counts as none. Messages
    it already holds come again under the same ids, which the app
    deduplicates.

    Returns the pages and, per direction, the id the device has now reached.
    """
    row = conn.execute(_NEWEST_AND_DEVICE, {"account_id": account_id, "device": device}).first()
    newest = row.last_message_id if row else 0
    recorded = {}
    if device and row is not None and row.last_received_id is not None:
        recorded = {INBOUND: row.last_received_id, OUTBOUND: row.last_sent_id}
    pages, reached = {}, {}
    for direction, after in reported.items():
        if after is not None and after > newest:
            after = None
        if after is not None and recorded:
            after = min(after, recorded[direction])
        elif after is not None and device and direction == OUTBOUND:
            after = None if _jumped(conn, account_id, device, after) else after
        # Nothing can follow the account's newest id: the usual fetch of an
        # app that is up to date needs no page query for that direction.
        caught_up = after is not None and after >= newest
        pages[direction] = [] if caught_up else page(conn, account_id, direction, after, limit)
        reached[direction] = pages[direction][-1].sms_id if pages[direction] else after or 0
    return pages, reached


def save_device_cursor(
    conn: sa.Connection, account_id: int, device: str, last_received_id: int, last_sent_id: int
) -> None:
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    values = {
        "account_id": account_id,
        "device": device,
        "last_received_id": last_received_id,
        "last_sent_id": last_sent_id,
        "seen_at": datetime.now(UTC),
    }
    statement = dialect_insert(device_cursors).values(values)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[device_cursors.c.account_id, device_cursors.c.device],
            set_={k: statement.excluded[k] for k in ("last_received_id", "last_sent_id", "seen_at")},
        )
    )
