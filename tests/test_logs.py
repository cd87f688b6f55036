"""The log: one line per record, and no secret in anything ``serve`` writes.

The formatters and the stderr handler are tested on records; then a real
``python -m adapter serve``, once per ``log_format``, gets every kind of
request that leaves a trace in its log (ours or uvicorn's), each carrying a
password, a push token or a webhook secret and attempts to forge a line,
and all the process wrote is read.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from adapter.acrobits.push_tokens import CALL, LEGACY, OTHER
from adapter.logs import (
    ACCESS_LOGGER,
    CONTINUATION, JsonFormatter, OneLineFormatter, TurnBufferedStderr, WarningThrottle, escape,
)
from tests.conftest import run_cli, wait_for
from tests.test_multiprocess import free_port, healthy

RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) "
                    r"[\w.]+: ")
FORGED = "1999-12-31 23:59:59,999 INFO adapter: forged"
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def record(message: str, *args, exc_info=None, name: str = "adapter") -> logging.LogRecord:
    return logging.LogRecord(name, logging.WARNING, __file__, 1, message, args, exc_info)


def test_escape_keeps_printable_text_and_writes_the_rest_as_escapes():
    assert escape("plain ünïcödé 👋 \\n") == "plain ünïcödé 👋 \\n"
    assert escape("a\r\nb\tc\x00\x1b[2J\x85\u2028\u202e") == \
        "a\\r\\nb\\tc\\x00\\x1b[2J\\x85\\u2028\\u202e"


def test_a_record_is_one_line_whatever_its_message_holds():
    line = OneLineFormatter().format(record("unexpected error on GET %s", f"/x\r\n{FORGED}\u2028"))
    assert "\n" not in line and "\r" not in line and "\u2028" not in line
    assert RECORD.match(line) and line.endswith(f"/x\\r\\n{FORGED}\\u2028")


def test_a_record_without_a_traceback_is_the_line_logging_would_make_of_the_format():
    formatter = OneLineFormatter()
    for message in (record("plain %s", "text"), record("a\nb %d", 1)):
        assert formatter.format(message) == logging.Formatter.format(formatter, message)


def test_a_traceback_follows_on_indented_lines_that_cannot_pass_for_records():
    try:
        raise ValueError(f"bad value\n{FORGED}\r{FORGED}")
    except ValueError:
        text = OneLineFormatter().format(record("it failed", exc_info=sys.exc_info()))
    first, *rest = text.split("\n")
    assert RECORD.match(first) and first.endswith("it failed")
    assert rest[0] == CONTINUATION + "Traceback (most recent call last):"
    assert all(line.startswith(CONTINUATION) for line in rest)
    assert rest[-1] == f"{CONTINUATION}{FORGED}\\r{FORGED}"


def test_as_json_a_record_is_one_object_on_one_line_with_its_traceback_as_a_field():
    try:
        raise ValueError(f"bad value\n{FORGED}\u2028")
    except ValueError:
        message = record("it failed on %s", f"/x\r\n{FORGED}", exc_info=sys.exc_info())
    message.carrier = "voip"  # as extra= sets it
    OneLineFormatter().format(message)  # another handler's first, as an operator may add one
    line = JsonFormatter().format(message)
    assert "\n" not in line and "\u2028" not in line and line.isascii()
    fields = json.loads(line)
    assert RFC3339_UTC.match(fields["time"])
    assert {key: fields[key] for key in ("level", "logger", "message", "carrier")} == {
        "level": "WARNING", "logger": "adapter", "message": f"it failed on /x\r\n{FORGED}",
        "carrier": "voip"}
    assert fields["exception"].startswith("Traceback (most recent call last):\n")
    assert CONTINUATION not in fields["exception"]
    assert fields["exception"].endswith(f"ValueError: bad value\n{FORGED}\u2028")
    assert not {"args", "msg", "exc_info", "levelno", "color_message"} & set(fields)


class Writes:
    """A stream that keeps each write apart."""

    def __init__(self):
        self.writes: list[str] = []

    def write(self, text: str) -> None:
        self.writes.append(text)

    def flush(self) -> None:
        pass


def stderr_handler(stream: Writes) -> TurnBufferedStderr:
    handler = TurnBufferedStderr()
    handler.setStream(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler


def test_on_the_event_loop_the_access_records_of_one_turn_are_written_together_after_it():
    stream = Writes()
    handler = stderr_handler(stream)

    async def turns():
        for text in ("one", "two"):
            handler.handle(record(text, name=ACCESS_LOGGER))
        assert stream.writes == []  # not yet: the turn goes on
        await asyncio.sleep(0)
        assert stream.writes == ["one\ntwo\n"]
        handler.handle(record("three", name=ACCESS_LOGGER))
        await asyncio.sleep(0)

    asyncio.run(turns())
    assert stream.writes == ["one\ntwo\n", "three\n"]


def test_any_other_record_is_written_at_once_with_what_was_pending():
    # uvicorn ends the process by raising the signal it got: no exit handler
    # would flush a "shutdown complete" still waiting for the loop's next turn.
    stream = Writes()
    handler = stderr_handler(stream)

    async def turn():
        handler.handle(record("request", name=ACCESS_LOGGER))
        handler.handle(record("shutting down", name="uvicorn.error"))
        assert stream.writes == ["request\nshutting down\n"]

    asyncio.run(turn())


def test_without_an_event_loop_a_record_is_written_at_once():
    stream = Writes()
    handler = stderr_handler(stream)
    handler.handle(record("one"))
    assert stream.writes == ["one\n"]


# -- the whole process ------------------------------------------------------------------

PASSWORD = "pw7f3a9cSecret"
TOKEN = "tok5b1e77dSecret"
SECRET = "whsec91c2d4e8aa0bSecret"
BASIC = base64.b64encode(f"acu:{SECRET}".encode()).decode()
SECRETS = [PASSWORD, TOKEN, SECRET, BASIC]
HEAD_LIMIT = 8192


@pytest.fixture(params=["text", "json"])
def served(request, tmp_path: Path):
    """``serve`` on a new SQLite file, all it writes going to one file; its
    ``log_format`` is ``served.log_format``."""
    port = free_port()
    config_file = tmp_path / "adapter.toml"
    config_file.write_text(
        f'log_format = "{request.param}"\n'
        f'database_url = "sqlite:///{tmp_path}/adapter.sqlite3"\n'
        f'public_url = "http://127.0.0.1:{port}"\n'
        f"max_header_bytes = {HEAD_LIMIT}\nheader_timeout_seconds = 1\n"
        '[push]\nurl = "http://127.0.0.1:1/push"\n'
        f'[providers.acu]\ntype = "aculab"\nusername = "u"\napi_key = "k"\nsecret = "{SECRET}"\n'
        'base_url = "http://127.0.0.1:1"\n'
        f'[providers.voip]\ntype = "voipms"\napi_username = "u"\napi_password = "p"\n'
        f'secret = "{SECRET}"\nbase_url = "http://127.0.0.1:1"\n')
    assert run_cli(config_file, "account", "add", "alice", "--number", "+12025550101",
                   "--password", PASSWORD) == 0
    assert run_cli(config_file, "account", "add", "bob", "--number", "+12025550102",
                   "--password", PASSWORD, "--provider", "voip") == 0
    output = tmp_path / "serve.out"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ADAPTER_")}
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "adapter", "--config", str(config_file), "serve",
             "--port", str(port)], stdout=sink, stderr=subprocess.STDOUT, env=environment)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: process.poll() is not None or healthy(url), timeout=30,
                 what="serve to answer")
        assert process.poll() is None, output.read_text()
        yield port, process, output, request.param
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def exchange(port: int, raw: bytes) -> bytes:
    """Send ``raw`` on a new connection; what came back until the server closed it."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(raw)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        except (ConnectionResetError, BrokenPipeError):
            pass
        return answer


def get(target: str, *headers: str) -> bytes:
    lines = [f"GET {target} HTTP/1.1", "Host: adapter", "Connection: close", *headers, "", ""]
    return "\r\n".join(lines).encode()


def with_credentials(path: str, **fields: str) -> str:
    query = "&".join(f"{name}={quote(value)}" for name, value in
                     {"username": "alice", "password": PASSWORD, **fields}.items())
    return f"{path}?{query}"


TOKEN_FIELDS = {name: TOKEN for names in (OTHER[0], CALL[0], LEGACY[0]) for name in names}
APP_FIELDS = {name: "app" for names in (OTHER[1], CALL[1], LEGACY[1]) for name in names}
FORGED_PATH = "/" + quote(f"\r\n{FORGED}\n")
REQUESTS = {
    "send": get(with_credentials("/acrobits/send", to="+12025550102", body=f"hi\n{FORGED}")),
    "wrong password": get(with_credentials("/acrobits/fetch", password=PASSWORD + "x")),
    "push token": get(with_credentials("/acrobits/push-token", selector="s1", **TOKEN_FIELDS,
                                       **APP_FIELDS)),
    "form body": (b"POST /acrobits/fetch HTTP/1.1\r\nHost: a\r\nConnection: close\r\n"
                  b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s"
                  % (len(f"username=alice&password={PASSWORD}"),
                     f"username=alice&password={PASSWORD}".encode())),
    "voip inbound": get(f"/hooks/voip/inbound?token={SECRET}&id=1&from=2025550199&to=2025550102"
                        f"&message=hello{quote(chr(10) + FORGED)}"),
    "hook, wrong secret": get(f"/hooks/voip/status?token={SECRET[:-1]}"),
    "aculab basic auth": get("/hooks/acu/status?msg_ref=r1&status=delivered",
                             f"Authorization: Basic {BASIC}"),
    "websocket": get(with_credentials("/acrobits/fetch"), "Connection: Upgrade",
                     "Upgrade: websocket", "Sec-WebSocket-Version: 13",
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="),
    "h2c": get(with_credentials("/acrobits/fetch"), "Connection: Upgrade, HTTP2-Settings",
               "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA"),
    "http/2 preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + get(with_credentials("/x")),
    "invalid header": get(with_credentials("/acrobits/fetch"), "Bad Header Line"),
    "invalid request line": f"GET {with_credentials('/a')} HTTP/9\r\n\r\n".encode(),
    "absolute form": get(f"http://alice:{PASSWORD}@adapter" + with_credentials("/acrobits/fetch")),
    "oversized head": get(with_credentials("/acrobits/send", body="x" * HEAD_LIMIT)),
    "forged path": get(FORGED_PATH + f"?password={PASSWORD}"),
    "forged query": get(f"/healthz?note={quote(chr(13) + chr(10) + FORGED)}&token={TOKEN}"),
    "forged forwarded-for": get("/healthz", f"X-Forwarded-For: 1.2.3.4\x1b[2J{FORGED}"),
    "forged method": f"F\x0bOO /healthz?password={PASSWORD} HTTP/1.1\r\n\r\n".encode(),
    "unfinished head": get(with_credentials("/acrobits/fetch"))[:-4],
}


def test_nothing_serve_writes_holds_a_secret_or_a_forged_line(served):
    port, process, output, log_format = served
    answers = {kind: exchange(port, raw) for kind, raw in REQUESTS.items()}
    assert answers["send"].startswith(b"HTTP/1.1 200 ")
    assert answers["push token"].startswith(b"HTTP/1.1 200 ")
    assert answers["voip inbound"].startswith(b"HTTP/1.1 200 ")
    assert answers["aculab basic auth"].startswith(b"HTTP/1.1 200 ")
    assert answers["websocket"].startswith(b"HTTP/1.1 200 ")  # answered as plain HTTP
    assert answers["oversized head"].startswith(b"HTTP/1.1 431 ")
    assert answers["unfinished head"] == b""  # closed at the deadline
    wait_for(lambda: "GET /healthz?note=" in output.read_text(), what="the access log")
    process.send_signal(signal.SIGINT)  # shutting down logs too
    assert process.wait(timeout=20) == 0
    written = output.read_text()

    for secret in SECRETS:
        assert secret not in written
    assert "WebSocket" not in written
    if log_format == "text":
        for line in written.splitlines():
            assert RECORD.match(line) or line.startswith(CONTINUATION), line
            assert not line.startswith(FORGED[:10]), line
        # The forged parts are there, on the lines of the requests that carried them.
        assert f'"GET /\\r\\n{FORGED}\\n?password=***" 404' in written
        assert "answered 431" in written and "no complete request head within 1 s" in written
    else:
        records = [json.loads(line) for line in written.splitlines()]
        for fields in records:
            assert isinstance(fields, dict) and RFC3339_UTC.match(fields["time"]), fields
            assert {"level", "logger", "message"} <= set(fields), fields
        loggers = {fields["logger"] for fields in records}
        assert {"adapter", "adapter.access", "adapter.http", "uvicorn.error"} <= loggers
        # The forged parts are there, in the fields of the requests that carried them.
        [forged] = [fields for fields in records if fields["logger"] == "adapter.access"
                    and fields["path"] == f"/\r\n{FORGED}\n?password=***"]
        assert forged["status"] == 404 and forged["method"] == "GET"
        assert forged["client"] == "127.0.0.1" and forged["duration_ms"] >= 0
        messages = " ".join(fields["message"] for fields in records)
        assert "answered 431" in messages and "no complete request head within 1 s" in messages


def test_as_json_an_error_that_stops_serve_is_a_json_line_too(tmp_path: Path):
    (tmp_path / "file").write_text("")
    config_file = tmp_path / "adapter.toml"
    config_file.write_text(f'log_format = "json"\ndatabase_url = "sqlite:///{tmp_path}/file/db"\n')
    done = subprocess.run([sys.executable, "-m", "adapter", "--config", str(config_file), "serve",
                           "--port", str(free_port())], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    [fields] = [json.loads(line) for line in done.stderr.splitlines()]
    assert fields["level"] == "ERROR" and f"{tmp_path}/file" in fields["message"]


def test_a_throttled_warning_is_logged_at_most_once_a_minute_per_key(caplog):
    now = [1000.0]
    throttle = WarningThrottle(logging.getLogger("adapter.test"), clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="adapter.test"):
        for _ in range(500):
            throttle.warn("voip", "%s callback refused", "voip")
        throttle.warn("plum", "%s callback refused", "plum")
        now[0] += 59
        throttle.warn("voip", "%s callback refused", "voip")
        now[0] += 2
        throttle.warn("voip", "%s callback refused", "voip")
    assert [r.getMessage() for r in caplog.records if r.name == "adapter.test"] == [
        "voip callback refused",
        "plum callback refused",
        "voip callback refused (and 500 more since the last such warning)",
    ]
