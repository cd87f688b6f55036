"""A fake Plum DEV: Queue SMS as documented, checking every request it gets.

Served over real loopback HTTP with ``tests.conftest.serving``. Anything a
request does that Plum's documentation does not allow is appended to
``violations`` (the tests assert it stays empty). Answers are scripted per
test with ``script`` (one entry per coming request, then plain success);
``report`` and ``deliver`` call the adapter's webhooks the way Plum does.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

import httpx2
from lxml import etree
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

QUEUE_PATH = "/ws/sms/queue.json"
FIELDS = {"to", "from", "body", "result_url"}
REQUIRED = {"to", "from", "body"}
NANP_11 = re.compile(r"^1[2-9]\d{2}[2-9]\d{6}$")
# Plum splits longer bodies into several messages (seed 004); we assume one
# sms_messages entry per part, each with its own id (the provider takes one or many).
PART = 160

# The documented failure answers, byte for byte (their odd quoting included).
UNSUBSCRIBED = '{"status":"failure","error":""Attempt to send to unsubscribed recipient""}'
LANDLINE = '{"status":"failure","error":""To number: +1%s, is not a mobile number""}'
INVALID_TO = '{"status":"failure","error":"Invalid \'to\' phone number",}'
UNAUTHORIZED = '{"status":"failure","error":"Unauthorized access to sample service",}'


@dataclass
class Queued:
    form: dict[str, str]
    ids: list[str]
    late: bool = False  # answered after the client's timeout


def plum_ack_problems(response: httpx2.Response) -> list[str]:
    """What Plum would reject in our answer to an inbound POST."""
    problems = []
    if response.status_code != 200:
        problems.append(f"HTTP {response.status_code}")
    if "xml" not in response.headers.get("content-type", ""):
        problems.append(f"content type {response.headers.get('content-type')!r}")
    try:
        root = etree.fromstring(response.content, etree.XMLParser(resolve_entities=False))
        if root.tag != "reply":
            problems.append(f"root element <{root.tag}>")
    except etree.XMLSyntaxError as exc:
        problems.append(f"not XML: {exc}")
    return problems


class FakePlum:
    def __init__(self, username: str, password: str, numbers: set[str]):
        self.username, self.password = username, password
        self.numbers = numbers  # the account's SMS numbers, as Plum writes them
        self.requests: list[dict[str, str]] = []  # every Queue SMS form received
        self.queued: list[Queued] = []  # what Plum took and would send
        self.violations: list[str] = []
        self.script: list[str] = []
        self.slow_seconds = 2.0
        self.url = ""
        self._lock = threading.Lock()
        self.app = Starlette(routes=[
            Route(QUEUE_PATH, self.queue, methods=["POST"]),
            Route("/{path:path}", self.elsewhere,
                  methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]),
        ])

    def violation(self, text: str) -> None:
        with self._lock:
            self.violations.append(text)

    # -- Queue SMS ---------------------------------------------------------------------
    async def elsewhere(self, request: Request) -> Response:
        self.violation(f"{request.method} {request.url.path}: not a Plum SMS API call")
        return Response("Not Found", status_code=404)

    async def queue(self, request: Request) -> Response:
        form = self.check(request, await request.body())
        with self._lock:
            self.requests.append(form)
            answer = self.script.pop(0) if self.script else "success"
        if answer == "slow":
            await asyncio.sleep(self.slow_seconds)  # Plum got it; the answer is late
            return self.accept(form, late=True)
        if answer == "outage":
            return Response("<html>Service Unavailable</html>", status_code=503,
                            media_type="text/html")
        if answer != "success":
            body = {"unsubscribed": UNSUBSCRIBED, "invalid_to": INVALID_TO,
                    "unauthorized": UNAUTHORIZED,
                    "landline": LANDLINE % form.get("to", "")[1:]}[answer]
            return Response(body, media_type="application/json")
        return self.accept(form)

    def accept(self, form: dict[str, str], late: bool = False) -> Response:
        body = form.get("body", "")
        parts = [body[i:i + PART] for i in range(0, len(body), PART)] or [""]
        queued = Queued(form, [secrets.token_hex(16) for _ in parts], late)
        with self._lock:
            self.queued.append(queued)
        messages = [{"sms_message_id": ref, "to": form.get("to"), "from": form.get("from"),
                     "body": part, "request_timestamp": int(time.time()),
                     "result_url": form.get("result_url"), "status": "queued"}
                    for ref, part in zip(queued.ids, parts)]
        return Response(json.dumps({"status": "success", "error": "",
                                    "result": {"sms_messages": messages}}),
                        media_type="application/json")

    def check(self, request: Request, raw: bytes) -> dict[str, str]:
        """The request as Queue SMS documents it; returns its form."""
        problems = []
        if request.headers.get("authorization") != basic(self.username, self.password):
            problems.append(f"authorization {request.headers.get('authorization')!r}")
        media_type = request.headers.get("content-type", "").split(";")[0].strip()
        if media_type != "application/x-www-form-urlencoded":
            problems.append(f"content type {media_type!r}")
        agent = request.headers.get("user-agent", "")
        if not agent or agent.startswith("python-httpx"):
            problems.append(f"user agent {agent!r}")
        if request.url.query:
            problems.append(f"query string {request.url.query!r}")
        try:
            pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError) as exc:
            pairs = []
            problems.append(f"unparseable form: {exc}")
        form = dict(pairs)
        if len(form) != len(pairs):
            problems.append("a field given twice")
        if unknown := set(form) - FIELDS:
            problems.append(f"unknown fields {sorted(unknown)}")
        if missing := REQUIRED - set(form):
            problems.append(f"missing fields {sorted(missing)}")
        for name in ("to", "from"):
            if name in form and not NANP_11.match(form[name]):
                problems.append(f"{name}={form[name]!r} is not 1 + 10 digits")
        if "from" in form and form["from"] not in self.numbers:
            problems.append(f"from={form['from']!r} is not an SMS number of the account")
        if "body" in form and not form["body"]:
            problems.append("empty body")
        if "result_url" in form and urlsplit(form["result_url"]).scheme not in ("http", "https"):
            problems.append(f"result_url {form['result_url']!r} is not an HTTP URL")
        for problem in problems:
            self.violation(f"queue.json: {problem}")
        return form

    # -- calling the adapter ---------------------------------------------------------------
    def report(self, ref: str, status: str, url: str | None = None,
               **fields: str) -> httpx2.Response:
        """Plum posts a message's latest status to the result_url it was queued with."""
        if url is None:
            url = next(q.form["result_url"] for q in self.queued if ref in q.ids)
        return post(url, data={"sms_message_id": ref, "status": status, **fields})

    def deliver(self, url: str, sender: str, to: str, body: str,
                ref: str | None = None) -> httpx2.Response:
        """An inbound SMS, posted to the number's Application URL."""
        return post(url, data={"sms_message_id": ref or secrets.token_hex(16), "to": to,
                               "from": sender, "body": body})


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def post(url: str, **kwargs) -> httpx2.Response:
    with httpx2.Client(timeout=10.0) as client:
        return client.post(url, **kwargs)
