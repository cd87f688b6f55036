"""Password hashing and the verified-credentials cache."""

import asyncio
import re

import argon2
import pytest

from adapter.config import ConfigError, load_config
from adapter.passwords import CredentialCache, HashCost, hash_password, verify_password


def test_hash_is_salted_argon2_and_verifies():
    first, second = hash_password("s3cret"), hash_password("s3cret")
    assert first.startswith("$argon2id$")
    assert first != second  # salted
    assert verify_password(first, "s3cret")
    assert not verify_password(first, "S3cret")
    assert not verify_password("not a hash", "s3cret")


def test_cache_remembers_only_while_the_stored_hash_is_unchanged():
    cache = CredentialCache()
    old = hash_password("old")
    new = hash_password("new")

    async def scenario():
        return [
            await cache.check("alice", "old", old),
            await cache.check("alice", "old", old),  # from the cache
            await cache.check("alice", "wrong", old),
            await cache.check("alice", "old", new),  # password changed elsewhere
            await cache.check("alice", "new", new),
            await cache.check("nobody", "old", None),
        ]

    assert asyncio.run(scenario()) == [True, True, False, False, True, False]
    # Nothing in memory holds the plain password.
    assert all(b"old" not in digest for digest in cache._entries)


def test_cache_entries_expire():
    cache = CredentialCache(lifetime_seconds=0)
    stored = hash_password("pw")

    async def scenario():
        await cache.check("alice", "pw", stored)
        return cache._remembered(cache._digest("alice", "pw"), stored)

    assert asyncio.run(scenario()) is False


def test_simultaneous_checks_of_the_same_credentials_share_one_slow_hash(monkeypatch):
    import adapter.passwords as passwords

    calls = []
    real = passwords.verify_password
    monkeypatch.setattr(passwords, "verify_password",
                        lambda stored, given: calls.append(given) or real(stored, given))
    cache = CredentialCache()
    stored = hash_password("pw")

    async def scenario():
        return await asyncio.gather(*[cache.check("alice", "pw", stored) for _ in range(20)])

    assert asyncio.run(scenario()) == [True] * 20
    assert calls == ["pw"]


CHEAP = HashCost(time_cost=1, memory_kib=8, parallelism=1)


def test_production_keeps_argon2id_defaults_and_a_configured_cost_is_used():
    assert load_config(None, environ={}).passwords == HashCost()
    assert hash_password("pw").startswith(
        f"$argon2id$v=19$m={argon2.DEFAULT_MEMORY_COST},t={argon2.DEFAULT_TIME_COST},"
        f"p={argon2.DEFAULT_PARALLELISM}$")
    cheap = hash_password("pw", CHEAP)
    assert cheap.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    # A hash carries its parameters: it verifies whatever the current setting.
    assert verify_password(cheap, "pw") and not verify_password(cheap, "pW")


def test_cost_is_read_from_the_passwords_table(tmp_path):
    path = tmp_path / "adapter.toml"
    path.write_text("[passwords]\ntime_cost = 2\nmemory_kib = 1024\nparallelism = 2\n")
    assert load_config(str(path), environ={}).passwords == HashCost(2, 1024, 2)
    for table, problem in [
        ("time_cost = 0", "key 'passwords.time_cost': must be a positive"),
        ("memory_kib = 8\nparallelism = 2", "key 'passwords.memory_kib': must be at least 8"),
        ("rounds = 3", "key 'passwords.rounds': unknown key"),
    ]:
        path.write_text(f"[passwords]\n{table}\n")
        with pytest.raises(ConfigError, match=re.escape(problem)):
            load_config(str(path), environ={})


def test_an_unknown_user_costs_one_check_at_the_configured_cost(monkeypatch):
    import adapter.passwords as passwords

    checked = []
    real = passwords.verify_password
    monkeypatch.setattr(passwords, "verify_password",
                        lambda stored, given: checked.append(stored) or real(stored, given))
    assert asyncio.run(CredentialCache(cost=CHEAP).check("nobody", "pw", None)) is False
    assert len(checked) == 1 and checked[0].startswith("$argon2id$v=19$m=8,t=1,p=1$")
