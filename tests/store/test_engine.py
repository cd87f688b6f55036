"""Opening the database: private files, and errors that say what is wrong."""

from __future__ import annotations

import asyncio
import stat

import pytest

from adapter.store import DatabaseUnavailable, Store


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_sqlite_database_is_private(tmp_path):
    async def use():
        store = Store(f"sqlite:///{tmp_path}/new/data/adapter.sqlite3")
        try:
            await store.migrate()
            await store.secret("webhook_secret:x")
        finally:
            await store.close()

    asyncio.run(use())
    data = tmp_path / "new/data"
    assert mode(tmp_path / "new") == mode(data) == 0o700
    files = list(data.iterdir())
    assert data / "adapter.sqlite3" in files
    for path in files:  # the database and its -wal and -shm files
        assert mode(path) == 0o600, path


@pytest.mark.parametrize("url, problem", [
    ("sqlite:////proc/no-such-dir/a.sqlite3", "cannot create the database directory /proc/no-such-dir"),
    ("sqlite:////proc/a.sqlite3", "cannot create or open the SQLite database /proc/a.sqlite3"),
    ("sqlite:///{tmp_path}", "is a directory"),
])
def test_an_unusable_sqlite_path_says_why(tmp_path, url, problem):
    with pytest.raises(DatabaseUnavailable, match=problem):
        Store(url.format(tmp_path=tmp_path))
