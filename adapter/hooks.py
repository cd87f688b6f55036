"""Carrier webhooks: ``/hooks/{NAME}/inbound`` and ``/hooks/{NAME}/status``.

The provider module authenticates, parses and acknowledges; this module
does the rest once for all of them. The whole request is read first (within
``max_request_bytes``) so that a provider can check a signature over its URL
and body before anything in it is used. The ack goes out only after what the
callback carried is committed, and a repeated callback stores nothing new
but gets the same ack (carriers retry until they see it).
"""

from __future__ import annotations

import logging

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from .access_log import CLIENT_GONE
from .config import Config
from .web_requests import ServiceError, read_body
from .messaging import inbound as inbound_messages
from .messaging.status import FINAL, record_update
from .messaging.inbound import InboundSms
from .providers import Provider, WebhookError, WebhookRequest

log = logging.getLogger("adapter.hooks")


def _refuse(status: int, message: str) -> Response:
    return JSONResponse({"message": message}, status_code=status)


async def _provider_and_fields(request: Request, kind: str) -> tuple[Provider, dict]:
    provider = request.app.state.providers.get(request.path_params["name"])
    if provider is None or not provider.off_net:
        raise ServiceError(404, "No such provider")
    webhook = await webhook_request(request, kind, request.app.state.services.config)
    if not provider.authenticate(webhook):
        # Throttled: a flood of forged or misconfigured callbacks must not
        # flood the log (nor hide the next real problem in it).
        request.app.state.refused_callbacks.warn(
            provider.name, "%s %s callback refused: bad or missing secret", provider.name, kind)
        raise ServiceError(401, "Unauthenticated callback")
    fields = dict(webhook.fields)
    fields.pop("token", None)
    return provider, fields


async def webhook_request(request: Request, kind: str, config: Config) -> WebhookRequest:
    """The callback read whole; its URL as the carrier called it: our
    public_url, not the Host a proxy in front handed on."""
    query = request.scope.get("query_string", b"").decode("latin-1")
    path = request.scope.get("raw_path") or request.scope["path"].encode("utf-8")
    return WebhookRequest(
        kind=kind, method=request.method,
        url=config.public(path.decode("latin-1")) + (f"?{query}" if query else ""),
        headers=request.headers, body=await read_body(request, config.max_request_bytes))


async def _parsed(request: Request, kind: str) -> tuple[Provider, list] | Response:
    """The provider and what it parsed of the callback, or the answer refusing it."""
    try:
        provider, fields = await _provider_and_fields(request, kind)
        parse = provider.parse_inbound if kind == "inbound" else provider.parse_status
        return provider, parse(fields)
    except ServiceError as error:
        return _refuse(error.status, error.message)
    except WebhookError as error:
        return _refuse(400, str(error))
    except ClientDisconnect:
        # Nobody reads this answer; the access log shows it.
        return Response(status_code=CLIENT_GONE)


async def inbound(request: Request) -> Response:
    parsed = await _parsed(request, "inbound")
    if isinstance(parsed, Response):
        return parsed
    provider, messages = parsed
    services = request.app.state.services
    stored = [await receive(services.store, provider, sms) for sms in messages]
    if any(stored):
        services.router.on_queued()  # pushes for the recipients' devices
    return provider.inbound_ack()


async def receive(store, provider: Provider, sms: InboundSms) -> bool:
    """Store one inbound message; True when something new landed."""
    deliveries = await inbound_messages.receive(store, provider.name, sms,
                                                provider.multipart_wait_seconds)
    if deliveries == []:
        log.warning("%s: inbound %s for %s, which no account holds", provider.name,
                    sms.carrier_id, sms.recipient)
    return bool(deliveries)


async def status(request: Request) -> Response:
    parsed = await _parsed(request, "status")
    if isinstance(parsed, Response):
        return parsed
    provider, updates = parsed
    services = request.app.state.services
    store = services.store
    for update in updates:
        message = await record_update(store, provider.name, update)
        if message is None:
            log.info("%s: status %s for unknown ref %s", provider.name, update.state, update.ref)
        elif update.state in FINAL:
            services.router.on_queued()  # a receipt or notice may have queued pushes
    return provider.status_ack()
