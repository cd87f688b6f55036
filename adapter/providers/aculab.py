"""Aculab Cloud (PROVIDERS.md "Aculab Cloud"; seeds 000 and 001).

One ``msg_send`` per message: Aculab splits long text itself and answers one
ref per part, which the store keeps so that each part's status callback finds
the message. Both callbacks (the status page we pass with each send, the
notification page of the number's Inbound Service) are one flat set of fields,
POSTed as a JSON object or sent as a GET query.

Choices where the documents leave a gap:

- After a read timeout the send's refs are unknown, and Aculab has no lookup
  by recipient or by a reference of ours, so :meth:`reconcile` answers None and
  the dispatcher sends again: a rare duplicate beats a silently lost message.
  With refs from an earlier attempt, ``msg_status`` tells what happened.
- A status callback failing a part with 301 (the carrier could not accept it,
  temporary) fails the message with a reason that says to send it again: a
  callback cannot requeue the job (states only move forward). ``reconcile``,
  which can, answers TRANSIENT for it so the job is sent again.
- Aculab fails ``msg_send`` outright when the carrier cannot report delivery;
  the text matters more than the receipt, so we send once more without
  asking for one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated

from msgspec import Meta
from starlette.responses import Response

from ..http_client import Answer, TransportError
from ..messaging import multipart
from ..messaging.numbers import UnusableNumber, to_e164
from .base import (
    InboundPart, InboundSms, Outcome, OutboundSms, Provider, SendResult, StatusUpdate,
    WebhookError, basic_auth, secret_matches,
)
from .settings import Credential, ProviderSettings, SettingError
from .webhook import WebhookRequest

ALPHANUMERIC_ID = re.compile(r"[A-Za-z0-9 ]{1,11}")
# Aculab status -> ours (messaging/status.py). "accepted": read by someone
# on the owner's behalf, as delivered as it gets.
STATES = {"queued": "submitted", "submitted to carrier": "submitted", "sent": "sent",
          "delivered": "delivered", "accepted": "delivered"}
ERRORS = {  # aculab_msg_err; 000 and 001 add nothing
    "100": "detected as spam (too few replies to your messages)",
    "101": "detected as spam (keywords)",
    "102": "detected as spam",
    "200": "submission failed",
    "201": "destination application error",
    "202": "not acknowledged by the carrier",
    "203": "invalid service type",
    "204": "invalid destination number",
    "205": "invalid source number",
    "206": "loop detected (same sending and receiving number)",
    "207": "invalid scheduled delivery time",
    "300": "unknown error at Aculab",
    "301": "the carrier could not accept it just now; please send it again",
    "302": "not delivered to the carrier",
}
TEMPORARY = "301"
NO_DELIVERY_REPORTS = re.compile(r"deliver\w*[ _]report", re.IGNORECASE)


class AculabSettings(ProviderSettings):
    username: Credential
    api_key: Credential
    # {"+44..." = "ACME"}: messages from these numbers go under an alphanumeric id.
    alphanumeric_ids: Annotated[dict[str, str], Meta(
        description='must be a table of "+E164 number" = "Sender ID"')] = {}
    # How long the parts of a split inbound message wait for the missing ones.
    multipart_wait_seconds: Annotated[float, Meta(
        gt=0, le=multipart.MAX_WAIT_SECONDS,
        description=f"must be a positive number, at most {multipart.MAX_WAIT_SECONDS:g} "
                    "(seconds)")] = multipart.DEFAULT_WAIT_SECONDS

    def __post_init__(self) -> None:
        super().__post_init__()
        self.alphanumeric_ids = {to_e164_key(number): sender_id_of(number, sender_id)
                                 for number, sender_id in self.alphanumeric_ids.items()}


def to_e164_key(number: str) -> str:
    try:
        return to_e164(number)
    except UnusableNumber:
        raise SettingError("alphanumeric_ids", f"{number!r} is not a phone number "
                                               "(write it as +E164)") from None


def sender_id_of(number: str, sender_id: str) -> str:
    if not (sender_id.strip() and ALPHANUMERIC_ID.fullmatch(sender_id)):
        raise SettingError(f'alphanumeric_ids."{number}"', f"{sender_id!r} must be 1-11 "
                                                          "characters of A-Z, a-z, 0-9 and space")
    return sender_id


class AculabProvider(Provider):
    type = "aculab"
    settings_type = AculabSettings
    default_base_url = "https://ws.aculabcloud.net"

    @property
    def alphanumeric_ids(self) -> dict[str, str]:
        """E.164 sender number -> the alphanumeric id its messages go under."""
        return self.settings.alphanumeric_ids

    # -- calling Aculab ------------------------------------------------------------------
    def request_headers(self) -> dict[str, str]:
        # Aculab's web-service-errors page: with this, errors come as JSON
        # rather than the legacy XML/HTML some services default to.
        return {**super().request_headers(), "Accept": "application/json"}

    async def _call(self, action: str, fields: Mapping[str, str]) -> Answer:
        # POST form rather than GET: the text stays out of URLs and their logs.
        return await self.http.post(
            f"{self.base_url}/{action}", form=fields, timeout=self.timeout,
            headers=self.request_headers(),
            auth=(self.setting("username"), self.setting("api_key")))

    def send_fields(self, sms: OutboundSms) -> dict[str, str]:
        fields = {"to": _wire(sms.recipient), "from": _wire(sms.sender), "type": "sms",
                  "content": sms.text}
        if sms.delivery_report:
            fields["request_delivery_report"] = "true"
        if sms.status_url:
            fields |= {"status_page": sms.status_url, "status_method": "POST",
                       "status_authentication_name": self.name,
                       "status_authentication_password": self.hooks.secret}
            if sms.status_url.startswith("https:"):
                # The callback carries our secret: never to an unchecked host.
                fields["status_ssl_check"] = "true"
        if sms.sender in self.alphanumeric_ids:
            fields["alphanumeric_id"] = self.alphanumeric_ids[sms.sender]
        return fields

    async def submit(self, sms: OutboundSms) -> SendResult:
        fields = self.send_fields(sms)
        response = await self._call("msg_send", fields)
        if (sms.delivery_report and _refused(response)
                and NO_DELIVERY_REPORTS.search(error_text(response))):
            del fields["request_delivery_report"]
            response = await self._call("msg_send", fields)
        if response.is_success:
            body = _json(response)
            if isinstance(body, list) and body and all(isinstance(r, str) and r for r in body):
                return SendResult(Outcome.ACCEPTED, refs=tuple(body))
            if not (isinstance(body, dict) and "error" in body):
                # Taken or not? Without refs reconcile cannot tell, so it is sent again.
                return SendResult(Outcome.AMBIGUOUS,
                                  reason=f"msg_send answered {response.text[:200]!r}")
        reason = (f"Aculab refused it: {error_text(response)}" if response.status_code < 500
                  else f"Aculab is unavailable (HTTP {response.status_code}): {error_text(response)}")
        if _refused(response):
            # How msg_send words a blocked pair is not documented: ask instead of guessing.
            since = await self._blocked_since(sms)
            if since is not None:
                return SendResult(Outcome.PERMANENT, opted_out=True, reason=(
                    f"{sms.recipient} blocked messages from {sms.sender} (replied STOP, {since}); "
                    "they can text START to allow them again"))
        # By the HTTP status; a 2xx error body is final.
        return (self.http_failure(response, reason)
                or SendResult(Outcome.PERMANENT, reason=reason))

    async def _blocked_since(self, sms: OutboundSms) -> str | None:
        """When Aculab blocked sender → recipient (a STOP), or None when it has not."""
        try:
            response = await self._call("msg_list_blocked", {"from": _wire(sms.sender),
                                                             "to": _wire(sms.recipient)})
        except TransportError:
            return None  # the refusal stands on its own
        body = _json(response) if response.is_success else None
        for entry in body if isinstance(body, list) else ():
            if (isinstance(entry, dict) and _digits(entry.get("from")) == _wire(sms.sender)
                    and _digits(entry.get("to")) == _wire(sms.recipient)):
                return f"at {entry.get('timestamp') or 'an unknown time'}"
        return None

    async def reconcile(self, sms: OutboundSms) -> SendResult | None:
        if not sms.refs:
            return None  # see the module docstring
        try:
            response = await self._call("msg_status", {"msg_refs": "/".join(sms.refs)})
        except TransportError as exc:
            return SendResult(Outcome.AMBIGUOUS, refs=sms.refs, reason=f"msg_status: {exc}")
        body = _json(response) if response.is_success else None
        if not isinstance(body, dict):
            return SendResult(Outcome.AMBIGUOUS, refs=sms.refs,
                              reason=f"msg_status answered {error_text(response)}")
        reports = [body.get(ref) if isinstance(body.get(ref), dict) else {} for ref in sms.refs]
        statuses = [str(report.get("status", "unknown")).strip() for report in reports]
        if all(status.lower() == "unknown" for status in statuses):
            return None  # Aculab never took it (or has forgotten it): send it
        for status, report in zip(statuses, reports):
            if _failed(status):
                code = str(report.get("aculab_msg_err", "")).strip()
                outcome = Outcome.TRANSIENT if code == TEMPORARY else Outcome.PERMANENT
                return SendResult(outcome, reason=failure_reason(status, code),
                                  refs=sms.refs if outcome is Outcome.PERMANENT else ())
        return SendResult(Outcome.ACCEPTED, refs=sms.refs)

    # -- callbacks -----------------------------------------------------------------------
    def authenticate(self, request: WebhookRequest) -> bool:
        if super().authenticate(request):
            return True
        # The status page is called with the basic auth each send asked for;
        # the inbound URL is pasted in the portal, so only its token counts.
        given = basic_auth(request.headers) if request.kind == "status" else None
        return (given is not None and secret_matches(given[0], self.name)
                and secret_matches(given[1], self.hooks.secret))

    def parse_status(self, fields: Mapping[str, str]) -> list[StatusUpdate]:
        if fields.get("direction", "send").strip().lower() != "send":
            raise WebhookError("a received message on the status URL: set the Inbound "
                               "Service's notification page to the inbound URL")
        ref = _required(fields, "msg_ref")
        status = _required(fields, "status").strip()
        if status.lower() == "unknown":
            return []
        if _failed(status):
            code = fields.get("aculab_msg_err", "").strip()
            return [StatusUpdate(ref, "failed", failure_reason(status, code))]
        if status.lower() not in STATES:
            raise WebhookError(f"unknown status {status!r}")
        return [StatusUpdate(ref, STATES[status.lower()])]

    def parse_inbound(self, fields: Mapping[str, str]) -> list[InboundSms]:
        if fields.get("direction", "receive").strip().lower() != "receive":
            raise WebhookError("a sent message's status on the inbound URL")
        ref = _required(fields, "msg_ref")
        text = fields.get("content")
        if text is None and fields.get("type", "sms").lower() != "mms":
            raise WebhookError("missing field 'content'")
        # Media stays in Aculab's store (30 days); say so rather than drop it silently.
        media = fields.get("msg_media", "").strip()
        if media:
            text = (f"{text}\n" if text else "") + f"[MMS media at Aculab: {media}]"
        if not text:
            raise WebhookError("the message has neither text nor media")
        return [InboundSms(carrier_id=ref, sender=_number(fields, "from"),
                           recipient=_number(fields, "to"), text=text, part=_part(fields))]

    def inbound_ack(self) -> Response:
        return Response(status_code=200)  # "The body should be empty"

    def status_ack(self) -> Response:
        return Response(status_code=200)


def failure_reason(status: str, code: str) -> str:
    """``failed (reason)`` and what ``aculab_msg_err`` adds, for the sender's notice."""
    said = "cancelled" if status.lower() == "cancelled" else status[len("failed"):]
    said = said.strip(" ():-")
    explained = ERRORS.get(code, "")
    reason = "; ".join(part for part in (said, explained) if part) or "failed at Aculab"
    return f"{reason} (Aculab error {code})" if explained else reason


def error_text(response: Answer) -> str:
    """The reason in Aculab's error answer: ``{"error": {"code", "text"}}`` or plain text."""
    body = _json(response)
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("text"):
        code = str(error.get("code", "")).strip()
        return f"{error['text']} ({code})" if code else str(error["text"])
    return response.text.strip()[:200] or f"HTTP {response.status_code}"


def _refused(response: Answer) -> bool:
    """Aculab looked at the request and said no (not credentials, not load)."""
    return 400 <= response.status_code < 500 and response.status_code not in (401, 408, 429)


def _failed(status: str) -> bool:
    # "failed (reason)" per the docs; "failed" alone or "failed: ..." accepted too.
    return status.lower().startswith("failed") or status.lower() == "cancelled"


def _json(response: Answer):
    try:
        return response.json()
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the stack
        return None


def _wire(e164: str) -> str:
    return e164.removeprefix("+")


def _digits(value) -> str:
    return str(value or "").strip().removeprefix("+")


def _required(fields: Mapping[str, str], name: str) -> str:
    value = fields.get(name, "")
    if not value.strip():
        raise WebhookError(f"missing field {name!r}")
    return value


def _number(fields: Mapping[str, str], name: str) -> str:
    value = _required(fields, name).strip()
    # Documented as full international without "+"; a "+" is accepted too.
    # Never parsed in a default region: 4520123456 is Danish, not American.
    try:
        return to_e164(value if value.startswith("+") else f"+{value}")
    except UnusableNumber:
        raise WebhookError(f"field {name!r}: {value!r} is not a phone number") from None


def _part(fields: Mapping[str, str]) -> InboundPart | None:
    group = fields.get("multipart_uid", "").strip()
    if not group:
        return None
    try:
        position, total = int(fields["multipart_pos"]), int(fields["multipart_count"])
    except (KeyError, ValueError):
        raise WebhookError("multipart_uid without a numeric multipart_pos and "
                           "multipart_count") from None
    if not 1 <= position <= total:
        raise WebhookError(f"multipart_pos {position} is not within 1..{total}")
    return InboundPart(group, position, total) if total > 1 else None


PROVIDER = AculabProvider
