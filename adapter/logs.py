"""The process's log: one line per record, whatever a request carried.

Log lines quote what clients sent (paths, carrier ids, exception messages),
and a client could send a line break followed by something that looks like
a record of its own. So every record of every logger (ours, uvicorn's,
asyncio's, the access log's) is formatted here, in one of two layouts
(``log_format``):

- ``"text"``: characters that are not printable are written as their
  Python escapes (``\\n``, ``\\x1b``, ``\\u2028``), and a traceback follows
  on lines of its own that all begin with ``"  | "``. A line that starts
  with a timestamp is a record; nothing a client sends can make one.
- ``"json"``: one JSON object per line (``time``, ``level``, ``logger``,
  ``message``, the record's own fields such as the access log's, and the
  traceback as ``exception``). JSON escapes line breaks, and ASCII-only
  output escapes every other separator too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
import time

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Begins every line of a traceback (or a stack) under its record.
CONTINUATION = "  | "


def escape(text: str) -> str:
    """``text`` with each character that is not printable as its escape."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class _SecondStamp:
    """``time.strftime(layout)`` of the current second, worked out once a
    second rather than for every record (the access log writes thousands)."""

    def __init__(self, layout: str, convert):
        self._layout = layout
        self._convert = convert
        self._second = None
        self._stamp = ""

    def __call__(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            self._stamp = time.strftime(self._layout, self._convert(second))
            self._second = second
        return self._stamp


class OneLineFormatter(logging.Formatter):
    """:data:`FORMAT`, escaped; tracebacks indented under the record."""

    def __init__(self):
        super().__init__(FORMAT)
        # logging's default: local time, "2026-11-22 08:04:20,123".
        self._stamp = _SecondStamp(self.default_time_format, time.localtime)

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info or record.exc_text or record.stack_info:
            return super().format(record)
        # The line logging.Formatter.format makes of FORMAT, in half its time
        # (without its general steps): there is an access record per request.
        record.message = record.getMessage()
        return escape(f"{self.formatTime(record)} {record.levelname} {record.name}: {record.message}")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return f"{self._stamp(record.created)},{int(record.msecs):03d}"

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape(super().formatMessage(record))

    def formatException(self, exc_info) -> str:
        return _continuation(super().formatException(exc_info))

    def formatStack(self, stack_info: str) -> str:
        return _continuation(super().formatStack(stack_info))


def _continuation(text: str) -> str:
    return "\n".join(CONTINUATION + escape(line) for line in text.split("\n"))


# What every LogRecord has; anything else on a record was given as
# ``extra=`` (the access log's fields, say) and becomes a key of its own.
# uvicorn's ``color_message`` repeats the message with terminal colours.
_RECORD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime", "color_message"}


# ASCII only: U+2028 and the like, which some readers take for line breaks,
# are escaped like every other character that is not ASCII. (Made once:
# json.dumps with any option makes a new encoder per call.)
_JSON = json.JSONEncoder(default=str)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time`` (RFC 3339, UTC, milliseconds),
    ``level``, ``logger``, ``message``, the fields passed as ``extra=``,
    and ``exception`` / ``stack`` when the record has them."""

    def __init__(self):
        super().__init__()
        self._stamp = _SecondStamp("%Y-%m-%dT%H:%M:%S", time.gmtime)

    def format(self, record: logging.LogRecord) -> str:
        fields = {
            "time": f"{self._stamp(record.created)}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES:
                fields[key] = value
        # Not record.exc_text: another handler's formatter may have left its
        # own layout of the traceback there (OneLineFormatter's "  | " lines).
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            fields["exception"] = record.exc_text
        if record.stack_info:
            fields["stack"] = self.formatStack(record.stack_info)
        return _JSON.encode(fields)


FORMATTERS: dict[str, type[logging.Formatter]] = {"text": OneLineFormatter, "json": JsonFormatter}


# The access log's logger (adapter/access_log.py): one record per request.
ACCESS_LOGGER = "adapter.access"


class TurnBufferedStderr(logging.StreamHandler):
    """stderr (as it is when the handler is made), access records written at
    the end of the event loop's turn: an idle server writes each at once, a
    busy one many in one system call rather than one each. Any other record
    is written at once, with what is pending before it: uvicorn ends a
    process by raising the signal it got, so no exit handler would flush
    its last lines."""

    def __init__(self):
        super().__init__(sys.stderr)
        self._pending: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:  # called with the handler's lock held
        try:
            self._pending.append(self.format(record) + self.terminator)
        except Exception:
            self.handleError(record)
            return
        if record.name != ACCESS_LOGGER:
            self.flush()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        if len(self._pending) == 1:
            loop.call_soon(self.flush)

    def flush(self) -> None:
        self.acquire()
        try:
            text, self._pending = "".join(self._pending), []
            if text:
                self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # stderr closed or gone: nowhere to report it either
            pass
        finally:
            self.release()


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


def configure_logging(level: int = logging.INFO, log_format: str = "text") -> None:
    """Records of every logger to stderr, one line each (see the module docstring)."""
    handler = TurnBufferedStderr()
    handler.setFormatter(FORMATTERS[log_format]())
    logging.basicConfig(level=level, handlers=[handler])  # unless the root has handlers already
    if log_format == "json" and handler in logging.getLogger().handlers:
        _log_what_python_would_print()
    # uvicorn follows "Unsupported upgrade request." with advice to install a
    # WebSocket library; the adapter turns WebSockets off on purpose
    # (cli.UVICORN_SETTINGS), so the advice is wrong here.
    logging.getLogger("uvicorn.error").addFilter(_NotThisLine("No supported WebSocket library"))


def _log_what_python_would_print() -> None:
    """Warnings and uncaught exceptions as records, so that with JSON every
    line on stderr is a JSON object (Python writes them there as text)."""
    logging.captureWarnings(True)
    crashes = logging.getLogger("adapter")

    def uncaught(kind, value, traceback) -> None:
        crashes.critical("uncaught exception", exc_info=(kind, value, traceback))

    def uncaught_in_thread(hook: threading.ExceptHookArgs) -> None:
        if hook.exc_type is not SystemExit:  # what threading's own hook ignores too
            uncaught(hook.exc_type, hook.exc_value, hook.exc_traceback)

    sys.excepthook = uncaught
    threading.excepthook = uncaught_in_thread
