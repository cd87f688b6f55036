"""What every upstream provider module fills in, and what they share.

A provider module holds everything about one carrier: building its send
request, classifying its answers, parsing its webhooks and acknowledging
them. :meth:`Provider.send` is the shared template around each provider's
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

import httpx2
import phonenumbers
from starlette.responses import PlainTextResponse, Response

from ..config import ConfigError, ProviderConfig
from ..messaging import multipart, segments
# What a webhook parses into: the domain's types (messaging/ never imports providers/).
from ..messaging.inbound import InboundPart, InboundSms
from ..messaging.status import StatusUpdate

log = logging.getLogger("adapter.providers")
USER_AGENT = "acrobits-sms-adapter/0.1 (+https://github.com/)"


class Outcome(StrEnum):
    ACCEPTED = "accepted"  # the carrier took it; refs say under which ids
    TRANSIENT = "transient"  # try again later
    PERMANENT = "permanent"  # will never work: fail the message with the reason
    AMBIGUOUS = "ambiguous"  # the request went out, the answer did not come back


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
    config: ProviderConfig
    http: httpx2.AsyncClient
    hooks: HookUrls
    type: ClassVar[str] = ""
    default_base_url: ClassVar[str] = ""
    # Whether messages this provider carries can leave the adapter at all.
    off_net: ClassVar[bool] = True
    # Regions (ISO codes) the carrier's API can address at all (None: any),
    # and those it sends to unless its table's ``countries`` says otherwise.
    reachable: ClassVar[frozenset[str] | None] = None
    default_countries: ClassVar[frozenset[str] | None] = None

    def __post_init__(self) -> None:
        # Here rather than at first use: a bad setting stops start-up.
        self.countries = self._countries()

    def _countries(self) -> frozenset[str] | None:
        """Where this instance may send: ``countries`` from its table, else
        the type's default; None means anywhere."""
        listed = self.setting("countries")
        if listed is None:
            return self.default_countries
        wanted = frozenset(listed)
        if self.reachable is not None and not wanted <= self.reachable:
            outside = ", ".join(sorted(wanted - self.reachable))
            raise ConfigError(f"config error: key 'providers.{self.name}.countries': "
                              f"{self.type} cannot send to {outside}")
        return wanted

    def segment_count(self, text: str) -> int:
        """How many SMS this carrier sends ``text`` as (concatenated parts by
        default; a carrier that splits differently says so)."""
        return segments.count(text).parts

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def base_url(self) -> str:
        return (self.config.base_url or self.default_base_url).rstrip("/")

    def setting(self, key: str, default=None):
        return self.config.settings.get(key, default)

    @property
    def multipart_wait_seconds(self) -> float:
        """How long the parts of a split inbound message wait for the missing ones."""
        return float(self.setting("multipart_wait_seconds", multipart.DEFAULT_WAIT_SECONDS))

    @property
    def timeout(self) -> httpx2.Timeout:
        """Per request: ``timeout_seconds`` from the provider's table, else 15 s."""
        return httpx2.Timeout(float(self.setting("timeout_seconds", 15.0)), connect=5.0)

    # -- sending ---------------------------------------------------------------------
    async def send(self, sms: OutboundSms) -> SendResult:
        started = time.perf_counter()
        try:
            result = await self.submit(sms)
        except (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout) as exc:
            # Nothing reached the carrier: safe to try again.
            result = SendResult(Outcome.TRANSIENT, reason=f"cannot reach {self.name}: {exc!r}",
                                parts_done=sms.parts_done, refs=sms.refs)
        except httpx2.TransportError as exc:
            result = SendResult(Outcome.AMBIGUOUS, reason=f"no answer from {self.name}: {exc!r}",
                                parts_done=sms.parts_done, refs=sms.refs)
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

    @staticmethod
    def http_outcome(response: httpx2.Response) -> Outcome | None:
        """The outcome an HTTP status alone decides (None: read the body)."""
        if response.status_code in (408, 429) or response.status_code >= 500:
            return Outcome.TRANSIENT
        if response.status_code in (401, 403, 404, 405):
            # Bad credentials or a wrong base_url need the operator, but no
            # message is at fault: keep it queued until they are fixed (or it
            # ages out into the dead letters).
            return Outcome.TRANSIENT
        if response.status_code >= 400:
            return Outcome.PERMANENT
        return None

    # -- webhooks ---------------------------------------------------------------------
    def authenticate(self, kind: str, query: Mapping[str, str], headers: Mapping[str, str]) -> bool:
        """The callback carries our secret: ``token`` in the URL by default."""
        return secret_matches(query.get("token", ""), self.hooks.secret)

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
