"""Carrier traffic: message states and refs, inbound dedupe and parts, opt-outs."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from . import accounts as account_queries
from . import messages as message_queries
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
_ADD_PART = _per_dialect(lambda insert: insert(inbound_parts).on_conflict_do_nothing())
_GROUP = (inbound_parts.c.provider == sa.bindparam("group_provider")) & (
    inbound_parts.c.group_id == sa.bindparam("group"))
_GROUP_PARTS = sa.select(inbound_parts.c.position, inbound_parts.c.body).where(_GROUP).order_by(
    inbound_parts.c.position)
_DROP_GROUP = inbound_parts.delete().where(_GROUP)


def seen_inbound(conn: sa.Connection, provider: str, carrier_id: str) -> bool:
    """Record a carrier message id; False when it was already recorded."""
    return conn.execute(_SEEN[conn.dialect.name], {
        "provider": provider, "carrier_id": carrier_id[:255], "created_at": datetime.now(UTC),
    }).rowcount == 1


def add_inbound_part(conn: sa.Connection, provider: str, group: str, position: int,
                     total: int, sender: str, recipient: str, body: str) -> str | None:
    """Keep one part; when all ``total`` are here, remove them and return the
    whole text (None while parts are missing)."""
    mine = {"group_provider": provider, "group": group[:255]}
    conn.execute(_ADD_PART[conn.dialect.name], {
        "provider": provider, "group_id": mine["group"], "position": position, "total": total,
        "sender": sender, "recipient": recipient, "body": body, "created_at": datetime.now(UTC)})
    parts = list(conn.execute(_GROUP_PARTS, mine))
    if len(parts) < total:
        return None
    conn.execute(_DROP_GROUP, mine)
    return "".join(body for _, body in parts)


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
                   opt_keyword: Callable[[str], str | None],
                   push_interval: float = MIN_INTERVAL_SECONDS) -> list[tuple[int, int]] | None:
    """Store a carrier's inbound message once, for every account holding
    ``recipient``. Returns the deliveries, or None when there is nothing new
    (a repeat, or a part of a message still incomplete)."""
    if part is not None:
        group, position, total = part
        if not seen_inbound(conn, provider, f"part:{carrier_id}"):
            return None
        text = add_inbound_part(conn, provider, group, position, total, sender, recipient, text)
        if text is None:
            return None
        carrier_id = f"group:{group}"
    if not seen_inbound(conn, provider, carrier_id):
        return None
    keyword = opt_keyword(text)
    if keyword:
        set_opt_out(conn, recipient, sender, keyword == "out", f"{text.strip().upper()} received")
    return message_queries.receive(conn, account_ids_holding(conn, recipient),
                                   local_number=recipient, peer=sender, body=text,
                                   push_interval=push_interval)
