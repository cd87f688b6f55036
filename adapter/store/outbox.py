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

from .schema import StoredMessage, jobs, messages

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
    # The message it carries (a send's, or a push's received one), when leased.
    message: StoredMessage | None = None


def gave_up(job: Job, reason: str) -> str:
    """The last error of a job that went dead."""
    attempts = "1 attempt" if job.attempts == 1 else f"{job.attempts} attempts"
    return f"gave up after {attempts}: {reason}"


def utc(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:  # SQLite keeps no zone
        return moment.replace(tzinfo=UTC)
    return moment


_INSERT_RETURNING_ID = jobs.insert().returning(jobs.c.id)


def enqueue(conn: sa.Connection, *, message_id: int | None, provider: str | None,
            conversation: str, kind: str = "send", payload: dict | None = None,
            now: datetime, due_at: datetime | None = None) -> int:
    """Queue a job, due ``now`` unless ``due_at`` says later."""
    return conn.execute(
        _INSERT_RETURNING_ID,
        {"kind": kind, "message_id": message_id, "provider": provider,
         "conversation": conversation[:300], "payload": json.dumps(payload or {}),
         "state": QUEUED, "attempts": 0, "due_at": due_at or now, "created_at": now,
         "updated_at": now},
    ).scalar_one()


_JOB_COLUMNS = (jobs.c.id, jobs.c.kind, jobs.c.provider, jobs.c.state, jobs.c.attempts,
                jobs.c.due_at, jobs.c.created_at, jobs.c.last_error, jobs.c.payload,
                jobs.c.message_id)
_MESSAGE_COLUMNS = (messages.c.account_id, messages.c.sms_id, messages.c.local_number,
                    messages.c.peer, messages.c.body, messages.c.content_type,
                    messages.c.disposition_notification, messages.c.status)


def _job(row, with_message: bool = False) -> Job:
    message = None
    if with_message and row.message_id is not None:
        message = StoredMessage(
            row.message_id, row.account_id, row.sms_id, row.local_number, row.peer, row.body,
            row.content_type, row.disposition_notification, row.status)
    return Job(id=row.id, kind=row.kind, provider=row.provider, state=row.state,
               attempts=row.attempts, due_at=utc(row.due_at), created_at=utc(row.created_at),
               last_error=row.last_error, payload=json.loads(row.payload or "{}"),
               message_id=row.message_id, message=message)


# Built once (fastsqlite.py compiles a statement object once): the dispatcher
# leases and settles on the path of every push and carrier send.
_NOW = sa.bindparam("now", type_=jobs.c.due_at.type)
# The first unfinished job of each conversation: only it may run. Found by
# grouping (one pass over the unfinished jobs) rather than by asking, for
# every queued job, whether an earlier one is unfinished: with a backlog
# behind busy conversations that asked the question thousands of times.
_HEADS = (
    sa.select(sa.func.min(jobs.c.id).label("id"))
    .where((jobs.c.state == QUEUED) | (jobs.c.state == LEASED))
    .group_by(jobs.c.conversation)
    .subquery("heads")
)
_CANDIDATES = (
    sa.select(jobs.c.id, jobs.c.state, jobs.c.updated_at)
    .join(_HEADS, _HEADS.c.id == jobs.c.id)
    .where(((jobs.c.state == QUEUED) | ((jobs.c.state == LEASED) & (jobs.c.lease_until < _NOW)))
           & (jobs.c.due_at <= _NOW))
    .order_by(jobs.c.id)
    .limit(sa.bindparam("limit"))
)
# Other dispatchers skip what this one is taking instead of waiting.
_CANDIDATES_SKIP_LOCKED = _CANDIDATES.with_for_update(skip_locked=True, of=jobs)
_TAKE = jobs.update().where(jobs.c.id == sa.bindparam("job_id")).values(
    state=LEASED, leased_by=sa.bindparam("worker"),
    lease_until=sa.bindparam("until", type_=jobs.c.lease_until.type),
    attempts=jobs.c.attempts + 1, updated_at=_NOW,
)
_LEASED_JOB = (
    sa.select(*_JOB_COLUMNS, *_MESSAGE_COLUMNS)
    .select_from(jobs.outerjoin(messages, messages.c.id == jobs.c.message_id))
    .where(jobs.c.id == sa.bindparam("job_id"))
)


def lease(conn: sa.Connection, *, worker: str, limit: int, lease_seconds: float,
          now: datetime | None = None) -> list[Job]:
    """Take up to ``limit`` due jobs for ``worker`` until the lease runs out."""
    now = now or datetime.now(UTC)
    candidates = _CANDIDATES_SKIP_LOCKED if conn.dialect.name == "postgresql" else _CANDIDATES
    taken = conn.execute(candidates, {"now": now, "limit": limit}).all()
    # A job still marked leased was in the hands of a worker that died or
    # hung: its send may have gone out, so it is treated as ambiguous.
    recovered = {row.id: utc(row.updated_at) for row in taken if row.state == LEASED}
    until = now + timedelta(seconds=lease_seconds)
    leased = []
    for row in taken:
        conn.execute(_TAKE, {"job_id": row.id, "worker": worker, "until": until, "now": now})
        job = _job(conn.execute(_LEASED_JOB, {"job_id": row.id}).first(), with_message=True)
        if job.id in recovered:
            job.payload.setdefault("ambiguous", True)
            job.payload.setdefault("ambiguous_since", recovered[job.id].isoformat())
        leased.append(job)
    return leased


_FINISH_VALUES = dict(
    state=sa.bindparam("new_state"), last_error=sa.bindparam("error"),
    updated_at=sa.bindparam("now", type_=jobs.c.updated_at.type), lease_until=None,
    # None keeps the job's payload and due time.
    payload=sa.func.coalesce(sa.bindparam("new_payload", type_=sa.Text), jobs.c.payload),
    due_at=sa.func.coalesce(sa.bindparam("new_due_at", type_=jobs.c.due_at.type), jobs.c.due_at),
)
_FINISH = jobs.update().where(jobs.c.id == sa.bindparam("job_id")).values(**_FINISH_VALUES)
_FINISH_HELD = jobs.update().where(
    (jobs.c.id == sa.bindparam("job_id")) & (jobs.c.leased_by == sa.bindparam("worker"))
    & (jobs.c.state == LEASED)).values(**_FINISH_VALUES)


def finish(conn: sa.Connection, job_id: int, state: str, *, error: str | None = None,
           payload: dict | None = None, due_at: datetime | None = None,
           worker: str | None = None) -> bool:
    """Settle a leased job. With ``worker``, only if that worker still holds
    the lease (a worker whose lease ran out must not overwrite the next one)."""
    params = {"job_id": job_id, "new_state": state, "error": error, "now": datetime.now(UTC),
              "new_payload": json.dumps(payload) if payload is not None else None,
              "new_due_at": due_at}
    if worker is not None:
        params["worker"] = worker
    return conn.execute(_FINISH_HELD if worker is not None else _FINISH, params).rowcount == 1


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
