"""The process's log: one line per record, whatever a request carried.

Log lines quote what clients sent (paths, carrier ids, exception messages),
and a client could send a line break followed by something that looks like
a record of its own. So every record is formatted here, once for every
logger (ours, uvicorn's, asyncio's): characters that are not printable are
written as their Python escapes (``\\n``, ``\\x1b``, ``\\u2028``), and a
traceback follows on lines of its own that all begin with ``"  | "``. A line
that starts with a timestamp is a record; nothing a client sends can make
one. The access log (:mod:`adapter.access_log`) writes its lines itself,
through :func:`escape` too.
"""

from __future__ import annotations

import logging
import time

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Begins every line of a traceback (or a stack) under its record.
CONTINUATION = "  | "


def escape(text: str) -> str:
    """``text`` with each character that is not printable as its escape."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class OneLineFormatter(logging.Formatter):
    """:data:`FORMAT`, escaped; tracebacks indented under the record."""

    def __init__(self):
        super().__init__(FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape(super().formatMessage(record))

    def formatException(self, exc_info) -> str:
        return _continuation(super().formatException(exc_info))

    def formatStack(self, stack_info: str) -> str:
        return _continuation(super().formatStack(stack_info))


def _continuation(text: str) -> str:
    return "\n".join(CONTINUATION + escape(line) for line in text.split("\n"))


class WarningThrottle:
    """Warnings about one thing (``key``) at most once a minute, saying how
    many were left out since: for what a client can make happen at will
    (refused callbacks, oversized or slow request heads)."""

    INTERVAL_SECONDS = 60.0

    def __init__(self, logger: logging.Logger, clock=time.monotonic):
        self._logger = logger
        self._clock = clock
        self._last: dict[str, float] = {}  # key -> when last logged
        self._since: dict[str, int] = {}  # key -> occurrences since then

    def warn(self, key: str, message: str, *args) -> None:
        now = self._clock()
        self._since[key] = self._since.get(key, 0) + 1
        if now - self._last.get(key, -self.INTERVAL_SECONDS) < self.INTERVAL_SECONDS:
            return
        count, self._since[key], self._last[key] = self._since[key], 0, now
        if count > 1:
            message += f" (and {count - 1} more since the last such warning)"
        self._logger.warning(message, *args)


class _NotThisLine(logging.Filter):
    """Drops records whose message starts with ``prefix``."""

    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


def configure_logging(level: int = logging.INFO) -> None:
    """Records of every logger to stderr, one line each (see the module docstring)."""
    handler = logging.StreamHandler()
    handler.setFormatter(OneLineFormatter())
    logging.basicConfig(level=level, handlers=[handler])
    # httpx2 logs each outbound request at INFO with its URL, and a base_url
    # or push URL may carry credentials (user:password@host, a key in the
    # query). Our own lines already record each carrier call and each push
    # that did not go through, without URLs.
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    # uvicorn follows "Unsupported upgrade request." with advice to install a
    # WebSocket library; the adapter turns WebSockets off on purpose
    # (cli.UVICORN_SETTINGS), so the advice is wrong here.
    logging.getLogger("uvicorn.error").addFilter(_NotThisLine("No supported WebSocket library"))
