"""The outbound HTTP client against raw loopback servers that see the exact bytes."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx2
import pytest

from adapter.http_client import AiohttpTransport, new_http_client
from tests.conftest import bound_socket

pytestmark = pytest.mark.anyio

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


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
async def client() -> AsyncIterator[httpx2.AsyncClient]:
    async with new_http_client() as http:
        yield http


async def test_the_request_on_the_wire_is_the_one_httpx2_built(client):
    reply = json.dumps({"status": "success"}).encode()
    server = RawServer(answering(answer("201 Created", reply, "X-Carrier: yes",
                                               "Content-Type: application/json")))
    async with server:
        response = await client.post(
            f"{server.url}/api/send?token=a%2Fb+c", data={"to": "+1 202", "body": "héllo"},
            auth=("user", "pa:ss"), headers={"User-Agent": "ours/1"})
    built = response.request

    line, headers, body = server.requests[0]
    assert line == b"POST /api/send?token=a%2Fb+c HTTP/1.1"
    names = [name for name, _ in headers]
    assert len(names) == len(set(names)), f"a header sent twice: {names}"
    assert dict(headers) == {name.decode().lower(): value.decode()
                             for name, value in built.headers.raw}
    assert dict(headers)["authorization"] == "Basic dXNlcjpwYTpzcw=="  # user:pa:ss
    assert dict(headers)["user-agent"] == "ours/1"
    assert body == built.content == b"to=%2B1+202&body=h%C3%A9llo"

    assert response.status_code == 201 and response.reason_phrase == "Created"
    assert response.http_version == "HTTP/1.1"
    assert response.headers["x-carrier"] == "yes"
    assert response.json() == {"status": "success"}


async def test_query_strings_reach_the_server_exactly_as_encoded(client):
    server = RawServer(answering(answer("200 OK", b"ok")))
    async with server:
        response = await client.get(f"{server.url}/rest.php", params={
            "message": "50% off + más ✓", "dst": "2025550101", "empty": ""})
    assert server.requests[0][0] == (
        f"GET {response.request.url.raw_path.decode()} HTTP/1.1".encode())
    assert b"message=50%25+off+%2B+m%C3%A1s+%E2%9C%93" in server.requests[0][0]


async def test_a_compressed_answer_is_decoded(client):
    packed = gzip.compress(b'{"status": "success", "sms": 7}')
    server = RawServer(answering(answer("200 OK", packed, "Content-Encoding: gzip")))
    async with server:
        response = await client.post(server.url, data={"a": "b"})
    assert response.json() == {"status": "success", "sms": 7}


async def test_sequential_requests_share_one_kept_alive_connection(client):
    server = RawServer(answering(answer("200 OK", b"ok")))
    async with server:
        for _ in range(3):
            assert (await client.post(server.url, data={"n": "1"})).text == "ok"
    assert len(server.requests) == 3
    assert server.connections == 1


async def test_concurrent_requests_each_get_a_connection_up_to_the_limit():
    release = asyncio.Event()

    def held(server: RawServer) -> Handler:
        async def handle(reader, writer):
            await server.read_request(reader)
            await release.wait()
            writer.write(answer("200 OK", b"ok"))
            await writer.drain()
        return handle

    server = RawServer(held)
    async with server, httpx2.AsyncClient(
            transport=AiohttpTransport(max_connections=3)) as http:
        sends = [asyncio.create_task(http.get(server.url)) for _ in range(5)]
        await wait_until(lambda: len(server.requests) == 3)
        assert server.connections == 3  # the other two wait for a free connection
        release.set()
        assert [response.text for response in await asyncio.gather(*sends)] == ["ok"] * 5


async def test_a_refused_connection_is_a_connect_error(client):
    sock, url = bound_socket()  # bound, never listening: connections are refused
    with sock, pytest.raises(httpx2.ConnectError):
        await client.post(url, data={"a": "b"})


async def test_no_answer_in_time_is_a_read_timeout(client):
    def silent(server: RawServer) -> Handler:
        async def handle(reader, writer):
            await server.read_request(reader)
            await reader.read()  # until the client gives up and closes
        return handle

    server = RawServer(silent)
    async with server:
        with pytest.raises(httpx2.ReadTimeout):
            await client.post(server.url, data={"a": "b"}, timeout=httpx2.Timeout(0.3))
    assert len(server.requests) == 1  # it went out: the outcome is unknown


@pytest.mark.parametrize("reply", [
    b"",  # the server hangs up without answering
    b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\ncut short",
    b"SMTP ready\r\n\r\n",
], ids=["hang-up", "cut-short", "not-http"])
async def test_a_broken_answer_is_a_transport_error_other_than_connect(client, reply):
    def broken(server: RawServer) -> Handler:
        async def handle(reader, writer):
            await server.read_request(reader)
            writer.write(reply)
            await writer.drain()
        return handle

    server = RawServer(broken)
    async with server:
        with pytest.raises(httpx2.TransportError) as raised:
            await client.post(server.url, data={"a": "b"})
    assert not isinstance(raised.value, (httpx2.ConnectError, httpx2.ConnectTimeout))


async def test_an_oversized_answer_is_refused_not_read():
    server = RawServer(answering(answer("200 OK", b"x" * 5000)))
    async with server, httpx2.AsyncClient(
            transport=AiohttpTransport(max_answer_bytes=4096)) as http:
        with pytest.raises(httpx2.RemoteProtocolError, match="larger than 4096 bytes"):
            await http.get(server.url)


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
        http = new_http_client()
        assert (await http.get(server.url)).text == "ok"
        await http.aclose()
        await asyncio.wait_for(closed.wait(), 5)


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)
