"""The provider registry: the types, their typed settings, and the instances built once."""

from __future__ import annotations

import pytest

from adapter.config import ConfigError, load_config
from adapter.providers import (
    PROVIDER_TYPES, ProviderSettings, Providers, check_providers, provider_class,
)
from adapter.providers.aculab import AculabSettings
from adapter.providers.voipms import VoipmsProvider

VOIPMS = '[providers.voip]\ntype = "voipms"\napi_username = "u"\napi_password = "p"\n'


def load(tmp_path, text: str):
    path = tmp_path / "adapter.toml"
    path.write_text(text)
    return load_config(str(path), environ={})


def test_each_type_is_the_module_named_after_it_with_its_settings():
    assert PROVIDER_TYPES == ("loopback", "aculab", "voipms", "plum")
    for name in PROVIDER_TYPES:
        cls = provider_class(name)
        assert cls.type == name
        assert issubclass(cls.settings_type, ProviderSettings)


def test_settings_are_typed_with_their_defaults(tmp_path):
    specs = check_providers(load(tmp_path, '[providers.acu]\ntype = "aculab"\nusername = "u"\n'
                                           'api_key = "k"\ntimeout_seconds = 5\n'
                                           'alphanumeric_ids = { "+1 202 555 0101" = "ACME" }\n'
                                           'base_url = "http://127.0.0.1:9000/"\n'))
    settings = specs["acu"].settings
    assert isinstance(settings, AculabSettings)
    assert (settings.username, settings.api_key) == ("u", "k")
    assert settings.timeout_seconds == 5.0 and isinstance(settings.timeout_seconds, float)
    assert (settings.secret, settings.countries, settings.multipart_wait_seconds) == ("", None, 60.0)
    assert settings.base_url == "http://127.0.0.1:9000"
    assert settings.alphanumeric_ids == {"+12025550101": "ACME"}  # keyed by E.164


@pytest.mark.parametrize("table, problem", [
    ('type = "carrier-pigeon"',
     "key 'providers.p.type': must be one of loopback, aculab, voipms, plum, got 'carrier-pigeon'"),
    ('type = "voipms"\napi_username = "u"',
     "key 'providers.p.api_password': missing (a voipms provider needs it)"),
    ('type = "plum"\nusername = "u"\npassword = "p"\ncolour = 1', "key 'providers.p.colour': unknown key"),
    ('type = "plum"\nusername = "  "\npassword = "p"',
     "key 'providers.p.username': must be a non-empty string"),
    ('type = "plum"\nusername = "u"\npassword = "p"\ntimeout_seconds = "3"',
     "key 'providers.p.timeout_seconds': must be a positive number"),
    ('type = "plum"\nusername = "u"\npassword = "p"\nbase_url = "ftp://x"',
     "key 'providers.p.base_url': must be an http:// or https:// URL, got 'ftp://x'"),
    ('type = "plum"\nusername = "u"\npassword = "p"\ncountries = ["GB"]',
     "key 'providers.p.countries': plum cannot send to GB"),
    ('type = "aculab"\nusername = "u"\napi_key = "k"\nmultipart_wait_seconds = 121',
     "key 'providers.p.multipart_wait_seconds': must be a positive number, at most 120 (seconds)"),
    ('type = "aculab"\nusername = "u"\napi_key = "k"\nalphanumeric_ids = { "+12025550101" = 7 }',
     """key 'providers.p.alphanumeric_ids': must be a table of "+E164 number" = "Sender ID\""""),
])
def test_a_bad_table_is_one_line_naming_file_key_and_problem(tmp_path, table, problem):
    config = load(tmp_path, f"[providers.p]\n{table}\n")
    with pytest.raises(ConfigError) as error:
        check_providers(config)
    assert str(error.value) == f"config error in {tmp_path / 'adapter.toml'}: {problem}"


def test_the_registry_holds_one_instance_per_table_with_its_callback_urls(tmp_path):
    config = load(tmp_path, 'public_url = "https://sms.example.com/base"\n' + VOIPMS
                  + '[providers.local]\ntype = "loopback"\n')
    providers = Providers.build(config, {"voip": "s1", "local": "s2"}, http=None)
    assert sorted(providers) == ["local", "voip"] and len(providers) == 2
    voip = providers["voip"]
    assert isinstance(voip, VoipmsProvider) and providers["voip"] is voip
    assert (voip.name, voip.settings.api_username) == ("voip", "u")
    assert voip.hooks.inbound == "https://sms.example.com/base/hooks/voip/inbound?token=s1"
    assert voip.hooks.status == "https://sms.example.com/base/hooks/voip/status?token=s1"
    assert voip.countries == {"US", "CA"}  # the type's default
    assert not providers["local"].off_net
    assert providers.get("nope") is None
