"""The outbound HTTP client against raw loopback servers that see the exact bytes."""

from __future__ import annotations

import ast
import asyncio
import gzip
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

import adapter
from adapter.http_client import (
    USER_AGENT, AnswerTimeout, AnswerTooLarge, HttpClient, NoAnswer, NotSent, Timeout,
)
from tests.conftest import bound_socket, wait_for

pytestmark = pytest.mark.anyio

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
TIMEOUT = Timeout(10.0)


class RawServer:
    """An HTTP/1.1 server on loopback whose handler reads and writes raw bytes."""

    def __init__(self, make_handler: Callable[[RawServer], Handler]):
        self.handler = make_handler(self)
        self.connections = 0
        self.requests: list[tuple[bytes, list[tuple[str, str]], bytes]] = []
        self.url = ""
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc) -> None:
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        """One request off the connection (recorded); its request line."""
        head = await reader.readuntil(b"\r\n\r\n")
        line, *fields = head[:-4].decode("latin-1").split("\r\n")
        headers = [(name.strip().lower(), value.strip())
                   for name, _, value in (field.partition(":") for field in fields)]
        length = int(dict(headers).get("content-length", 0))
        body = await reader.readexactly(length)
        self.requests.append((line.encode("latin-1"), headers, body))
        return line.encode("latin-1")


def answer(status: str, body: bytes, *headers: str) -> bytes:
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def answering(*chunks: bytes) -> Callable[[RawServer], Handler]:
    """A server that answers every request on a connection with ``chunks``."""
    def for_server(server: RawServer) -> Handler:
        async def handle(reader, writer):
            while True:
                await server.read_request(reader)
                for chunk in chunks:
                    writer.write(chunk)
                await writer.drain()
        return handle
    return for_server


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    async with HttpClient() as http:
        yield http


async def test_the_request_on_the_wire_is_exactly_the_one_described(client):
    reply = json.dumps({"status": "success"}).encode()
    server = RawServer(answering(answer("201 Created", reply, "X-Carrier: yes",
                                        "Content-Type: application/json")))
    async with server:
        response = await client.post(
            f"{server.url}/api/send?token=a%2Fb+c", form={"to": "+1 202", "body": "héllo"},
            auth=("user", "pa:ss"), headers={"User-Agent": USER_AGENT}, timeout=TIMEOUT)

    line, headers, body = server.requests[0]
    assert line == b"POST /api/send?token=a%2Fb+c HTTP/1.1"
    names = [name for name, _ in headers]
    assert len(names) == len(set(names)), f"a header sent twice: {names}"
    assert dict(headers) == {
        "host": server.url.removeprefix("http://"), "accept": "*/*",
        "accept-encoding": "gzip, deflate", "connection": "keep-alive",
        "user-agent": USER_AGENT, "content-type": "application/x-www-form-urlencoded",
        "authorization": "Basic dXNlcjpwYTpzcw==",  # user:pa:ss
        "content-length": str(len(body)),
    }
    assert body == b"to=%2B1+202&body=h%C3%A9llo"

    assert response.status_code == 201 and response.reason == "Created"
    assert response.headers["x-carrier"] == "yes"
    assert response.json() == {"status": "success"}


async def test_a_body_and_headers_given_go_out_as_given(client):
    server = RawServer(answering(answer("200 OK", b"ok")))
    async with server:
        await client.post(server.url, content=b'{"a": "\xc3\xa9"}', timeout=TIMEOUT,
                          headers={"Content-Type": "application/json", "Accept": "text/plain"},
                          auth=("ünï", "cödé"))
    _line, headers, body = server.requests[0]
    assert body == b'{"a": "\xc3\xa9"}'
    assert dict(headers)["content-type"] == "application/json"
    assert dict(headers)["accept"] == "text/plain"
    assert dict(headers)["authorization"] == "Basic w7xuw686Y8O2ZMOp"  # UTF-8, as httpx did


async def test_query_strings_reach_the_server_exactly_as_encoded(client):
    query = "message=50%25+off+%2B+m%C3%A1s+%E2%9C%93&dst=2025550101&empty=&token=a%2Fb"
    server = RawServer(answering(answer("200 OK", b"ok")))
    async with server:
        await client.get(f"{server.url}/rest.php?{query}", timeout=TIMEOUT)
    assert server.requests[0][0] == f"GET /rest.php?{query} HTTP/1.1".encode()


async def test_a_compressed_answer_is_decoded(client):
    packed = gzip.compress(b'{"status": "success", "sms": 7}')
    server = RawServer(answering(answer("200 OK", packed, "Content-Encoding: gzip")))
    async with server:
        response = await client.post(server.url, form={"a": "b"}, timeout=TIMEOUT)
    assert response.json() == {"status": "success", "sms": 7}


async def test_text_is_read_in_the_charset_the_answer_names(client):
    server = RawServer(answering(answer("200 OK", "déjà".encode("latin-1"),
                                        "Content-Type: text/plain; charset=ISO-8859-1")))
    async with server:
        response = await client.get(server.url, timeout=TIMEOUT)
    assert response.text == "déjà"


async def test_sequential_requests_share_one_kept_alive_connection(client):
    server = RawServer(answering(answer("200 OK", b"ok")))
    async with server:
        for _ in range(3):
            assert (await client.post(server.url, form={"n": "1"}, timeout=TIMEOUT)).text == "ok"
    assert len(server.requests) == 3
    assert server.connections == 1


def held(release: asyncio.Event) -> Callable[[RawServer], Handler]:
    """A server that answers each request once ``release`` is set."""
    def for_server(server: RawServer) -> Handler:
        async def handle(reader, writer):
            while True:
                await server.read_request(reader)
                await release.wait()
                writer.write(answer("200 OK", b"ok"))
                await writer.drain()
        return handle
    return for_server


async def test_concurrent_requests_each_get_a_connection_up_to_the_limit():
    release = asyncio.Event()
    server = RawServer(held(release))
    async with server, HttpClient(max_connections=3) as http:
        sends = [asyncio.create_task(http.get(server.url, timeout=TIMEOUT)) for _ in range(5)]
        await wait_until(lambda: len(server.requests) == 3)
        assert server.connections == 3  # the other two wait for a free connection
        release.set()
        assert [response.text for response in await asyncio.gather(*sends)] == ["ok"] * 5


async def test_no_free_connection_in_time_is_not_sent():
    release = asyncio.Event()
    server = RawServer(held(release))
    async with server, HttpClient(max_connections=1) as http:
        first = asyncio.create_task(http.get(server.url, timeout=TIMEOUT))
        await wait_until(lambda: len(server.requests) == 1)
        with pytest.raises(NotSent):
            await http.get(server.url, timeout=Timeout(10.0, connect=0.3))
        release.set()
        assert (await first).text == "ok"
    assert len(server.requests) == 1


async def test_a_refused_connection_is_not_sent(client):
    sock, url = bound_socket()  # bound, never listening: connections are refused
    with sock, pytest.raises(NotSent):
        await client.post(url, form={"a": "b"}, timeout=TIMEOUT)


def silent(server: RawServer) -> Handler:
    async def handle(reader, writer):
        await server.read_request(reader)
        await reader.read()  # until the client gives up and closes
    return handle


async def test_no_answer_in_time_is_a_read_timeout(client):
    server = RawServer(silent)
    async with server:
        with pytest.raises(AnswerTimeout, match="nothing came for 0.3 s"):
            await client.post(server.url, form={"a": "b"}, timeout=Timeout(10.0, read=0.3))
    assert len(server.requests) == 1  # it went out: the outcome is unknown


async def test_an_answer_that_trickles_in_is_cut_off_at_the_total_timeout(client):
    def trickling(server: RawServer) -> Handler:
        async def handle(reader, writer):
            await server.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            for _ in range(1000):  # each byte well within the read timeout
                writer.write(b"x")
                await writer.drain()
                await asyncio.sleep(0.05)
        return handle

    server = RawServer(trickling)
    async with server:
        started = time.monotonic()
        with pytest.raises(AnswerTimeout, match="within 0.5 s"):
            await client.get(server.url, timeout=Timeout(0.5, read=5.0))
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("reply", [
    b"",  # the server hangs up without answering
    b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\ncut short",
    b"SMTP ready\r\n\r\n",
], ids=["hang-up", "cut-short", "not-http"])
async def test_a_broken_answer_is_no_answer_not_unsent(client, reply):
    def broken(server: RawServer) -> Handler:
        async def handle(reader, writer):
            await server.read_request(reader)
            writer.write(reply)
            await writer.drain()
        return handle

    server = RawServer(broken)
    async with server:
        with pytest.raises(NoAnswer) as raised:
            await client.post(server.url, form={"a": "b"}, timeout=TIMEOUT)
    assert not isinstance(raised.value, NotSent)


@pytest.mark.parametrize("body, encoding", [(b"x" * 5000, ()),
                                            (gzip.compress(b"0" * 5000), ("Content-Encoding: gzip",))],
                         ids=["plain", "gzip-expanding"])
async def test_an_oversized_answer_is_refused_not_read(body, encoding):
    server = RawServer(answering(answer("200 OK", body, *encoding)))
    async with server, HttpClient(max_answer_bytes=4096) as http:
        with pytest.raises(AnswerTooLarge, match="larger than 4096 bytes"):
            await http.get(server.url, timeout=TIMEOUT)


async def test_cookies_are_not_kept(client):
    server = RawServer(answering(answer("200 OK", b"ok", "Set-Cookie: session=abc; Path=/")))
    async with server:
        for _ in range(2):
            await client.get(server.url, timeout=TIMEOUT)
    assert all("cookie" not in dict(headers) for _line, headers, _body in server.requests)


async def test_closing_the_client_closes_its_connections():
    closed = asyncio.Event()

    def watching(server: RawServer) -> Handler:
        async def handle(reader, writer):
            await server.read_request(reader)
            writer.write(answer("200 OK", b"ok"))
            await writer.drain()
            assert await reader.read() == b""
            closed.set()
        return handle

    server = RawServer(watching)
    async with server:
        http = HttpClient()
        assert (await http.get(server.url, timeout=TIMEOUT)).text == "ok"
        await http.aclose()
        await asyncio.wait_for(closed.wait(), 5)


# -- proxies -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def proxy(tmp_path_factory) -> Iterator[str]:
    """proxy.py on loopback; it marks each request it forwards with a header."""
    port_file = tmp_path_factory.mktemp("proxy") / "port"
    process = subprocess.Popen(
        [sys.executable, "-m", "proxy", "--hostname", "127.0.0.1", "--port", "0",
         "--port-file", str(port_file), "--num-acceptors", "1", "--num-workers", "1",
         "--plugins", "proxy.plugin.ModifyRequestHeaderPlugin"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port = wait_for(lambda: port_file.exists() and port_file.read_text().strip(),
                        timeout=30, what="proxy.py to listen")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def through_proxy(headers: list[tuple[str, str]]) -> bool:
    return "x-proxy-py-version" in dict(headers)


async def test_http_proxy_from_the_environment_is_used_and_no_proxy_bypasses_it(
        proxy, monkeypatch):
    for name in ("http_proxy", "HTTPS_PROXY", "https_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.setenv("NO_PROXY", "localhost")
    server = RawServer(answering(answer("200 OK", b"ok")))
    async with server, HttpClient() as http:
        proxied = await http.post(f"{server.url}/via", form={"a": "b"}, timeout=TIMEOUT)
        direct = await http.post(f"{server.url.replace('127.0.0.1', 'localhost')}/direct",
                                 form={"a": "b"}, timeout=TIMEOUT)
    assert proxied.text == direct.text == "ok"
    (via_line, via, via_body), (direct_line, direct_headers, _) = server.requests
    assert via_line.startswith(b"POST /via ") and through_proxy(via) and via_body == b"a=b"
    assert direct_line.startswith(b"POST /direct ") and not through_proxy(direct_headers)


async def test_without_proxy_settings_requests_go_direct(monkeypatch):
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    server = RawServer(answering(answer("200 OK", b"ok")))
    async with server, HttpClient() as http:
        await http.get(server.url, timeout=TIMEOUT)
    assert not through_proxy(server.requests[0][1])


async def test_a_proxy_that_cannot_be_reached_is_not_sent(monkeypatch):
    sock, url = bound_socket()
    monkeypatch.setenv("HTTP_PROXY", url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with sock:
        async with HttpClient() as http:
            with pytest.raises(NotSent):
                await http.get("http://192.0.2.1/", timeout=TIMEOUT)


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def test_the_product_has_one_http_client_stack():
    root = Path(adapter.__file__).parent
    imported = {alias.name.split(".")[0] for path in root.rglob("*.py")
                for node in ast.walk(ast.parse(path.read_text()))
                if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in (node.names if isinstance(node, ast.Import)
                              else [ast.alias(node.module or "")] if node.level == 0 else [])}
    assert "aiohttp" in imported
    assert not imported & {"httpx", "httpx2", "httpcore", "httpcore2", "requests", "urllib3"}
