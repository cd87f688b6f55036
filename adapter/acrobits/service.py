"""What every Acrobits endpoint shares: fields, authentication, error answers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from ..config import Config
from ..messaging.routing import Router
from ..passwords import CredentialCache
from ..store import Account, Store
from .requests import ServiceError, answer, error_answer, first, read_fields, wants_xml

BAD_CREDENTIALS = "Invalid username or password"


@dataclass
class Services:
    """The long-lived objects the endpoints use, built once per process."""

    config: Config
    store: Store
    credentials: CredentialCache
    router: Router


@dataclass
class Call:
    request: Request
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


def endpoint(*, xml: bool) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Wrap ``handler(call) -> answer fields`` as a Starlette endpoint.

    ``xml``: the service may answer in XML when asked (Send does; Fetch is
    JSON only, as the apps expect).
    """

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def serve(request: Request) -> Response:
            services: Services = request.app.state.services
            # Before the body is read, the query may already ask for XML (an
            # error reading the body is answered in the format asked for).
            as_xml = xml and wants_xml(request, request.query_params)
            try:
                fields = await read_fields(request, services.config.max_request_bytes)
                as_xml = xml and wants_xml(request, fields)
                return answer(await handler(Call(request, fields, services)), as_xml)
            except ServiceError as error:
                return error_answer(error, as_xml)

        serve.__name__ = handler.__name__
        return serve

    return wrap
