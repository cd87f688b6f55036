"""Configuration loading: file discovery, env overrides, defaults, named errors."""

import pytest

from adapter.config import (
    DEFAULT_DATABASE_URL, DEFAULT_PUBLIC_URL, DEFAULT_PUSH_URL, ConfigError, load_config,
)


def write(tmp_path, text, name="adapter.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_without_any_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(None, environ={})
    assert config.database_url == DEFAULT_DATABASE_URL
    assert config.public_url == DEFAULT_PUBLIC_URL
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
        "ADAPTER_DATABASE_URL": "sqlite:///b.db",
        "ADAPTER_PUBLIC_URL": "https://sms.example.com/",
        "ADAPTER_PUSH_URL": "https://push.example/b",
    })
    assert config.database_url == "sqlite:///b.db"
    assert config.public_url == "https://sms.example.com"  # trailing slash dropped
    assert config.push.url == "https://push.example/b"


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
    config = load_config(str(path), environ={})
    assert config.providers["acu"].type == "aculab"
    assert config.providers["acu"].base_url == "http://127.0.0.1:9000"
    assert config.providers["acu"].settings["api_key"] == "k"
    assert config.providers["local"].type == "loopback"


@pytest.mark.parametrize("text, key", [
    ('colour = "blue"', "colour"),
    ('public_url = "ftp://x"', "public_url"),
    ('database_url = "mysql://x"', "database_url"),
    ("max_request_bytes = -1", "max_request_bytes"),
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
])
def test_errors_name_the_file_and_key(tmp_path, text, key):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_config(str(path), environ={})
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
