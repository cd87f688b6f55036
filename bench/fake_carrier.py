#!/usr/bin/env python3
"""A minimal, fast fake voip.ms-type carrier for bench_carriers.py.

    python bench/fake_carrier.py --port 8099 [--delay 2.0] [--username U] [--password P]

It speaks the documented wire format of the voip.ms REST API, the part the
adapter's ``voipms`` provider uses to send: ``GET`` or ``POST``
``/api/v1/rest.php`` (a form body, or the query string for GET) with
``api_username``, ``api_password``, ``method=sendSMS``, ``did`` and ``dst``
(10-digit NANP numbers) and ``message`` (1-160 characters). It answers
HTTP 200 ``{"status": "success", "sms": N}`` after ``--delay`` seconds, or
``{"status": "<error>"}`` at once for a request the real API would refuse;
those are counted as violations (``tests/providers/fake_voipms.py`` is the
strict fake the tests use; this one is small so that it is not the
bottleneck when the dispatcher is measured).

``GET /stats`` answers what it saw as JSON: ``sends`` (accepted sendSMS),
``violations`` (count and the first few), ``first_at``/``last_at``
(``time.monotonic()`` of the first and latest accepted send), ``in_flight``
and ``max_in_flight`` (sends waiting out the delay), ``recipients`` (distinct
``dst``), and ``order_errors``: a message text ending in ``#N`` must carry a
larger N than the previous one to the same ``dst`` (the adapter sends each
conversation's jobs one at a time, in order).

Serves on 127.0.0.1 only, with uvicorn (uvloop, httptools) like ``serve``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from urllib.parse import parse_qsl

import uvicorn

API_PATH = "/api/v1/rest.php"
TEN_DIGITS = re.compile(r"^[2-9]\d{2}[2-9]\d{6}$")
SEQUENCE = re.compile(r"#(\d+)$")
FORM = "application/x-www-form-urlencoded"


class FakeCarrier:
    def __init__(self, username: str, password: str, delay: float):
        self.username, self.password, self.delay = username, password, delay
        self.sends = 0
        self.violations = 0
        self.violation_samples: list[str] = []
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.in_flight = self.max_in_flight = 0
        self.last_sequence: dict[str, int] = {}
        self.recipients: set[str] = set()
        self.order_errors = 0

    def stats(self) -> dict:
        return {"sends": self.sends, "violations": self.violations,
                "violation_samples": self.violation_samples, "first_at": self.first_at,
                "last_at": self.last_at, "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight, "recipients": len(self.recipients),
                "order_errors": self.order_errors, "delay": self.delay, "now": time.monotonic()}

    def _violation(self, text: str) -> dict:
        self.violations += 1
        if len(self.violation_samples) < 5:
            self.violation_samples.append(text)
        return {"status": text.split(":", 1)[0]}

    async def send_sms(self, fields: dict[str, str]) -> dict:
        if fields.get("method") != "sendSMS":
            return self._violation(f"invalid_method: {fields.get('method')!r}")
        if (fields.get("api_username"), fields.get("api_password")) != (self.username,
                                                                         self.password):
            return self._violation("invalid_credentials: wrong or missing API credentials")
        for name in ("did", "dst"):
            if not TEN_DIGITS.match(fields.get(name, "")):
                return self._violation(f"invalid_{name}: {fields.get(name)!r} is not 10 digits")
        message = fields.get("message", "")
        if not message:
            return self._violation("message_empty: no message text")
        if len(message) > 160:
            return self._violation(f"sms_toolong: {len(message)} characters")
        dst = fields["dst"]
        sequence = SEQUENCE.search(message)
        if sequence:
            number = int(sequence.group(1))
            if number <= self.last_sequence.get(dst, -1):
                self.order_errors += 1
            self.last_sequence[dst] = number
        self.recipients.add(dst)
        self.sends += 1
        sms_id = 23434 + self.sends
        now = time.monotonic()
        self.first_at = self.first_at or now
        self.last_at = now
        if self.delay > 0:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                await asyncio.sleep(self.delay)
            finally:
                self.in_flight -= 1
        return {"status": "success", "sms": sms_id}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        method, path = scope["method"], scope["path"]
        status, answer = 200, None
        if path == API_PATH and method in ("GET", "POST"):
            headers = dict(scope["headers"])
            media_type = headers.get(b"content-type", b"").split(b";")[0].strip().decode()
            if method == "GET":
                fields = dict(parse_qsl(scope["query_string"].decode(), keep_blank_values=True))
            elif media_type == FORM:
                fields = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
            else:
                fields = None
                answer = self._violation(f"missing_method: POST of {media_type!r}, not a form "
                                         "(this fake takes only url-encoded forms)")
            if fields is not None:
                answer = await self.send_sms(fields)
        elif path == "/stats" and method == "GET":
            answer = self.stats()
        else:
            status, answer = 404, {"status": "not_found"}
        payload = json.dumps(answer).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.0,
                        help="seconds before answering each sendSMS (0)")
    parser.add_argument("--username", default="bench@example.com")
    parser.add_argument("--password", default="bench-api-secret")
    args = parser.parse_args()
    carrier = FakeCarrier(args.username, args.password, args.delay)
    uvicorn.run(carrier, host="127.0.0.1", port=args.port, lifespan="off", access_log=False,
                log_config=None, server_header=False, backlog=4096)


if __name__ == "__main__":
    main()
