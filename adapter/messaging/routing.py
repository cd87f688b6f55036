"""Routing a message an app user sends: on-net to local accounts, else upstream."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..store import Account, NewMessage, Store, StoredSend
from .numbers import to_e164

TEXT_PLAIN = ""
# type "/" subtype, with optional parameters; enough to refuse garbage while
# relaying every type the apps use (text, file transfer, dispositions).
_MIME_TYPE = re.compile(r"^[\w.+-]+/[\w.+-]+(\s*;.*)?$")
MAX_DISPOSITION_LENGTH = 1024


class InvalidMessage(ValueError):
    """The message cannot be sent as given; the text says why."""


@dataclass(frozen=True)
class Outgoing:
    to: str
    body: str
    content_type: str = ""
    disposition_notification: str = ""
    device: str | None = None


def normalise_content_type(value: str) -> str:
    """'' for plain text (however spelled), else the type as the app gave it."""
    value = value.strip()
    if not value or value.split(";", 1)[0].strip().lower() == "text/plain":
        return TEXT_PLAIN
    if not _MIME_TYPE.match(value):
        raise InvalidMessage(f"content_type {value!r} is not a MIME type")
    return value


def prepare(outgoing: Outgoing, default_region: str) -> NewMessage:
    if not outgoing.body:
        raise InvalidMessage("The message body is empty")
    if len(outgoing.disposition_notification) > MAX_DISPOSITION_LENGTH:
        raise InvalidMessage("disposition_notification is too long")
    return NewMessage(
        peer=to_e164(outgoing.to, default_region),
        body=outgoing.body,
        content_type=normalise_content_type(outgoing.content_type),
        disposition_notification=outgoing.disposition_notification.strip(),
        device=outgoing.device or None,
    )


async def send(store: Store, sender: Account, message: NewMessage) -> StoredSend:
    """Store the message; local accounts holding the number get it at once.

    A number no local account holds is left queued for an upstream carrier.
    """
    recipients = await store.accounts_holding(message.peer)
    return await store.record_send(sender, message, recipients)
