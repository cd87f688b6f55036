"""The durable outbox: jobs leased by dispatchers, retried, finished or dead.

A job is leased for a while; a worker that dies mid-job simply lets the
lease run out and another takes the job again. Jobs sharing a
``conversation`` run one at a time in id order, so a carrier that comes
back after an outage gets each conversation's messages in the order sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from .schema import jobs, messages

QUEUED, LEASED, DONE, FAILED, DEAD = "queued", "leased", "done", "failed", "dead"
STATES = (QUEUED, LEASED, DONE, FAILED, DEAD)


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    provider: str | None
    state: str
    attempts: int
    due_at: datetime
    created_at: datetime
    last_error: str | None
    payload: dict = field(default_factory=dict)
    message_id: int | None = None
    # The message it carries (sender number, recipient, text, ...), when leased.
    message: dict | None = None


def utc(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:  # SQLite keeps no zone
        return moment.replace(tzinfo=UTC)
    return moment


_INSERT_RETURNING_ID = jobs.insert().returning(jobs.c.id)


def enqueue(conn: sa.Connection, *, message_id: int | None, provider: str | None,
            conversation: str, kind: str = "send", payload: dict | None = None,
            now: datetime) -> int:
    return conn.execute(
        _INSERT_RETURNING_ID,
        {"kind": kind, "message_id": message_id, "provider": provider,
         "conversation": conversation[:300], "payload": json.dumps(payload or {}),
         "state": QUEUED, "attempts": 0, "due_at": now, "created_at": now, "updated_at": now},
    ).scalar_one()


_JOB_COLUMNS = (jobs.c.id, jobs.c.kind, jobs.c.provider, jobs.c.state, jobs.c.attempts,
                jobs.c.due_at, jobs.c.created_at, jobs.c.last_error, jobs.c.payload,
                jobs.c.message_id)
_MESSAGE_COLUMNS = (messages.c.account_id, messages.c.sms_id, messages.c.local_number,
                    messages.c.peer, messages.c.body, messages.c.content_type,
                    messages.c.disposition_notification)


def _job(row, with_message: bool = False) -> Job:
    message = None
    if with_message and row.message_id is not None:
        message = {c.name: getattr(row, c.name) for c in _MESSAGE_COLUMNS}
    return Job(id=row.id, kind=row.kind, provider=row.provider, state=row.state,
               attempts=row.attempts, due_at=utc(row.due_at), created_at=utc(row.created_at),
               last_error=row.last_error, payload=json.loads(row.payload or "{}"),
               message_id=row.message_id, message=message)


def lease(conn: sa.Connection, *, worker: str, limit: int, lease_seconds: float,
          now: datetime | None = None) -> list[Job]:
    """Take up to ``limit`` due jobs for ``worker`` until the lease runs out."""
    now = now or datetime.now(UTC)
    earlier = jobs.alias("earlier")
    blocked = sa.exists().where(
        (earlier.c.conversation == jobs.c.conversation)
        & (earlier.c.id < jobs.c.id)
        & earlier.c.state.in_((QUEUED, LEASED))
    )
    available = (jobs.c.state == QUEUED) | ((jobs.c.state == LEASED) & (jobs.c.lease_until < now))
    candidates = (
        sa.select(jobs.c.id, jobs.c.state, jobs.c.updated_at)
        .where(available & (jobs.c.due_at <= now) & ~blocked)
        .order_by(jobs.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        # Other dispatchers skip what this one is taking instead of waiting.
        candidates = candidates.with_for_update(skip_locked=True)
    taken = list(conn.execute(candidates))
    if not taken:
        return []
    ids = [row.id for row in taken]
    # A job still marked leased was in the hands of a worker that died or
    # hung: its send may have gone out, so it is treated as ambiguous.
    recovered = {row.id: utc(row.updated_at) for row in taken if row.state == LEASED}
    conn.execute(
        jobs.update().where(jobs.c.id.in_(ids)).values(
            state=LEASED, leased_by=worker, lease_until=now + timedelta(seconds=lease_seconds),
            attempts=jobs.c.attempts + 1, updated_at=now,
        )
    )
    rows = conn.execute(
        sa.select(*_JOB_COLUMNS, *_MESSAGE_COLUMNS)
        .select_from(jobs.outerjoin(messages, messages.c.id == jobs.c.message_id))
        .where(jobs.c.id.in_(ids))
        .order_by(jobs.c.id)
    )
    leased = []
    for row in rows:
        job = _job(row, with_message=True)
        if job.id in recovered:
            job.payload.setdefault("ambiguous", True)
            job.payload.setdefault("ambiguous_since", recovered[job.id].isoformat())
        leased.append(job)
    return leased


def finish(conn: sa.Connection, job_id: int, state: str, *, error: str | None = None,
           payload: dict | None = None, due_at: datetime | None = None,
           worker: str | None = None) -> bool:
    """Settle a leased job. With ``worker``, only if that worker still holds
    the lease (a worker whose lease ran out must not overwrite the next one)."""
    now = datetime.now(UTC)
    values = {"state": state, "last_error": error, "updated_at": now, "lease_until": None}
    if payload is not None:
        values["payload"] = json.dumps(payload)
    if due_at is not None:
        values["due_at"] = due_at
    condition = jobs.c.id == job_id
    if worker is not None:
        condition &= (jobs.c.leased_by == worker) & (jobs.c.state == LEASED)
    return conn.execute(jobs.update().where(condition).values(**values)).rowcount == 1


def listing(conn: sa.Connection, state: str | None = None, limit: int = 200) -> list[Job]:
    query = sa.select(*_JOB_COLUMNS).order_by(jobs.c.id.desc()).limit(limit)
    if state:
        query = query.where(jobs.c.state == state)
    return [_job(row) for row in conn.execute(query)]


def retry(conn: sa.Connection, job_id: int) -> bool:
    """Requeue a job now (a dead or failed one included) with fresh attempts."""
    now = datetime.now(UTC)
    result = conn.execute(
        jobs.update()
        .where((jobs.c.id == job_id) & (jobs.c.state != LEASED))
        .values(state=QUEUED, due_at=now, attempts=0, created_at=now, updated_at=now,
                last_error=None)
    )
    return result.rowcount == 1


def pending_count(conn: sa.Connection) -> int:
    return conn.execute(
        sa.select(sa.func.count()).select_from(jobs).where(jobs.c.state.in_((QUEUED, LEASED)))
    ).scalar_one()
