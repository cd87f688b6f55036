"""The HTTP client every outbound call goes through: carriers and the push service.

Callers use httpx2's API (DESIGN.md). Underneath, :class:`AiohttpTransport`
carries the requests over aiohttp's connection pool instead of httpcore's.
The dispatcher runs in the event loop that answers the apps, so the CPU a
carrier request costs shows up as the apps' send latency; bench_carriers
measured it (bench/RESULTS.md):

- httpcore spent about 3 ms of CPU per request with 80 sends in flight to a
  carrier that answers in 2 s. For every request it places and every answer
  it finishes, its pool walks all open connections and polls each idle socket;
  and it writes the headers and the body in two system calls.
- aiohttp spent about 1.4 ms. Its pool hands out an idle connection from a
  queue per host, learns of a closed one from the event loop instead of
  polling, and writes a small request at once.

The transport only moves bytes: httpx2 still builds the request (headers,
auth, form encoding) and decodes the answer (``Content-Encoding``), and
aiohttp's errors become the httpx2 exceptions the callers already classify:
``ConnectError``/``ConnectTimeout`` mean nothing reached the server, anything
else after the request went out is ambiguous.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import aiohttp
import httpx2
import yarl

DEFAULT_TIMEOUT = httpx2.Timeout(15.0, connect=5.0)
# Open connections in all: a dispatcher with this many slow sends in flight
# holds one each; every one of them stays open for reuse while idle.
MAX_CONNECTIONS = 100
# How long an idle connection is kept (httpx's default): carriers' servers
# close idle connections on their side, often not much later than this.
KEEPALIVE_SECONDS = 5.0
# A carrier's answer is a few hundred bytes of JSON or XML; anything near
# this is not an answer we could use, and is not read into memory.
MAX_ANSWER_BYTES = 1 << 20
# Headers aiohttp would add on its own: only what httpx2 built goes out.
NOT_ADDED = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")


def new_http_client() -> httpx2.AsyncClient:
    return httpx2.AsyncClient(timeout=DEFAULT_TIMEOUT, follow_redirects=False,
                              transport=AiohttpTransport())


class AiohttpTransport(httpx2.AsyncBaseTransport):
    def __init__(self, *, max_connections: int = MAX_CONNECTIONS,
                 keepalive_seconds: float = KEEPALIVE_SECONDS,
                 max_answer_bytes: int = MAX_ANSWER_BYTES):
        self.max_connections = max_connections
        self.keepalive_seconds = keepalive_seconds
        self.max_answer_bytes = max_answer_bytes
        self._session: aiohttp.ClientSession | None = None

    def _opened(self) -> aiohttp.ClientSession:
        # Opened on first use: aiohttp binds its pool to the running loop.
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self.max_connections, limit_per_host=0,
                keepalive_timeout=self.keepalive_seconds,
                ssl=httpx2.create_ssl_context())  # the same trust as httpx2's own
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=False, skip_auto_headers=NOT_ADDED,
                cookie_jar=aiohttp.DummyCookieJar())  # httpx2's client keeps cookies
        return self._session

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        body = await request.aread()
        with _as_httpx_errors(request):
            async with self._opened().request(
                    request.method, yarl.URL(str(request.url), encoded=True),
                    headers=[(name.decode("latin-1"), value.decode("latin-1"))
                             for name, value in request.headers.raw],
                    data=body or None, allow_redirects=False,
                    timeout=_timeout(request)) as answer:
                content = await self._read(answer, request)
        return httpx2.Response(
            answer.status, headers=answer.raw_headers, content=content,
            extensions={"http_version": b"HTTP/%d.%d" % tuple(answer.version),
                        "reason_phrase": (answer.reason or "").encode("latin-1")})

    async def _read(self, answer: aiohttp.ClientResponse, request: httpx2.Request) -> bytes:
        content = bytearray()
        async for chunk in answer.content.iter_any():
            content += chunk
            if len(content) > self.max_answer_bytes:
                raise httpx2.RemoteProtocolError(
                    f"answer larger than {self.max_answer_bytes} bytes", request=request)
        return bytes(content)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _timeout(request: httpx2.Request) -> aiohttp.ClientTimeout:
    """httpx2's per-request timeouts (``pool``, ``connect``, ``read``) for aiohttp."""
    given = request.extensions.get("timeout", {})
    pool, connect, read = given.get("pool"), given.get("connect"), given.get("read")
    # aiohttp's "connect" covers waiting for a pooled connection and opening one.
    waiting = None if pool is None or connect is None else pool + connect
    return aiohttp.ClientTimeout(total=None, connect=waiting, sock_connect=connect,
                                 sock_read=read)


@contextlib.contextmanager
def _as_httpx_errors(request: httpx2.Request) -> Iterator[None]:
    """aiohttp's errors as the httpx2 exceptions with the same meaning."""
    try:
        yield
    except httpx2.HTTPError:
        raise
    except aiohttp.ConnectionTimeoutError as error:
        raise httpx2.ConnectTimeout(_text(error), request=request) from error
    except aiohttp.ClientConnectorError as error:  # refused, unreachable, DNS, TLS
        raise httpx2.ConnectError(_text(error), request=request) from error
    except (aiohttp.SocketTimeoutError, asyncio.TimeoutError) as error:
        raise httpx2.ReadTimeout(_text(error) or "timed out", request=request) from error
    except aiohttp.ClientOSError as error:  # reset while sending or reading
        raise httpx2.ReadError(_text(error), request=request) from error
    except aiohttp.ClientError as error:  # disconnected, malformed answer
        raise httpx2.RemoteProtocolError(_text(error), request=request) from error


def _text(error: BaseException) -> str:
    return str(error) or error.__class__.__name__
