"""What a ``[providers.NAME]`` table may hold: typed settings, checked by msgspec.

Each provider module declares a :class:`ProviderSettings` subclass with its
credentials (required) and its own optional keys; the keys every carrier
takes are declared once here. A type's ``Meta(description=...)`` is the
problem an operator reads when a value does not fit it ("must be ...").
Checks a type cannot express are made in ``__post_init__`` and raise
:class:`SettingError` naming the key; the registry words both as one line
naming the file, ``providers.NAME.KEY`` and the problem.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

import msgspec
import phonenumbers
from msgspec import Meta


class SettingError(Exception):
    """A value its type admits but the provider cannot use."""

    def __init__(self, key: str, problem: str):
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


# A credential: any text but blanks (the value itself is never repeated in errors).
Credential = Annotated[str, Meta(pattern=r"\S", description="must be a non-empty string")]
Seconds = Annotated[float, Meta(gt=0, description="must be a positive number")]
Regions = Annotated[tuple[str, ...], Meta(
    min_length=1, description='must be a list of region codes, e.g. ["US", "CA"]')]


class ProviderSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The keys every provider type takes (CONTRACT.md, README "SMS carriers")."""

    # The carrier's API root; the provider appends its documented paths.
    base_url: Annotated[str, Meta(description="must be an http:// or https:// URL")] | None = None
    # The webhook secret; empty: one is made once and kept in the database.
    secret: Annotated[str, Meta(description="must be a string")] = ""
    timeout_seconds: Seconds = 15.0
    # Where this instance may send (ISO region codes); None: the type's default.
    countries: Regions | None = None

    def __post_init__(self) -> None:
        if self.base_url is not None:
            self.base_url = http_url(self.base_url)
        if self.countries is not None:
            self.countries = tuple(region_code(item) for item in self.countries)


def http_url(value: str) -> str:
    url = value.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingError("base_url", f"must be an http:// or https:// URL, got {value!r}")
    return url.rstrip("/")


def region_code(item: str) -> str:
    code = item.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise SettingError("countries", f"{item!r} is not a known region code such as US")
    return code
