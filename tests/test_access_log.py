"""The access log's lines, in-process: what each says about its request.

(Masking of secrets over real requests: tests/acrobits/test_requests.py.)
"""

from __future__ import annotations

import asyncio
import io
import logging

import pytest

from adapter.access_log import AccessLog, LineWriter
from tests.asgi import Request, call

FORGED = "1999-12-31 23:59:59,999 INFO adapter: forged"


async def answers(scope, receive, send):
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def sends_nothing(scope, receive, send):
    return None  # what the services do for a client that went away


async def fails(scope, receive, send):
    raise RuntimeError("boom")


@pytest.fixture(autouse=True)
def access_level():
    logger = logging.getLogger("adapter.access")
    level = logger.level
    logger.setLevel(logging.INFO)
    yield
    logger.setLevel(level)


def logged(app, request: Request) -> str:
    stream = io.StringIO()
    try:
        asyncio.run(call(AccessLog(app, LineWriter(stream)), request))
    except RuntimeError:
        pass
    return stream.getvalue()


def test_a_line_is_one_line_whatever_the_path_method_and_client_hold():
    request = Request("GE\nT", f"/\r\n{FORGED}\u2028\x1b[2J")
    [line] = logged(answers, request).splitlines()
    assert f'"GE\\nT /\\r\\n{FORGED}\\u2028\\x1b[2J" 204 ' in line


@pytest.mark.parametrize(("app", "status"), [(answers, "204"), (sends_nothing, "499"),
                                             (fails, "500")])
def test_the_status_is_what_the_client_got(app, status):
    [line] = logged(app, Request("GET", "/x")).splitlines()
    assert f'"GET /x" {status} ' in line
