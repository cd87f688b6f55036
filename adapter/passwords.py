"""Password hashing (argon2id) and a cache of recently verified credentials.

Every Acrobits request carries the account password, and a slow hash on each
one would cap the service at a few dozen requests per second. So a password
is verified with argon2 once; after that a keyed BLAKE2b of (username,
password) with a per-process random key is remembered for a while. The
plain password is never kept, and an entry only counts while the stored hash
is still the one it was verified against, so a password change (from any
process) invalidates it at once.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import anyio.to_thread
import argon2
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


@dataclass(frozen=True)
class HashCost:
    """argon2id's cost (``[passwords]``): argon2-cffi's defaults (RFC 9106's
    low-memory profile) unless the operator says otherwise. A cheaper
    setting only affects passwords hashed under it: a hash carries its own
    parameters, and verifying reads them from there."""

    time_cost: int = argon2.DEFAULT_TIME_COST
    memory_kib: int = argon2.DEFAULT_MEMORY_COST
    parallelism: int = argon2.DEFAULT_PARALLELISM


DEFAULT_COST = HashCost()


@functools.cache
def _hasher(cost: HashCost) -> PasswordHasher:
    return PasswordHasher(time_cost=cost.time_cost, memory_cost=cost.memory_kib,
                          parallelism=cost.parallelism)


@functools.cache
def _dummy_hash(cost: HashCost) -> str:
    """Verified against when the username is unknown, so that answer takes as
    long as a wrong password and does not reveal which usernames exist.
    Made on first use, not at import: every CLI command imports this."""
    return _hasher(cost).hash(secrets.token_urlsafe(16))


def hash_password(password: str, cost: HashCost = DEFAULT_COST) -> str:
    return _hasher(cost).hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher(DEFAULT_COST).verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


class CredentialCache:
    def __init__(self, lifetime_seconds: float = 600.0, max_entries: int = 100_000,
                 cost: HashCost = DEFAULT_COST):
        self._cost = cost
        self._key = secrets.token_bytes(32)
        self._lifetime = lifetime_seconds
        self._max_entries = max_entries
        # digest -> (stored hash it was verified against, expiry on the monotonic clock)
        self._entries: dict[bytes, tuple[str, float]] = {}
        self._checking: dict[tuple[bytes, str], asyncio.Future] = {}
        self._slow_checks = asyncio.Semaphore(2)

    def _digest(self, username: str, password: str) -> bytes:
        material = username.encode() + b"\x00" + password.encode()
        return hashlib.blake2b(material, key=self._key, digest_size=32).digest()

    def _remembered(self, digest: bytes, password_hash: str) -> bool:
        entry = self._entries.get(digest)
        if entry is None:
            return False
        remembered_hash, expires = entry
        if time.monotonic() >= expires or not hmac.compare_digest(remembered_hash, password_hash):
            del self._entries[digest]
            return False
        return True

    def _remember(self, digest: bytes, password_hash: str) -> None:
        if len(self._entries) >= self._max_entries:
            self._entries.clear()  # crude but bounded; a refill costs one hash per user
        self._entries[digest] = (password_hash, time.monotonic() + self._lifetime)

    async def _verify(self, password_hash: str, password: str) -> bool:
        # Each argon2 check takes 64 MiB and a core for a while: a burst of
        # them (a wrong password retried, many devices at start) is queued.
        async with self._slow_checks:
            return await anyio.to_thread.run_sync(verify_password, password_hash, password)

    async def check(self, username: str, password: str, password_hash: str | None) -> bool:
        """True when ``password`` matches ``password_hash`` (None: unknown user)."""
        if password_hash is None:
            await self._verify(_dummy_hash(self._cost), password)
            return False
        digest = self._digest(username, password)
        if self._remembered(digest, password_hash):
            return True
        # Requests arriving together with the same credentials share one check.
        key = (digest, password_hash)
        pending = self._checking.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._verify(password_hash, password))
            self._checking[key] = pending
            pending.add_done_callback(lambda _: self._checking.pop(key, None))
        if not await asyncio.shield(pending):
            return False
        self._remember(digest, password_hash)
        return True
