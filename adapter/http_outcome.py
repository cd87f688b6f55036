"""What a failed outbound call means, decided once for carriers and pushes.

:func:`of_error` classifies the transport errors of ``http_client`` and
:func:`of_status` the HTTP statuses. Each caller maps a :class:`Failure` to
its own outcome (``providers.base.OUTCOMES``, ``push.client.classify``) and
reads the body of a 2xx itself (the carrier's or the push service's codes).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum

from .http_client import Answer, AnswerTimeout, NotSent, TransportError

# A Retry-After longer than a job lives (a day by default) only keeps it
# from ever being tried again; past this it is not believed.
MAX_RETRY_AFTER_SECONDS = 86_400.0


class Failure(StrEnum):
    TRANSIENT = "transient"  # nothing was sent, or the server said "later" (408, 5xx)
    AMBIGUOUS = "ambiguous"  # sent, and no answer: the server may have acted on it
    PERMANENT = "permanent"  # refused (4xx): the same request would be refused again
    # The credentials (401, 403) or the address (404, 405, a redirect, which
    # is not followed) are wrong: the operator has to fix the settings, the
    # request itself is not at fault.
    UNAUTHORIZED = "unauthorized"
    MISADDRESSED = "misaddressed"
    RATE_LIMITED = "rate-limited"  # 429: not before ``retry_after``


@dataclass(frozen=True)
class Verdict:
    failure: Failure
    reason: str
    retry_after: float | None = None  # seconds, from the answer's Retry-After


def of_error(error: TransportError, peer: str) -> Verdict:
    """``peer``: who was called, for the reason ("the push service")."""
    if isinstance(error, NotSent):
        return Verdict(Failure.TRANSIENT, f"cannot reach {peer}: {error}")
    if isinstance(error, AnswerTimeout):
        return Verdict(Failure.AMBIGUOUS, f"{peer} did not answer in time ({error})")
    return Verdict(Failure.AMBIGUOUS, f"no answer from {peer}: {error}")


def of_status(answer: Answer) -> Verdict | None:
    """The failure an HTTP status alone says; None for 2xx (read the body)."""
    code = answer.status_code
    if 200 <= code < 300:
        return None
    reason = f"HTTP {code}"
    if code == 429:
        return Verdict(Failure.RATE_LIMITED, reason, retry_after(answer))
    if code == 408 or code >= 500:
        return Verdict(Failure.TRANSIENT, reason, retry_after(answer) if code == 503 else None)
    if code in (401, 403):
        return Verdict(Failure.UNAUTHORIZED, reason)
    if code in (404, 405) or 300 <= code < 400:
        return Verdict(Failure.MISADDRESSED, reason)
    return Verdict(Failure.PERMANENT, reason)


def retry_after(answer: Answer, now: datetime | None = None) -> float | None:
    """``Retry-After`` in seconds from ``now``: delay-seconds or an HTTP-date
    (RFC 9110 10.2.3); None when absent or unreadable."""
    value = answer.headers.get("retry-after", "").strip()
    if value.isascii() and value.isdigit():
        seconds = float(value)  # inf for hundreds of digits: capped below
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:  # "-0000": UTC by RFC 5322
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)
