"""Storage: the only package that speaks SQL.

:class:`Store` is the async face the rest of the adapter uses; each method
is one transaction of the synchronous queries in ``accounts.py`` and
``messages.py``, run by the engine-specific runner from ``engine.py``.
"""

from __future__ import annotations

from functools import partial

import sqlalchemy as sa

from . import accounts as account_queries
from . import messages as message_queries
from .accounts import Account, AccountExists, NumberRoutedElsewhere
from .engine import DatabaseUrlError, runner_for
from .messages import INBOUND, OUTBOUND, MessageRow, NewMessage, StoredSend
from .migrations import apply_pending

__all__ = [
    "INBOUND", "OUTBOUND", "Account", "AccountExists", "DatabaseUrlError", "MessageRow",
    "NewMessage", "NumberRoutedElsewhere", "Store", "StoredSend",
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
        return await self._db.write(apply_pending)

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

    async def accounts_holding(self, number: str) -> list[int]:
        return await self._db.read(partial(account_queries.ids_holding, number=number))

    # -- messages -------------------------------------------------------------
    async def record_send(
        self, sender: Account, message: NewMessage, local_recipients: list[int]
    ) -> StoredSend:
        return await self._db.write(
            partial(message_queries.record_send, sender=sender, message=message,
                    local_recipients=local_recipients)
        )

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
