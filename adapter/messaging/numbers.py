"""Phone numbers: everything inside the adapter is E.164."""

from __future__ import annotations

import functools
import re
from urllib.parse import unquote

import phonenumbers

# sip:+12025550102@host;user=phone, tel:+1-202-555-0102, sips:...
_URI_SCHEME = re.compile(r"^(?:sips?|tel):", re.IGNORECASE)


class UnusableNumber(ValueError):
    """The text is not a phone number we can deliver to."""


# Far above any notation of a number or SIP address; bounds what the cache
# below keeps (a padded or long-hosted text would otherwise be kept whole).
MAX_TEXT_LENGTH = 1024


def to_e164(text: str, default_region: str = "US") -> str:
    """Normalise any common notation of a phone number to E.164.

    Accepts ``+1 (202) 555-0102``, ``12025550102``, ``2025550102`` (in the
    default region), ``tel:+12025550102``, ``sip:+12025550102@host`` and a
    SIP address without its scheme, ``+12025550102@host``.
    """
    if len(text) > MAX_TEXT_LENGTH:
        raise UnusableNumber(f"{text[:40]!r}... is too long to be a phone number")
    return _to_e164(text, default_region)


@functools.lru_cache(maxsize=4096)  # parsing costs more than the rest of a send
def _to_e164(text: str, default_region: str) -> str:
    candidate = unquote(text.strip())
    if _URI_SCHEME.match(candidate):
        candidate = _URI_SCHEME.sub("", candidate, count=1)
    # The app's %sms_to% may be a SIP address, with or without "sip:"; the
    # number is its user part.
    candidate = candidate.split(";", 1)[0].split("@", 1)[0]
    if not candidate or not re.search(r"\d", candidate):
        raise UnusableNumber(f"{text!r} is not a phone number")
    number = _parse(candidate, default_region)
    if not phonenumbers.is_possible_number(number):
        raise UnusableNumber(f"{text!r} is not a possible phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _parse(candidate: str, default_region: str) -> phonenumbers.PhoneNumber:
    try:
        number = phonenumbers.parse(candidate, default_region)
    except phonenumbers.NumberParseException as exc:
        raise UnusableNumber(f"{candidate!r} is not a phone number ({exc})") from None
    if phonenumbers.is_possible_number(number) or candidate.startswith("+"):
        return number
    # "12025550102": a full international number typed without "+".
    try:
        return phonenumbers.parse("+" + candidate, None)
    except phonenumbers.NumberParseException:
        return number
