"""The provider types, and the instances the configuration names.

A type is a module of this package named after it, whose ``PROVIDER`` is its
:class:`~.base.Provider` class; the class's ``settings_type`` says what its
``[providers.NAME]`` table may hold. Adding a carrier is its module, its
test file and one line in :data:`PROVIDER_TYPES`.

:func:`check_providers` validates every table (the CLI calls it for every
command, the app at start-up); :class:`Providers` is the instances, built
once at start-up and shared by the webhooks, the router and the dispatcher.
"""

from __future__ import annotations

import importlib
import re
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import msgspec

from ..config import Config, ConfigError, ProviderTable
from ..http_client import HttpClient
from .base import HookUrls, Provider
from .settings import ProviderSettings, SettingError

PROVIDER_TYPES = (
    "loopback",
    "aculab",
    "voipms",
    "plum",
)


def provider_class(type_name: str) -> type[Provider]:
    return importlib.import_module(f".{type_name}", __package__).PROVIDER


@dataclass(frozen=True)
class ProviderSpec:
    """One ``[providers.NAME]`` table, checked: its class and typed settings."""

    name: str
    cls: type[Provider]
    settings: ProviderSettings

    def build(self, config: Config, secret: str, http: HttpClient | None) -> Provider:
        return self.cls(name=self.name, settings=self.settings, http=http,
                        hooks=hook_urls(config, self.name, secret))


def check_providers(config: Config) -> dict[str, ProviderSpec]:
    """Every provider table checked, or a ConfigError naming the file, the
    key and the problem: a typo stops the program, not its first send."""
    return {name: _checked(table) for name, table in config.providers.items()}


def _checked(table: ProviderTable) -> ProviderSpec:
    if table.type not in PROVIDER_TYPES:
        raise table.error("type", f"must be one of {', '.join(PROVIDER_TYPES)}, "
                                  f"got {table.type!r}")
    cls = provider_class(table.type)
    try:
        settings = msgspec.convert(table.table, cls.settings_type, strict=True)
        cls.check_settings(settings)
    except msgspec.ValidationError as error:
        raise _config_error(table, cls, str(error)) from None
    except SettingError as error:
        raise table.error(error.key, error.problem) from None
    return ProviderSpec(table.name, cls, settings)


_AT = re.compile(r"^(?P<what>.*?)(?: - at `\$\.(?P<key>\w+)[^`]*`)?$", re.DOTALL)
_UNKNOWN = re.compile(r"Object contains unknown field `(?P<key>[^`]*)`")
_MISSING = re.compile(r"Object missing required field `(?P<key>[^`]*)`")


def _config_error(table: ProviderTable, cls: type[Provider], message: str) -> ConfigError:
    """msgspec's ``Expected `float` > 0.0 - at `$.timeout_seconds``` in the
    words of every config error: the key, then what it must be."""
    if unknown := _UNKNOWN.fullmatch(message):
        return table.error(unknown["key"], "unknown key")
    if missing := _MISSING.fullmatch(message):
        return table.error(missing["key"], f"missing (a {cls.type} provider needs it)")
    parts = _AT.match(message)
    key = parts["key"] or ""
    field = {f.name: f for f in msgspec.structs.fields(cls.settings_type)}.get(key)
    problem = _description(field.type) if field else None
    return table.error(key, problem or parts["what"].replace("`", ""))


def _description(annotation) -> str | None:
    """The ``Meta(description=...)`` of a field's type, looking inside
    ``Optional`` and the like."""
    for meta in getattr(annotation, "__metadata__", ()):
        if isinstance(meta, msgspec.Meta) and meta.description:
            return meta.description
    for argument in typing.get_args(annotation):
        if (found := _description(argument)) is not None:
            return found
    return None


def hook_urls(config: Config, name: str, secret: str) -> HookUrls:
    return HookUrls(
        inbound=config.public(f"/hooks/{name}/inbound?token={secret}"),
        status=config.public(f"/hooks/{name}/status?token={secret}"),
        secret=secret,
    )


class Providers(Mapping[str, Provider]):
    """The configured instances by name (``[providers.NAME]``)."""

    def __init__(self, instances: Mapping[str, Provider]):
        self._instances = dict(instances)

    @classmethod
    def build(cls, config: Config, secrets: Mapping[str, str],
              http: HttpClient) -> Providers:
        """``secrets``: each instance's webhook secret (app.webhook_secrets)."""
        return cls({name: spec.build(config, secrets[name], http)
                    for name, spec in check_providers(config).items()})

    def __getitem__(self, name: str) -> Provider:
        return self._instances[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._instances)

    def __len__(self) -> int:
        return len(self._instances)
