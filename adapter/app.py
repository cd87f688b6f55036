"""The ASGI application: routes, lifespan and the access log."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .acrobits.fetch import fetch_messages, fetch_messages_legacy
from .acrobits.push_tokens import report_account_removal, report_push_token
from .acrobits.send import send_message
from .acrobits.service import Services
from . import hooks
from .config import Config
from .dispatch import Dispatcher, RetryPolicy
from .messaging.routing import Router
from .providers import build_providers, new_http_client
from .push import PushClient, Pusher
from .passwords import CredentialCache
from .store import Store

log = logging.getLogger("adapter")
access_log = logging.getLogger("adapter.access")

# Paths of the Acrobits services; the app learns them from the Account XML.
SEND_PATH = "/acrobits/send"
FETCH_PATH = "/acrobits/fetch"
FETCH_LEGACY_PATH = "/acrobits/fetch-legacy"
PUSH_TOKEN_PATH = "/acrobits/push-token"
ACCOUNT_REMOVAL_PATH = "/acrobits/account-removal"

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
    """Pure ASGI middleware logging one line per request, secrets masked.

    Replaces uvicorn's access log, which would print passwords sent in GET
    query strings.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500

        async def send_and_note(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                query = mask_query(scope.get("query_string", b"").decode("latin-1"))
                path = scope["path"] + (f"?{query}" if query else "")
                client = scope.get("client") or ("-", 0)
                access_log.info(
                    '%s "%s %s" %d %.1fms', client[0], scope["method"], path, status,
                    (time.perf_counter() - started) * 1000,
                )


async def healthz(request: Request) -> JSONResponse:
    try:
        await request.app.state.services.store.ping()
    except Exception as exc:  # any database failure means "not healthy"
        log.warning("health check failed: %s", exc)
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok"})


async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    """Unknown paths and wrong methods answer JSON with a message, like the services."""
    return JSONResponse({"message": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return JSONResponse({"message": "Internal server error"}, status_code=500)


async def webhook_secrets(store: Store, config: Config) -> dict[str, str]:
    """Each provider's webhook secret: from its config table, else made once
    and kept in the database so every process agrees."""
    return {
        name: settings.settings.get("secret") or await store.secret(f"webhook_secret:{name}")
        for name, settings in config.providers.items()
    }


async def prepare_database(store: Store, config: Config) -> None:
    applied = await store.migrate()
    if applied:
        log.info("database migrated to version %d (%s)", applied[-1], store.description)
    log.info("database: %s; public URL (what apps and providers reach): %s",
             store.description, config.public_url)
    if await store.account_count() == 0:
        log.info(
            "No accounts yet. Add one with:  python -m adapter account add alice --number "
            "+12025550100   then print its Account XML for the app with:  "
            "python -m adapter account-xml alice"
        )


def freeze_startup_objects() -> None:
    """Leave everything built so far (modules, classes, SQLAlchemy's tables)
    out of later garbage collections.

    A full collection walks every tracked object; with the libraries loaded
    that is about 70,000 objects and 25-50 ms during which no request is
    served, which under load happened every second or two and set the
    latency's p99. Frozen objects are never freed, which is what they are
    here anyway: they live as long as the process.
    """
    gc.collect()
    gc.freeze()


def create_app(config: Config, store: Store | None = None) -> Starlette:
    """The service for ``config``; opens (and migrates) the database on startup."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        own_store = store or Store(config.database_url)
        await prepare_database(own_store, config)
        http = new_http_client()
        carriers = build_providers(config, await webhook_secrets(own_store, config), http)
        dispatcher = Dispatcher(
            own_store, carriers, policy=RetryPolicy(
                base_seconds=config.outbox.retry_base_seconds,
                max_seconds=config.outbox.retry_max_seconds,
                max_age_seconds=config.outbox.max_age_seconds),
            poll_seconds=config.outbox.poll_seconds, lease_seconds=config.outbox.lease_seconds,
            batch=config.outbox.batch,
            pusher=Pusher(own_store, PushClient(http, config.push.url, config.push.timeout_seconds),
                          preview=config.push.preview),
        )
        router = Router(own_store, carriers, on_queued=dispatcher.wake)
        app.state.services = Services(config=config, store=own_store,
                                      credentials=CredentialCache(), router=router)
        app.state.dispatcher = dispatcher
        worker = asyncio.create_task(dispatcher.run(), name="dispatcher")
        freeze_startup_objects()
        try:
            yield
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
            await http.aclose()
            if store is None:
                await own_store.close()

    methods = ["GET", "POST"]
    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route(SEND_PATH, send_message, methods=methods),
        Route(FETCH_PATH, fetch_messages, methods=methods),
        Route(FETCH_LEGACY_PATH, fetch_messages_legacy, methods=methods),
        Route(PUSH_TOKEN_PATH, report_push_token, methods=methods),
        Route(ACCOUNT_REMOVAL_PATH, report_account_removal, methods=methods),
        Route("/hooks/{name}/inbound", hooks.inbound, methods=methods),
        Route("/hooks/{name}/status", hooks.status, methods=methods),
    ]
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(AccessLog)],
        exception_handlers={HTTPException: http_error, Exception: internal_error},
    )
