"""A fake Acrobits push service (``pnm2/send``) that checks every request.

Serve ``FakePushService().app`` with ``tests.conftest.serving`` and point
``[push] url`` at ``{url}/pnm2/send``. It answers like the real service
(ACROBITS.md 3b): HTTP 200 with ``{"status": 200|400|404|500, "response":
...}``, and HTTP 400 for a body that is not JSON, a wrong content type or a
wrong method. Anything our client should never send lands in
``violations``; the fixture asserts it stays empty.

Answers are scripted with :meth:`then`; unscripted requests succeed, except
for tokens in ``unregistered`` (status 404).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque

import httpx2
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from adapter.store import Store
from adapter.store.outbox import utc
from adapter.store.schema import jobs, push_tokens
from tests.conftest import serving

PATH = "/pnm2/send"
VERB = "NotifyTextMessage"
STRINGS = ("AppId", "DeviceToken", "Selector", "Id", "ThreadId", "UserName")
OPTIONAL_STRINGS = ("UserDisplayName", "Message", "Sound")
FIELDS = {"verb", "Badge", *STRINGS, *OPTIONAL_STRINGS}

# Scripted answers (FakePushService.then).
SLOW = "slow"  # answers only after the client gave up (the push still goes out)
GARBAGE = "garbage"  # HTTP 200 with an HTML page


def status(code: int) -> str:
    """HTTP 200 with ``{"status": code}``, as the service reports outcomes."""
    return f"status:{code}"


def http_error(code: int, retry_after: str = "") -> str:
    """Answer with this HTTP status (and no JSON), and a Retry-After if given."""
    return f"http:{code}:{retry_after}"


def notification_problems(data: dict) -> list[str]:
    """What the real service would refuse, or our client must never send."""
    problems = []
    if data.get("verb") != VERB:
        problems.append(f"verb {data.get('verb')!r}")
    if unknown := set(data) - FIELDS:
        problems.append(f"unknown fields {sorted(unknown)}")
    for name in STRINGS:
        if not isinstance(data.get(name), str) or not data[name]:
            problems.append(f"{name} must be a non-empty string, got {data.get(name)!r}")
    for name in OPTIONAL_STRINGS:
        if name in data and (not isinstance(data[name], str) or not data[name]):
            problems.append(f"{name} must be a non-empty string when present")
    badge = data.get("Badge")
    if isinstance(badge, bool) or not isinstance(badge, int) or badge < 0:
        problems.append(f"Badge must be a non-negative integer, got {badge!r}")
    if not str(data.get("Id", "")).isdigit():
        problems.append(f"Id {data.get('Id')!r} is not an sms_id")
    if data.get("ThreadId") != data.get("UserName"):
        problems.append("ThreadId and UserName differ (both are the peer's address)")
    return problems


class FakePushService:
    def __init__(self, slow_seconds: float = 2.0):
        self.slow_seconds = slow_seconds
        self.requests: list[dict] = []  # every well-formed notification, each attempt
        self.arrived_at: list[float] = []  # time.monotonic() of each of requests (bench/)
        self.delivered: list[dict] = []  # those answered status 200
        self.violations: list[str] = []
        self.unregistered: set[str] = set()  # tokens answered status 404
        self._script: deque[str] = deque()
        methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]
        self.app = Starlette(routes=[
            Route(PATH, self._send, methods=methods),
            Route("/{path:path}", self._stray, methods=methods),
        ])

    # -- for tests --------------------------------------------------------------
    def then(self, *answers: str) -> None:
        self._script.extend(answers)

    def to(self, token: str) -> list[dict]:
        """Pushes delivered to ``token``, oldest first."""
        return [push for push in self.delivered if push["DeviceToken"] == token]

    def attempts(self, token: str) -> list[dict]:
        return [push for push in self.requests if push["DeviceToken"] == token]

    # -- the service ------------------------------------------------------------
    def _refuse(self, problem: str) -> PlainTextResponse:
        self.violations.append(problem)
        return PlainTextResponse(f"Bad Request: {problem}", status_code=400)

    async def _stray(self, request: Request):
        self.violations.append(f"{request.method} {request.url.path}: not {PATH}")
        return PlainTextResponse("Not Found", status_code=404)

    async def _send(self, request: Request):
        if request.method != "POST":
            return self._refuse(f"{request.method}: the service takes POST only")
        media_type = request.headers.get("content-type", "").split(";")[0].strip()
        if media_type != "application/json":
            return self._refuse(f"content type {media_type!r}, not application/json")
        try:
            data = json.loads((await request.body()).decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return self._refuse("a body that is not JSON")
        if not isinstance(data, dict):
            return self._refuse("a JSON body that is not an object")
        problems = notification_problems(data)
        if problems:
            self.violations.extend(problems)
            return JSONResponse({"status": 400, "response": "; ".join(problems)})
        self.requests.append(data)
        self.arrived_at.append(time.monotonic())
        answer = self._script.popleft() if self._script else ""
        kind, _, value = answer.partition(":")
        if kind == "status":
            return JSONResponse({"status": int(value), "response": f"scripted {value}"})
        if kind == "http":
            code, _, retry_after = value.partition(":")
            return PlainTextResponse("Service Unavailable", status_code=int(code),
                                     headers={"Retry-After": retry_after} if retry_after else {})
        if answer == GARBAGE:
            return PlainTextResponse("<html>gateway</html>", media_type="text/html")
        if answer == SLOW:
            await asyncio.sleep(self.slow_seconds)
            return JSONResponse({"status": 200, "response": "OK"})
        if data["DeviceToken"] in self.unregistered:
            return JSONResponse({"status": 404, "response": "Device token is not registered"})
        self.delivered.append(data)
        return JSONResponse({"status": 200, "response": "OK"})


# -- fixtures and helpers shared by the push tests ---------------------------------------
PUSH_TIMEOUT_SECONDS = 0.5  # the slow answers take 4x


@pytest.fixture
def push_service():
    service = FakePushService(slow_seconds=4 * PUSH_TIMEOUT_SECONDS)
    with serving(service.app) as url:
        service.url = url + PATH
        yield service
    assert service.violations == [], "requests the real push service would not take"


def push_toml(service: FakePushService, preview: bool = True, min_interval: float = 0) -> str:
    """The [push] table for ``service``. No spacing of a device's pushes by
    default: most tests push one message at a time and wait for it."""
    return (f'\n[push]\nurl = "{service.url}"\ntimeout_seconds = {PUSH_TIMEOUT_SECONDS}\n'
            f"preview = {'true' if preview else 'false'}\nmin_interval_seconds = {min_interval}\n")


def report_token(http: httpx2.Client, user, selector: str, *, other: tuple[str, str] | None = None,
                 legacy: tuple[str, str] | None = None, call: tuple[str, str] | None = None,
                 device: str = "") -> httpx2.Response:
    """The Push Token Reporter call, as the generated Account XML makes it."""
    other, legacy, call = other or ("", ""), legacy or ("", ""), call or ("", "")
    return http.post("/acrobits/push-token", json={
        **user.credentials, "selector": selector, "device": device,
        "pushTokenOther": other[0], "pushappid_other": other[1],
        "pushTokenIncomingCall": call[0], "pushappid_incoming_call": call[1],
        "pushToken": legacy[0], "pushappid": legacy[1],
    })


def on_database(database_url: str, query):
    async def read():
        store = Store(database_url)
        try:
            return await store._db.read(query)
        finally:
            await store.close()

    return asyncio.run(read())


def stored_devices(database_url: str) -> dict[str, dict]:
    """Each push_tokens row by selector, as a dict of its columns."""
    rows = on_database(database_url, lambda conn: conn.execute(
        sa.select(push_tokens).order_by(push_tokens.c.selector)).all())
    return {row.selector: row._asdict() for row in rows}


def push_jobs(database_url: str) -> list[dict]:
    """Every push job (state, selector, message row id, attempts, due time), oldest first."""
    rows = on_database(database_url, lambda conn: conn.execute(
        sa.select(jobs.c.state, jobs.c.payload, jobs.c.message_id, jobs.c.attempts,
                  jobs.c.last_error, jobs.c.conversation, jobs.c.due_at)
        .where(jobs.c.kind == "push").order_by(jobs.c.id)).all())
    return [{"state": r.state, "selector": json.loads(r.payload)["selector"],
             "message_id": r.message_id, "attempts": r.attempts, "error": r.last_error,
             "conversation": r.conversation, "due_at": utc(r.due_at)} for r in rows]
