"""The access log's records, in-process: what each says about its request,
and that they reach whatever handlers the ``adapter.access`` logger has.

(Masking of secrets over real requests: tests/acrobits/test_requests.py and
tests/test_logs.py.)
"""

from __future__ import annotations

import asyncio
import json
import logging
import re

import pytest

from adapter.access_log import AccessLog
from adapter.logs import JsonFormatter, OneLineFormatter
from tests.asgi import Request, call

FORGED = "1999-12-31 23:59:59,999 INFO adapter: forged"


async def answers(scope, receive, send):
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def sends_nothing(scope, receive, send):
    return None  # what the services do for a client that went away


async def fails(scope, receive, send):
    raise RuntimeError("boom")


class Collected(logging.Handler):
    """An operator's handler: keeps every record it is given."""

    def __init__(self):
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def handler():
    """A handler on the ``adapter.access`` logger, which is at INFO as under `serve`."""
    logger = logging.getLogger("adapter.access")
    level, collected = logger.level, Collected()
    logger.setLevel(logging.INFO)
    logger.addHandler(collected)
    yield collected
    logger.removeHandler(collected)
    logger.setLevel(level)


def logged(app, request: Request, handler: Collected) -> logging.LogRecord:
    """The one record the request left."""
    try:
        asyncio.run(call(AccessLog(app), request))
    except RuntimeError:
        pass
    [record] = handler.records
    return record


def test_a_handler_on_the_logger_gets_each_request_with_its_fields(handler):
    record = logged(answers, Request("POST", "/acrobits/fetch",
                                     b"username=alice&password=s3cret&pushToken=t0ken"), handler)
    assert (record.name, record.levelno) == ("adapter.access", logging.INFO)
    assert record.client == "127.0.0.1" and record.method == "POST" and record.status == 204
    assert record.path == "/acrobits/fetch?username=alice&password=***&pushToken=***"
    assert isinstance(record.duration_ms, float) and 0 <= record.duration_ms < 10_000
    assert re.fullmatch(r'127\.0\.0\.1 "POST /acrobits/fetch\?username=alice&password=\*\*\*'
                        r'&pushToken=\*\*\*" 204 \d+\.\dms', record.getMessage())


def test_an_operators_formatter_and_level_apply(handler):
    handler.setFormatter(logging.Formatter("%(method)s %(path)s -> %(status)d"))
    assert handler.format(logged(answers, Request("GET", "/healthz"), handler)) == \
        "GET /healthz -> 204"
    handler.records.clear()
    logging.getLogger("adapter.access").setLevel(logging.WARNING)
    asyncio.run(call(AccessLog(answers), Request("GET", "/healthz")))
    assert handler.records == []


def test_a_line_is_one_line_whatever_the_path_method_and_client_hold(handler):
    record = logged(answers, Request("GE\nT", f"/\r\n{FORGED}\u2028\x1b[2J"), handler)
    line = OneLineFormatter().format(record)
    assert "\n" not in line and "\r" not in line and "\u2028" not in line
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO adapter\.access: 127\.0\.0\.1 ",
                    line)
    assert f'"GE\\nT /\\r\\n{FORGED}\\u2028\\x1b[2J" 204 ' in line


def test_as_json_the_fields_are_keys_of_their_own(handler):
    record = logged(answers, Request("GET", f"/\n{FORGED}", b"token=whsec&x=1"), handler)
    line = JsonFormatter().format(record)
    assert "\n" not in line and "whsec" not in line
    fields = json.loads(line)
    assert fields["logger"] == "adapter.access" and fields["level"] == "INFO"
    assert {key: fields[key] for key in ("client", "method", "path", "status")} == {
        "client": "127.0.0.1", "method": "GET", "path": f"/\n{FORGED}?token=***&x=1",
        "status": 204}
    assert re.fullmatch(r'127\.0\.0\.1 "GET /\n.+\?token=\*\*\*&x=1" 204 \d+\.\dms',
                        fields["message"])


@pytest.mark.parametrize(("app", "status"), [(answers, 204), (sends_nothing, 499),
                                             (fails, 500)])
def test_the_status_is_what_the_client_got(handler, app, status):
    record = logged(app, Request("GET", "/x"), handler)
    assert record.status == status and f'"GET /x" {status} ' in record.getMessage()
