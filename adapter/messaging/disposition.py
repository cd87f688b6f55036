"""Disposition notifications (ACROBITS.md section 5): requests and receipts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

RECEIPT_CONTENT_TYPE = "application/x-acro-disposition-notification"


@dataclass(frozen=True)
class DispositionRequest:
    message_id: str
    types: frozenset[str]  # "positive-delivery", "display"


def parse_request(value: str) -> DispositionRequest | None:
    """``"<message-id>:<types>"``, split on the first colon; None when unusable."""
    message_id, colon, types = value.partition(":")
    if not colon or not message_id.strip():
        return None
    wanted = frozenset(t.strip().lower() for t in types.split(",") if t.strip())
    return DispositionRequest(message_id.strip(), wanted)


def delivery_receipt(message_id: str, when: datetime | None = None) -> str:
    """The body the sender's app reads as "delivered" for its message."""
    moment = (when or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return json.dumps({
        "message-id": message_id,
        "delivery-notification": {"datetime": moment, "status": "delivered"},
    })


def is_receipt(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == RECEIPT_CONTENT_TYPE


def displayed_ids(body: str) -> tuple[str, ...]:
    """The message-ids a receipt body reports as displayed (an object or an
    array of them; ``message-id`` or the newer ``message_id``). Unreadable
    receipts report nothing: they are relayed all the same."""
    try:
        data = json.loads(body, strict=False)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the stack
        return ()
    found = []
    for item in data if isinstance(data, list) else [data]:
        if not isinstance(item, dict) or not isinstance(item.get("display-notification"), dict):
            continue
        message_id = item.get("message-id", item.get("message_id"))
        if isinstance(message_id, str) and message_id.strip():
            found.append(message_id.strip())
    return tuple(dict.fromkeys(found))[:100]
