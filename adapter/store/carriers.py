"""Carrier traffic: message states and refs, inbound dedupe and split messages, opt-outs."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from . import accounts as account_queries
from . import messages as message_queries
from . import outbox
from .push import MIN_INTERVAL_SECONDS
from .schema import (
    carrier_refs, inbound_parts, inbound_seen, jobs, messages, opt_outs, settings,
)

# Outbound states in the order they happen. delivered and failed are final:
# a later, lower or repeated report changes nothing.
RANK = {"queued": 0, "submitted": 1, "sent": 2, "delivered": 3, "failed": 3}
FINAL = {"delivered", "failed"}

# Given the message (a dict of its columns), its new state and the reason,
# the messages the sender's account should receive about it (receipts,
# failure notices): each ``{"body": ..., "content_type": ...}``.
FollowUps = Callable[[dict, str, str], list[dict]]


def _insert(conn: sa.Connection):
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def _per_dialect(build: Callable) -> dict:
    """A statement built once for each engine's insert dialect."""
    return {"sqlite": build(sqlite.insert), "postgresql": build(postgresql.insert)}


# Built once (fastsqlite.py compiles each statement object once): the
# dispatcher settles every carrier send through these.
_MESSAGE = sa.select(messages).where(messages.c.id == sa.bindparam("message_id"))
_SET_STATUS = messages.update().where(messages.c.id == sa.bindparam("message_id")).values(
    status=sa.bindparam("new_status"), failure_reason=sa.bindparam("new_reason"),
    updated_at=sa.bindparam("now", type_=messages.c.updated_at.type))
_ADD_REF = _per_dialect(lambda insert: insert(carrier_refs).on_conflict_do_nothing())


def _message(conn: sa.Connection, message_id: int) -> dict | None:
    row = conn.execute(_MESSAGE, {"message_id": message_id}).first()
    return row._asdict() if row else None


def advance(conn: sa.Connection, message_id: int, state: str, reason: str,
            follow_ups: FollowUps, push_interval: float = MIN_INTERVAL_SECONDS) -> bool:
    """Move a sent message forward to ``state``; regressions and repeats are ignored."""
    message = _message(conn, message_id)
    if message is None:
        return False
    current = message["status"]
    if current in FINAL or RANK.get(state, -1) <= RANK.get(current, -1):
        return False
    now = datetime.now(UTC)
    conn.execute(_SET_STATUS, {"message_id": message_id, "new_status": state, "now": now,
                               "new_reason": reason[:1024] if state == "failed" else None})
    for follow_up in follow_ups(message, state, reason):
        message_queries.receive(conn, [message["account_id"]], now=now,
                                local_number=message["local_number"], peer=message["peer"],
                                push_interval=push_interval, **follow_up)
    return True


def add_refs(conn: sa.Connection, provider: str, message_id: int, refs: list[str]) -> None:
    if refs:
        conn.execute(_ADD_REF[conn.dialect.name], [
            {"provider": provider, "ref": ref, "message_id": message_id, "part": part,
             "status": "submitted"} for part, ref in enumerate(refs, start=1)])


# (Names other than the columns': an UPDATE reserves those for its SET.)
_REF = (carrier_refs.c.provider == sa.bindparam("ref_provider")) & (
    carrier_refs.c.ref == sa.bindparam("ref_value"))
_REF_ROW = sa.select(carrier_refs).where(_REF)
_SET_REF_STATUS = carrier_refs.update().where(_REF).values(status=sa.bindparam("new_status"))
_PART_STATUSES = sa.select(carrier_refs.c.status).where(
    carrier_refs.c.message_id == sa.bindparam("message_id"))


def apply_ref_status(conn: sa.Connection, provider: str, ref: str, state: str, reason: str,
                     follow_ups: FollowUps,
                     push_interval: float = MIN_INTERVAL_SECONDS) -> dict | None:
    """A carrier's report on one ref (one part). The message moves when its
    parts agree: failed if any part failed, else the least advanced part.
    Returns the message (or None for a ref we never sent)."""
    which = {"ref_provider": provider, "ref_value": ref}
    row = conn.execute(_REF_ROW, which).first()
    if row is None:
        return None
    if row.status not in FINAL and RANK.get(state, -1) > RANK.get(row.status, -1):
        conn.execute(_SET_REF_STATUS, {**which, "new_status": state})
    parts = list(conn.execute(_PART_STATUSES, {"message_id": row.message_id}).scalars())
    overall = "failed" if "failed" in parts else min(parts, key=lambda s: RANK.get(s, 0))
    advance(conn, row.message_id, overall, reason, follow_ups, push_interval)
    return _message(conn, row.message_id)


# Built once too: every inbound callback runs these (the VALUES come from
# the parameters' keys).
_SEEN = _per_dialect(lambda insert: insert(inbound_seen).on_conflict_do_nothing())
_WAS_SEEN = sa.select(inbound_seen.c.carrier_id).where(
    (inbound_seen.c.provider == sa.bindparam("seen_provider"))
    & (inbound_seen.c.carrier_id == sa.bindparam("seen_id")))
_ADD_PART = _per_dialect(lambda insert: insert(inbound_parts).on_conflict_do_nothing())
_GROUP = ((inbound_parts.c.provider == sa.bindparam("group_provider"))
          & (inbound_parts.c.sender == sa.bindparam("group_sender"))
          & (inbound_parts.c.recipient == sa.bindparam("group_recipient"))
          & (inbound_parts.c.group_id == sa.bindparam("group")))
_GROUP_PARTS = sa.select(inbound_parts.c.position, inbound_parts.c.total,
                         inbound_parts.c.body).where(_GROUP)
_DROP_GROUP = inbound_parts.delete().where(_GROUP)

PARTS = "parts"  # jobs.kind: the end of a split inbound message's wait for its parts
# The text of a group from its parts by 1-based position, and how many it
# has (messaging/multipart.py: in order, a marker where one is missing).
JoinParts = Callable[[Mapping[int, str], int], str]


@dataclass(frozen=True)
class PartGroup:
    """The parts of one split message: one sender's, to one recipient."""

    provider: str
    sender: str
    recipient: str
    group: str  # the carrier's id of the split message

    def params(self) -> dict:
        return {"group_provider": self.provider, "group_sender": self.sender,
                "group_recipient": self.recipient, "group": self.group[:255]}

    def seen_key(self) -> str:
        return f"group:{self.sender}>{self.recipient}:{self.group}"


@dataclass(frozen=True)
class HeldPartsDelivered:
    """A group delivered when its wait ran out: which of its parts it had."""

    held: PartGroup
    positions: tuple[int, ...]
    total: int
    deliveries: list[tuple[int, int]]


def seen_inbound(conn: sa.Connection, provider: str, carrier_id: str) -> bool:
    """Record a carrier message id; False when it was already recorded."""
    return conn.execute(_SEEN[conn.dialect.name], {
        "provider": provider, "carrier_id": carrier_id[:255], "created_at": datetime.now(UTC),
    }).rowcount == 1


def _was_seen(conn: sa.Connection, provider: str, carrier_id: str) -> bool:
    return conn.execute(_WAS_SEEN, {"seen_provider": provider,
                                    "seen_id": carrier_id[:255]}).first() is not None


def _held_parts(conn: sa.Connection, held: PartGroup) -> tuple[dict[int, str], int]:
    rows = list(conn.execute(_GROUP_PARTS, held.params()))
    return {row.position: row.body for row in rows}, max((row.total for row in rows), default=0)


def add_inbound_part(conn: sa.Connection, held: PartGroup, position: int, total: int,
                     body: str, *, join: JoinParts, wait_seconds: float) -> str | None:
    """Keep one part; the text to deliver now, if any (else None): the whole
    message once its last part is here, or, for a part whose group was
    delivered without it, the part on its own.

    The first part of a group queues the job that ends its wait
    (:func:`deliver_held_parts`)."""
    if _was_seen(conn, held.provider, held.seen_key()):
        return join({position: body}, total)
    now = datetime.now(UTC)
    added = conn.execute(_ADD_PART[conn.dialect.name], {
        "provider": held.provider, "sender": held.sender, "recipient": held.recipient,
        "group_id": held.group[:255], "position": position, "total": total, "body": body,
        "created_at": now}).rowcount == 1
    parts, _ = _held_parts(conn, held)
    if added and len(parts) == 1:
        outbox.enqueue(conn, message_id=None, provider=held.provider, kind=PARTS,
                       conversation=f"parts:{held.provider}:{held.seen_key()}",
                       payload={"sender": held.sender, "recipient": held.recipient,
                                "group": held.group},
                       now=now, due_at=now + timedelta(seconds=wait_seconds))
    if len(parts) < total:
        return None
    conn.execute(_DROP_GROUP, held.params())
    if not seen_inbound(conn, held.provider, held.seen_key()):
        # Its wait ran out in another transaction, which delivered it without this part.
        return join({position: body}, total)
    return join(parts, total)


def deliver_held_parts(conn: sa.Connection, held: PartGroup, *, join: JoinParts,
                       opt_keyword: Callable[[str], str | None],
                       push_interval: float = MIN_INTERVAL_SECONDS) -> HeldPartsDelivered | None:
    """A group's wait ran out: deliver what is held of it as one message (a
    marker where a part is missing); parts arriving later go on their own.
    None when there is nothing left to do (it was completed meanwhile)."""
    parts, total = _held_parts(conn, held)
    if not parts or not seen_inbound(conn, held.provider, held.seen_key()):
        return None
    conn.execute(_DROP_GROUP, held.params())
    deliveries = _deliver(conn, held.sender, held.recipient, join(parts, total), opt_keyword,
                          push_interval)
    return HeldPartsDelivered(held, tuple(sorted(parts)), total, deliveries)


def account_ids_holding(conn: sa.Connection, number: str) -> list[int]:
    return account_queries.ids_holding(conn, number)  # its statement is built once


def _upsert_opt_out(insert):
    statement = insert(opt_outs)
    return statement.on_conflict_do_update(
        index_elements=[opt_outs.c.local_number, opt_outs.c.remote_number],
        set_={"opted_out": statement.excluded.opted_out, "reason": statement.excluded.reason,
              "updated_at": statement.excluded.updated_at})


_SET_OPT_OUT = _per_dialect(_upsert_opt_out)


def set_opt_out(conn: sa.Connection, local_number: str, remote_number: str, opted_out: bool,
                reason: str) -> None:
    conn.execute(_SET_OPT_OUT[conn.dialect.name], {
        "local_number": local_number, "remote_number": remote_number, "opted_out": opted_out,
        "reason": reason[:255], "updated_at": datetime.now(UTC)})


_OPTED_OUT = sa.select(opt_outs.c.opted_out).where(
    (opt_outs.c.local_number == sa.bindparam("local"))
    & (opt_outs.c.remote_number == sa.bindparam("remote")))


def opted_out(conn: sa.Connection, local_number: str, remote_number: str) -> bool:
    # Built once above: every off-net send asks this.
    return bool(conn.execute(_OPTED_OUT, {"local": local_number, "remote": remote_number})
                .scalar_one_or_none())


def secret(conn: sa.Connection, key: str) -> str:
    """A long random value, made once and shared by every process."""
    statement = _insert(conn)(settings).values(key=key, value=secrets.token_urlsafe(32))
    conn.execute(statement.on_conflict_do_nothing())
    return conn.execute(sa.select(settings.c.value).where(settings.c.key == key)).scalar_one()


def setting(conn: sa.Connection, key: str) -> str | None:
    return conn.execute(sa.select(settings.c.value).where(settings.c.key == key)).scalar()


def put_setting(conn: sa.Connection, key: str, value: str) -> None:
    statement = _insert(conn)(settings).values(key=key, value=value)
    conn.execute(statement.on_conflict_do_update(index_elements=[settings.c.key],
                                                 set_={"value": statement.excluded.value}))


def requeue_message_of_job(conn: sa.Connection, job_id: int) -> None:
    """An operator retried a failed job: its message is queued again (a
    push job's message is a received one, whose state is not the job's)."""
    message_id = conn.execute(sa.select(jobs.c.message_id).where(
        (jobs.c.id == job_id) & (jobs.c.kind == "send"))).scalar()
    if message_id is not None:
        conn.execute(messages.update().where(messages.c.id == message_id).values(
            status="queued", failure_reason=None, updated_at=datetime.now(UTC)))


def record_inbound(conn: sa.Connection, *, provider: str, carrier_id: str, sender: str,
                   recipient: str, text: str, part: tuple[str, int, int] | None,
                   opt_keyword: Callable[[str], str | None], join: JoinParts,
                   wait_seconds: float,
                   push_interval: float = MIN_INTERVAL_SECONDS) -> list[tuple[int, int]] | None:
    """Store a carrier's inbound message once, for every account holding
    ``recipient``. Returns the deliveries, or None when there is nothing new
    (a repeat, or a part of a message still incomplete). ``part``: (the
    carrier's id of the split message, position, total), held up to
    ``wait_seconds`` for the others."""
    if not seen_inbound(conn, provider, f"part:{carrier_id}" if part else carrier_id):
        return None
    if part is not None:
        group, position, total = part
        text = add_inbound_part(conn, PartGroup(provider, sender, recipient, group), position,
                                total, text, join=join, wait_seconds=wait_seconds)
        if text is None:
            return None
    return _deliver(conn, sender, recipient, text, opt_keyword, push_interval)


def _deliver(conn: sa.Connection, sender: str, recipient: str, text: str,
             opt_keyword: Callable[[str], str | None],
             push_interval: float) -> list[tuple[int, int]]:
    keyword = opt_keyword(text)
    if keyword:
        set_opt_out(conn, recipient, sender, keyword == "out", f"{text.strip().upper()} received")
    return message_queries.receive(conn, account_ids_holding(conn, recipient),
                                   local_number=recipient, peer=sender, body=text,
                                   push_interval=push_interval)
