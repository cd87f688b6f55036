"""Routing a message an app user sends: on-net to local accounts, else upstream."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from ..store import Account, MessageState, NewMessage, Rows, Store, StoredSend
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


def prepare(*, to: str, body: str, default_region: str, content_type: str = "",
            disposition_notification: str = "", device: str | None = None) -> NewMessage:
    """The message as it is stored and routed, from what the app sent
    (InvalidMessage or UnusableNumber when it cannot be sent as given)."""
    if not body:
        raise InvalidMessage("The message body is empty")
    if len(disposition_notification) > MAX_DISPOSITION_LENGTH:
        raise InvalidMessage("disposition_notification is too long")
    content_type = normalise_content_type(content_type)
    return NewMessage(
        peer=to_e164(to, default_region),
        body=body,
        content_type=content_type,
        disposition_notification=disposition_notification.strip(),
        device=device or None,
        # What the sender's own app displayed: no longer unread for its badge.
        displays=displayed_ids(body) if is_receipt(content_type) else (),
    )


class Carrier(Protocol):
    """What routing needs of a carrier instance (a provider has it)."""

    # Regions (ISO codes) it may send to; None: anywhere.
    countries: frozenset[str] | None

    @property
    def off_net(self) -> bool:
        """Whether messages it carries can leave the adapter at all."""

    def segment_count(self, text: str) -> int:
        """How many SMS it sends ``text`` as."""


class Refused(Exception):
    """The message cannot go where it is addressed; the text says why."""


class Refusal(Enum):
    """Why a sent message goes nowhere (nothing is stored)."""

    NOT_TEXT = "not-text"  # a file or receipt to a number outside the service
    NO_CARRIER = "no-carrier"  # the sender's number has no carrier
    NOT_CARRIED = "not-carried"  # the carrier must not take it (carrier_refusal says why)
    OPTED_OUT = "opted-out"  # the recipient replied STOP to the sender


@dataclass(frozen=True)
class OnNet:
    recipients: Sequence[int]  # the local accounts holding the number


@dataclass(frozen=True)
class Upstream:
    provider: str  # the [providers.NAME] whose outbox job carries it


def route(message: NewMessage, local_recipients: Sequence[int], provider: str | None, *,
          carrier_refused: bool = False,
          opted_out: Callable[[], bool] = lambda: False) -> OnNet | Upstream | Refusal:
    """Where a sent message goes: to every local account holding the
    number (whatever it is: on-net messages never meet a carrier), else to
    the outbox of ``provider``, the sender's carrier, if it takes text, may
    carry it (``carrier_refused``: see :func:`carrier_refusal`) and the
    recipient has not opted out (asked last: it is a read)."""
    if local_recipients:
        return OnNet(local_recipients)
    if message.content_type:  # a file transfer or receipt: not SMS text
        return Refusal.NOT_TEXT
    if provider is None:
        return Refusal.NO_CARRIER
    if carrier_refused:
        return Refusal.NOT_CARRIED
    if opted_out():
        return Refusal.OPTED_OUT
    return Upstream(provider)


async def record_send(store: Store, sender: Account, message: NewMessage,
                      provider: str | None = None, *,
                      carrier_refused: bool = False) -> StoredSend | Refusal:
    """Route and store a sent message in one transaction: on-net to every
    account holding the number, else queued for ``provider``; nothing is
    written for a refusal."""
    def work(rows: Rows) -> StoredSend | Refusal:
        if message.displays:  # the sender's app has shown these messages
            rows.mark_displayed(sender.id, message.peer, message.displays)
        recipients = rows.accounts_holding(message.peer)
        where = route(message, recipients, provider, carrier_refused=carrier_refused,
                      opted_out=lambda: rows.opted_out(sender.number, message.peer))
        if isinstance(where, OnNet):
            return rows.insert_send(sender, message, MessageState.DELIVERED, where.recipients)
        if isinstance(where, Upstream):
            return rows.insert_send(sender, message, MessageState.QUEUED,
                                    provider=where.provider)
        return where

    return await store.write(work)


def carrier_refusal(message: NewMessage, carrier: Carrier,
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
    carriers: Mapping[str, Carrier] = field(default_factory=dict)
    # Called after a message is queued for a carrier or pushes are queued for
    # the recipients' devices (wakes the dispatcher).
    on_queued: Callable[[], None] = lambda: None
    # [limits] segments_per_message
    max_segments: int = 0

    async def send(self, sender: Account, message: NewMessage) -> StoredSend | None:
        """The stored message; None for a receipt to a phone outside the
        service (nothing to deliver, nothing to fail). Refused or
        InvalidMessage when it goes nowhere."""
        carrier = self.carriers.get(sender.provider) if sender.provider else None
        # A provider no longer in the config still queues: its jobs wait (and
        # are listed by `outbox list`) until it is configured again.
        provider = sender.provider if carrier is None or carrier.off_net else None
        # Decided now, applied only when no local account holds the number.
        refusal = carrier_refusal(message, carrier, self.max_segments) \
            if carrier is not None and carrier.off_net else None
        stored = await record_send(self.store, sender, message, provider,
                                   carrier_refused=refusal is not None)
        if stored is Refusal.NOT_CARRIED:
            raise refusal
        if stored is Refusal.NOT_TEXT:
            if message.content_type == RECEIPT_CONTENT_TYPE:
                # A phone on the carrier's network cannot read the app's receipts.
                return None
            raise Refused(
                f"Only text can be sent to {message.peer}, which is outside this service "
                f"(this message is {message.content_type})"
            )
        if stored is Refusal.NO_CARRIER:
            raise Refused(
                f"{message.peer} is not a user of this service, and {sender.number} has no "
                "SMS carrier: it can only message other users of this service"
            )
        if stored is Refusal.OPTED_OUT:
            raise Refused(
                f"{message.peer} has opted out of messages from {sender.number} (they replied "
                "STOP); they can text START to opt back in"
            )
        if stored.state is MessageState.QUEUED or stored.pushes:
            self.on_queued()
        return stored
