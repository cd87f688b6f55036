"""Plum DEV (hosting.plumvoice.com): Queue SMS out, Application URL and result URL in.

Wire format: PROVIDERS.md "Plum DEV" and seed 004. Plum reaches North
American numbers only and wants them as 11 digits with the leading 1.
Callbacks come to the number's Application URL (inbound: ``sms_message_id``,
``to``, ``from``, ``body``; answered with Plum's empty reply document) and to
the ``result_url`` sent with each message (status). Plum posts forms; flat
JSON objects with the same fields are accepted too, as are the result-URL
field spellings in ID_FIELDS / STATUS_FIELDS (Plum's names are unconfirmed).

Error mapping of a ``{"status":"failure","error":...}`` answer (the texts are
free-form, so they are matched by the words that carry the meaning):

- "unsubscribed" (the recipient texted STOP): permanent, and the pair is
  recorded as opted out so later sends are refused before reaching Plum;
- "is not a mobile number", "Invalid 'to' phone number", and any text we do
  not recognise: permanent with Plum's words. Plum answers a failure envelope
  when it validated and refused the request, so the same request would be
  refused again; the sender learns why at once instead of a day later;
- "Unauthorized access", or a problem with the ``from`` number (not an SMS
  number of the account): transient. The operator has to fix the account,
  but the message is not at fault, so it waits queued (like HTTP 401/403 in
  the base class) until fixed or until it ages out of the outbox;
- words of a temporary condition ("temporarily", "try again", "rate limit"...):
  transient.

Ambiguous sends (no answer in time) are sent again: Plum's Get Status
(``sms/status``) needs the ``sms_message_id`` that the lost answer carried.
Its message list (``sms/messages``) can be filtered by number, direction and
time, but the sources at hand do not name its query parameters, and it could
only be matched on number and text, which has no idempotency key; so
:meth:`reconcile` stays the default and a timed-out send may reach the
recipient twice (a duplicate rather than a silent loss).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping

from starlette.responses import Response

from ..http_client import Answer
from ..messaging.numbers import UnusableNumber, to_e164
from .base import (
    NANP_REGIONS, InboundSms, Outcome, OutboundSms, Provider, SendResult, StatusUpdate,
    WebhookError,
)
from .settings import Credential, ProviderSettings

log = logging.getLogger("adapter.providers.plum")

# The minimal document of Plum's SMS Reply Schema: no reply SMS (real
# replies go through the outbox like every other message).
EMPTY_REPLY = b'<?xml version="1.0"?><reply/>'

# Plum's statuses (and spellings seen in its docs: "undelivered") in ours.
# "received" is the last status an outbound message reaches, after "sent":
# the recipient's carrier took it, which is as close to "delivered" as Plum
# reports.
STATES = {
    "queued": "submitted", "accepted": "submitted", "pending": "submitted",
    "sending": "sent", "sent": "sent",
    "received": "delivered", "delivered": "delivered",
    "failed": "failed", "undelivered": "failed", "rejected": "failed", "error": "failed",
}
# Result-URL field names are unconfirmed: the documented-looking ones first.
ID_FIELDS = ("sms_message_id", "message_id", "id")
STATUS_FIELDS = ("status", "sms_status", "message_status")
REASON_FIELDS = ("error", "reason", "error_message", "status_message")

_OPTED_OUT = ("unsubscribed", "opted out", "opted-out")
_OPERATOR = ("unauthorized", "authenticat", "access denied", "'from'", "from number",
             "sms number")
_TEMPORARY = ("temporar", "try again", "try later", "timed out", "timeout", "unavailable",
              "rate limit", "too many", "busy")

# Plum's own failure samples are not valid JSON ({"error":""text""}, a
# trailing comma before "}"), so a body json.loads refuses is read loosely.
_LOOSE_STATUS = re.compile(r'"status"\s*:\s*"(\w+)"')
_LOOSE_ERROR = re.compile(r'"error"\s*:\s*"(.*?)"\s*[,}]', re.S)
_LOOSE_ID = re.compile(r'"sms_message_id"\s*:\s*"(\w+)"')


def plum_number(e164: str) -> str:
    digits = e164.removeprefix("+")
    if not (e164.startswith("+1") and len(digits) == 11 and digits.isdigit()):
        raise ValueError(f"Plum reaches North American numbers only, not {e164}")
    return digits


def _first(fields: Mapping[str, str], names: tuple[str, ...]) -> str:
    for name in names:
        value = fields.get(name)
        if value is not None and str(value).strip():
            return str(value).strip()
    return ""


def _has(text: str, words: tuple[str, ...]) -> bool:
    lowered = text.lower()
    return any(word in lowered for word in words)


def refused(error: str) -> SendResult:
    """The outcome of a failure envelope (the mapping in the module docstring)."""
    reason = f"Plum: {error}" if error else "Plum refused the message without a reason"
    if _has(error, _OPTED_OUT):
        return SendResult(Outcome.PERMANENT, reason=reason, opted_out=True)
    if _has(error, _OPERATOR) or _has(error, _TEMPORARY):
        return SendResult(Outcome.TRANSIENT, reason=reason)
    return SendResult(Outcome.PERMANENT, reason=reason)


def read_envelope(text: str) -> tuple[str, str, list[dict]] | None:
    """``(status, error, sms_messages)`` of an answer; None when it is none."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the stack
        data = None
    if isinstance(data, dict):
        result = data.get("result")
        messages = result.get("sms_messages") if isinstance(result, dict) else None
        if isinstance(result, dict) and isinstance(result.get("sms_message"), dict):
            messages = [result["sms_message"]]
        messages = [m for m in messages or () if isinstance(m, dict)]
        return str(data.get("status", "")).lower(), str(data.get("error") or ""), messages
    status = _LOOSE_STATUS.search(text)
    if status is None:
        return None
    error = _LOOSE_ERROR.search(text)
    messages = [{"sms_message_id": ref} for ref in _LOOSE_ID.findall(text)]
    return status[1].lower(), error[1].strip(' "') if error else "", messages


def classify(response: Answer) -> SendResult:
    """ACCEPTED / TRANSIENT / PERMANENT / AMBIGUOUS from Queue SMS's answer."""
    code = response.status_code
    if 300 <= code < 400:
        # Not followed: a POST redirected was not queued (base_url is wrong).
        where = response.headers.get("location", "?")
        return SendResult(Outcome.TRANSIENT, reason=f"Plum redirected to {where}: check base_url")
    by_status = Provider.http_failure(response, f"Plum answered HTTP {code}")
    if by_status is not None and by_status.outcome is Outcome.TRANSIENT:
        return by_status
    envelope = read_envelope(response.text)
    if envelope is None:
        if by_status is not None:  # refused, and not in Plum's words
            return by_status
        # A 2xx we cannot read: Plum may well have queued it.
        return SendResult(Outcome.AMBIGUOUS, reason=f"unreadable answer from Plum: "
                                                    f"{response.text[:200]!r}")
    status, error, messages = envelope
    if status == "failure":
        return refused(error)
    if status != "success":
        return SendResult(Outcome.AMBIGUOUS, reason=f"Plum answered status {status!r}")
    states = [STATES.get(str(m.get("status", "")).lower()) for m in messages]
    if messages and all(state == "failed" for state in states):
        # "Messages to unsubscribed numbers or landlines will fail, returning
        # the message delivery status undelivered" may come as a success
        # envelope whose messages already failed.
        return refused(error or str(messages[0].get("error") or messages[0].get("status")))
    refs = tuple(str(m["sms_message_id"]) for m in messages if m.get("sms_message_id"))
    return SendResult(Outcome.ACCEPTED, refs=refs,
                      reason="" if refs else "Plum queued it but named no sms_message_id")


class PlumSettings(ProviderSettings):
    # The account's API credentials (basic auth on Queue SMS).
    username: Credential
    password: Credential


class PlumProvider(Provider):
    type = "plum"
    settings_type = PlumSettings
    default_base_url = "https://hosting.plumvoice.com/ws/sms"
    # "North American numbers only" (11 digits with the leading 1).
    reachable = NANP_REGIONS
    default_countries = frozenset({"US", "CA"})

    async def submit(self, sms: OutboundSms) -> SendResult:
        try:
            form = {"to": plum_number(sms.recipient), "from": plum_number(sms.sender),
                    "body": sms.text}
        except ValueError as exc:
            return SendResult(Outcome.PERMANENT, reason=str(exc))
        # Plum splits over 160 characters itself: the whole text goes at once.
        if sms.status_url:
            form["result_url"] = sms.status_url
        response = await self.http.post(
            f"{self.base_url}/queue.json", form=form,
            auth=(self.setting("username"), self.setting("password")),
            timeout=self.timeout,
            headers={**self.request_headers(), "Accept": "application/json"},
        )
        return classify(response)

    # reconcile: the default (None, send again); see the module docstring.

    def parse_inbound(self, fields: Mapping[str, str]) -> list[InboundSms]:
        missing = [name for name in ("sms_message_id", "to", "from") if not fields.get(name)]
        if "body" not in fields:
            missing.append("body")
        if missing:
            raise WebhookError(f"Plum inbound message without {', '.join(missing)}")
        return [InboundSms(carrier_id=fields["sms_message_id"].strip(),
                           sender=self._number(fields, "from"),
                           recipient=self._number(fields, "to"), text=fields["body"])]

    def parse_status(self, fields: Mapping[str, str]) -> list[StatusUpdate]:
        ref, status = _first(fields, ID_FIELDS), _first(fields, STATUS_FIELDS).lower()
        if not ref or not status:
            raise WebhookError("Plum status callback without a message id and a status")
        state = STATES.get(status)
        if state is None:
            # A status we do not know is no reason to make Plum retry: note it.
            log.warning("%s: unknown status %r for %s; ignored", self.name, status, ref)
            return []
        reason = _first(fields, REASON_FIELDS) if state == "failed" else ""
        if state == "failed" and not reason:
            reason = f"Plum reports the message {status}"
        return [StatusUpdate(ref=ref, state=state, reason=reason,
                             opted_out=state == "failed" and _has(reason, _OPTED_OUT))]

    @staticmethod
    def _number(fields: Mapping[str, str], name: str) -> str:
        try:
            return to_e164(fields[name])
        except UnusableNumber as exc:
            raise WebhookError(f"Plum inbound {name!r}: {exc}") from None

    def inbound_ack(self) -> Response:
        return Response(EMPTY_REPLY, media_type="text/xml")


PROVIDER = PlumProvider
