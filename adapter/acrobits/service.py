"""What every Acrobits endpoint shares: fields, authentication, error answers.

The endpoints are plain ASGI apps rather than Starlette request handlers:
they are most of the traffic (every app polls Fetch), and Starlette's
request, response and routing objects cost about a fifth of a fetch
(bench/RESULTS.md). What they read of a request is :class:`ServiceRequest`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass

from ..config import Config
from ..messaging.routing import Router
from ..passwords import CredentialCache
from ..store import Account, Store
from .requests import (
    ClientGone, ServiceError, answer, error_answer, first, lenient_query, read_fields, wants_xml,
)

log = logging.getLogger("adapter")

BAD_CREDENTIALS = "Invalid username or password"


@dataclass
class Services:
    """The long-lived objects the endpoints use, built once per process."""

    config: Config
    store: Store
    credentials: CredentialCache
    router: Router


class ServiceRequest:
    """The parts of an ASGI HTTP request the services read: method, headers
    (names in lower case, as ASGI servers give them), query and body."""

    __slots__ = ("scope", "method", "headers", "_receive")

    def __init__(self, scope: dict, receive: Callable[[], Awaitable[dict]]):
        self.scope = scope
        self.method: str = scope["method"]
        self.headers: dict[str, str] = {
            name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        self._receive = receive

    async def stream(self) -> AsyncIterator[bytes]:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise ClientGone()
            yield message.get("body", b"")
            if not message.get("more_body", False):
                return


@dataclass
class Call:
    request: ServiceRequest
    fields: dict[str, str]
    services: Services

    def field(self, *names: str) -> str:
        return first(self.fields, *names)

    def device(self) -> str | None:
        """The app installation (``%installid%``), cut to the length the store keeps."""
        return self.field("device", "installid").strip()[:255] or None

    async def account(self) -> Account:
        """The authenticated account; 401 (one answer for every failure) otherwise."""
        username = self.field("username", "from", "user").strip()
        password = self.field("password", "pass")
        if not username or not password:
            raise ServiceError(401, BAD_CREDENTIALS)
        account = await self.services.store.account(username)
        stored_hash = account.password_hash if account else None
        if not await self.services.credentials.check(username, password, stored_hash):
            raise ServiceError(401, BAD_CREDENTIALS)
        return account


Handler = Callable[[Call], Awaitable[Mapping]]


class Endpoint:
    """An ASGI app serving ``handler(call) -> answer fields``.

    ``xml``: the service may answer in XML when asked (Send does; Fetch is
    JSON only, as the apps expect). The Starlette app that routes here
    (``scope["app"]``) holds the :class:`Services` in its state.
    """

    def __init__(self, handler: Handler, xml: bool):
        self.handler = handler
        self.xml = xml
        self.__name__ = handler.__name__

    async def __call__(self, scope: dict, receive, send) -> None:
        request = ServiceRequest(scope, receive)
        services: Services = scope["app"].state.services
        # Before the body is read, the query may already ask for XML (an
        # error reading the body is answered in the format asked for).
        as_xml = self.xml and wants_xml(request, lenient_query(request))
        try:
            fields = await read_fields(request, services.config.max_request_bytes)
            as_xml = self.xml and wants_xml(request, fields)
            status, media_type, body = answer(
                await self.handler(Call(request, fields, services)), as_xml)
        except ServiceError as error:
            status, media_type, body = error_answer(error, as_xml)
        except ClientGone:
            return  # nobody to answer
        except Exception:
            log.exception("unexpected error on %s %s", request.method, scope["path"])
            status, media_type, body = error_answer(
                ServiceError(500, "Internal server error"), as_xml)
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", media_type), (b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})


def endpoint(*, xml: bool) -> Callable[[Handler], Endpoint]:
    """Decorator making ``handler`` an :class:`Endpoint`."""
    return lambda handler: Endpoint(handler, xml)
