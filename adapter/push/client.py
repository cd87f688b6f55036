"""The client for the Acrobits push service (``pnm2/send``, ACROBITS.md 3b).

One JSON POST per notification. The service answers HTTP 2xx with
``{"status": 200|400|404|500, "response": "..."}``: the ``status`` in the
body, not the HTTP status, says what happened to the push.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from enum import StrEnum

from ..http_client import USER_AGENT, Answer, HttpClient, Timeout, TransportError
from ..http_outcome import Failure, of_error, of_status

log = logging.getLogger("adapter.push")


class PushOutcome(StrEnum):
    DELIVERED = "delivered"  # the service took it
    GONE = "gone"  # status 404: the token is no longer registered
    REJECTED = "rejected"  # the service refused this request; sending it again won't help
    TRANSIENT = "transient"  # 5xx, a timeout, a broken answer: try again later


@dataclass(frozen=True)
class PushResult:
    outcome: PushOutcome
    reason: str = ""
    retry_after: float | None = None  # seconds, from the answer's Retry-After


def _reply_status(response: Answer) -> tuple[int | None, str]:
    """``status`` and ``response`` of the service's JSON reply (None: unreadable)."""
    try:
        data = response.json()
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the stack
        return None, response.text[:200]
    if not isinstance(data, dict):
        return None, response.text[:200]
    status = data.get("status")
    detail = data.get("response")
    detail = detail if isinstance(detail, str) else json.dumps(detail)[:200]
    # isascii: "²" is a digit to isdigit() but not to int(); and no status
    # has thousands of digits (which int() refuses).
    if isinstance(status, str) and status.strip().isascii() and status.strip().isdigit():
        status = int(status) if len(status.strip()) < 10 else None
    if isinstance(status, bool) or not isinstance(status, int):
        return None, detail
    return status, detail


def classify(response: Answer) -> PushResult:
    code = response.status_code
    verdict = of_status(response)
    if verdict is not None and verdict.failure in (Failure.TRANSIENT, Failure.RATE_LIMITED):
        return PushResult(PushOutcome.TRANSIENT, verdict.reason, verdict.retry_after)
    if 300 <= code < 400:
        return PushResult(PushOutcome.REJECTED, f"HTTP {code} (redirects are not followed)")
    if verdict is not None:
        # The service answers 400 to a body or method it cannot take: ours is
        # wrong, and would be wrong again. It takes no credentials, so a 401
        # or 403 (a proxy's?) is no setting to wait for either.
        return PushResult(PushOutcome.REJECTED, f"{verdict.reason}: {response.text[:200]}")
    status, detail = _reply_status(response)
    if status is None:
        # A 2xx we cannot read (a proxy's page?): the push may or may not have
        # gone out. Trying again is safe, the app ignores a repeated Id.
        return PushResult(PushOutcome.TRANSIENT, f"unreadable reply: {detail!r}")
    if 200 <= status < 300:
        return PushResult(PushOutcome.DELIVERED, detail)
    if status == 404:
        return PushResult(PushOutcome.GONE, f"status 404: {detail}")
    if status >= 500:
        return PushResult(PushOutcome.TRANSIENT, f"status {status}: {detail}")
    return PushResult(PushOutcome.REJECTED, f"status {status}: {detail}")


class PushClient:
    """Sends notifications to ``url`` through the shared HTTP client."""

    def __init__(self, http: HttpClient, url: str, timeout_seconds: float):
        self.http = http
        self.url = url
        self.timeout = Timeout(timeout_seconds)

    async def send(self, notification: dict) -> PushResult:
        body = json.dumps(notification, ensure_ascii=False).encode("utf-8")
        try:
            response = await self.http.post(
                self.url, content=body, timeout=self.timeout,
                headers={"Content-Type": "application/json", "User-Agent": USER_AGENT})
        except TransportError as error:
            # Sent or not, trying again is safe: the app ignores a repeated Id.
            return PushResult(PushOutcome.TRANSIENT, of_error(error, "the push service").reason)
        result = classify(response)
        if result.outcome is not PushOutcome.DELIVERED:
            log.info("push to %s: %s (%s)", notification.get("Selector"), result.outcome,
                     result.reason)
        return result
