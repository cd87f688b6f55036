"""A fake voip.ms REST API that checks every request against the wire format.

Serve ``FakeVoipms().app`` with ``tests.conftest.serving`` and point the
provider's ``base_url`` at ``{url}/api/v1``. Anything the real API would not
take, or that our client should never send, lands in ``violations``; tests
assert it stays empty. Answers are scripted per request with :meth:`then`;
unscripted sends answer ``default_answer``: success, or for bench/ a carrier
that is always slow (``SLOW``). ``outage`` makes every call a 503.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections import deque
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from urllib.parse import parse_qsl, quote

import httpx2
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from adapter import cli
from adapter.store import Store
from adapter.store.schema import carrier_refs, messages
from tests.app_client import User
from tests.conftest import outbox_jobs, serving

API_PATH = "/api/v1/rest.php"
TEN_DIGITS = re.compile(r"^[2-9]\d{2}[2-9]\d{6}$")
SEND_FIELDS = {"api_username", "api_password", "method", "did", "dst", "message"}
HISTORY_FIELDS = {"api_username", "api_password", "method", "sms", "from", "to", "type", "did",
                  "contact", "limit", "timezone"}
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# When getSMS is asked for no time zone (the carrier's own; unconfirmed which).
CARRIER_OFFSET_HOURS = -5

# Scripted answers for the next sendSMS requests (see FakeVoipms.then).
SUCCESS = "success"
SLOW = "slow"  # takes the message, answers after the client gave up
LOST = "lost"  # answers late and never took the message


def status(code: str) -> str:
    """Answer ``{"status": code}`` with HTTP 200, as the API reports errors."""
    return f"status:{code}"


def http_error(code: int, retry_after: str = "") -> str:
    """Answer with this HTTP status (and no JSON), and a Retry-After if given."""
    return f"http:{code}:{retry_after}"


@dataclass(frozen=True)
class Sms:
    id: int
    did: str
    contact: str
    message: str
    at: datetime  # UTC
    type: str = "0"  # 0 sent, 1 received


class FakeVoipms:
    def __init__(self, username: str, password: str, dids: set[str], slow_seconds: float = 1.5,
                 default_answer: str = SUCCESS):
        self.username, self.password, self.dids = username, password, dids
        self.slow_seconds, self.default_answer = slow_seconds, default_answer
        self.violations: list[str] = []
        self.calls: list[tuple[str, dict[str, str]]] = []  # (API method, fields)
        self.history: list[Sms] = []
        self.outage = False
        self._script: deque[str] = deque()
        self._ids = itertools.count(23434)
        self.app = Starlette(routes=[
            Route(API_PATH, self._rest, methods=["GET", "POST"]),
            Route("/{path:path}", self._stray, methods=["GET", "POST", "PUT", "DELETE"]),
        ])

    # -- for tests --------------------------------------------------------------
    def then(self, *answers: str) -> None:
        self._script.extend(answers)

    @property
    def sends(self) -> list[dict[str, str]]:
        return [fields for method, fields in self.calls if method == "sendSMS"]

    @property
    def lookups(self) -> list[dict[str, str]]:
        return [fields for method, fields in self.calls if method == "getSMS"]

    def sent(self) -> list[Sms]:
        return [sms for sms in self.history if sms.type == "0"]

    def remember(self, did: str, contact: str, message: str, at: datetime) -> Sms:
        """History from before the test, e.g. an identical older message."""
        sms = Sms(next(self._ids), did, contact, message, at)
        self.history.append(sms)
        return sms

    def deliver(self, template: str, *, id: str, sender: str, to: str, message: str,
                when: str = "2024-05-06 07:08:09") -> httpx2.Response:
        """An inbound SMS, as the "SMS URL Callback" sends it: the portal's
        template with the placeholders replaced (URL-encoded), by GET."""
        url = template
        for name, value in {"ID": id, "TIMESTAMP": when, "FROM": sender, "TO": to,
                            "MESSAGE": message}.items():
            url = url.replace("{" + name + "}", quote(value, safe=""))
        return httpx2.get(url, headers={"User-Agent": "voip.ms"}, timeout=10.0)

    # -- the API --------------------------------------------------------------
    def _violation(self, text: str) -> None:
        self.violations.append(text)

    async def _stray(self, request: Request):
        self._violation(f"{request.method} {request.url.path}: not the API path {API_PATH}")
        return PlainTextResponse("Not Found", status_code=404)

    async def _rest(self, request: Request):
        fields = await self._fields(request)
        if fields is None:
            return JSONResponse({"status": "missing_method"})
        method = fields.get("method", "")
        self.calls.append((method, fields))
        if self.outage:
            return PlainTextResponse("Service Unavailable", status_code=503)
        if (fields.get("api_username"), fields.get("api_password")) != (self.username, self.password):
            self._violation(f"{method}: wrong or missing credentials")
            return JSONResponse({"status": "invalid_credentials"})
        if method == "sendSMS":
            return await self._send(fields)
        if method == "getSMS":
            return self._history(fields)
        self._violation(f"unexpected API method {method!r}")
        return JSONResponse({"status": "invalid_method"})

    async def _fields(self, request: Request) -> dict[str, str] | None:
        """The request's parameters, checking how they were sent."""
        if not request.headers.get("user-agent", "").startswith("acrobits-sms-adapter/"):
            self._violation(f"User-Agent {request.headers.get('user-agent')!r}")
        query = request.scope["query_string"].decode()
        body = await request.body()
        if request.method == "GET":
            raw = query
            if body:
                self._violation("GET with a body")
        else:
            media_type = request.headers.get("content-type", "").split(";")[0].strip()
            if media_type not in FORM_TYPES:
                self._violation(f"POST with content type {media_type!r}, not a form")
                return None
            if query:
                self._violation("POST with parameters in the query string too")
            if media_type == FORM_TYPES[1]:
                return {k: str(v) for k, v in (await request.form()).items()}
            raw = body.decode("utf-8", errors="strict")
        pairs = parse_qsl(raw, keep_blank_values=True)
        names = [name for name, _ in pairs]
        if len(names) != len(set(names)):
            self._violation(f"repeated parameters: {names}")
        return dict(pairs)

    async def _send(self, fields: dict[str, str]):
        self._check_names("sendSMS", fields, SEND_FIELDS, SEND_FIELDS)
        did, dst, message = fields.get("did", ""), fields.get("dst", ""), fields.get("message", "")
        for name, value in (("did", did), ("dst", dst)):
            if not TEN_DIGITS.match(value):
                self._violation(f"sendSMS {name}={value!r}: not a 10-digit NANP number")
                return JSONResponse({"status": f"invalid_{name}"})
        if did not in self.dids:
            self._violation(f"sendSMS from {did}, not a DID of this account")
            return JSONResponse({"status": "invalid_did"})
        if not message:
            self._violation("sendSMS with an empty message")
            return JSONResponse({"status": "message_empty"})
        if len(message) > 160:
            self._violation(f"sendSMS message of {len(message)} characters")
            return JSONResponse({"status": "sms_toolong"})
        answer = self._script.popleft() if self._script else self.default_answer
        kind, _, value = answer.partition(":")
        if kind == "status":
            return JSONResponse({"status": value})
        if kind == "http":
            code, _, retry_after = value.partition(":")
            return PlainTextResponse("Service Unavailable", status_code=int(code),
                                     headers={"Retry-After": retry_after} if retry_after else {})
        sms = None
        if answer in (SUCCESS, SLOW):
            sms = self.remember(did, dst, message, datetime.now(UTC))
        if answer in (SLOW, LOST):
            await asyncio.sleep(self.slow_seconds)
        return JSONResponse({"status": "success", "sms": sms.id} if sms else {"status": "sms_failed"})

    def _history(self, fields: dict[str, str]):
        self._check_names("getSMS", fields, HISTORY_FIELDS, {"api_username", "api_password", "method"})
        try:
            offset = int(fields.get("timezone", CARRIER_OFFSET_HOURS))
            assert -12 <= offset <= 13
            zone = timezone(timedelta(hours=offset))
            today = datetime.now(zone).date()
            first = date.fromisoformat(fields.get("from", today.isoformat()))
            last = date.fromisoformat(fields.get("to", today.isoformat()))
            limit = int(fields.get("limit", "50"))
            assert limit > 0 and fields.get("type", "0") in ("0", "1")
        except (ValueError, AssertionError):
            self._violation(f"getSMS with malformed parameters: {fields}")
            return JSONResponse({"status": "invalid_date"})
        if not first <= last or (last - first).days > 92:
            self._violation(f"getSMS date range {first}..{last}")
            return JSONResponse({"status": "invalid_daterange"})
        for name in ("did", "contact"):
            if name in fields and not TEN_DIGITS.match(fields[name]):
                self._violation(f"getSMS {name}={fields[name]!r}: not 10 digits")
        found = [sms for sms in reversed(self.history)
                 if first <= sms.at.astimezone(zone).date() <= last
                 and all(fields.get(key, value) == value for key, value in (
                     ("type", sms.type), ("did", sms.did), ("contact", sms.contact),
                     ("sms", str(sms.id))))][:limit]
        if not found:
            return JSONResponse({"status": "no_sms"})
        return JSONResponse({"status": "success", "sms": [
            {"id": str(sms.id), "date": sms.at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
             "type": sms.type, "did": sms.did, "contact": sms.contact, "message": sms.message}
            for sms in found]})

    def _check_names(self, method: str, fields: dict, allowed: set, required: set) -> None:
        if unknown := set(fields) - allowed:
            self._violation(f"{method} with unknown parameters {sorted(unknown)}")
        if missing := required - set(fields):
            self._violation(f"{method} without {sorted(missing)}")


# -- fixtures and helpers shared by the voip.ms tests -------------------------------
# (Here rather than in a conftest so the provider's tests stay in its own files;
# test modules import the fixtures by name.)
NAME = "vms"
API_USER, API_PASSWORD = "ops@example.com", "api-secret-1"
OUR_NUMBER, OUR_DID = "+12025550101", "2025550101"
REMOTE, REMOTE_DIGITS = "+13125550188", "3125550188"
TIMEOUT_SECONDS = 1.0  # margin for loaded machines; the slow answers take 3x


@pytest.fixture
def fake():
    carrier = FakeVoipms(API_USER, API_PASSWORD, dids={OUR_DID}, slow_seconds=3 * TIMEOUT_SECONDS)
    with serving(carrier.app) as url:
        carrier.url = url
        yield carrier
    assert carrier.violations == [], "requests the real API would not take"


@pytest.fixture
def adapter(fake, start_adapter):
    return start_adapter(
        f"\n[providers.{NAME}]\ntype = \"voipms\"\n"
        f"api_username = \"{API_USER}\"\napi_password = \"{API_PASSWORD}\"\n"
        f"base_url = \"{fake.url}/api/v1\"\ntimeout_seconds = {TIMEOUT_SECONDS}\n")


@pytest.fixture
def http(adapter):
    with adapter.client() as client:
        yield client


@pytest.fixture
def alice(http, add_account) -> User:
    add_account("alice", OUR_NUMBER, password="alice-pw", provider=NAME)
    return User(http, "alice", "alice-pw", OUR_NUMBER)


def cli_lines(adapter, capsys, *args: str) -> list[str]:
    capsys.readouterr()
    assert cli.main(["--config", str(adapter.config_file), *args]) == 0
    return capsys.readouterr().out.splitlines()


def job_states(adapter, capsys) -> list[tuple[str, str]]:
    """(state, last error) of each outbox job, oldest first."""
    return [(job.state, job.last_error or "") for job in reversed(outbox_jobs(adapter.config_file))]


def stored_refs(adapter, body: str) -> list[str]:
    """The carrier refs the store keeps for the sent message with this text."""

    def query(conn):
        return list(conn.execute(
            sa.select(carrier_refs.c.ref)
            .select_from(carrier_refs.join(messages, messages.c.id == carrier_refs.c.message_id))
            .where((carrier_refs.c.provider == NAME) & (messages.c.body == body))
            .order_by(carrier_refs.c.part)).scalars())

    async def read():
        store = Store(adapter.config.database_url)
        try:
            return await store._db.read(query)
        finally:
            await store.close()

    return asyncio.run(read())
