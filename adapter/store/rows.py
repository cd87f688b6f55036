"""The row operations of one transaction, for the domain to compose.

``Store.write(work)`` runs ``work(rows)`` as one transaction: the domain
(``messaging/``) reads through ``rows``, decides, and writes through it, so
a send, a webhook or a settled job stays one transaction while every rule
stays out of this package. Each method is one or a few statements; none
decides anything.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from . import accounts, carriers, messages, outbox, push
from .accounts import Account
from .carriers import CarrierRef, PartGroup
from .messages import NewMessage, StoredSend
from .outbox import Job
from .schema import MessageState, StoredMessage


class Rows:
    __slots__ = ("_conn", "_push_interval")

    def __init__(self, conn: sa.Connection, push_interval: float):
        self._conn = conn
        self._push_interval = push_interval  # [push] min_interval_seconds

    # -- accounts and messages ------------------------------------------------------------
    def accounts_holding(self, number: str) -> list[int]:
        return accounts.ids_holding(self._conn, number)

    def insert_send(self, sender: Account, message: NewMessage, state: MessageState,
                    local_recipients: Sequence[int] = (),
                    provider: str | None = None) -> StoredSend:
        """The sent message, a received copy per local recipient (and their
        devices' pushes), and with ``provider`` its outbox job."""
        return messages.insert_send(self._conn, sender, message, state, local_recipients,
                                    provider, self._push_interval)

    def receive(self, account_ids: Sequence[int], *, local_number: str, peer: str, body: str,
                content_type: str = "") -> list[tuple[int, int]]:
        """A received message for each account (and their devices' pushes):
        ``(account id, sms_id)`` of each copy."""
        return messages.receive(self._conn, account_ids, local_number=local_number, peer=peer,
                                body=body, content_type=content_type,
                                push_interval=self._push_interval)

    def mark_displayed(self, account_id: int, peer: str, disposition_ids: Sequence[str]) -> None:
        push.mark_displayed(self._conn, account_id, peer, tuple(disposition_ids))

    def message(self, message_id: int) -> StoredMessage | None:
        return carriers.message(self._conn, message_id)

    def set_state(self, message_id: int, state: MessageState, reason: str | None = None) -> None:
        carriers.set_state(self._conn, message_id, state, reason)

    # -- carrier refs -------------------------------------------------------------------------
    def add_refs(self, provider: str, message_id: int, refs: Sequence[str]) -> None:
        carriers.add_refs(self._conn, provider, message_id, list(refs))

    def ref(self, provider: str, ref: str) -> CarrierRef | None:
        return carriers.ref(self._conn, provider, ref)

    def set_ref_state(self, provider: str, ref: str, state: MessageState) -> None:
        carriers.set_ref_state(self._conn, provider, ref, state)

    def part_states(self, message_id: int) -> list[str]:
        return carriers.part_states(self._conn, message_id)

    # -- opt-outs -------------------------------------------------------------------------------
    def opted_out(self, local_number: str, remote_number: str) -> bool:
        return carriers.opted_out(self._conn, local_number, remote_number)

    def set_opt_out(self, local_number: str, remote_number: str, opted_out: bool,
                    reason: str) -> None:
        carriers.set_opt_out(self._conn, local_number, remote_number, opted_out, reason)

    # -- inbound ----------------------------------------------------------------------------------
    def first_sight(self, provider: str, carrier_id: str) -> bool:
        """Record a carrier's message id; False when it was recorded before."""
        return carriers.seen_inbound(self._conn, provider, carrier_id)

    def was_seen(self, provider: str, carrier_id: str) -> bool:
        return carriers.was_seen(self._conn, provider, carrier_id)

    def hold_part(self, held: PartGroup, position: int, total: int, body: str) -> bool:
        return carriers.hold_part(self._conn, held, position, total, body)

    def held_parts(self, held: PartGroup) -> tuple[dict[int, str], int]:
        return carriers.held_parts(self._conn, held)

    def drop_parts(self, held: PartGroup) -> None:
        carriers.drop_parts(self._conn, held)

    def queue_parts_wait(self, held: PartGroup, wait_seconds: float) -> None:
        carriers.queue_parts_wait(self._conn, held, wait_seconds)

    # -- outbox -------------------------------------------------------------------------------
    def finish_job(self, job: Job, worker: str, state: str, *, error: str | None = None,
                   payload: dict | None = None, due_at=None) -> bool:
        """Settle a leased job; False (nothing written) when ``worker`` no
        longer holds its lease."""
        return outbox.finish(self._conn, job.id, state, error=error, payload=payload,
                             due_at=due_at, worker=worker)
