"""Migrations: idempotent, recorded once, and matching schema.py."""

import asyncio

import sqlalchemy as sa

from adapter.store import Store
from adapter.store.migrations import MIGRATIONS
from adapter.store.schema import metadata


def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path}/nested/dir/adapter.sqlite3"


def migrate(url):
    async def run():
        store = Store(url)
        try:
            return await store.migrate()
        finally:
            await store.close()

    return asyncio.run(run())


def test_migrate_creates_the_directory_and_applies_every_step_once(tmp_path):
    assert migrate(sqlite_url(tmp_path)) == [v for v, _, _ in MIGRATIONS]
    assert (tmp_path / "nested/dir/adapter.sqlite3").is_file()
    assert migrate(sqlite_url(tmp_path)) == []


def test_migrated_database_matches_the_schema_module(tmp_path):
    migrate(sqlite_url(tmp_path))
    engine = sa.create_engine(sqlite_url(tmp_path))
    inspector = sa.inspect(engine)
    assert set(inspector.get_table_names()) == set(metadata.tables)
    for table in metadata.sorted_tables:
        migrated = {c["name"]: c for c in inspector.get_columns(table.name)}
        assert set(migrated) == set(table.columns.keys()), table.name
        for column in table.columns:
            assert migrated[column.name]["nullable"] == column.nullable, (table.name, column.name)
        migrated_indexes = {i["name"] for i in inspector.get_indexes(table.name)}
        assert {i.name for i in table.indexes} <= migrated_indexes, table.name
    engine.dispose()


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path):
    async def pragmas():
        store = Store(sqlite_url(tmp_path))
        await store.migrate()
        try:
            return await store._db.read(
                lambda conn: (conn.exec_driver_sql("PRAGMA journal_mode").scalar(),
                              conn.exec_driver_sql("PRAGMA busy_timeout").scalar())
            )
        finally:
            await store.close()

    mode, timeout = asyncio.run(pragmas())
    assert mode == "wal"
    assert timeout >= 5000
