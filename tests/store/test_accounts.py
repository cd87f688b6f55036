"""Account lookups: every request makes one, so a process remembers them,
but never past a change made by another process (the CLI)."""

import pytest

from adapter.passwords import hash_password
from adapter.store import Store

pytestmark = pytest.mark.anyio


@pytest.fixture
async def stores(config):
    """The server's store and, on its own connections, the CLI's."""
    server, cli = Store(config.database_url), Store(config.database_url)
    await server.migrate()
    await cli.create_account(username="alice", password_hash=hash_password("old"),
                             number="+12025550101", provider=None, display_name=None)
    yield server, cli
    await server.close()
    await cli.close()


async def test_a_password_changed_elsewhere_is_seen_at_once(stores):
    server, cli = stores
    before = await server.account("alice")
    assert (await server.account("alice")) == before  # remembered (SQLite) or read again
    await cli.set_password_hash("alice", hash_password("new"))
    after = await server.account("alice")
    assert after.password_hash != before.password_hash
    assert after.password_hash == (await cli.account("alice")).password_hash


async def test_an_account_removed_or_added_elsewhere_is_seen_at_once(stores):
    server, cli = stores
    assert (await server.account("alice")) is not None
    assert await server.account("bob") is None
    await cli.remove_account("alice")
    await cli.create_account(username="bob", password_hash=hash_password("pw"),
                             number="+12025550102", provider=None, display_name="Bob")
    assert await server.account("alice") is None
    assert (await server.account("bob")).display_name == "Bob"


async def test_the_servers_own_writes_keep_what_it_remembers_right(stores):
    server, _ = stores
    await server.account("alice")
    await server.set_password_hash("alice", "changed-hash")
    assert (await server.account("alice")).password_hash == "changed-hash"
