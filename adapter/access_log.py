"""The access log: one record per request on the ``adapter.access`` logger,
secrets masked.

uvicorn's own access log is off (it would print passwords sent in GET query
strings); :class:`AccessLog` replaces it. Each record carries the request's
fields as attributes (``client``, ``method``, ``path`` with its query
masked, ``status``, ``duration_ms``) and the line ``client "METHOD path"
status 1.2ms`` as its message, so an operator's handlers, filters,
formatters and levels apply as to any logger; ``serve`` writes it like every
other record (adapter.logs: escaped, or as JSON). Silence it with
``logging.getLogger("adapter.access").setLevel(logging.WARNING)``.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import parse_qsl, urlencode

from .logs import ACCESS_LOGGER

logger = logging.getLogger(ACCESS_LOGGER)
MESSAGE = '%s "%s %s" %d %.1fms'

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


class AccessLog:
    """Pure ASGI middleware logging one record per request, secrets masked."""

    def __init__(self, app):
        self.app = app

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
                _log(scope, status, (time.perf_counter() - started) * 1000)


def _log(scope, status: int, duration_ms: float) -> None:
    """One access record, made cheaply: a whole fetch costs the server about
    150 µs of CPU, and ``logger.info(..., extra=...)`` would add a walk up
    the stack to find its caller (always this function) and a check of each
    extra key against the record's attributes. So the record is made with
    ``makeRecord`` and passed to ``handle`` (both public: what ``info`` does
    after the walk) only when the level lets it through, its fields are set
    as attributes (what ``logging.makeLogRecord`` does; none clashes), and
    the message is left as a format with arguments: only a handler that
    writes the line formats it."""
    query = mask_query(scope.get("query_string", b"").decode("latin-1"))
    path = scope["path"] + (f"?{query}" if query else "")
    client = (scope.get("client") or ("-",))[0]
    method = scope["method"]
    record = logger.makeRecord(logger.name, logging.INFO, __file__, 0, MESSAGE,
                               (client, method, path, status, duration_ms), None, "_log")
    record.__dict__.update(client=client, method=method, path=path, status=status,
                           duration_ms=round(duration_ms, 3))
    logger.handle(record)
