"""Storage: the only package that speaks SQL.

:class:`Store` is the async face the rest of the adapter uses; each method
is one transaction of the synchronous queries in ``accounts.py`` and
``messages.py``, run by the engine-specific runner from ``engine.py``.
"""

from __future__ import annotations

from functools import partial

import sqlalchemy as sa

from . import accounts as account_queries
from . import carriers
from . import messages as message_queries
from . import outbox
from .carriers import FollowUps
from .outbox import Job
from .accounts import Account, AccountExists, NumberRoutedElsewhere
from .engine import DatabaseUrlError, runner_for
from .messages import INBOUND, NO_CARRIER, NOT_TEXT, OPTED_OUT, OUTBOUND, MessageRow, NewMessage, StoredSend
from .migrations import apply_pending

__all__ = [
    "INBOUND", "NO_CARRIER", "NOT_TEXT", "OPTED_OUT", "OUTBOUND", "Account", "AccountExists", "DatabaseUrlError", "FollowUps", "Job",
    "MessageRow", "NewMessage", "NumberRoutedElsewhere", "Store", "StoredSend",
]


class Store:
    def __init__(self, database_url: str):
        self._db = runner_for(database_url)
        # (account id, device) -> cursors this process last wrote, so a fetch
        # with nothing new costs no write.
        self._device_cursors: dict[tuple[int, str], tuple[int, int]] = {}
        self.description = self._db.description

    # -- schema -------------------------------------------------------------
    async def migrate(self) -> list[int]:
        return await self._db.migrate(apply_pending)

    async def ping(self) -> None:
        await self._db.read(lambda conn: conn.execute(sa.text("SELECT 1")).scalar_one())

    async def close(self) -> None:
        await self._db.close()

    # -- accounts -----------------------------------------------------------------
    async def create_account(self, **fields) -> Account:
        return await self._db.write(partial(account_queries.create, **fields))

    async def list_accounts(self) -> list[Account]:
        return await self._db.read(account_queries.all_accounts)

    async def remove_account(self, username: str) -> bool:
        return await self._db.write(partial(account_queries.remove, username=username))

    async def set_password_hash(self, username: str, password_hash: str) -> bool:
        return await self._db.write(
            partial(account_queries.set_password_hash, username=username,
                    password_hash=password_hash)
        )

    async def account_count(self) -> int:
        return await self._db.read(account_queries.count)

    async def account(self, username: str) -> Account | None:
        return await self._db.read(partial(account_queries.by_username, username=username))

    # -- messages -------------------------------------------------------------
    async def record_send(self, sender: Account, message: NewMessage,
                          provider: str | None = None) -> StoredSend:
        """Store a sent message: on-net to every account holding the number,
        else queued for ``provider`` (unless the recipient opted out).

        Nothing is written when it cannot go anywhere: the answer's status
        is then ``NO_CARRIER``, ``OPTED_OUT`` or ``NOT_TEXT`` (carriers take
        plain text only).
        """
        def work(conn):
            recipients = account_queries.ids_holding(conn, message.peer)
            if not recipients:
                if message.content_type:  # a file transfer or receipt: not SMS text
                    return StoredSend(0, NOT_TEXT, ())
                if provider is None:
                    return StoredSend(0, NO_CARRIER, ())
                if carriers.opted_out(conn, sender.number, message.peer):
                    return StoredSend(0, OPTED_OUT, ())
            return message_queries.record_send(conn, sender, message, recipients, provider)

        return await self._db.write(work)

    async def fetch(
        self,
        account_id: int,
        device: str | None,
        reported: dict[str, int | None],
        limit: int,
    ) -> dict[str, list[MessageRow]]:
        """Each direction's messages after the device's cursor (see ``messages.sync``)."""
        pages, reached = await self._db.read(
            partial(message_queries.sync, account_id=account_id, device=device,
                    reported=reported, limit=limit)
        )
        if device:
            await self._save_device_cursor(account_id, device, reached)
        return pages

    async def _save_device_cursor(self, account_id: int, device: str, reached: dict) -> None:
        key = (account_id, device)
        value = (reached.get(INBOUND, 0), reached.get(OUTBOUND, 0))
        if self._device_cursors.get(key) == value:
            return
        await self._db.write(
            partial(message_queries.save_device_cursor, account_id=account_id, device=device,
                    last_received_id=value[0], last_sent_id=value[1])
        )
        if len(self._device_cursors) > 100_000:
            self._device_cursors.clear()
        self._device_cursors[key] = value

    # -- carriers ---------------------------------------------------------------------
    async def opted_out(self, local_number: str, remote_number: str) -> bool:
        return await self._db.read(partial(carriers.opted_out, local_number=local_number,
                                           remote_number=remote_number))

    async def set_opt_out(self, local_number: str, remote_number: str, opted_out: bool,
                          reason: str) -> None:
        await self._db.write(partial(carriers.set_opt_out, local_number=local_number,
                                     remote_number=remote_number, opted_out=opted_out,
                                     reason=reason))

    async def secret(self, key: str) -> str:
        return await self._db.write(partial(carriers.secret, key=key))

    async def record_inbound(self, **fields) -> list[tuple[int, int]] | None:
        return await self._db.write(partial(carriers.record_inbound, **fields))

    async def apply_ref_status(self, provider: str, ref: str, state: str, reason: str,
                               follow_ups: FollowUps) -> dict | None:
        return await self._db.write(partial(
            carriers.apply_ref_status, provider=provider, ref=ref, state=state, reason=reason,
            follow_ups=follow_ups))

    async def settle_job(self, job: Job, worker: str, *, state: str, error: str | None = None,
                         payload: dict | None = None, due_at=None, refs: tuple[str, ...] = (),
                         message_state: str | None = None, follow_ups: FollowUps | None = None,
                         opt_out: tuple[str, str] | None = None) -> bool:
        """Record a job's outcome with its message's, in one transaction.

        False (and nothing written) when this worker no longer holds the lease.
        """
        def work(conn):
            if not outbox.finish(conn, job.id, state, error=error, payload=payload,
                                 due_at=due_at, worker=worker):
                return False
            if job.message_id is not None:
                carriers.add_refs(conn, job.provider, job.message_id, list(refs))
                if message_state:
                    carriers.advance(conn, job.message_id, message_state, error or "",
                                     follow_ups or (lambda *_: []))
            if opt_out:
                carriers.set_opt_out(conn, *opt_out, True, error or "carrier refused")
            return True

        return await self._db.write(work)

    # -- outbox ---------------------------------------------------------------------
    async def lease_jobs(self, worker: str, limit: int, lease_seconds: float) -> list[Job]:
        return await self._db.write(partial(outbox.lease, worker=worker, limit=limit,
                                            lease_seconds=lease_seconds))

    async def jobs(self, state: str | None = None, limit: int = 200) -> list[Job]:
        return await self._db.read(partial(outbox.listing, state=state, limit=limit))

    async def retry_job(self, job_id: int) -> bool:
        def work(conn):
            requeued = outbox.retry(conn, job_id)
            if requeued:
                carriers.requeue_message_of_job(conn, job_id)
            return requeued

        return await self._db.write(work)

    async def pending_jobs(self) -> int:
        return await self._db.read(outbox.pending_count)
