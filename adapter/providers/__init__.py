"""Upstream providers: one module each, registered here by their ``type``."""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from ..config import Config, ProviderConfig
from ..http_client import HttpClient
from .base import (
    HookUrls, InboundPart, InboundSms, Outcome, OutboundSms, Provider,
    SendResult, StatusUpdate, WebhookError,
)

__all__ = [
    "HookUrls", "InboundPart", "InboundSms", "Outcome", "OutboundSms", "Provider",
    "SendResult", "StatusUpdate", "WebhookError", "build_providers", "hook_urls",
    "PROVIDER_MODULES", "provider_class",
]

# type -> module in this package; each module's PROVIDER is its Provider class.
PROVIDER_MODULES = {
    "loopback": "loopback",
    "aculab": "aculab",
    "voipms": "voipms",
    "plum": "plum",
}


def provider_class(type_name: str) -> type[Provider]:
    module = importlib.import_module(f".{PROVIDER_MODULES[type_name]}", __name__)
    return module.PROVIDER


def hook_urls(config: Config, name: str, secret: str) -> HookUrls:
    return HookUrls(
        inbound=config.public(f"/hooks/{name}/inbound?token={secret}"),
        status=config.public(f"/hooks/{name}/status?token={secret}"),
        secret=secret,
    )


def build_providers(
    config: Config, secrets: Mapping[str, str], http: HttpClient
) -> dict[str, Provider]:
    """One provider object per ``[providers.NAME]`` table."""
    return {
        name: provider_class(settings.type)(
            config=settings, http=http, hooks=hook_urls(config, name, secrets[name])
        )
        for name, settings in config.providers.items()
    }


def loopback_config(name: str = "loopback") -> ProviderConfig:
    return ProviderConfig(name=name, type="loopback")


def check_providers(config: Config) -> None:
    """Build each provider once, so a bad setting stops start-up with its
    ConfigError instead of failing inside the running server."""
    hooks = HookUrls(inbound="", status="", secret="check")
    for settings in config.providers.values():
        provider_class(settings.type)(config=settings, http=None, hooks=hooks)
