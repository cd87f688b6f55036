"""Routing a message an app user sends: on-net to local accounts, else upstream."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ..providers import Provider
from ..store import (
    NO_CARRIER, NOT_CARRIED, NOT_TEXT, OPTED_OUT, Account, NewMessage, Store, StoredSend,
)
from .disposition import RECEIPT_CONTENT_TYPE, displayed_ids, is_receipt
from .numbers import is_premium_rate, region_of, to_e164

TEXT_PLAIN = ""
# type "/" subtype, with optional parameters; enough to refuse garbage while
# relaying every type the apps use (text, file transfer, dispositions).
_MIME_TYPE = re.compile(r"^[\w.+-]+/[\w.+-]+(\s*;.*)?$")
MAX_DISPOSITION_LENGTH = 1024
# The store's column width; a longer type would fail the insert (PostgreSQL).
MAX_CONTENT_TYPE_LENGTH = 255


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
    if len(value) > MAX_CONTENT_TYPE_LENGTH:
        raise InvalidMessage(f"content_type is longer than {MAX_CONTENT_TYPE_LENGTH} characters")
    if not _MIME_TYPE.match(value):
        raise InvalidMessage(f"content_type {value!r} is not a MIME type")
    return value


def prepare(outgoing: Outgoing, default_region: str) -> NewMessage:
    if not outgoing.body:
        raise InvalidMessage("The message body is empty")
    if len(outgoing.disposition_notification) > MAX_DISPOSITION_LENGTH:
        raise InvalidMessage("disposition_notification is too long")
    content_type = normalise_content_type(outgoing.content_type)
    return NewMessage(
        peer=to_e164(outgoing.to, default_region),
        body=outgoing.body,
        content_type=content_type,
        disposition_notification=outgoing.disposition_notification.strip(),
        device=outgoing.device or None,
        # What the sender's own app displayed: no longer unread for its badge.
        displays=displayed_ids(outgoing.body) if is_receipt(content_type) else (),
    )


class Refused(Exception):
    """The message cannot go where it is addressed; the text says why."""


def carrier_refusal(message: NewMessage, carrier: Provider,
                    max_segments: int) -> Exception | None:
    """Why ``carrier`` must not take ``message`` (None: it may): a country
    the carrier instance does not send to, a premium-rate number (the SMS
    pumping fraud), or a text of more than ``max_segments`` SMS (0: any)."""
    countries = carrier.countries
    if countries is not None and region_of(message.peer) not in countries:
        return Refused(f"Cannot send to {message.peer}: text messages from this service go "
                       f"only to numbers in {', '.join(sorted(countries))}")
    if is_premium_rate(message.peer):
        return Refused(f"Cannot send to {message.peer}: it is a premium-rate number")
    if max_segments and not message.content_type:
        parts = carrier.segment_count(message.body)
        if parts > max_segments:
            return InvalidMessage(
                f"The message is too long: it would go as {parts} SMS, and at most "
                f"{max_segments} are sent to a number outside this service")
    return None


@dataclass
class Router:
    """Where a sent message goes: on-net to local accounts holding the number,
    else to the outbox of the carrier that carries the sender's number."""

    store: Store
    carriers: Mapping[str, Provider] = field(default_factory=dict)
    # Called after a message is queued for a carrier or pushes are queued for
    # the recipients' devices (wakes the dispatcher).
    on_queued: Callable[[], None] = lambda: None
    # [limits] segments_per_message
    max_segments: int = 0

    async def send(self, sender: Account, message: NewMessage) -> StoredSend:
        carrier = self.carriers.get(sender.provider) if sender.provider else None
        # A provider no longer in the config still queues: its jobs wait (and
        # are listed by `outbox list`) until it is configured again.
        off_net = sender.provider if carrier is None or carrier.off_net else None
        # Decided now, applied by the store only when no local account holds
        # the number (on-net messages never meet a carrier).
        refusal = carrier_refusal(message, carrier, self.max_segments) \
            if carrier is not None and carrier.off_net else None
        stored = await self.store.record_send(sender, message, off_net,
                                              off_net_refused=refusal is not None)
        if stored.status == NOT_CARRIED:
            raise refusal
        if stored.status == NOT_TEXT:
            if message.content_type == RECEIPT_CONTENT_TYPE:
                # A phone on the carrier's network cannot read the app's
                # receipts; there is nothing to deliver and nothing to fail.
                return stored
            raise Refused(
                f"Only text can be sent to {message.peer}, which is outside this service "
                f"(this message is {message.content_type})"
            )
        if stored.status == NO_CARRIER:
            raise Refused(
                f"{message.peer} is not a user of this service, and {sender.number} has no "
                "SMS carrier: it can only message other users of this service"
            )
        if stored.status == OPTED_OUT:
            raise Refused(
                f"{message.peer} has opted out of messages from {sender.number} (they replied "
                "STOP); they can text START to opt back in"
            )
        if stored.status == "queued" or stored.pushes:
            self.on_queued()
        return stored
