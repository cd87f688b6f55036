"""Carrier traffic rows: message states and refs, inbound dedupe, held parts, opt-outs.

Row operations only, run inside a caller's transaction: which state follows
which, when held parts are delivered and what a keyword does are the
domain's (messaging/status.py, messaging/inbound.py).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from . import outbox
from .schema import (
    MessageState, StoredMessage, carrier_refs, inbound_parts, inbound_seen, jobs, messages, opt_outs, settings,
)

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


def message(conn: sa.Connection, message_id: int) -> StoredMessage | None:
    row = conn.execute(_MESSAGE, {"message_id": message_id}).first()
    if row is None:
        return None
    return StoredMessage(row.id, row.account_id, row.sms_id, row.local_number, row.peer,
                         row.body, row.content_type, row.disposition_notification, row.status)


def set_state(conn: sa.Connection, message_id: int, state: str, reason: str | None) -> None:
    conn.execute(_SET_STATUS, {"message_id": message_id, "new_status": state,
                               "now": datetime.now(UTC),
                               "new_reason": reason[:1024] if reason is not None else None})


def add_refs(conn: sa.Connection, provider: str, message_id: int, refs: list[str]) -> None:
    if refs:
        conn.execute(_ADD_REF[conn.dialect.name], [
            {"provider": provider, "ref": ref, "message_id": message_id, "part": part,
             "status": MessageState.SUBMITTED} for part, ref in enumerate(refs, start=1)])


# (Names other than the columns': an UPDATE reserves those for its SET.)
_REF = (carrier_refs.c.provider == sa.bindparam("ref_provider")) & (
    carrier_refs.c.ref == sa.bindparam("ref_value"))
_REF_ROW = sa.select(carrier_refs).where(_REF)
_SET_REF_STATUS = carrier_refs.update().where(_REF).values(status=sa.bindparam("new_status"))
_PART_STATUSES = sa.select(carrier_refs.c.status).where(
    carrier_refs.c.message_id == sa.bindparam("message_id"))


@dataclass(frozen=True)
class CarrierRef:
    """A carrier's id for one part of a sent message, and that part's state."""

    message_id: int
    state: str  # a MessageState


def ref(conn: sa.Connection, provider: str, ref: str) -> CarrierRef | None:
    row = conn.execute(_REF_ROW, {"ref_provider": provider, "ref_value": ref}).first()
    return CarrierRef(row.message_id, row.status) if row else None


def set_ref_state(conn: sa.Connection, provider: str, ref: str, state: str) -> None:
    conn.execute(_SET_REF_STATUS, {"ref_provider": provider, "ref_value": ref,
                                   "new_status": state})


def part_states(conn: sa.Connection, message_id: int) -> list[str]:
    """The states of a sent message's parts (one per carrier ref)."""
    return list(conn.execute(_PART_STATUSES, {"message_id": message_id}).scalars())


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


def seen_inbound(conn: sa.Connection, provider: str, carrier_id: str) -> bool:
    """Record a carrier message id; False when it was already recorded."""
    return conn.execute(_SEEN[conn.dialect.name], {
        "provider": provider, "carrier_id": carrier_id[:255], "created_at": datetime.now(UTC),
    }).rowcount == 1


def was_seen(conn: sa.Connection, provider: str, carrier_id: str) -> bool:
    return conn.execute(_WAS_SEEN, {"seen_provider": provider,
                                    "seen_id": carrier_id[:255]}).first() is not None


def held_parts(conn: sa.Connection, held: PartGroup) -> tuple[dict[int, str], int]:
    """The group's parts held so far by 1-based position, and how many it has."""
    rows = list(conn.execute(_GROUP_PARTS, held.params()))
    return {row.position: row.body for row in rows}, max((row.total for row in rows), default=0)


def hold_part(conn: sa.Connection, held: PartGroup, position: int, total: int,
              body: str) -> bool:
    """Keep one part of a group; False when that position was already held."""
    return conn.execute(_ADD_PART[conn.dialect.name], {
        "provider": held.provider, "sender": held.sender, "recipient": held.recipient,
        "group_id": held.group[:255], "position": position, "total": total, "body": body,
        "created_at": datetime.now(UTC)}).rowcount == 1


def drop_parts(conn: sa.Connection, held: PartGroup) -> None:
    conn.execute(_DROP_GROUP, held.params())


def queue_parts_wait(conn: sa.Connection, held: PartGroup, wait_seconds: float) -> None:
    """The job (kind ``parts``) that ends the group's wait ``wait_seconds`` from now."""
    now = datetime.now(UTC)
    outbox.enqueue(conn, message_id=None, provider=held.provider, kind=PARTS,
                   conversation=f"parts:{held.provider}:{held.seen_key()}",
                   payload={"sender": held.sender, "recipient": held.recipient,
                            "group": held.group},
                   now=now, due_at=now + timedelta(seconds=wait_seconds))


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
            status=MessageState.QUEUED, failure_reason=None, updated_at=datetime.now(UTC)))
