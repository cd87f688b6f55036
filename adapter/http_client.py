"""The HTTP client every outbound call goes through: carriers and the push service.

aiohttp carries the requests, behind this small facade so that callers see
one request call, one answer type and two kinds of error, whatever moves the bytes.
The dispatcher runs in the event loop that answers the apps, so the CPU a
carrier request costs shows up as the apps' send latency; ``bench/bench_http.py``
measured the candidates (bench/RESULTS.md): with 80 sends in flight to a
carrier that answers in 2 s, httpx2 alone spent about 3 ms of CPU per
request (its pool walks every open connection for each request and answer)
and aiohttp about 1 ms (an idle connection per host from a queue, a closed
one learnt of from the event loop, a small request written at once).

What the facade adds to aiohttp, and why:

- The request carries exactly the headers listed in :meth:`HttpClient.request`
  (aiohttp's own ``User-Agent`` and defaults are switched off), forms are
  encoded here and basic auth is UTF-8: the wire stays what the carriers saw.
- Proxies come from ``HTTP_PROXY``/``HTTPS_PROXY``/``NO_PROXY``, read when
  the client is made and decided once per host: aiohttp's ``trust_env``
  would do that in a thread for every request, and add credentials from
  ``~/.netrc`` to requests that carry none (the push service's).
- No cookies are kept; redirects are not followed; an answer over
  ``max_answer_bytes`` (after decompression) is refused, not read into memory.
- aiohttp's exceptions become :class:`NotSent` (nothing reached the server:
  sending again is safe) or :class:`NoAnswer` (the request may have gone
  out). ``adapter/http_outcome.py`` classifies them and the HTTP statuses.
"""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import Message
from urllib.parse import urlencode

import aiohttp
import yarl
from multidict import CIMultiDict, CIMultiDictProxy

USER_AGENT = "acrobits-sms-adapter/0.1 (+https://github.com/)"
# Open connections in all: a dispatcher with this many slow sends in flight
# holds one each; every one of them stays open for reuse while idle.
MAX_CONNECTIONS = 100
# How long an idle connection is kept: carriers' servers close idle
# connections on their side, often not much later than this.
KEEPALIVE_SECONDS = 5.0
# A carrier's answer is a few hundred bytes of JSON or XML; anything near
# this is not an answer we could use, and is not read into memory.
MAX_ANSWER_BYTES = 1 << 20
# aiohttp's automatic headers that it must leave to us.
NOT_ADDED = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")


@dataclass(frozen=True)
class Timeout:
    """Per call: ``total`` bounds everything from waiting for a free
    connection to the last byte of the answer; ``connect`` getting a
    connection (waiting for one included); ``read`` each wait for the server
    (default: ``total``)."""

    total: float
    connect: float = 5.0
    read: float | None = None

    def for_aiohttp(self) -> aiohttp.ClientTimeout:
        # Running out of the connect limit says "not sent"; running out of the
        # total does not say in which phase, so it counts as "no answer" (with
        # a total at or under the connect limit, a slow connect too: cautious).
        connect = min(self.connect, self.total)
        return aiohttp.ClientTimeout(total=self.total, connect=connect, sock_connect=connect,
                                     sock_read=self.read or self.total)


class TransportError(Exception):
    """No usable answer came back."""


class NotSent(TransportError):
    """Nothing reached the server (refused, unreachable, DNS, TLS, proxy, no
    connection in time): sending again cannot duplicate anything."""


class NoAnswer(TransportError):
    """The request may have gone out, and what the server did is unknown."""


class AnswerTimeout(NoAnswer):
    """The answer did not come in time."""


class AnswerTooLarge(NoAnswer):
    """The answer was longer than we read."""


@dataclass(frozen=True)
class Answer:
    """A complete HTTP answer: status, headers and the (decoded) body."""

    status_code: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    reason: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.headers, CIMultiDictProxy):  # made by hand (tests)
            object.__setattr__(self, "headers", CIMultiDictProxy(CIMultiDict(self.headers)))

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def text(self) -> str:
        """The body as text, in the charset the answer names, else UTF-8."""
        parsed = Message()
        parsed["content-type"] = self.headers.get("content-type", "")
        try:
            return self.body.decode(parsed.get_param("charset") or "utf-8", errors="replace")
        except LookupError:  # a charset Python does not know
            return self.body.decode("utf-8", errors="replace")

    def json(self):
        """The body as JSON (ValueError when it is not; RecursionError when
        nested deeper than the stack)."""
        return json.loads(self.body)


class HttpClient:
    def __init__(self, *, max_connections: int = MAX_CONNECTIONS,
                 keepalive_seconds: float = KEEPALIVE_SECONDS,
                 max_answer_bytes: int = MAX_ANSWER_BYTES):
        self.max_connections = max_connections
        self.keepalive_seconds = keepalive_seconds
        self.max_answer_bytes = max_answer_bytes
        self._proxies = urllib.request.getproxies_environment()
        # (scheme, host) -> the proxy and its credentials, or (None, None).
        self._proxy_of: dict[tuple[str, str], tuple] = {}
        self._session: aiohttp.ClientSession | None = None

    def _opened(self) -> aiohttp.ClientSession:
        # Opened on first use: aiohttp binds its pool to the running loop.
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self.max_connections, limit_per_host=0,
                                             keepalive_timeout=self.keepalive_seconds)
            self._session = aiohttp.ClientSession(
                connector=connector, skip_auto_headers=NOT_ADDED,
                cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    async def post(self, url: str, **request) -> Answer:
        return await self.request("POST", url, **request)

    async def get(self, url: str, **request) -> Answer:
        return await self.request("GET", url, **request)

    async def request(self, method: str, url: str, *, timeout: Timeout,
                      form: Mapping[str, str] | None = None, content: bytes | None = None,
                      headers: Mapping[str, str] | None = None,
                      auth: tuple[str, str] | None = None) -> Answer:
        """The headers sent are exactly Host, Accept (``*/*`` unless given),
        Accept-Encoding, Connection, ``headers``, a form's Content-Type, basic
        ``auth`` and Content-Length."""
        sent = {"Accept": "*/*", "Accept-Encoding": "gzip, deflate", "Connection": "keep-alive",
                **(headers or {})}
        if form is not None:
            content = urlencode(form).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        if auth is not None:
            sent["Authorization"] = "Basic " + base64.b64encode(":".join(auth).encode()).decode()
        # Already percent-encoded as written, unless it cannot be (a base_url
        # with a space or an accent): then yarl encodes it.
        target = yarl.URL(url, encoded=url.isascii() and url.isprintable() and " " not in url)
        proxy, proxy_auth = self._proxy_for(target)
        try:
            async with self._opened().request(
                    method, target, headers=sent, data=content, allow_redirects=False,
                    proxy=proxy, proxy_auth=proxy_auth, timeout=timeout.for_aiohttp()) as answer:
                body = await self._read(answer)
        except (aiohttp.ConnectionTimeoutError, aiohttp.ClientConnectorError,
                aiohttp.ClientHttpProxyError, aiohttp.InvalidURL,
                aiohttp.NonHttpUrlClientError) as error:
            raise NotSent(_text(error)) from error
        except aiohttp.SocketTimeoutError as error:
            raise AnswerTimeout(f"nothing came for {timeout.read or timeout.total:g} s") from error
        except asyncio.TimeoutError as error:
            raise AnswerTimeout(f"no complete answer within {timeout.total:g} s") from error
        except aiohttp.ClientError as error:  # reset, disconnected, malformed answer
            raise NoAnswer(_text(error)) from error
        return Answer(answer.status, body, answer.headers, answer.reason or "")

    def _proxy_for(self, url: yarl.URL) -> tuple[yarl.URL | None, aiohttp.BasicAuth | None]:
        key = (url.scheme, url.host or "")
        if key not in self._proxy_of:
            given = self._proxies.get(url.scheme)
            if given is None or urllib.request.proxy_bypass_environment(
                    url.host or "", self._proxies):
                self._proxy_of[key] = (None, None)
            else:
                proxy = yarl.URL(given)
                self._proxy_of[key] = (proxy.with_user(None), aiohttp.BasicAuth.from_url(proxy))
        return self._proxy_of[key]

    async def _read(self, answer: aiohttp.ClientResponse) -> bytes:
        body = bytearray()
        async for chunk in answer.content.iter_any():
            body += chunk
            if len(body) > self.max_answer_bytes:
                raise AnswerTooLarge(f"answer larger than {self.max_answer_bytes} bytes")
        return bytes(body)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()


def new_http_client() -> HttpClient:
    return HttpClient()


def _text(error: BaseException) -> str:
    return f"{error.__class__.__name__}: {error}" if str(error) else error.__class__.__name__
