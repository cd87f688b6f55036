"""What a sender learns about a carrier message: receipts and failure notices.

The state machine itself (queued → submitted → sent → delivered | failed,
never backwards) is kept by the store; this module decides what the sender's
account receives when a message reaches a final state:

- delivered, and the app asked for ``positive-delivery``: a disposition
  receipt for the app's own message id, so the app shows "delivered";
- failed: a plain text in the same conversation saying the message was not
  delivered and why. The apps have no "failed" receipt, and a text in the
  thread is what a user notices; it starts with a warning sign so it cannot
  be mistaken for the peer's words.
"""

from __future__ import annotations

from .disposition import RECEIPT_CONTENT_TYPE, delivery_receipt, parse_request

PREVIEW_LENGTH = 60


def failure_notice(text: str, reason: str) -> str:
    preview = text if len(text) <= PREVIEW_LENGTH else text[:PREVIEW_LENGTH - 1] + "…"
    because = f": {reason}" if reason else ""
    return f"⚠️ Not delivered: \u201c{preview}\u201d{because}"


def follow_ups(message: dict, state: str, reason: str) -> list[dict]:
    """See the module docstring; ``message`` is the sent message's columns."""
    if state == "failed":
        return [{"body": failure_notice(message["body"], reason), "content_type": ""}]
    if state == "delivered":
        request = parse_request(message.get("disposition_notification") or "")
        if request and "positive-delivery" in request.types:
            return [{"body": delivery_receipt(request.message_id),
                     "content_type": RECEIPT_CONTENT_TYPE}]
    return []
