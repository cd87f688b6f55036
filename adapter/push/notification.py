"""What a NotifyTextMessage push says about one received message.

The app fetches when the push arrives and shows the message it fetched, so
the push mostly has to be right about *which* message (``Id``, the
``sms_id`` of the fetch) and *which* conversation (``ThreadId``, the
``sender``/``stream_id`` of the fetch). ``Message`` is what the phone shows
if the app cannot fetch in time.
"""

from __future__ import annotations

import json

from ..messaging.disposition import is_receipt
from ..store import StoredMessage

VERB = "NotifyTextMessage"
FILE_TRANSFER = "application/x-acro-filetransfer+json"
# With [push] preview = false, and for content we cannot summarise. A generic
# text rather than none: a push without one may show as an empty banner when
# the app gets no time to fetch, and this text says nothing about the message.
GENERIC_TEXT = "New message"
# Banners show a line or two; the push payload has a size limit (4 KB on APNs).
PREVIEW_LENGTH = 160


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= PREVIEW_LENGTH else text[:PREVIEW_LENGTH - 1] + "…"


def _attachment_preview(body: str) -> str:
    try:
        data = json.loads(body, strict=False)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the stack
        return "📎 Attachment"
    data = data if isinstance(data, dict) else {}
    caption = data.get("body")
    if isinstance(caption, str) and caption.strip():
        return caption
    attachments = data.get("attachments")
    count = len(attachments) if isinstance(attachments, list) else 1
    return "📎 Attachment" if count <= 1 else f"📎 {count} attachments"


def preview_text(body: str, content_type: str, preview: bool) -> str:
    kind = content_type.split(";", 1)[0].strip().lower()
    if not preview:
        return GENERIC_TEXT
    if not kind or kind == "text/plain":
        text = body
    elif kind == FILE_TRANSFER:
        text = _attachment_preview(body)
    else:
        text = GENERIC_TEXT
    return _shorten(text) or GENERIC_TEXT


def notify_text_message(*, app_id: str, token: str, selector: str, message: StoredMessage,
                        badge: int, display_name: str | None, preview: bool) -> dict:
    """The push for the received ``message`` to one device.

    A disposition receipt is pushed too, so the app fetches it and ticks the
    message, but silently: no ``Message`` and no ``Sound`` (there is nothing
    for the user to read).
    """
    notification = {
        "verb": VERB,
        "AppId": app_id,
        "DeviceToken": token,
        "Selector": selector,
        "Id": str(message.sms_id),
        "ThreadId": message.peer,
        "UserName": message.peer,
        "Badge": badge,
    }
    if display_name:
        notification["UserDisplayName"] = display_name
    if not is_receipt(message.content_type or ""):
        notification["Message"] = preview_text(message.body, message.content_type or "", preview)
        notification["Sound"] = "default"
    return notification
