"""The outbox worker: leases due jobs and carries them to the carriers.

Runs inside every ``serve`` process; several may share one database, and
the lease guarantees no two take the same job. Jobs of kind "push" go to
``adapter/push/`` (a NotifyTextMessage to one device); a "parts" job ends
a split inbound message's wait for its parts (messaging/inbound.py delivers what came);
the rest here are carrier sends. A send job's message is already committed
and acknowledged to the app, so nothing here may lose it: every
outcome is written back with the job in one transaction, transient failures
are retried with exponential backoff and jitter, and a job older than
``max_age_seconds`` goes to the dead-letter state (and its message fails).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .messaging import inbound, multipart, status
from .providers import OutboundSms, Outcome, Provider, SendResult
from .push import Pusher
from .store import PARTS, PUSH, Job, MessageState, Rows, Store
from .store.outbox import DEAD, DONE, FAILED, QUEUED, gave_up

log = logging.getLogger("adapter.dispatch")


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 2.0
    max_seconds: float = 600.0
    max_age_seconds: float = 86_400.0

    def delay(self, attempts: int) -> float:
        """Exponential backoff with jitter: half fixed, half random."""
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** max(attempts - 1, 0))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


class Dispatcher:
    def __init__(self, store: Store, carriers: Mapping[str, Provider], *,
                 policy: RetryPolicy = RetryPolicy(), poll_seconds: float = 1.0,
                 lease_seconds: float = 120.0, batch: int = 16, pusher: Pusher | None = None):
        self.store = store
        self.carriers = carriers
        self.pusher = pusher
        self.policy = policy
        self.poll_seconds = poll_seconds
        self.lease_seconds = lease_seconds
        self.batch = batch
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{random.getrandbits(32):08x}"
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """New work was just committed: look now instead of at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Keep up to ``batch`` jobs running, leasing more as soon as one
        finishes: a slow carrier send holds its own slot, not the next pass
        (pushes must not wait behind a carrier that takes its time)."""
        log.info("dispatcher %s started", self.worker)
        running: dict[int, asyncio.Task] = {}  # job id -> its task
        try:
            while True:
                # Cleared before leasing, not after: work committed meanwhile
                # (or a job finishing) must not wait for the next poll.
                self._wake.clear()
                started = 0
                if len(running) < self.batch:
                    started = await self._start_jobs(running)
                if started == 0 or len(running) >= self.batch:
                    try:
                        await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
                    except TimeoutError:
                        pass
        finally:
            for task in running.values():
                task.cancel()
            await asyncio.gather(*running.values(), return_exceptions=True)

    async def _start_jobs(self, running: dict[int, asyncio.Task]) -> int:
        try:
            jobs = await self.store.lease_jobs(self.worker, self.batch - len(running),
                                               self.lease_seconds)
        except Exception:  # the loop must survive a database hiccup
            log.exception("dispatcher could not lease jobs; retrying")
            return 0
        started = 0
        for job in jobs:
            if job.id in running:
                # Its lease ran out while it is still running here: the
                # running task settles it (this worker holds the lease again).
                continue
            task = asyncio.create_task(self._run_guarded(job), name=f"job {job.id}")
            running[job.id] = task
            # A finished job frees a slot and may unblock its conversation.
            task.add_done_callback(lambda _task, job_id=job.id: (
                running.pop(job_id, None), self._wake.set()))
            started += 1
        return started

    async def _run_guarded(self, job: Job) -> None:
        try:
            await self.run_job(job)
        except Exception:  # the lease runs out and the job is taken again
            log.exception("job %d failed unexpectedly", job.id)

    async def run_job(self, job: Job) -> None:
        if job.kind == PUSH:
            await self._push(job)
            return
        if job.kind == PARTS:
            await self._end_parts_wait(job)
            return
        carrier = self.carriers.get(job.provider or "")
        if carrier is None or job.message is None:
            reason = f"provider {job.provider!r} is not configured"
            await self._retry_or_bury(job, SendResult(Outcome.TRANSIENT, reason=reason))
            return
        sms = self._sms(job, carrier)
        result = None
        if job.payload.get("ambiguous"):
            result = await carrier.reconcile(sms)
        if result is None:
            started = datetime.now(UTC)
            result = await carrier.send(sms)
            if result.outcome is Outcome.AMBIGUOUS:
                job.payload.setdefault("ambiguous_since", started.isoformat())
        await self._settle(job, result)

    async def _push(self, job: Job) -> None:
        if self.pusher is None:  # a dispatcher built for carriers only
            await self.store.settle_push(job, self.worker, state=FAILED,
                                         error="push notifications are not set up")
            return
        await self.pusher.run(job, self.worker, self.policy)

    async def _end_parts_wait(self, job: Job) -> None:
        done = await inbound.end_parts_wait(self.store, job, self.worker)
        if done is None:  # completed meanwhile, or another worker holds the job
            return
        gaps = multipart.missing(done.positions, done.total)
        if gaps:
            held = done.held
            log.warning("%s: split message %s from %s to %s delivered without part(s) %s "
                        "of %d: they never arrived", held.provider, held.group, held.sender,
                        held.recipient, ",".join(map(str, gaps)), done.total)
        if done.deliveries:
            self.wake()  # pushes for the recipients' devices

    @staticmethod
    def _sms(job: Job, carrier: Provider) -> OutboundSms:
        message = job.message
        return OutboundSms(
            message_id=job.message_id,
            sender=message.local_number,
            recipient=message.peer,
            text=message.body,
            delivery_report="positive-delivery" in (message.disposition_notification or ""),
            status_url=carrier.hooks.status,
            parts_done=job.payload.get("parts_done", 0),
            refs=tuple(job.payload.get("refs", ())),
            ambiguous_since=(datetime.fromisoformat(job.payload["ambiguous_since"])
                             if job.payload.get("ambiguous_since") else None),
        )

    async def _settle(self, job: Job, result: SendResult) -> None:
        if result.outcome is Outcome.ACCEPTED:
            await self._settle_job(job, DONE, refs=result.refs,
                                   message_state=MessageState.SUBMITTED)
        elif result.outcome is Outcome.PERMANENT:
            await self._settle_job(job, FAILED, error=result.reason, refs=result.refs,
                                   message_state=MessageState.FAILED, opted_out=result.opted_out)
            self.wake()  # the failure notice may have queued pushes
        else:
            await self._retry_or_bury(job, result)

    async def _retry_or_bury(self, job: Job, result: SendResult) -> None:
        now = datetime.now(UTC)
        payload = {**job.payload, "parts_done": result.parts_done, "refs": list(result.refs),
                   "ambiguous": result.outcome is Outcome.AMBIGUOUS}
        if (now - job.created_at).total_seconds() >= self.policy.max_age_seconds:
            reason = gave_up(job, result.reason)
            log.warning("job %d dead: %s", job.id, reason)
            await self._settle_job(job, DEAD, error=reason, payload=payload, refs=result.refs,
                                   message_state=MessageState.FAILED)
            self.wake()  # the failure notice may have queued pushes
            return
        # Never sooner than the carrier asked (429's Retry-After).
        delay = max(self.policy.delay(job.attempts), result.retry_after or 0.0)
        due = now + timedelta(seconds=delay)
        await self._settle_job(job, QUEUED, error=result.reason, payload=payload, due_at=due)

    async def _settle_job(self, job: Job, state: str, *, error: str | None = None,
                          payload: dict | None = None, due_at: datetime | None = None,
                          refs: tuple[str, ...] = (),
                          message_state: MessageState | None = None,
                          opted_out: bool = False) -> bool:
        """A send job's outcome with its message's (``messaging/status.py``
        moves it), in one transaction. False (nothing written) when this
        worker no longer holds the lease."""
        def work(rows: Rows) -> bool:
            if not rows.finish_job(job, self.worker, state, error=error, payload=payload,
                                   due_at=due_at):
                return False
            if job.message_id is not None:
                rows.add_refs(job.provider, job.message_id, refs)
                if message_state:
                    status.move(rows, job.message_id, message_state, error or "")
            if opted_out and job.message is not None:
                rows.set_opt_out(job.message.local_number, job.message.peer, True,
                                 error or "carrier refused")
            return True

        return await self.store.write(work)
