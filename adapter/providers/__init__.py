"""Upstream providers: one module each, registered here by their ``type``."""

from __future__ import annotations

from collections.abc import Mapping

import httpx2

from ..config import Config, ProviderConfig
from .base import (
    DEFAULT_TIMEOUT, HookUrls, InboundPart, InboundSms, Outcome, OutboundSms, Provider,
    SendResult, StatusUpdate, WebhookError,
)
from .loopback import LoopbackProvider

__all__ = [
    "HookUrls", "InboundPart", "InboundSms", "Outcome", "OutboundSms", "Provider",
    "SendResult", "StatusUpdate", "WebhookError", "build_providers", "hook_urls",
    "PROVIDER_TYPES",
]

PROVIDER_TYPES: dict[str, type[Provider]] = {
    LoopbackProvider.type: LoopbackProvider,
}


def hook_urls(config: Config, name: str, secret: str) -> HookUrls:
    return HookUrls(
        inbound=config.public(f"/hooks/{name}/inbound?token={secret}"),
        status=config.public(f"/hooks/{name}/status?token={secret}"),
        secret=secret,
    )


def build_providers(
    config: Config, secrets: Mapping[str, str], http: httpx2.AsyncClient
) -> dict[str, Provider]:
    """One provider object per ``[providers.NAME]`` table."""
    return {
        name: PROVIDER_TYPES[settings.type](
            config=settings, http=http, hooks=hook_urls(config, name, secrets[name])
        )
        for name, settings in config.providers.items()
    }


def new_http_client() -> httpx2.AsyncClient:
    return httpx2.AsyncClient(timeout=DEFAULT_TIMEOUT, follow_redirects=False)


def loopback_config(name: str = "loopback") -> ProviderConfig:
    return ProviderConfig(name=name, type="loopback")
