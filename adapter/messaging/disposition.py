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
