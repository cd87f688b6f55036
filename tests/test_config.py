"""Configuration loading: file discovery, env overrides, defaults, named errors."""

import tomllib

import pytest

from adapter import cli
from adapter.config import (
    DEFAULT_PUBLIC_URL, DEFAULT_PUSH_URL, ConfigError, load_config,
)
from adapter.providers import check_providers


def write(tmp_path, text, name="adapter.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def load_checked(path):
    """As every command loads the configuration: its provider tables checked too."""
    config = load_config(str(path), environ={})
    return config, check_providers(config)


def test_defaults_without_any_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(None, environ={})
    assert config.database_url == f"sqlite:///{tmp_path.resolve()}/data/adapter.sqlite3"
    assert config.public_url == DEFAULT_PUBLIC_URL and not config.public_url_set
    assert config.push.url == DEFAULT_PUSH_URL and config.push.preview is True
    assert config.providers == {}
    assert config.source == "built-in defaults"


def test_file_discovery_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, 'public_url = "https://local.example"')
    env_file = write(tmp_path, 'public_url = "https://env.example"', "env.toml")
    explicit = write(tmp_path, 'public_url = "https://explicit.example"', "explicit.toml")
    assert load_config(None, environ={}).public_url == "https://local.example"
    environ = {"ADAPTER_CONFIG": str(env_file)}
    assert load_config(None, environ=environ).public_url == "https://env.example"
    assert load_config(str(explicit), environ=environ).public_url == "https://explicit.example"


def test_environment_overrides_the_file(tmp_path):
    path = write(tmp_path, 'database_url = "sqlite:///a.db"\n[push]\nurl = "https://push.example/a"\n')
    config = load_config(str(path), environ={
        "ADAPTER_DATABASE_URL": "sqlite:////srv/b.db",
        "ADAPTER_PUBLIC_URL": "https://sms.example.com/",
        "ADAPTER_PUSH_URL": "https://push.example/b",
    })
    assert config.database_url == "sqlite:////srv/b.db"
    assert config.public_url == "https://sms.example.com"  # trailing slash dropped
    assert config.public_url_set
    assert config.push.url == "https://push.example/b"


def test_relative_sqlite_paths_are_relative_to_the_config_file(tmp_path, monkeypatch):
    # A command run from another directory must find the same database.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    etc = tmp_path / "etc"
    etc.mkdir()
    named = write(etc, 'database_url = "sqlite:///./db/adapter.sqlite3"')
    assert load_config(str(named), environ={}).database_url == \
        f"sqlite:///{etc.resolve()}/db/adapter.sqlite3"
    # The default too, when a file is in use: beside the file.
    unnamed = write(etc, 'public_url = "https://sms.example.com"', "other.toml")
    assert load_config(str(unnamed), environ={}).database_url == \
        f"sqlite:///{etc.resolve()}/data/adapter.sqlite3"
    # From the environment: relative to where the command runs.
    from_env = load_config(str(named), environ={"ADAPTER_DATABASE_URL": "sqlite:///x.db"})
    assert from_env.database_url == f"sqlite:///{elsewhere.resolve()}/x.db"
    # Absolute paths and PostgreSQL stay as written.
    absolute = write(etc, 'database_url = "sqlite:////var/lib/a.db"', "abs.toml")
    assert load_config(str(absolute), environ={}).database_url == "sqlite:////var/lib/a.db"


@pytest.mark.parametrize("variable, value", [
    ("ADAPTER_PUSH_URL", "not a url"),
    ("ADAPTER_PUBLIC_URL", "ftp://x"),
    ("ADAPTER_DATABASE_URL", "mysql://x"),
])
def test_a_bad_environment_variable_is_named_not_the_file(tmp_path, variable, value):
    path = write(tmp_path, "")
    with pytest.raises(ConfigError) as error:
        load_config(str(path), environ={variable: value})
    assert f"${variable}" in str(error.value)
    assert str(path) not in str(error.value)


def test_limits(tmp_path):
    assert load_config(str(write(tmp_path, "")), environ={}).limits.segments_per_message == 10
    config = load_config(str(write(tmp_path, "[limits]\nsegments_per_message = 0")), environ={})
    assert config.limits.segments_per_message == 0


def test_provider_countries(tmp_path):
    path = write(tmp_path, '[providers.v]\ntype = "voipms"\napi_username = "u"\n'
                           'api_password = "p"\ncountries = ["us", "PR"]\n')
    assert load_checked(path)[1]["v"].settings.countries == ("US", "PR")


def test_providers_are_read_with_their_credentials(tmp_path):
    path = write(tmp_path, """
[providers.acu]
type = "aculab"
username = "1-2-0/bob@example.com"
api_key = "k"
base_url = "http://127.0.0.1:9000"
[providers.local]
type = "loopback"
""")
    config, providers = load_checked(path)
    assert config.providers["acu"].type == "aculab"
    assert config.providers["acu"].table["api_key"] == "k"
    assert providers["acu"].settings.base_url == "http://127.0.0.1:9000"
    assert providers["acu"].settings.api_key == "k"
    assert config.providers["local"].type == "loopback"


def test_an_aculab_provider_takes_a_multipart_wait_up_to_two_minutes(tmp_path):
    table = '[providers.acu]\ntype = "aculab"\nusername = "u"\napi_key = "k"\n'
    for line, wait in (("", 60.0), ("multipart_wait_seconds = 0.25", 0.25),
                       ("multipart_wait_seconds = 120", 120.0)):
        config, providers = load_checked(write(tmp_path, f"{table}{line}\n"))
        provider = providers["acu"].build(config, "s", http=None)
        assert provider.multipart_wait_seconds == wait


@pytest.mark.parametrize("text, key", [
    ('colour = "blue"', "colour"),
    ('public_url = "ftp://x"', "public_url"),
    ('database_url = "mysql://x"', "database_url"),
    ("max_request_bytes = -1", "max_request_bytes"),
    ("max_header_bytes = 0", "max_header_bytes"),
    ('max_header_bytes = "64k"', "max_header_bytes"),
    ("header_timeout_seconds = -1", "header_timeout_seconds"),
    ("header_timeout_seconds = true", "header_timeout_seconds"),
    ('default_region = "XX"', "default_region"),
    ('[push]\npreview = "no"', "push.preview"),
    ('[push]\nsound = "x"', "push.sound"),
    ("[push]\ntimeout_seconds = 0", "push.timeout_seconds"),
    ("[push]\nmin_interval_seconds = -1", "push.min_interval_seconds"),
    ("[push]\nmin_interval_seconds = nan", "push.min_interval_seconds"),
    ("[push]\nmin_interval_seconds = inf", "push.min_interval_seconds"),
    ("[push]\nmin_interval_seconds = 3601", "push.min_interval_seconds"),
    ('[push]\nmin_interval_seconds = "2"', "push.min_interval_seconds"),
    ('[providers.p]\ntype = "carrier-pigeon"', "providers.p.type"),
    ('[providers.p]\ntype = "voipms"\napi_username = "u"', "providers.p.api_password"),
    ('[providers.p]\ntype = "plum"\nusername = "u"\npassword = "p"\ncolour = 1', "providers.p.colour"),
    ('[providers.p]\ntype = "plum"\nusername = "u"\npassword = "p"\ncountries = "US"',
     "providers.p.countries"),
    ('[providers.p]\ntype = "plum"\nusername = "u"\npassword = "p"\ncountries = ["XX"]',
     "providers.p.countries"),
    ("[limits]\nsegments_per_message = -1", "limits.segments_per_message"),
    ("[limits]\nsends = 1", "limits.sends"),
    ('database_url = "sqlite://"', "database_url"),
    ('database_url = "sqlite:///:memory:"', "database_url"),
    *((f'[providers.a]\ntype = "aculab"\nusername = "u"\napi_key = "k"\n'
       f"multipart_wait_seconds = {wait}", "providers.a.multipart_wait_seconds")
      for wait in ("0", "-1", "121", '"60"', "true")),
    ('[providers.p]\ntype = "voipms"\napi_username = "u"\napi_password = "p"\n'
     "multipart_wait_seconds = 5", "providers.p.multipart_wait_seconds"),
])
def test_errors_name_the_file_and_key(tmp_path, text, key):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_checked(path)
    assert str(path) in str(error.value)
    assert f"'{key}'" in str(error.value)


def test_unparsable_or_missing_file_is_reported(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(str(write(tmp_path, "this is = = not toml")), environ={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(str(tmp_path / "missing.toml"), environ={})


def test_push_settings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    defaults = load_config(None, environ={}).push
    assert (defaults.timeout_seconds, defaults.min_interval_seconds) == (10.0, 2.0)
    config = load_config(str(write(tmp_path, "[push]\npreview = false\ntimeout_seconds = 2.5\n"
                                             "min_interval_seconds = 0\n")), environ={})
    assert (config.push.preview, config.push.timeout_seconds) == (False, 2.5)
    assert config.push.min_interval_seconds == 0.0  # no spacing, still one waiting push


def test_request_head_bounds(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    defaults = load_config(None, environ={})
    assert (defaults.max_header_bytes, defaults.header_timeout_seconds) == (65536, 10.0)
    config = load_config(str(write(tmp_path, "max_header_bytes = 16384\nheader_timeout_seconds = 3\n")),
                         environ={})
    assert (config.max_header_bytes, config.header_timeout_seconds) == (16384, 3.0)


def test_log_format_is_text_or_json(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_config(None, environ={}).log_format == "text"
    for value in ("text", "json"):
        path = write(tmp_path, f'log_format = "{value}"')
        assert load_config(str(path), environ={}).log_format == value


@pytest.mark.parametrize("value", ['"xml"', '"JSON"', '""', "1", '["json"]', "{}"])
def test_any_other_log_format_is_one_line_naming_the_key(tmp_path, capsys, value):
    path = write(tmp_path, f"log_format = {value}")
    assert cli.main(["--config", str(path), "migrate"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"adapter: config error in {path}: key 'log_format': ")
    assert line.endswith(f'must be "text" or "json", got {tomllib.loads(f"v = {value}")["v"]!r}')
