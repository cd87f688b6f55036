"""voip.ms-style DID provider (PROVIDERS.md, seed 002, the provider's API docs).

- Send: ``{base_url}/rest.php`` with ``api_username``, ``api_password``,
  ``method=sendSMS``, ``did`` and ``dst`` (10-digit NANP) and ``message``
  (at most 160 characters). The API takes GET or POST; we POST a form so the
  password and the text stay out of URLs and the access logs that keep them.
  Answers: HTTP 200, ``{"status": "success", "sms": 23434}`` or ``{"status": "<error>"}``.
- Longer text goes as independent, ordered parts (no concatenation headers
  at this API), one request each; the job's ``parts_done``/``refs`` carry the
  progress across retries so an accepted part is never sent twice.
- Receive: the "SMS URL Callback" is a GET to a template the operator pastes
  in the portal (``portal_urls``); the page must answer the plain text ``ok``
  or the same message comes back every 30 minutes.
- No delivery receipts exist here, so messages stop at "submitted".
- After an ambiguous send, ``getSMS`` (the account's message history) tells
  whether the part went out after all.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from ..http_client import Answer, TransportError
from ..messaging import segments
from ..messaging.numbers import UnusableNumber, to_e164
from .base import (
    NANP_REGIONS, InboundSms, Outcome, OutboundSms, Provider, SendResult, WebhookError,
)
from .settings import Credential, ProviderSettings

log = logging.getLogger("adapter.providers.voipms")

# sendSMS error statuses from the API's error table, and what a retry can do.
# Permanent: the message or its addressing is at fault; no retry will help.
PERMANENT_STATUSES = {
    "invalid_dst": "not a valid destination number",
    "missing_dst": "no destination number",
    "invalid_contact": "not a valid contact number",
    "invalid_to_number": "not a valid destination number",
    "invalid_did": "the sending number is not an SMS-enabled DID of this account",
    "missing_did": "no sending number",
    "invalid_from_number": "not a valid sender number",
    "missing_message": "no message text",
    "missing_sms": "no message text",
    "message_empty": "the message is empty",
    "invalid_sms": "not a valid SMS",
    "sms_toolong": "the message exceeds 160 characters",
    "missing_method": "the request named no API method",
    "invalid_method": "the API does not know sendSMS",
    "missing_params": "required parameters were missing",
}
# Transient: nothing is wrong with the message. The account or the carrier
# needs time or the operator (credentials, IP allow-list, funds): keep the
# message queued until that is fixed or the job ages out.
TRANSIENT_STATUSES = {
    "invalid_credentials": "API username or password is wrong (fix the provider settings)",
    "missing_credentials": "API username or password missing (fix the provider settings)",
    "api_not_enabled": "API access is not enabled on the account",
    "ip_not_enabled": "this server's IP address is not allowed to use the API",
    "non_sufficient_funds": "the account's balance is too low",
    "api_limit_exceeded": "too many API requests this minute",
    "limit_reached": "the daily SMS limit of the account is reached",
    "method_maintenance": "the API method is under maintenance",
    "provider_outofservice": "an upstream carrier is out of service",
    "unavailable_info": "the service is unavailable at the moment",
    "tls_error": "a TLS error at the carrier",
    "sms_wait_message": "SMS was just switched on or off for the number; wait a minute",
    # "Not sent" means nothing reached a phone, and the docs give no reason
    # to blame the message, so sending again is both safe and worth it.
    "sms_failed": "the carrier could not send the message this time",
}
# Unconfirmed: the docs name no opt-out status. Accept the usual spellings
# of "the recipient unsubscribed / blocked us" and record the opt-out.
_OPTED_OUT = re.compile(r"unsubscri|opt_?out|opted|blocked|blacklist|stopped")
# Undocumented statuses that say "not now" rather than "never".
_NOT_NOW = re.compile(r"limit|too_?many|unavailable|maintenance|out_?of_?service"
                      r"|timeout|try_?again|later|busy|temporar")

# NANP: +1, area code and exchange each starting 2-9.
_NANP = re.compile(r"^\+1([2-9]\d{2}[2-9]\d{6})$")
_INBOUND_REQUIRED = ("id", "from", "to", "message")
_INBOUND_TEMPLATE = "&id={ID}&date={TIMESTAMP}&from={FROM}&to={TO}&message={MESSAGE}"
# getSMS dates have whole seconds and come from another clock; a little
# slack, but small: an identical text sent just before the attempt must not
# be taken for this one (a missed match only costs a duplicate, a false one
# would lose the message).
_CLOCK_SLACK = timedelta(seconds=2)
_HISTORY_LIMIT = 200


class _CannotTell(Exception):
    """getSMS gave no usable answer."""


def nanp_digits(number: str) -> str | None:
    """The 10 digits the API wants for an E.164 NANP number, else None."""
    match = _NANP.match(number)
    return match.group(1) if match else None


def classify_status(status: str) -> SendResult:
    """The outcome of a sendSMS answer whose status is not ``success``."""
    if status in PERMANENT_STATUSES:
        return SendResult(Outcome.PERMANENT, reason=f"{status}: {PERMANENT_STATUSES[status]}")
    if status in TRANSIENT_STATUSES:
        return SendResult(Outcome.TRANSIENT, reason=f"{status}: {TRANSIENT_STATUSES[status]}")
    lowered = status.lower()
    if _OPTED_OUT.search(lowered):
        return SendResult(Outcome.PERMANENT, reason=f"{status}: the recipient has opted out",
                          opted_out=True)
    if _NOT_NOW.search(lowered):
        return SendResult(Outcome.TRANSIENT, reason=status)
    # An error we do not know must not keep the message retrying for a day.
    return SendResult(Outcome.PERMANENT, reason=status or "empty status")


class VoipmsSettings(ProviderSettings):
    # The REST API's credentials, sent with every call.
    api_username: Credential
    api_password: Credential


class VoipmsProvider(Provider):
    type = "voipms"
    settings_type = VoipmsSettings
    default_base_url = "https://voip.ms/api/v1"
    # The API takes 10-digit NANP numbers; voip.ms documents SMS to the US
    # and Canada only (other +1 regions can be listed in ``countries``).
    reachable = NANP_REGIONS
    default_countries = frozenset({"US", "CA"})

    def segment_count(self, text: str) -> int:
        return len(segments.split(text))  # independent parts, as submit() sends them

    @property
    def endpoint(self) -> str:
        return f"{self.base_url}/rest.php"

    async def _call(self, method: str, **params: str) -> Answer:
        auth = {"api_username": self.setting("api_username"),
                "api_password": self.setting("api_password")}
        return await self.http.post(self.endpoint, form={**auth, "method": method, **params},
                                    timeout=self.timeout, headers=self.request_headers())

    # -- sending ---------------------------------------------------------------------
    async def submit(self, sms: OutboundSms) -> SendResult:
        did, dst = nanp_digits(sms.sender), nanp_digits(sms.recipient)
        if dst is None:
            return SendResult(Outcome.PERMANENT, reason=(
                f"{sms.recipient} is outside the US and Canada (+1): "
                f"{self.name} sends only to NANP numbers"))
        if did is None:
            return SendResult(Outcome.PERMANENT, reason=(
                f"{sms.sender} is not a US or Canadian number: {self.name} cannot send from it"))
        parts = segments.split(sms.text)
        if not parts:
            return SendResult(Outcome.PERMANENT, reason="the message is empty")
        done, refs = sms.parts_done, sms.refs
        while done < len(parts):
            result = await self._send_part(did, dst, parts[done])
            if result.outcome is not Outcome.ACCEPTED:
                return replace(result, parts_done=done, refs=refs)
            done, refs = done + 1, refs + result.refs
        return SendResult(Outcome.ACCEPTED, refs=refs, parts_done=done)

    async def _send_part(self, did: str, dst: str, text: str) -> SendResult:
        # Transport errors are caught here, not in Provider.send, so that the
        # parts already accepted in this attempt are not forgotten.
        try:
            response = await self._call("sendSMS", did=did, dst=dst, message=text)
        except TransportError as exc:
            return self.unanswered(exc)
        return self.classify(response)

    def classify(self, response: Answer) -> SendResult:
        """The outcome of one sendSMS answer (one part)."""
        refused = self.http_failure(response, f"HTTP {response.status_code} from {self.name}")
        if refused is not None:
            return refused
        body = _json_object(response)
        status = body.get("status") if body else None
        if not isinstance(status, str):
            # It reached the carrier and the answer is unreadable: maybe sent.
            return SendResult(Outcome.AMBIGUOUS,
                              reason=f"unreadable answer from {self.name}: {response.text[:200]!r}")
        if status.strip() != "success":
            return classify_status(status.strip())
        ref = body.get("sms")
        if isinstance(ref, bool) or not isinstance(ref, (int, str)) or str(ref).strip() in ("", "0"):
            return SendResult(Outcome.AMBIGUOUS, reason=f"{self.name} said success without an sms id")
        return SendResult(Outcome.ACCEPTED, refs=(str(ref).strip(),))

    # -- after an ambiguous send ---------------------------------------------------
    async def reconcile(self, sms: OutboundSms) -> SendResult | None:
        """Look in the account's sent history for the part whose answer was
        lost: sent from our DID to that contact, same text, on or after the
        attempt began. Found: count it and send the rest. Not found: None
        (send it again). History unreadable: still ambiguous, ask next time."""
        did, dst = nanp_digits(sms.sender), nanp_digits(sms.recipient)
        parts = segments.split(sms.text)
        if sms.ambiguous_since is None or did is None or dst is None \
                or sms.parts_done >= len(parts):
            return None
        try:
            ref = await self._find_sent(did, dst, parts[sms.parts_done], sms.ambiguous_since,
                                        exclude=set(sms.refs))
        except _CannotTell as reason:
            return SendResult(Outcome.AMBIGUOUS, refs=sms.refs, parts_done=sms.parts_done,
                              reason=f"cannot tell whether {self.name} sent it: {reason}")
        if ref is None:
            log.info("%s: message %d part %d not in the sent history; sending again",
                     self.name, sms.message_id, sms.parts_done + 1)
            return None
        log.info("%s: message %d part %d was sent after all, as %s",
                 self.name, sms.message_id, sms.parts_done + 1, ref)
        progressed = replace(sms, parts_done=sms.parts_done + 1, refs=sms.refs + (ref,))
        if progressed.parts_done == len(parts):
            return SendResult(Outcome.ACCEPTED, refs=progressed.refs, parts_done=len(parts))
        return await self.send(progressed)

    async def _find_sent(self, did: str, dst: str, text: str, since: datetime,
                         exclude: set[str]) -> str | None:
        since = since.astimezone(UTC).replace(microsecond=0) - _CLOCK_SLACK
        today = datetime.now(UTC).date()
        # Whole days; whether the API reads them in UTC or its own zone is
        # unconfirmed, so a day of margin, and the exact cut is made below.
        first = max(since.date() - timedelta(days=1), today - timedelta(days=90))
        try:
            response = await self._call(
                "getSMS", did=did, contact=dst, type="0", timezone="0",
                limit=str(_HISTORY_LIMIT), **{"from": first.isoformat(), "to": today.isoformat()})
        except TransportError as exc:
            raise _CannotTell(repr(exc)) from None
        body = _json_object(response) if response.is_success else None
        status = body.get("status") if body else None
        if status == "no_sms":
            return None
        if status != "success" or not isinstance(body.get("sms"), list):
            raise _CannotTell(f"HTTP {response.status_code}, status {status!r}")
        matches = []
        for item in body["sms"]:
            if not isinstance(item, dict) or str(item.get("id", "")).strip() in exclude | {""}:
                continue
            if str(item.get("type", "0")) != "0" or _digits(item.get("did")) != did \
                    or _digits(item.get("contact")) != dst:
                continue
            # Unconfirmed whether the carrier trims the text it stores; the
            # splitter leaves a part's trailing space in place.
            if str(item.get("message", "")).strip() != text.strip():
                continue
            sent_at = _history_time(item.get("date"))
            if sent_at is not None and sent_at >= since:
                matches.append((sent_at, str(item["id"]).strip()))
        return min(matches)[1] if matches else None

    # -- webhooks ---------------------------------------------------------------------
    def parse_inbound(self, fields: Mapping[str, str]) -> list[InboundSms]:
        # The callback has no part numbers: a long text the carrier splits
        # arrives as separate messages, each stored as it comes. ``date`` is
        # in the carrier's own (unconfirmed) zone and not needed: optional.
        missing = [name for name in _INBOUND_REQUIRED if name not in fields]
        if missing:
            raise WebhookError(f"{self.type} callback without {', '.join(missing)}")
        carrier_id = fields["id"].strip()
        if not carrier_id or carrier_id == "{ID}":
            raise WebhookError(f"{self.type} callback with an empty id")
        return [InboundSms(carrier_id=carrier_id, sender=_inbound_number(fields, "from"),
                           recipient=_inbound_number(fields, "to"), text=fields["message"])]

    def portal_urls(self) -> dict[str, str]:
        return {
            # The "SMS URL Callback" field takes this template; the carrier
            # fills in the placeholders (kept literally here).
            "inbound": self.hooks.inbound + _INBOUND_TEMPLATE,
            # voip.ms sends no delivery reports, so nothing ever calls this;
            # printed anyway because `provider urls` always lists both lines.
            "status": self.hooks.status,
        }


def _json_object(response: Answer) -> dict | None:
    try:
        body = response.json()
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the stack
        return None
    return body if isinstance(body, dict) else None


def _digits(value) -> str:
    digits = re.sub(r"\D", "", str(value or ""))
    return digits[1:] if len(digits) == 11 and digits.startswith("1") else digits


def _history_time(value) -> datetime | None:
    """A getSMS ``date``: we ask for ``timezone=0``, so it is UTC."""
    try:
        return datetime.strptime(str(value), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def _inbound_number(fields: Mapping[str, str], name: str) -> str:
    # 10 digits by the docs; 11 with the leading 1 or +1 also accepted.
    try:
        return to_e164(fields[name])
    except UnusableNumber as exc:
        raise WebhookError(f"{name}: {exc}") from None


PROVIDER = VoipmsProvider
