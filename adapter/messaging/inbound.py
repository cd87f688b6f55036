"""A carrier's inbound messages: stored once, split ones reassembled, keywords applied.

Each function here runs inside one transaction (``Store.write``): the
store reads and writes the rows, the rules are ``multipart.py``'s and
``optout.py``'s.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..store import Job, PartGroup, Rows, Store
from ..store.outbox import DONE
from . import multipart, optout


@dataclass(frozen=True)
class InboundPart:
    group: str  # the carrier's id of the split message
    position: int  # 1-based
    total: int


@dataclass(frozen=True)
class InboundSms:
    carrier_id: str
    sender: str  # E.164
    recipient: str  # E.164
    text: str
    part: InboundPart | None = None


@dataclass(frozen=True)
class HeldPartsDelivered:
    """A group delivered when its wait ran out: which of its parts it had."""

    held: PartGroup
    positions: tuple[int, ...]
    total: int
    deliveries: list[tuple[int, int]]


async def receive(store: Store, provider: str, sms: InboundSms,
                  wait_seconds: float = multipart.DEFAULT_WAIT_SECONDS,
                  ) -> list[tuple[int, int]] | None:
    """Store a carrier's inbound message once, for every account holding its
    recipient. Returns the deliveries (``(account id, sms_id)``; [] when no
    account holds the number), or None when there is nothing new: a repeat,
    or a part of a split message still waiting for the others (up to
    ``wait_seconds``)."""
    def work(rows: Rows) -> list[tuple[int, int]] | None:
        part = sms.part
        if not rows.first_sight(provider, f"part:{sms.carrier_id}" if part else sms.carrier_id):
            return None
        text = sms.text
        if part is not None:
            held = PartGroup(provider, sms.sender, sms.recipient, part.group)
            text = _add_part(rows, held, part, text, wait_seconds)
            if text is None:
                return None
        return _deliver(rows, sms.sender, sms.recipient, text)

    return await store.write(work)


def _add_part(rows: Rows, held: PartGroup, part: InboundPart, body: str,
              wait_seconds: float) -> str | None:
    """Keep one part; the text to deliver now, if any (else None): the whole
    message once its last part is here, or, for a part whose group was
    delivered without it, the part on its own. The first part of a group
    starts its wait (:func:`end_parts_wait`)."""
    if rows.was_seen(held.provider, held.seen_key()):
        return multipart.join({part.position: body}, part.total)
    added = rows.hold_part(held, part.position, part.total, body)
    parts, _ = rows.held_parts(held)
    if added and len(parts) == 1:
        rows.queue_parts_wait(held, wait_seconds)
    if not multipart.complete(parts, part.total):
        return None
    rows.drop_parts(held)
    if not rows.first_sight(held.provider, held.seen_key()):
        # Its wait ran out in another transaction, which delivered it without this part.
        return multipart.join({part.position: body}, part.total)
    return multipart.join(parts, part.total)


async def end_parts_wait(store: Store, job: Job, worker: str) -> HeldPartsDelivered | None:
    """A "parts" job: its group's wait ran out. What is held of it is
    delivered as one message (a marker where a part is missing), settled
    with the job in one transaction; parts arriving later go on their own.
    None when nothing was delivered (it was completed meanwhile, or another
    worker holds the job)."""
    def work(rows: Rows) -> HeldPartsDelivered | None:
        if not rows.finish_job(job, worker, DONE):
            return None
        held = PartGroup(job.provider, job.payload["sender"], job.payload["recipient"],
                         job.payload["group"])
        parts, total = rows.held_parts(held)
        if not parts or not rows.first_sight(held.provider, held.seen_key()):
            return None
        rows.drop_parts(held)
        deliveries = _deliver(rows, held.sender, held.recipient, multipart.join(parts, total))
        return HeldPartsDelivered(held, tuple(sorted(parts)), total, deliveries)

    return await store.write(work)


def _deliver(rows: Rows, sender: str, recipient: str, text: str) -> list[tuple[int, int]]:
    change = optout.change(text)
    if change is not None:
        rows.set_opt_out(recipient, sender, change.opted_out, change.reason)
    return rows.receive(rows.accounts_holding(recipient), local_number=recipient, peer=sender,
                        body=text)
