"""Migrations: idempotent, recorded once, and matching schema.py."""

import sqlalchemy as sa

from adapter.store import Store
from adapter.store.migrations import MIGRATIONS
from adapter.store.schema import metadata


def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path}/nested/dir/adapter.sqlite3"


def test_migrate_creates_the_directory_and_applies_every_step_once(tmp_path):
    store = Store(sqlite_url(tmp_path))
    assert store.migrate_now() == [v for v, _, _ in MIGRATIONS]
    assert (tmp_path / "nested/dir/adapter.sqlite3").is_file()
    assert store.migrate_now() == []
    assert Store(sqlite_url(tmp_path)).migrate_now() == []


def test_migrated_database_matches_the_schema_module(tmp_path):
    Store(sqlite_url(tmp_path)).migrate_now()
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
    store = Store(sqlite_url(tmp_path))
    store.migrate_now()
    mode, timeout = store._db.read_now(
        lambda conn: (conn.exec_driver_sql("PRAGMA journal_mode").scalar(),
                      conn.exec_driver_sql("PRAGMA busy_timeout").scalar())
    )
    assert mode == "wal"
    assert timeout >= 5000
