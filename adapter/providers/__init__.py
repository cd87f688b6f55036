"""Upstream providers: one module each, listed in the registry by their ``type``."""

from __future__ import annotations

from .base import (
    HookUrls, InboundPart, InboundSms, Outcome, OutboundSms, Provider,
    SendResult, StatusUpdate, WebhookError,
)
from .registry import (
    PROVIDER_TYPES, Providers, ProviderSpec, check_providers, hook_urls, provider_class,
)
from .settings import ProviderSettings, SettingError
from .webhook import WebhookRequest

__all__ = [
    "HookUrls", "InboundPart", "InboundSms", "Outcome", "OutboundSms", "Provider",
    "SendResult", "StatusUpdate", "WebhookError", "WebhookRequest", "PROVIDER_TYPES",
    "ProviderSettings", "ProviderSpec", "Providers", "SettingError", "check_providers",
    "hook_urls", "provider_class",
]
