"""The ASGI application: routes and lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import shlex
import sys
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .access_log import AccessLog
from .acrobits.fetch import fetch_messages, fetch_messages_legacy
from .acrobits.push_tokens import report_account_removal, report_push_token
from .acrobits.send import send_message
from .acrobits.service import Endpoint, Services
from . import hooks
from .config import Config
from .dispatch import Dispatcher, RetryPolicy
from .http_client import new_http_client
from .logs import WarningThrottle
from .messaging.routing import Router
from .providers import Providers, check_providers
from .push import PushClient, Pusher
from .passwords import CredentialCache
from .store import Store

log = logging.getLogger("adapter")

# Paths of the Acrobits services; the app learns them from the Account XML.
SEND_PATH = "/acrobits/send"
FETCH_PATH = "/acrobits/fetch"
FETCH_LEGACY_PATH = "/acrobits/fetch-legacy"
PUSH_TOKEN_PATH = "/acrobits/push-token"
ACCOUNT_REMOVAL_PATH = "/acrobits/account-removal"
SERVICE_METHODS = ("GET", "POST")


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
        name: spec.settings.secret or await store.secret(f"webhook_secret:{name}")
        for name, spec in check_providers(config).items()
    }


async def migrate_database(store: Store) -> None:
    applied = await store.migrate()
    if applied:
        log.info("database migrated to version %d (%s)", applied[-1], store.description)


def cli_invocation(config: Config) -> str:
    """How to run the command line on this service's database, as a shell
    command that works from any directory: this Python (the venv's, where
    the adapter is installed) and this configuration."""
    command = f"{shlex.quote(sys.executable)} -m adapter"
    if config.source != "built-in defaults":
        return f"{command} --config {shlex.quote(str(Path(config.source).resolve()))}"
    if os.environ.get("ADAPTER_DATABASE_URL"):
        return f"{command}  (with this server's $ADAPTER_DATABASE_URL)"
    # No file: the default database is relative to where the server started.
    return f"cd {shlex.quote(os.getcwd())} && {command}"


async def announce(store: Store, config: Config) -> None:
    """What an operator starting the service needs to know."""
    log.info("database: %s; public URL (what apps and providers reach): %s",
             store.description, config.public_url)
    if await store.account_count() == 0:
        command = cli_invocation(config)
        log.info("No accounts yet. Add one with:  %s account add alice --number +12025550100"
                 "   then print its Account XML for the app with:  %s account-xml alice",
                 command, command)


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


class ServicesFirst:
    """Hands the Acrobits services' requests straight to their endpoints.

    They are nearly all of the traffic, and Starlette's routing and
    middleware would cost them about 20 µs each (bench/RESULTS.md). Every
    other request, and methods the services do not take (answered 405),
    goes through Starlette as before.
    """

    def __init__(self, app: Starlette, services: dict[str, Endpoint]):
        self.app = app
        self.services = services

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] in SERVICE_METHODS:
            endpoint = self.services.get(scope["path"])
            if endpoint is not None:
                scope["app"] = self.app  # where the endpoint finds its Services
                return await endpoint(scope, receive, send)
        return await self.app(scope, receive, send)


def create_app(config: Config, store: Store | None = None) -> AccessLog:
    """The service for ``config``; opens (and migrates) the database on startup."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        own_store = store or Store(config.database_url,
                                   push_interval_seconds=config.push.min_interval_seconds)
        await migrate_database(own_store)
        http = new_http_client()
        # The one registry of instances: the webhooks, the router and the dispatcher share it.
        providers = Providers.build(config, await webhook_secrets(own_store, config), http)
        dispatcher = Dispatcher(
            own_store, providers, policy=RetryPolicy(
                base_seconds=config.outbox.retry_base_seconds,
                max_seconds=config.outbox.retry_max_seconds,
                max_age_seconds=config.outbox.max_age_seconds),
            poll_seconds=config.outbox.poll_seconds, lease_seconds=config.outbox.lease_seconds,
            batch=config.outbox.batch,
            pusher=Pusher(own_store, PushClient(http, config.push.url, config.push.timeout_seconds),
                          preview=config.push.preview),
        )
        router = Router(own_store, providers, on_queued=dispatcher.wake,
                        max_segments=config.limits.segments_per_message)
        app.state.services = Services(config=config, store=own_store,
                                      credentials=CredentialCache(cost=config.passwords),
                                      router=router)
        app.state.providers = providers
        app.state.dispatcher = dispatcher
        app.state.refused_callbacks = WarningThrottle(hooks.log)
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

    services = {
        SEND_PATH: send_message,
        FETCH_PATH: fetch_messages,
        FETCH_LEGACY_PATH: fetch_messages_legacy,
        PUSH_TOKEN_PATH: report_push_token,
        ACCOUNT_REMOVAL_PATH: report_account_removal,
    }
    methods = list(SERVICE_METHODS)
    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        *(Route(path, endpoint, methods=methods) for path, endpoint in services.items()),
        Route("/hooks/{name}/inbound", hooks.inbound, methods=methods),
        Route("/hooks/{name}/status", hooks.status, methods=methods),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error, Exception: internal_error},
    )
    return AccessLog(ServicesFirst(app, services))
