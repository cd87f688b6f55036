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

import httpx2

from ..providers.base import USER_AGENT

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


def _reply_status(response: httpx2.Response) -> tuple[int | None, str]:
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


def classify(response: httpx2.Response) -> PushResult:
    code = response.status_code
    if code in (408, 429) or code >= 500:
        return PushResult(PushOutcome.TRANSIENT, f"HTTP {code}")
    if code >= 400:
        # The service answers 400 to a body or method it cannot take: ours is
        # wrong, and would be wrong again.
        return PushResult(PushOutcome.REJECTED, f"HTTP {code}: {response.text[:200]}")
    if code >= 300:
        return PushResult(PushOutcome.REJECTED, f"HTTP {code} (redirects are not followed)")
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

    def __init__(self, http: httpx2.AsyncClient, url: str, timeout_seconds: float):
        self.http = http
        self.url = url
        self.timeout = httpx2.Timeout(timeout_seconds, connect=min(timeout_seconds, 5.0))

    async def send(self, notification: dict) -> PushResult:
        body = json.dumps(notification, ensure_ascii=False).encode("utf-8")
        try:
            response = await self.http.post(
                self.url, content=body, timeout=self.timeout,
                headers={"Content-Type": "application/json", "User-Agent": USER_AGENT})
        except httpx2.TimeoutException:
            return PushResult(PushOutcome.TRANSIENT, "the push service did not answer in time")
        except httpx2.TransportError as error:
            return PushResult(PushOutcome.TRANSIENT,
                              f"cannot reach the push service: {error.__class__.__name__}: {error}")
        result = classify(response)
        if result.outcome is not PushOutcome.DELIVERED:
            log.info("push to %s: %s (%s)", notification.get("Selector"), result.outcome,
                     result.reason)
        return result
