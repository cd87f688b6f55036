"""Push tokens, the push jobs a received message makes, and unread counts.

Queries run inside one transaction like the rest of the store. The ones on
the path of every received message (:func:`devices`) and of every push
(:func:`target`, :func:`unread`) are built once with bind parameters.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from . import outbox
from .schema import INBOUND, MessageState, accounts, jobs, messages, push_tokens

PUSH = "push"  # jobs.kind
# A disposition receipt is not something the user reads: never unread.
RECEIPT_CONTENT_TYPE = "application/x-acro-disposition-notification"
PAIRS = ("other", "call", "legacy")


@dataclass(frozen=True)
class TokenPair:
    token: str
    app_id: str


@dataclass(frozen=True)
class Registration:
    """One Push Token Reporter call: the pairs the app reported (None: empty)."""

    selector: str
    device: str | None = None
    other: TokenPair | None = None  # %pushTokenOther% / %pushappid_other%: messages
    call: TokenPair | None = None  # %pushTokenIncomingCall%: calls only
    legacy: TokenPair | None = None  # %pushToken% / %pushappid%: older apps

    def pairs(self) -> dict[str, TokenPair]:
        return {name: getattr(self, name) for name in PAIRS if getattr(self, name)}


@dataclass(frozen=True)
class PushTarget:
    """Where a push for one device goes now, and the account's unread count."""

    account_id: int
    token: str
    app_id: str
    badge: int


def _insert(conn: sa.Connection):
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


# -- reporting ---------------------------------------------------------------------


def report(conn: sa.Connection, account_id: int, registration: Registration,
           now: datetime | None = None) -> list[str]:
    """Store what a device reported; returns the names of the pairs stored.

    A pair not reported (empty) keeps what was stored before: apps report
    empty tokens now and then, and that must not silence a working device.
    The selector's row belongs to the reporting account from now on, and so
    do its tokens: rows of other accounts holding one of them are dropped
    (the device now signs in as someone else, whose messages it must not
    be shown).
    """
    pairs = registration.pairs()
    if not pairs:
        return []
    now = now or datetime.now(UTC)
    tokens = [pair.token for pair in pairs.values()]
    holds_one = sa.or_(*(push_tokens.c[f"{name}_token"].in_(tokens) for name in PAIRS))
    conn.execute(push_tokens.delete().where(
        (push_tokens.c.account_id != account_id)
        & (push_tokens.c.selector != registration.selector) & holds_one))
    values = {"selector": registration.selector, "account_id": account_id,
              "created_at": now, "updated_at": now}
    if registration.device:
        values["device"] = registration.device
    for name, pair in pairs.items():
        values[f"{name}_token"], values[f"{name}_app_id"] = pair.token, pair.app_id
    statement = _insert(conn)(push_tokens).values(values)
    conn.execute(statement.on_conflict_do_update(
        index_elements=[push_tokens.c.selector],
        set_={key: statement.excluded[key] for key in values
              if key not in ("selector", "created_at")},
    ))
    return list(pairs)


def remove(conn: sa.Connection, account_id: int, selector: str) -> bool:
    """The Account Removal Reporter: forget this account on that device."""
    result = conn.execute(push_tokens.delete().where(
        (push_tokens.c.selector == selector) & (push_tokens.c.account_id == account_id)))
    return result.rowcount > 0


def forget(conn: sa.Connection, selector: str, token: str) -> bool:
    """The push service says ``token`` is not registered (404). Only while the
    row still holds that token: a fresh report since then must survive."""
    result = conn.execute(push_tokens.delete().where(
        (push_tokens.c.selector == selector)
        & ((push_tokens.c.other_token == token) | (push_tokens.c.legacy_token == token))))
    return result.rowcount > 0


# -- push jobs for a received message ---------------------------------------------------

# [push] min_interval_seconds when the caller names none.
MIN_INTERVAL_SECONDS = 2.0

# Runs for every received message, devices or not: one indexed lookup.
_DEVICES = sa.select(push_tokens.c.selector, push_tokens.c.device,
                     push_tokens.c.last_push_due_at).where(
    (push_tokens.c.account_id == sa.bindparam("account_id"))
    & ((push_tokens.c.other_token != "") | (push_tokens.c.legacy_token != "")))
# The device's push job that no dispatcher has taken yet (one seek on
# ix_jobs_conversation_state_id), and what the message it carries is.
# There is at most one, except in a backlog queued before migration 7.
_WAITING = (
    sa.select(jobs.c.id, jobs.c.message_id, jobs.c.payload, messages.c.content_type)
    .select_from(jobs.join(messages, messages.c.id == jobs.c.message_id))
    .where((jobs.c.conversation == sa.bindparam("conversation"))
           & (jobs.c.state == outbox.QUEUED))
    .order_by(jobs.c.id.desc()).limit(1)
)
# (Parameter names other than the columns': an UPDATE reserves those.)
_NOW = sa.bindparam("now", type_=jobs.c.created_at.type)
_CARRY = jobs.update().where(
    (jobs.c.id == sa.bindparam("job_id")) & (jobs.c.state == outbox.QUEUED)
).values(
    message_id=sa.bindparam("newest", type_=sa.BigInteger),
    payload=sa.bindparam("new_payload", type_=sa.Text),
    # It is about the newest message now: its hour to get through starts again.
    created_at=_NOW, updated_at=_NOW,
)
_SPACE = push_tokens.update().where(push_tokens.c.selector == sa.bindparam("target")).values(
    last_push_due_at=sa.bindparam("due", type_=push_tokens.c.last_push_due_at.type))


def devices(conn: sa.Connection, account_id: int) -> list:
    """(selector, device, last_push_due_at) of each of the account's devices
    that can be pushed."""
    return conn.execute(_DEVICES, {"account_id": account_id}).all()


def _is_receipt(content_type: str | None) -> bool:
    return (content_type or "").split(";", 1)[0].strip().lower() == RECEIPT_CONTENT_TYPE


def enqueue(conn: sa.Connection, message_id: int, targets: list, *, sender_device: str | None,
            sender_name: str | None, now: datetime, content_type: str = "",
            interval: float = MIN_INTERVAL_SECONDS) -> int:
    """Push the message to each device, except the device that sent it.

    Each device is its own conversation: its pushes go out in order, and no
    carrier job (nor another device's dead token) holds them up. A burst
    must not ring the phone once per message, so a device has at most one
    job waiting: a message arriving while one waits makes that job carry
    it instead (the push names the newest message, and the app fetches
    them all; token and badge are read when it goes out). Only a receipt,
    pushed silently, never replaces a waiting push of something to read.
    Otherwise a new job is queued, due ``interval`` seconds after the
    device's previous one, or at once when that was longer ago.

    Returns how many devices' waiting jobs carry the message now.
    """
    receipt = _is_receipt(content_type)
    carried = 0
    for selector, device, last_due in targets:
        if sender_device and device == sender_device:
            continue
        conversation = f"push:{selector}"
        payload = {"selector": selector, **({"name": sender_name} if sender_name else {})}
        # Two transactions never both find no waiting job and queue one
        # each: every caller has bumped the account's id counter in this
        # transaction (accounts.allocate_sms_ids), which on PostgreSQL
        # holds that row's lock until commit, and a device belongs to one
        # account (SQLite has one writer). A dispatcher leasing the job
        # meanwhile is no such race: the update then changes no row.
        waiting = conn.execute(_WAITING, {"conversation": conversation}).first()
        if waiting is not None:
            carry = {"newest": message_id, "new_payload": json.dumps(payload)}
            if receipt and not _is_receipt(waiting.content_type):
                # The app fetches the receipt on the push of the text, which
                # stays as it is (updated all the same: it must still wait).
                carry = {"newest": waiting.message_id, "new_payload": waiting.payload}
            if conn.execute(_CARRY, {"job_id": waiting.id, "now": now, **carry}).rowcount:
                carried += 1
                continue
        due = now
        if last_due is not None:
            due = max(now, outbox.utc(last_due) + timedelta(seconds=interval))
        outbox.enqueue(conn, message_id=message_id, provider=None, kind=PUSH,
                       conversation=conversation, payload=payload, now=now, due_at=due)
        conn.execute(_SPACE, {"target": selector, "due": due})
        carried += 1
    return carried


# -- sending a push --------------------------------------------------------------------

_TARGET = sa.select(
    push_tokens.c.account_id, push_tokens.c.other_token, push_tokens.c.other_app_id,
    push_tokens.c.legacy_token, push_tokens.c.legacy_app_id,
).where(push_tokens.c.selector == sa.bindparam("selector"))

# "owner", not "account_id": an UPDATE of messages may not bind a parameter
# under one of its column names.
_READ_UP_TO = (sa.select(accounts.c.read_up_to)
               .where(accounts.c.id == sa.bindparam("owner")).scalar_subquery())
_MY_UNREAD = (
    (messages.c.account_id == sa.bindparam("owner"))
    & (messages.c.direction == INBOUND)
    & (messages.c.sms_id > _READ_UP_TO)
    & (messages.c.status == MessageState.RECEIVED)
)
_UNREAD = sa.select(sa.func.count()).select_from(messages).where(
    _MY_UNREAD & (messages.c.content_type != RECEIPT_CONTENT_TYPE))


def unread(conn: sa.Connection, account_id: int) -> int:
    """Received messages no fetch has returned and no display receipt named.

    Counts only the messages after the account's read marker, so the cost
    follows the unread backlog, not the history.
    """
    return conn.execute(_UNREAD, {"owner": account_id}).scalar_one()


def target(conn: sa.Connection, selector: str) -> PushTarget | None:
    """The device's message pair (the legacy pair when that is all it
    reported) and its account's unread count, or None without a token."""
    row = conn.execute(_TARGET, {"selector": selector}).first()
    if row is None:
        return None
    if row.other_token:
        token, app_id = row.other_token, row.other_app_id
    elif row.legacy_token:
        token, app_id = row.legacy_token, row.legacy_app_id
    else:
        return None
    return PushTarget(row.account_id, token, app_id, unread(conn, row.account_id))


# -- reading ----------------------------------------------------------------------------

_RAISE_READ_MARK = (
    accounts.update()
    .where((accounts.c.id == sa.bindparam("account_id"))
           & (accounts.c.read_up_to < sa.bindparam("sms_id", type_=sa.BigInteger)))
    .values(read_up_to=sa.bindparam("sms_id", type_=sa.BigInteger))
)


def raise_read_mark(conn: sa.Connection, account_id: int, sms_id: int) -> None:
    """A fetch returned received messages up to ``sms_id``: they are read."""
    conn.execute(_RAISE_READ_MARK, {"account_id": account_id, "sms_id": sms_id})


def mark_displayed(conn: sa.Connection, account_id: int, peer: str,
                   disposition_ids: tuple[str, ...]) -> int:
    """The account's app sent ``peer`` a display receipt for these
    disposition message-ids: those received messages are read."""
    changed = 0
    for disposition_id in disposition_ids:
        result = conn.execute(messages.update().where(
            _MY_UNREAD & (messages.c.peer == peer)
            & messages.c.disposition_notification.startswith(f"{disposition_id}:",
                                                             autoescape=True)
        ).values(status=MessageState.DISPLAYED, updated_at=datetime.now(UTC)),
            {"owner": account_id})
        changed += result.rowcount
    return changed
