"""Driving the adapter's ASGI app in-process, without sockets.

For tests that make many requests (the fuzz tests): a request costs a few
hundred microseconds instead of a loopback round trip. The app runs with
its lifespan (database, dispatcher) in an event loop of its own, in a
background thread, as under uvicorn; each request is handed to the app as
the ASGI messages a server would make of it, with raw bytes wherever HTTP
allows any (path, query, header values, body).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field

import anyio.from_thread


@dataclass
class Answer:
    """What the app sent back (``status`` None: it sent nothing)."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self):
        return json.loads(self.body)


@dataclass
class Request:
    method: str = "GET"
    path: str = "/"
    query: bytes = b""
    headers: Sequence[tuple[bytes, bytes]] = ()
    # The body as the server hands it over, in these pieces.
    chunks: Sequence[bytes] = ()
    # The client goes away after sending ``chunks``, before the body ends.
    disconnect: bool = False

    def scope(self) -> dict:
        return {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1", "method": self.method, "scheme": "http",
            "path": self.path, "raw_path": self.path.encode("utf-8", "surrogateescape"),
            "query_string": self.query, "root_path": "", "headers": list(self.headers),
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8080), "state": {},
        }


async def call(app, request: Request) -> Answer:
    """One request; exceptions the app lets out are raised here."""
    pieces = list(request.chunks) or [b""]
    answer = Answer()
    answered = asyncio.Event()

    async def receive() -> dict:
        if pieces:
            body = pieces.pop(0)
            more = bool(pieces) or request.disconnect
            return {"type": "http.request", "body": body, "more_body": more}
        if not request.disconnect:
            # Read past the end of the body: a server answers this once the
            # response is complete; nothing else can come meanwhile.
            await answered.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            assert answer.status is None, "a second response start"
            answer.status = message["status"]
            answer.headers = {name.decode("latin-1").lower(): value.decode("latin-1")
                              for name, value in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            assert answer.status is not None, "a body before the response start"
            answer.body += message.get("body", b"")
            if not message.get("more_body", False):
                answered.set()

    await app(request.scope(), receive, send)
    return answer


@contextlib.asynccontextmanager
async def lifespan(app) -> AsyncIterator[None]:
    """The app's startup before the block and its shutdown after, as a server runs them."""
    to_app: asyncio.Queue = asyncio.Queue()
    from_app: asyncio.Queue = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
    task = asyncio.create_task(app(scope, to_app.get, from_app.put))
    await to_app.put({"type": "lifespan.startup"})
    started = await from_app.get()
    if started["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"the app did not start: {started}")
    try:
        yield
    finally:
        await to_app.put({"type": "lifespan.shutdown"})
        await from_app.get()
        await task


class InProcess:
    """The app, started; :meth:`call` makes one request from any thread."""

    def __init__(self, app, portal: anyio.from_thread.BlockingPortal):
        self.app = app
        self.portal = portal

    def call(self, request: Request) -> Answer:
        return self.portal.call(call, self.app, request)

    def run(self, coroutine_function, *args):
        """Run ``coroutine_function(*args)`` in the app's event loop (e.g. a store query)."""
        return self.portal.call(coroutine_function, *args)


@contextlib.contextmanager
def in_process(app) -> Iterator[InProcess]:
    with anyio.from_thread.start_blocking_portal("asyncio") as portal:
        with portal.wrap_async_context_manager(lifespan(app)):
            yield InProcess(app, portal)
