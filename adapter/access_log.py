"""The access log: one line per request, secrets masked, written cheaply.

uvicorn's own access log is off (it would print passwords sent in GET query
strings); :class:`AccessLog` replaces it. Through :mod:`logging` a line cost
about 15 µs of CPU (a LogRecord, a Formatter, a write and a flush on the
event loop), a tenth of a whole fetch (bench/RESULTS.md). So the lines are
formatted here, in the layout of every other log line and escaped the same
way (``scope["path"]`` is percent-decoded: ``/%0a`` is a line break), and
written to stderr once per turn of the event loop: an idle server writes
each line at once, a busy one writes many lines per system call. Silence it
like any logger: ``logging.getLogger("adapter.access").setLevel(logging.WARNING)``.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import TextIO
from urllib.parse import parse_qsl, urlencode

from .logs import escape

logger = logging.getLogger("adapter.access")

# What the log shows for a client that disconnected before it was answered
# (nginx's code for it; no client ever sees it).
CLIENT_GONE = 499

# Lower case. Push tokens count: with a device's token and app id anyone may
# push to it through the (unauthenticated) push service.
SECRET_PARAMETERS = {
    "password", "pass", "api_password", "api_key", "token", "secret",
    "pushtoken", "pushtokenother", "pushtokenincomingcall", "push_token", "push_token_other",
    "push_token_incoming_call", "token_other", "token_msgs", "token_calls",
}


def mask_query(query: str) -> str:
    """The query string with every secret-looking parameter's value hidden."""
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, "***" if k.lower() in SECRET_PARAMETERS else v) for k, v in pairs], safe="*")


class LineWriter:
    """Writes log lines to ``stream`` (default: stderr at the time of
    writing) at the end of the current event-loop turn."""

    def __init__(self, stream: TextIO | None = None):
        self._stream = stream
        self._pending: list[str] = []
        self._second = -1
        self._stamp = ""

    def _asctime(self, now: float) -> str:
        # logging's default: local time, "2026-11-22 08:04:20,123".
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        return f"{self._stamp},{int((now - second) * 1000):03d}"

    def write(self, message: str) -> None:
        """One line: ``message`` is escaped (adapter.logs), whatever the client sent."""
        stamp = self._asctime(time.time())
        self._pending.append(f"{stamp} INFO {logger.name}: {escape(message)}\n")
        if len(self._pending) == 1:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no event loop here: write now
                self.flush()

    def flush(self) -> None:
        text, self._pending = "".join(self._pending), []
        stream = self._stream or sys.stderr
        try:
            stream.write(text)
            stream.flush()
        except (OSError, ValueError):  # stderr closed or gone: nowhere to report it either
            pass


class AccessLog:
    """Pure ASGI middleware writing one line per request, secrets masked."""

    def __init__(self, app, writer: LineWriter | None = None):
        self.app = app
        self.writer = writer or LineWriter()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = None

        async def send_and_note(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
            # The app answers every request it can; it sends nothing only to
            # a client that went away before its request was read.
            status = status or CLIENT_GONE
        except BaseException:
            status = status or 500
            raise
        finally:
            if logger.isEnabledFor(logging.INFO):
                query = mask_query(scope.get("query_string", b"").decode("latin-1"))
                path = scope["path"] + (f"?{query}" if query else "")
                client = (scope.get("client") or ("-",))[0]
                self.writer.write(f'{client} "{scope["method"]} {path}" {status} '
                                  f'{(time.perf_counter() - started) * 1000:.1f}ms')
