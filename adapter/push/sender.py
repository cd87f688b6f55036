"""Running one outbox job of kind "push": a NotifyTextMessage to one device.

The job names the device (its selector) and the received message (the
newest, when more arrived while it waited: see ``store.push.enqueue``). The
device's token and the account's unread count are read when the push goes
out, not when it was queued: a token reported since then is used, a removed
one is not, and the badge is current.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Protocol

from ..store import Job, Store
from ..store.outbox import DEAD, DONE, FAILED, QUEUED, gave_up
from .client import PushClient, PushOutcome
from .notification import notify_text_message

log = logging.getLogger("adapter.push")

# A push delivered an hour late tells the user nothing the app has not shown
# by then; a push job gives up sooner than a carrier job.
MAX_AGE_SECONDS = 3600.0


class Backoff(Protocol):
    max_age_seconds: float

    def delay(self, attempts: int) -> float: ...


class Pusher:
    def __init__(self, store: Store, client: PushClient, *, preview: bool = True):
        self.store = store
        self.client = client
        self.preview = preview

    async def run(self, job: Job, worker: str, backoff: Backoff) -> None:
        selector = job.payload.get("selector", "")
        message = job.message
        target = await self.store.push_target(selector) if message else None
        if target is None or target.account_id != message.account_id:
            # Removed, pruned, or now signed in to another account.
            await self.store.settle_push(job, worker, state=DONE,
                                         error="the device has no push token for this account now")
            return
        notification = notify_text_message(
            app_id=target.app_id, token=target.token, selector=selector, message=message,
            badge=target.badge, display_name=job.payload.get("name"), preview=self.preview)
        result = await self.client.send(notification)
        if result.outcome is PushOutcome.DELIVERED:
            await self.store.settle_push(job, worker, state=DONE)
        elif result.outcome is PushOutcome.GONE:
            log.info("push token of %s is no longer registered: deleted", selector)
            await self.store.settle_push(job, worker, state=DONE, error=result.reason,
                                         forget_token=target.token)
        elif result.outcome is PushOutcome.REJECTED:
            log.warning("push job %d refused: %s", job.id, result.reason)
            await self.store.settle_push(job, worker, state=FAILED, error=result.reason)
        else:
            await self._retry_or_bury(job, worker, backoff, result.reason, result.retry_after)

    async def _retry_or_bury(self, job: Job, worker: str, backoff: Backoff, reason: str,
                             retry_after: float | None = None) -> None:
        now = datetime.now(UTC)
        max_age = min(MAX_AGE_SECONDS, backoff.max_age_seconds)
        if (now - job.created_at).total_seconds() >= max_age:
            log.warning("push job %d dead: %s", job.id, reason)
            await self.store.settle_push(job, worker, state=DEAD,
                                         error=gave_up(job, reason))
            return
        due = now + timedelta(seconds=max(backoff.delay(job.attempts), retry_after or 0.0))
        await self.store.settle_push(job, worker, state=QUEUED, error=reason, due_at=due)
