"""uvicorn's HTTP/1.1 protocol (httptools) with bounds on each request's head.

uvicorn bounds neither the size of a request line and its headers nor the
time a client takes to send them: a 64 MB header was read into memory,
four unfinished ones held about 290 MB, and a connection that sends a byte
now and then (or nothing at all after connecting) stays open for ever;
uvicorn's keep-alive timer is cancelled by the first byte. It has no
setting for either, so :class:`BoundedHttpToolsProtocol` adds them to the
protocol class uvicorn takes as ``http=`` (``cli.UVICORN_SETTINGS``):

- ``max_header_bytes``: the request line and headers together. The parser
  is never fed more of a head than that; one that does not end within it
  is answered 431 and the connection closed. (A request pipelined behind
  another's body in the same read may get up to one read, 256 KiB, more.)
- ``header_timeout_seconds``: from a connection's opening, or a request's
  first byte, to the end of its headers. Then the connection is closed.

Only the parser's and the connection's callbacks are extended, each calling
uvicorn's own first. The body is bounded by the app (``max_request_bytes``).
"""

from __future__ import annotations

import asyncio
import json
import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .logs import WarningThrottle

log = logging.getLogger("adapter.http")
# Any client can cause these at will: at most a line a minute of each.
warnings = WarningThrottle(log)

DEFAULT_MAX_HEADER_BYTES = 64 * 1024
DEFAULT_HEADER_TIMEOUT_SECONDS = 10.0


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    max_header_bytes = DEFAULT_MAX_HEADER_BYTES
    header_timeout_seconds = DEFAULT_HEADER_TIMEOUT_SECONDS

    # -- the connection ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)
        self._in_head = True  # the bytes coming are a request line and headers
        self._head_bytes = 0
        self._deadline: asyncio.TimerHandle | None = None
        self._start_clock()  # a client that connects and sends nothing

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._stop_clock()

    def data_received(self, data: bytes) -> None:
        while data and not self.transport.is_closing():
            if not self._in_head:
                super().data_received(data)
                return
            # Feed no more of a head than may still come; a slice of bytes
            # that fits is the same object, so a normal request costs nothing.
            room = self.max_header_bytes - self._head_bytes
            head, data = data[:room], data[room:]
            self._head_bytes += len(head)
            super().data_received(head)
            if self._in_head and self._head_bytes >= self.max_header_bytes:
                self._refuse_head()
                return

    # -- the parser ----------------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._start_clock()

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._in_head = False
        self._stop_clock()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True  # the next bytes start the next request
        self._head_bytes = 0

    # -- the bounds ----------------------------------------------------------------------
    def _start_clock(self) -> None:
        if self._deadline is None:
            self._deadline = asyncio.get_running_loop().call_later(
                self.header_timeout_seconds, self._too_slow)

    def _stop_clock(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self._head_bytes:  # silent for a connection that sent nothing, as for an idle one
            warnings.warn("slow", "%s: no complete request head within %g s; connection closed",
                          self._client(), self.header_timeout_seconds)
        self.transport.close()

    def _refuse_head(self) -> None:
        message = f"The request line and headers are larger than {self.max_header_bytes} bytes"
        warnings.warn("large", "%s: %s; answered 431", self._client(), message)
        body = json.dumps({"message": message}).encode()
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: application/json\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body))
        self.transport.close()

    def _client(self) -> str:
        peer = self.transport.get_extra_info("peername")
        return str(peer[0]) if isinstance(peer, tuple) else "-"


def bounded_protocol(max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
                     header_timeout_seconds: float = DEFAULT_HEADER_TIMEOUT_SECONDS
                     ) -> type[BoundedHttpToolsProtocol]:
    """The protocol class with these bounds, for uvicorn's ``http=``."""
    return type(BoundedHttpToolsProtocol.__name__, (BoundedHttpToolsProtocol,), {
        "max_header_bytes": max_header_bytes, "header_timeout_seconds": header_timeout_seconds})
