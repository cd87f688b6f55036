"""Phone numbers: everything inside the adapter is E.164."""

from __future__ import annotations

import functools
import re
from urllib.parse import unquote

import phonenumbers

# sip:+12025550102@host;user=phone, tel:+1-202-555-0102, sips:...
_URI_SCHEME = re.compile(r"^(?:sips?|tel):", re.IGNORECASE)


class UnusableNumber(ValueError):
    """The text is not a phone number we can deliver to; ``reason`` says why."""

    def __init__(self, text: str, reason: str):
        super().__init__(f"{text!r} {reason}")
        self.reason = reason


# Far above any notation of a number or SIP address; bounds what the cache
# below keeps (a padded or long-hosted text would otherwise be kept whole).
MAX_TEXT_LENGTH = 1024


def to_e164(text: str, default_region: str = "US") -> str:
    """Normalise any common notation of a phone number to E.164.

    Accepts ``+1 (202) 555-0102``, ``12025550102``, ``2025550102`` (in the
    default region), ``tel:+12025550102``, ``sip:+12025550102@host`` and a
    SIP address without its scheme, ``+12025550102@host``. A number written
    without ``+`` or an international prefix must be valid in the default
    region.
    """
    if len(text) > MAX_TEXT_LENGTH:
        raise UnusableNumber(text[:40] + "...", "is too long to be a phone number")
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
        raise UnusableNumber(text, "is not a phone number")
    number = _parse(candidate, default_region)
    if number.country_code_source in _INTERNATIONAL:
        # Written as international: any possible number (the metadata of
        # valid ranges lags behind new allocations abroad).
        if not phonenumbers.is_possible_number(number):
            raise UnusableNumber(text, "is not a possible phone number")
    elif not phonenumbers.is_valid_number(number):
        # Without "+" or an international prefix a number is national: read
        # in the default region only, never guessed to be international
        # ("20255550102" is a typo in the US, not a number in Egypt).
        raise UnusableNumber(text, f"is not a valid number in {default_region}; write "
                                   "numbers of other countries with + and the country code")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# How the country code was given: "+44...", or "011 44..." from the US.
_INTERNATIONAL = frozenset({
    phonenumbers.CountryCodeSource.FROM_NUMBER_WITH_PLUS_SIGN,
    phonenumbers.CountryCodeSource.FROM_NUMBER_WITH_IDD,
})


def _parse(candidate: str, default_region: str) -> phonenumbers.PhoneNumber:
    try:
        # keep_raw_input: records how the country code was found.
        return phonenumbers.parse(candidate, default_region, keep_raw_input=True)
    except phonenumbers.NumberParseException as exc:
        raise UnusableNumber(candidate, f"is not a phone number ({exc})") from None


def region_of(e164: str) -> str | None:
    """The ISO country (region) code of an E.164 number; None when the number
    is in no region's valid ranges."""
    return phonenumbers.region_code_for_number(phonenumbers.parse(e164))


def is_premium_rate(e164: str) -> bool:
    """A premium-rate number (the destinations of SMS pumping fraud)."""
    number = phonenumbers.parse(e164)
    return phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.PREMIUM_RATE
