"""Migrations: idempotent, recorded once, and matching schema.py, on every engine."""

import asyncio

import pytest
import sqlalchemy as sa

from adapter.store import Store
from adapter.store.migrations import MIGRATIONS
from adapter.store.schema import metadata


def on_store(url, work):
    async def run():
        store = Store(url)
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


def migrate(url):
    return on_store(url, lambda store: store.migrate())


def test_migrate_applies_every_step_once(database_url):
    assert migrate(database_url) == [v for v, _, _ in MIGRATIONS]
    assert migrate(database_url) == []


def test_processes_starting_together_migrate_once(database_url):
    async def race(store):
        others = [Store(database_url) for _ in range(3)]
        try:
            results = await asyncio.gather(store.migrate(), *(o.migrate() for o in others))
        finally:
            for other in others:
                await other.close()
        return results

    results = on_store(database_url, race)
    assert sorted(map(len, results)) == [0, 0, 0, len(MIGRATIONS)]


def describe_schema(conn: sa.Connection) -> dict:
    inspector = sa.inspect(conn)
    return {
        name: (
            {c["name"]: c["nullable"] for c in inspector.get_columns(name)},
            {i["name"] for i in inspector.get_indexes(name)},
        )
        for name in inspector.get_table_names()
    }


def test_migrated_database_matches_the_schema_module(database_url):
    async def inspect(store):
        await store.migrate()
        return await store._db.migrate(describe_schema)

    migrated = on_store(database_url, inspect)
    assert set(migrated) == set(metadata.tables)
    for table in metadata.sorted_tables:
        columns, indexes = migrated[table.name]
        assert columns == {c.name: c.nullable for c in table.columns}, table.name
        assert {i.name for i in table.indexes} <= indexes, table.name


def test_sqlite_file_gets_its_directory_wal_mode_and_busy_timeout(tmp_path):
    url = f"sqlite:///{tmp_path}/nested/dir/adapter.sqlite3"

    async def pragmas(store):
        await store.migrate()
        mode = await store._db.read(lambda conn: conn.exec_driver_sql("PRAGMA journal_mode").scalar())
        # The connection that may wait (other processes' writes) waits with a timeout.
        timeout = await store._db.migrate(
            lambda conn: conn.exec_driver_sql("PRAGMA busy_timeout").scalar())
        return mode, timeout

    mode, timeout = on_store(url, pragmas)
    assert (tmp_path / "nested/dir/adapter.sqlite3").is_file()
    assert mode == "wal"
    assert timeout >= 5000


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "mysql://x/y"])
def test_unusable_database_urls_are_refused(url):
    from adapter.store import DatabaseUrlError

    with pytest.raises(DatabaseUrlError):
        Store(url)
