"""Password hashing and the verified-credentials cache."""

import asyncio

from adapter.passwords import CredentialCache, hash_password, verify_password


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
