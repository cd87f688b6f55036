"""Storage: the only package that speaks SQL, and it decides nothing.

:class:`Store` is the async face the rest of the adapter uses; each method
is one transaction of the synchronous queries in ``accounts.py``,
``messages.py`` and the others, run by the engine-specific runner from
``engine.py`` (``remove_account`` is a series of short ones).
:meth:`Store.write` runs the domain's own composition of row operations
(``rows.py``) as one transaction: a send, a webhook, a settled job.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from functools import partial
from typing import TypeVar

import sqlalchemy as sa

from . import accounts as account_queries
from . import carriers
from . import messages as message_queries
from . import outbox
from . import push as push_queries
from . import removal
from .carriers import PARTS, CarrierRef, PartGroup
from .outbox import Job
from .accounts import Account, AccountExists, AccountGone, NumberRoutedElsewhere
from .engine import UNAVAILABLE, DatabaseUnavailable, DatabaseUrlError, problem, runner_for
from .messages import MessageRow, NewMessage, StoredSend
from .migrations import apply_pending
from .push import PUSH, PushTarget, Registration, TokenPair
from .rows import Rows
from .schema import INBOUND, OUTBOUND, MessageState, StoredMessage

__all__ = [
    "INBOUND", "OUTBOUND", "PARTS", "PUSH", "UNAVAILABLE", "Account", "AccountExists",
    "AccountGone", "CarrierRef", "DatabaseUnavailable", "DatabaseUrlError", "Job",
    "MessageRow", "MessageState", "NewMessage", "NumberRoutedElsewhere", "PartGroup",
    "PushTarget", "Registration", "Rows", "Store", "StoredMessage", "StoredSend", "TokenPair",
    "problem",
]

T = TypeVar("T")


# Messages deleted per transaction when removing an account, and the least
# pause after each (Store.remove_account).
REMOVAL_BATCH = 1000
REMOVAL_PAUSE_SECONDS = 0.06


class Store:
    def __init__(self, database_url: str, *,
                 push_interval_seconds: float = push_queries.MIN_INTERVAL_SECONDS):
        self._db = runner_for(database_url)
        # [push] min_interval_seconds: how far apart one device's pushes are.
        self.push_interval = push_interval_seconds
        # (account id, device) -> cursors this process last wrote, so a fetch
        # with nothing new costs no write.
        self._device_cursors: dict[tuple[int, str], tuple[int, int]] = {}
        # account id -> the read marker this process last raised it to (the
        # marker only rises, so a stale value only costs a redundant write).
        self._read_marks: dict[int, int] = {}
        # username -> Account, valid while the database's data_version stays
        # what it was: only other connections (the CLI, another process)
        # change accounts, and any commit of theirs clears it (SQLite only).
        self._accounts: dict[str, Account] = {}
        self._accounts_version: int | None = None
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
        self._accounts.clear()
        return await self._db.write(partial(account_queries.create, **fields))

    async def list_accounts(self) -> list[Account]:
        return await self._db.read(account_queries.all_accounts)

    async def remove_account(self, username: str, batch: int = REMOVAL_BATCH) -> int | None:
        """Remove the account and everything of it; returns how many messages
        went with it, None when there is no such account.

        The messages go ``batch`` at a time, each batch its own short
        transaction followed by a pause, so the running service writes in
        between (see ``removal.py``). Until the last step the account can
        still sign in and receive: what arrives once the removal has begun
        goes in that last step, so the loop ends however fast messages come.
        """
        self._accounts.clear()
        found = await self._db.read(partial(removal.last_message, username=username))
        if found is None:
            return None
        account_id, up_to = found
        removed = 0
        while True:
            started = time.monotonic()
            count = await self._db.write(partial(removal.remove_messages, account_id=account_id,
                                                 up_to=up_to, limit=batch))
            if not count:
                break
            removed += count
            # A writer waiting for SQLite's lock (the busy timeout) tries
            # again after 1, 2, 5, ... 50 ms, and from 228 ms on every 100 ms:
            # a pause of at least 60 ms and at least the batch's own time
            # spans one of its tries, so whoever waited behind the batch gets in.
            await asyncio.sleep(max(REMOVAL_PAUSE_SECONDS, time.monotonic() - started))
        left = await self._db.write(partial(removal.remove_account, account_id=account_id))
        self._accounts.clear()
        return None if left is None else removed + left

    async def set_password_hash(self, username: str, password_hash: str) -> bool:
        self._accounts.clear()
        return await self._db.write(
            partial(account_queries.set_password_hash, username=username,
                    password_hash=password_hash)
        )

    async def account_count(self) -> int:
        return await self._db.read(account_queries.count)

    async def account(self, username: str) -> Account | None:
        """The account, read once per process until the database changes
        under us (every request looks its sender up)."""
        version = self._db.data_version()
        if version is None or version != self._accounts_version:
            self._accounts.clear()
            self._accounts_version = version
        elif (known := self._accounts.get(username)) is not None:
            return known
        account = await self._db.read(partial(account_queries.by_username, username=username))
        if account is not None and version is not None:
            if len(self._accounts) >= 100_000:
                self._accounts.clear()
            self._accounts[username] = account
        return account

    # -- messages -------------------------------------------------------------
    async def write(self, work: Callable[[Rows], T]) -> T:
        """Run ``work`` (the domain's reads, decisions and writes through
        :class:`Rows`) as one transaction; its result is the answer."""
        push_interval = self.push_interval
        return await self._db.write(lambda conn: work(Rows(conn, push_interval)))

    async def fetch(
        self,
        account_id: int,
        device: str | None,
        reported: dict[str, int | None],
        limit: int,
    ) -> dict[str, list[MessageRow]]:
        """Each direction's messages after the device's cursor (see ``messages.sync``).

        Received messages it returns are read from now on (the push badge).
        A fetch with nothing new writes nothing.
        """
        pages, reached = await self._db.read(
            partial(message_queries.sync, account_id=account_id, device=device,
                    reported=reported, limit=limit)
        )
        received = pages.get(INBOUND)
        read_up_to = received[-1].sms_id if received else 0
        if read_up_to <= self._read_marks.get(account_id, 0):
            read_up_to = 0
        cursor = None
        if device:
            cursor = (reached.get(INBOUND, 0), reached.get(OUTBOUND, 0))
            if self._device_cursors.get((account_id, device)) == cursor:
                cursor = None
        if cursor or read_up_to:
            await self._after_fetch(account_id, device, cursor, read_up_to)
        return pages

    async def _after_fetch(self, account_id: int, device: str | None,
                           cursor: tuple[int, int] | None, read_up_to: int) -> None:
        def work(conn):
            if cursor:
                message_queries.save_device_cursor(conn, account_id, device, *cursor)
            if read_up_to:
                push_queries.raise_read_mark(conn, account_id, read_up_to)

        await self._db.write(work)
        for cache in (self._device_cursors, self._read_marks):
            if len(cache) > 100_000:
                cache.clear()
        if cursor:
            self._device_cursors[(account_id, device)] = cursor
        if read_up_to:
            self._read_marks[account_id] = read_up_to

    # -- carrier settings ---------------------------------------------------------------------
    async def secret(self, key: str) -> str:
        return await self._db.write(partial(carriers.secret, key=key))

    async def setting(self, key: str) -> str | None:
        return await self._db.read(partial(carriers.setting, key=key))

    async def put_setting(self, key: str, value: str) -> None:
        await self._db.write(partial(carriers.put_setting, key=key, value=value))

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

    # -- push ---------------------------------------------------------------------------
    async def report_push_token(self, account_id: int, registration: Registration) -> list[str]:
        return await self._db.write(partial(push_queries.report, account_id=account_id,
                                            registration=registration))

    async def remove_push_token(self, account_id: int, selector: str) -> bool:
        return await self._db.write(partial(push_queries.remove, account_id=account_id,
                                            selector=selector))

    async def push_target(self, selector: str) -> PushTarget | None:
        return await self._db.read(partial(push_queries.target, selector=selector))

    async def unread_count(self, account_id: int) -> int:
        return await self._db.read(partial(push_queries.unread, account_id=account_id))

    async def settle_push(self, job: Job, worker: str, *, state: str, error: str | None = None,
                          due_at=None, forget_token: str | None = None) -> bool:
        """Record a push job's outcome; with ``forget_token`` (the push service
        said 404) the device's token goes in the same transaction."""
        def work(conn):
            if not outbox.finish(conn, job.id, state, error=error, due_at=due_at, worker=worker):
                return False
            if forget_token:
                push_queries.forget(conn, job.payload.get("selector", ""), forget_token)
            return True

        return await self._db.write(work)
