"""Fetch Messages: the Modern API (two cursors) and the Legacy API (one)."""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime

from ..store import INBOUND, OUTBOUND, MessageRow
from .service import Call, endpoint


RFC3339 = "%Y-%m-%dT%H:%M:%SZ"


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(RFC3339)


@functools.lru_cache(maxsize=1)
def _utc_second(second: int) -> str:
    return time.strftime(RFC3339, time.gmtime(second))


def now_rfc3339() -> str:
    """The current time for the answer's ``date`` (formatted once a second:
    every fetch answer carries it)."""
    return _utc_second(int(time.time()))


# Ids are 64-bit integers: a larger cursor cannot be one, and stands for "beyond
# the newest message" as a smaller unknown one does (the store answers either
# with the recent window). Capped, it also never reaches int() with thousands
# of digits, which Python refuses.
BEYOND_ANY_ID = 2**63 - 1


def cursor(value: str) -> int | None:
    """A positive id, or None for an empty or malformed cursor (never an error:
    an app stuck on a bad cursor would otherwise fail every fetch forever)."""
    digits = value.strip().lstrip("0")
    if not (digits.isascii() and digits.isdigit()):
        return None
    if len(digits) > len(str(BEYOND_ANY_ID)):
        return BEYOND_ANY_ID
    return min(int(digits), BEYOND_ANY_ID)


def item(message: MessageRow, peer_field: str) -> dict[str, str]:
    fields = {
        "sms_id": str(message.sms_id),
        "sending_date": rfc3339(message.created_at),
        peer_field: message.peer,
        "sms_text": message.body,
        "stream_id": message.peer,
    }
    if message.content_type:
        fields["content_type"] = message.content_type
    if message.disposition_notification:
        fields["disposition_notification"] = message.disposition_notification
    return fields


async def _pages(call: Call, cursors: dict[str, int | None]):
    account = await call.account()
    config = call.services.config
    return await call.services.store.fetch(account.id, call.device(), cursors,
                                           config.fetch_page_size)


@endpoint(xml=False)
async def fetch_messages(call: Call) -> dict:
    cursors = {
        INBOUND: cursor(call.field("last_id", "last_known_sms_id")),
        OUTBOUND: cursor(call.field("last_sent_id", "last_known_sent_sms_id")),
    }
    pages = await _pages(call, cursors)
    return {
        "date": now_rfc3339(),
        "received_smss": [item(m, "sender") for m in pages[INBOUND]],
        "sent_smss": [item(m, "recipient") for m in pages[OUTBOUND]],
    }


@endpoint(xml=False)
async def fetch_messages_legacy(call: Call) -> dict:
    # One cursor for both lists works because both directions share one
    # per-account id sequence.
    after = cursor(call.field("last_known_sms_id", "last_id"))
    pages = await _pages(call, {INBOUND: after, OUTBOUND: after})
    return {
        "date": now_rfc3339(),
        "unread_smss": [item(m, "sender") for m in pages[INBOUND]],
        "sent_smss": [item(m, "recipient") for m in pages[OUTBOUND]],
    }
