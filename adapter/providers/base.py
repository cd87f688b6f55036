"""What every upstream provider module fills in, and what they share.

A provider module holds everything about one carrier: its settings (a
:class:`~.settings.ProviderSettings` subclass), building its send request,
classifying its answers, authenticating, parsing and acknowledging its
webhooks. :meth:`Provider.send` is the shared template around each provider's
own :meth:`Provider.submit`: timing, transport errors and logging are done
once here (the shape of GOV.UK Notify's ``SmsClient``).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import ClassVar

import phonenumbers
from starlette.responses import PlainTextResponse, Response

from ..http_client import USER_AGENT, Answer, HttpClient, Timeout, TransportError
from ..http_outcome import Failure, of_error, of_status
from ..messaging import multipart, segments
from .settings import ProviderSettings, SettingError
from .webhook import WebhookRequest
# What a webhook parses into: the domain's types (messaging/ never imports providers/).
from ..messaging.inbound import InboundPart, InboundSms
from ..messaging.status import StatusUpdate

log = logging.getLogger("adapter.providers")


class Outcome(StrEnum):
    ACCEPTED = "accepted"  # the carrier took it; refs say under which ids
    TRANSIENT = "transient"  # try again later
    PERMANENT = "permanent"  # will never work: fail the message with the reason
    AMBIGUOUS = "ambiguous"  # the request went out, the answer did not come back


# What a failed call means for the message. Wrong credentials or a wrong
# base_url need the operator, but no message is at fault: it stays queued
# until they are fixed (or it ages out into the dead letters).
OUTCOMES = {
    Failure.TRANSIENT: Outcome.TRANSIENT, Failure.AMBIGUOUS: Outcome.AMBIGUOUS,
    Failure.PERMANENT: Outcome.PERMANENT, Failure.UNAUTHORIZED: Outcome.TRANSIENT,
    Failure.MISADDRESSED: Outcome.TRANSIENT, Failure.RATE_LIMITED: Outcome.TRANSIENT,
}


@dataclass(frozen=True)
class OutboundSms:
    message_id: int
    sender: str  # E.164
    recipient: str  # E.164
    text: str
    delivery_report: bool = False
    # Our status webhook, for carriers that take a callback URL per message.
    status_url: str = ""
    # Parts accepted by earlier attempts, for carriers we send part by part.
    parts_done: int = 0
    refs: tuple[str, ...] = ()
    # When the first send whose answer never came began (UTC): reconcile()
    # must not mistake an identical message sent before it for this one.
    ambiguous_since: datetime | None = None


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    refs: tuple[str, ...] = ()
    reason: str = ""
    parts_done: int = 0
    # The carrier says the recipient opted out (STOP) or blocked us.
    opted_out: bool = False
    # Not to be tried again for this many seconds (the answer's Retry-After).
    retry_after: float | None = None


class WebhookError(ValueError):
    """A callback we cannot use; answered 400 and nothing is stored."""


@dataclass(frozen=True)
class HookUrls:
    inbound: str
    status: str
    secret: str


# Every region of the North American Numbering Plan (+1): US, CA, PR, ...
NANP_REGIONS = frozenset(phonenumbers.region_codes_for_country_code(1))


@dataclass
class Provider:
    name: str  # the instance: [providers.NAME]
    settings: ProviderSettings  # an instance of settings_type
    http: HttpClient
    hooks: HookUrls
    type: ClassVar[str] = ""
    # What a [providers.NAME] table of this type may hold.
    settings_type: ClassVar[type[ProviderSettings]] = ProviderSettings
    default_base_url: ClassVar[str] = ""
    # Whether messages this provider carries can leave the adapter at all.
    off_net: ClassVar[bool] = True
    # Regions (ISO codes) the carrier's API can address at all (None: any),
    # and those it sends to unless its table's ``countries`` says otherwise.
    reachable: ClassVar[frozenset[str] | None] = None
    default_countries: ClassVar[frozenset[str] | None] = None

    def __post_init__(self) -> None:
        # Where this instance may send: ``countries`` from its table, else
        # the type's default; None means anywhere.
        listed = self.settings.countries
        self.countries = self.default_countries if listed is None else frozenset(listed)

    @classmethod
    def check_settings(cls, settings: ProviderSettings) -> None:
        """What the settings' types cannot tell alone (the registry calls
        it at start-up): raises :class:`SettingError`."""
        if settings.countries is not None and cls.reachable is not None:
            outside = set(settings.countries) - cls.reachable
            if outside:
                raise SettingError("countries",
                                   f"{cls.type} cannot send to {', '.join(sorted(outside))}")

    def segment_count(self, text: str) -> int:
        """How many SMS this carrier sends ``text`` as (concatenated parts by
        default; a carrier that splits differently says so)."""
        return segments.count(text).parts

    @property
    def base_url(self) -> str:
        return (self.settings.base_url or self.default_base_url).rstrip("/")

    def setting(self, key: str, default=None):
        return getattr(self.settings, key, default)

    @property
    def multipart_wait_seconds(self) -> float:
        """How long the parts of a split inbound message wait for the missing ones."""
        return float(self.setting("multipart_wait_seconds", multipart.DEFAULT_WAIT_SECONDS))

    @property
    def timeout(self) -> Timeout:
        """Per request: ``timeout_seconds`` from the provider's table, else 15 s."""
        return Timeout(float(self.setting("timeout_seconds", 15.0)))

    # -- sending ---------------------------------------------------------------------
    async def send(self, sms: OutboundSms) -> SendResult:
        started = time.perf_counter()
        try:
            result = await self.submit(sms)
        except TransportError as exc:
            result = self.unanswered(exc, parts_done=sms.parts_done, refs=sms.refs)
        elapsed = (time.perf_counter() - started) * 1000
        log.info("%s: message %d to %s: %s %s in %.0f ms%s", self.name, sms.message_id,
                 sms.recipient, result.outcome, ",".join(result.refs), elapsed,
                 f" ({result.reason})" if result.reason else "")
        return result

    async def submit(self, sms: OutboundSms) -> SendResult:
        raise NotImplementedError

    async def reconcile(self, sms: OutboundSms) -> SendResult | None:
        """After an ambiguous send: did the carrier take it? None: cannot tell."""
        return None

    def request_headers(self) -> dict[str, str]:
        return {"User-Agent": USER_AGENT}

    def unanswered(self, error: TransportError, parts_done: int = 0,
                   refs: tuple[str, ...] = ()) -> SendResult:
        """The result of a call that got no answer, keeping the progress made."""
        verdict = of_error(error, self.name)
        return SendResult(OUTCOMES[verdict.failure], reason=verdict.reason,
                          parts_done=parts_done, refs=refs)

    @staticmethod
    def http_failure(response: Answer, reason: str) -> SendResult | None:
        """The result an HTTP status alone decides, with ``reason`` and the
        answer's Retry-After (None: 2xx, read the body)."""
        verdict = of_status(response)
        if verdict is None:
            return None
        return SendResult(OUTCOMES[verdict.failure], reason=reason,
                          retry_after=verdict.retry_after)

    # -- webhooks ---------------------------------------------------------------------
    def authenticate(self, request: WebhookRequest) -> bool:
        """Whether the callback comes from the carrier, judged on the whole
        request before anything in it is used. By default: it carries our
        secret as ``token`` in the URL."""
        return secret_matches(request.query.get("token", ""), self.hooks.secret)

    def parse_inbound(self, fields: Mapping[str, str]) -> list[InboundSms]:
        raise WebhookError(f"{self.type} does not deliver inbound messages")

    def parse_status(self, fields: Mapping[str, str]) -> list[StatusUpdate]:
        raise WebhookError(f"{self.type} does not send status callbacks")

    def inbound_ack(self) -> Response:
        return PlainTextResponse("ok")

    def status_ack(self) -> Response:
        return PlainTextResponse("ok")

    def portal_urls(self) -> dict[str, str]:
        """What to paste in the provider's portal (``provider urls``)."""
        return {"inbound": self.hooks.inbound, "status": self.hooks.status}


def secret_matches(given: str, secret: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), secret.encode())


def basic_auth(headers: Mapping[str, str]) -> tuple[str, str] | None:
    value = headers.get("authorization", "")
    scheme, _, encoded = value.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        username, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return username, password
