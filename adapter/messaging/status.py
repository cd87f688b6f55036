"""A sent message's delivery state, and what its sender learns about it.

The state machine: queued → submitted → sent → delivered | failed, never
backwards; delivered and failed are final, so a later, lower or repeated
report changes nothing. A message sent as several parts (one carrier ref
each) is where its parts agree: failed if any part failed, else the least
advanced part.

When a message reaches a final state, the sender's account receives:

- delivered, and the app asked for ``positive-delivery``: a disposition
  receipt for the app's own message id, so the app shows "delivered";
- failed: a plain text in the same conversation saying the message was not
  delivered and why. The apps have no "failed" receipt, and a text in the
  thread is what a user notices; it starts with a warning sign so it cannot
  be mistaken for the peer's words.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..store import MessageState, Rows, Store, StoredMessage
from .disposition import RECEIPT_CONTENT_TYPE, delivery_receipt, parse_request

QUEUED, SUBMITTED, SENT = MessageState.QUEUED, MessageState.SUBMITTED, MessageState.SENT
DELIVERED, FAILED = MessageState.DELIVERED, MessageState.FAILED

# Outbound states in the order they happen.
RANK = {QUEUED: 0, SUBMITTED: 1, SENT: 2, DELIVERED: 3, FAILED: 3}
FINAL = frozenset({DELIVERED, FAILED})
PREVIEW_LENGTH = 60


@dataclass(frozen=True)
class StatusUpdate:
    """A carrier's report on one part of a sent message (its ref)."""

    ref: str
    state: str  # submitted | sent | delivered | failed
    reason: str = ""
    opted_out: bool = False  # the carrier says the recipient opted out or blocked us


@dataclass(frozen=True)
class FollowUp:
    """A message the sender's account receives about its sent message."""

    body: str
    content_type: str = ""


def advances(current: str, reported: str) -> bool:
    """Whether a message (or part) in ``current`` moves to ``reported``:
    forward only, never out of a final state (unknown states never move)."""
    return current not in FINAL and RANK.get(reported, -1) > RANK.get(current, -1)


def overall(parts: Iterable[str]) -> str:
    """The state of a message sent as ``parts``: failed if any part failed,
    else the least advanced part."""
    parts = list(parts)
    return FAILED if FAILED in parts else min(parts, key=lambda state: RANK.get(state, 0))


def failure_notice(text: str, reason: str) -> str:
    preview = text if len(text) <= PREVIEW_LENGTH else text[:PREVIEW_LENGTH - 1] + "…"
    because = f": {reason}" if reason else ""
    return f"⚠️ Not delivered: \u201c{preview}\u201d{because}"


def follow_ups(message: StoredMessage, state: str, reason: str) -> list[FollowUp]:
    """What the sender's account receives as ``message`` reaches ``state``
    (see the module docstring)."""
    if state == FAILED:
        return [FollowUp(failure_notice(message.body, reason))]
    if state == DELIVERED:
        request = parse_request(message.disposition_notification or "")
        if request and "positive-delivery" in request.types:
            return [FollowUp(delivery_receipt(request.message_id), RECEIPT_CONTENT_TYPE)]
    return []


# -- inside a transaction (Store.write) ---------------------------------------------------


def move(rows: Rows, message_id: int, state: str, reason: str = "") -> bool:
    """Move a sent message forward to ``state`` with its follow-ups;
    regressions and repeats are ignored (False)."""
    message = rows.message(message_id)
    if message is None or not advances(message.state, state):
        return False
    rows.set_state(message_id, state, reason if state == FAILED else None)
    for follow_up in follow_ups(message, state, reason):
        rows.receive([message.account_id], local_number=message.local_number,
                     peer=message.peer, body=follow_up.body,
                     content_type=follow_up.content_type)
    return True


def apply_update(rows: Rows, provider: str, update: StatusUpdate) -> StoredMessage | None:
    """A carrier's report on one ref: the part moves, then the message moves
    where its parts agree; an opt-out it reports is recorded. Returns the
    message (None for a ref we never sent)."""
    part = rows.ref(provider, update.ref)
    if part is None:
        return None
    if advances(part.state, update.state):
        rows.set_ref_state(provider, update.ref, update.state)
    move(rows, part.message_id, overall(rows.part_states(part.message_id)), update.reason)
    message = rows.message(part.message_id)
    if message is not None and update.opted_out:
        rows.set_opt_out(message.local_number, message.peer, True,
                         update.reason or "carrier reports an opt-out")
    return message


async def record_update(store: Store, provider: str, update: StatusUpdate) -> StoredMessage | None:
    """:func:`apply_update` as one transaction."""
    return await store.write(lambda rows: apply_update(rows, provider, update))
