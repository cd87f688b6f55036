"""Configuration: a TOML file, environment overrides and built-in defaults.

Where the file comes from, in order: ``--config PATH``, ``$ADAPTER_CONFIG``,
``./adapter.toml`` when present, else no file at all (defaults only).
Every problem is reported as a :class:`ConfigError` naming the file, the key
and what is wrong, so the CLI can print it as one line.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

import phonenumbers

from .logs import FORMATTERS as LOG_FORMATS
from .passwords import HashCost

DEFAULT_DATABASE_URL = "sqlite:///./data/adapter.sqlite3"
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8080"
DEFAULT_PUSH_URL = "https://pnm.cloudsoftphone.com/pnm2/send"

ENV_OVERRIDES = {
    "ADAPTER_DATABASE_URL": ("database_url",),
    "ADAPTER_PUBLIC_URL": ("public_url",),
    "ADAPTER_PUSH_URL": ("push", "url"),
}

class ConfigError(Exception):
    """A configuration problem, worded for the operator."""


def config_error(source: str, key: str, problem: str) -> ConfigError:
    return ConfigError(f"config error in {source}: key '{key}': {problem}")


@dataclass(frozen=True)
class ProviderTable:
    """One ``[providers.NAME]`` table as written. Which types exist and what
    each takes is the providers' to say (adapter.providers.registry)."""

    name: str
    type: Any  # as written: checked by the registry
    table: Mapping[str, Any]  # every key but ``type``
    source: str  # where the table was written, for error messages

    def error(self, key: str, problem: str) -> ConfigError:
        """A problem with ``providers.NAME.KEY`` (``providers.NAME`` for no
        key), worded like every config error."""
        return config_error(self.source, ".".join(filter(None, ("providers", self.name, key))),
                            problem)


@dataclass(frozen=True)
class PushConfig:
    url: str = DEFAULT_PUSH_URL
    preview: bool = True
    # How long one push request may take before it is retried later.
    timeout_seconds: float = 10.0
    # One device's pushes at least this far apart (a burst rings once per
    # interval, not once per message); 0 spaces them by nothing but the
    # time each push takes.
    min_interval_seconds: float = 2.0


@dataclass(frozen=True)
class OutboxConfig:
    retry_base_seconds: float = 2.0
    retry_max_seconds: float = 600.0
    max_age_seconds: float = 86_400.0
    poll_seconds: float = 1.0
    lease_seconds: float = 120.0
    batch: int = 16


@dataclass(frozen=True)
class LimitsConfig:
    # Longer texts to numbers outside the service are refused at Send (0: no cap).
    segments_per_message: int = 10


@dataclass(frozen=True)
class Config:
    database_url: str = DEFAULT_DATABASE_URL
    public_url: str = DEFAULT_PUBLIC_URL
    # False when public_url is the built-in default: `serve` then uses the
    # address it listens on (cli.py).
    public_url_set: bool = False
    default_region: str = "US"
    max_request_bytes: int = 256 * 1024
    fetch_page_size: int = 100
    # A request's line and headers (adapter.http_server): Acrobits GET
    # templates carry the message text in the query, so leave room for it.
    max_header_bytes: int = 64 * 1024
    header_timeout_seconds: float = 10.0
    push: PushConfig = field(default_factory=PushConfig)
    outbox: OutboxConfig = field(default_factory=OutboxConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    passwords: HashCost = field(default_factory=HashCost)
    providers: Mapping[str, ProviderTable] = field(default_factory=dict)
    # How `serve` writes its log to stderr: "text" lines or "json" objects (adapter.logs).
    log_format: str = "text"
    source: str = "built-in defaults"

    def public(self, path: str) -> str:
        """An absolute URL under ``public_url`` for one of our own paths."""
        return self.public_url.rstrip("/") + path


def find_config_file(explicit: str | None, environ: Mapping[str, str]) -> Path | None:
    if explicit:
        return Path(explicit)
    if environ.get("ADAPTER_CONFIG"):
        return Path(environ["ADAPTER_CONFIG"])
    local = Path("adapter.toml")
    return local if local.is_file() else None


def load_config(explicit: str | None = None, environ: Mapping[str, str] | None = None) -> Config:
    environ = os.environ if environ is None else environ
    path = find_config_file(explicit, environ)
    raw: dict[str, Any] = {}
    source = "built-in defaults"
    # Relative paths in the file are relative to the file, so every command
    # finds the same database wherever it is run from.
    base_dir = path.resolve().parent if path is not None else Path.cwd()
    if path is not None:
        source = str(path)
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path} cannot be read: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    from_environment = {}
    for variable, key_path in ENV_OVERRIDES.items():
        if environ.get(variable):
            target = raw
            for part in key_path[:-1]:
                target = target.setdefault(part, {})
                if not isinstance(target, dict):
                    raise ConfigError(f"config error in {source}: key '{part}': must be a table")
            target[key_path[-1]] = environ[variable]
            from_environment[".".join(key_path)] = variable
    return _ConfigReader(source, base_dir, from_environment).read(raw)


class _ConfigReader:
    """Turns the parsed TOML into a :class:`Config`, naming any bad key."""

    TOP_LEVEL = {
        "database_url", "public_url", "default_region", "max_request_bytes",
        "fetch_page_size", "max_header_bytes", "header_timeout_seconds", "push", "providers",
        "outbox", "limits", "passwords", "log_format",
    }

    def __init__(self, source: str, base_dir: Path, from_environment: Mapping[str, str]):
        self.source = source
        self.base_dir = base_dir
        # dotted key -> the environment variable that set it
        self.from_environment = from_environment

    def fail(self, key: str, problem: str) -> ConfigError:
        variable = self.from_environment.get(key)
        if variable:
            return ConfigError(f"config error in ${variable} (key '{key}'): {problem}")
        return config_error(self.source, key, problem)

    def read(self, raw: dict[str, Any]) -> Config:
        self._reject_unknown(raw, self.TOP_LEVEL, "")
        push_raw = self._table(raw, "push")
        self._reject_unknown(push_raw, set(PushConfig.__dataclass_fields__), "push.")
        providers_raw = self._table(raw, "providers")
        outbox_raw = self._table(raw, "outbox")
        defaults = OutboxConfig()
        self._reject_unknown(outbox_raw, set(defaults.__dataclass_fields__), "outbox.")
        limits_raw = self._table(raw, "limits")
        self._reject_unknown(limits_raw, set(LimitsConfig.__dataclass_fields__), "limits.")
        log_format = raw.get("log_format", "text")
        if not isinstance(log_format, str) or log_format not in LOG_FORMATS:
            choices = " or ".join(f'"{name}"' for name in LOG_FORMATS)
            raise self.fail("log_format", f"must be {choices}, got {log_format!r}")
        return Config(
            database_url=self._database_url(raw.get("database_url", DEFAULT_DATABASE_URL)),
            public_url=self._http_url("public_url", raw.get("public_url", DEFAULT_PUBLIC_URL)),
            public_url_set="public_url" in raw,
            default_region=self._region(raw.get("default_region", "US")),
            max_request_bytes=self._positive_int(raw, "max_request_bytes", 256 * 1024),
            fetch_page_size=self._positive_int(raw, "fetch_page_size", 100),
            max_header_bytes=self._positive_int(raw, "max_header_bytes", 64 * 1024),
            header_timeout_seconds=self._positive_number(
                "header_timeout_seconds", raw.get("header_timeout_seconds", 10.0), float),
            push=PushConfig(
                url=self._http_url("push.url", push_raw.get("url", DEFAULT_PUSH_URL)),
                preview=self._bool("push.preview", push_raw.get("preview", True)),
                timeout_seconds=self._positive_number(
                    "push.timeout_seconds", push_raw.get("timeout_seconds", 10.0), float),
                # A push later than an hour is dropped anyway (push/sender.py).
                min_interval_seconds=self._seconds_up_to(
                    "push.min_interval_seconds", push_raw.get("min_interval_seconds", 2.0), 3600),
            ),
            outbox=OutboxConfig(**{
                key: self._positive_number(f"outbox.{key}", outbox_raw[key], type(getattr(defaults, key)))
                for key in outbox_raw
            }),
            limits=LimitsConfig(
                segments_per_message=self._count(
                    "limits.segments_per_message",
                    limits_raw.get("segments_per_message", LimitsConfig.segments_per_message)),
            ),
            passwords=self._hash_cost(self._table(raw, "passwords")),
            providers={
                name: self._provider(name, table) for name, table in providers_raw.items()
            },
            log_format=log_format,
            source=self.source,
        )

    def _hash_cost(self, table: Mapping[str, Any]) -> HashCost:
        self._reject_unknown(table, set(HashCost.__dataclass_fields__), "passwords.")
        defaults = HashCost()
        cost = HashCost(**{
            key: self._positive_number(f"passwords.{key}", table.get(key, getattr(defaults, key)),
                                       int)
            for key in HashCost.__dataclass_fields__})
        if cost.memory_kib < 8 * cost.parallelism:  # argon2's own floor
            raise self.fail("passwords.memory_kib", "must be at least 8 times "
                                                    "passwords.parallelism")
        return cost

    def _reject_unknown(self, table: Mapping[str, Any], known: set[str], prefix: str) -> None:
        for key in table:
            if key not in known:
                raise self.fail(prefix + key, "unknown key")

    def _table(self, raw: Mapping[str, Any], key: str) -> dict[str, Any]:
        value = raw.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(key, "must be a table")
        return value

    def _string(self, key: str, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, "must be a non-empty string")
        return value.strip()

    def _http_url(self, key: str, value: Any) -> str:
        value = self._string(key, value)
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise self.fail(key, f"must be an http:// or https:// URL, got {value!r}")
        return value.rstrip("/")

    def _database_url(self, value: Any) -> str:
        value = self._string("database_url", value)
        scheme = value.split(":", 1)[0]
        if scheme not in ("sqlite", "postgresql", "postgres"):
            raise self.fail(
                "database_url",
                f"must start with sqlite:/// or postgresql://, got {scheme!r}",
            )
        if scheme == "sqlite":
            return self._absolute_sqlite_url(value)
        return value

    def _absolute_sqlite_url(self, value: str) -> str:
        """``sqlite:///relative/path`` made absolute: against the config file's
        directory, or the current one for $ADAPTER_DATABASE_URL and without
        a file."""
        prefix = "sqlite:///"
        if not value.startswith(prefix):
            raise self.fail("database_url", "an SQLite URL is sqlite:///PATH, e.g. "
                                            "sqlite:///./data/adapter.sqlite3")
        path, question, query = value[len(prefix):].partition("?")
        if not path or path == ":memory:":
            raise self.fail("database_url", "an SQLite database_url must name a file, e.g. "
                                            "sqlite:///./data/adapter.sqlite3")
        base = Path.cwd() if "database_url" in self.from_environment else self.base_dir
        return f"{prefix}{(base / path).resolve()}{question}{query}"

    def _region(self, value: Any) -> str:
        value = self._string("default_region", value).upper()
        if value not in phonenumbers.SUPPORTED_REGIONS:
            raise self.fail("default_region", f"{value!r} is not a known region code such as US")
        return value

    def _count(self, key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(key, "must be a whole number, 0 or more (0: no limit)")
        return value

    def _positive_int(self, raw: Mapping[str, Any], key: str, default: int) -> int:
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise self.fail(key, "must be a positive integer")
        return value

    def _positive_number(self, key: str, value: Any, kind: type) -> float | int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise self.fail(key, "must be a positive number")
        if kind is int and not isinstance(value, int):
            raise self.fail(key, "must be a positive integer")
        return kind(value)

    def _seconds_up_to(self, key: str, value: Any, most: float) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= most:
            raise self.fail(key, f"must be a number of seconds from 0 to {most:g}")
        return float(value)

    def _bool(self, key: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, "must be true or false")
        return value

    def _provider(self, name: str, table: Any) -> ProviderTable:
        prefix = f"providers.{name}"
        if not isinstance(table, dict):
            raise self.fail(prefix, "must be a table")
        if not name.replace("-", "").replace("_", "").isalnum():
            raise self.fail(prefix, "provider names may use only letters, digits, - and _")
        settings = {key: value for key, value in table.items() if key != "type"}
        return ProviderTable(name=name, type=table.get("type"), table=settings, source=self.source)
