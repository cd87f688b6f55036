"""Migrations: idempotent, recorded once, and matching schema.py, on every engine."""

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from adapter.store import Store
from adapter.store.migrations import MIGRATIONS
from adapter.store.outbox import utc
from adapter.store.schema import inbound_parts, jobs, metadata, schema_migrations


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


def test_migrate_applies_every_step_once(empty_database_url):
    assert migrate(empty_database_url) == [v for v, _, _ in MIGRATIONS]
    assert migrate(empty_database_url) == []


def test_processes_starting_together_migrate_once(empty_database_url):
    async def race(store):
        others = [Store(empty_database_url) for _ in range(3)]
        try:
            results = await asyncio.gather(store.migrate(), *(o.migrate() for o in others))
        finally:
            for other in others:
                await other.close()
        return results

    results = on_store(empty_database_url, race)
    assert sorted(map(len, results)) == [0, 0, 0, len(MIGRATIONS)]


def describe_schema(conn: sa.Connection) -> dict:
    inspector = sa.inspect(conn)
    return {
        name: (
            {c["name"]: c["nullable"] for c in inspector.get_columns(name)},
            {i["name"] for i in inspector.get_indexes(name)},
            set(inspector.get_pk_constraint(name)["constrained_columns"]),
        )
        for name in inspector.get_table_names()
    }


def test_migrated_database_matches_the_schema_module(empty_database_url):
    async def inspect(store):
        await store.migrate()
        return await store._db.migrate(describe_schema)

    migrated = on_store(empty_database_url, inspect)
    assert set(migrated) == set(metadata.tables)
    for table in metadata.sorted_tables:
        columns, indexes, primary_key = migrated[table.name]
        assert columns == {c.name: c.nullable for c in table.columns}, table.name
        assert primary_key == {c.name for c in table.primary_key}, table.name
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


def test_parts_held_before_migration_6_are_kept_and_get_their_wait(empty_database_url):
    """Parts held under the old key (provider, group, position) are copied, and
    each group gets the job that delivers it if its other parts never come."""
    first = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

    def up_to_5(conn):
        schema_migrations.create(conn)
        for version, description, step in MIGRATIONS:
            if version < 6:
                step(conn)
                conn.execute(schema_migrations.insert().values(
                    version=version, description=description, applied_at=first))
        old_parts = sa.table("inbound_parts", *map(sa.column, (
            "provider", "group_id", "position", "total", "sender", "recipient", "body")),
            sa.column("created_at", sa.DateTime(timezone=True)))
        common = {"provider": "acu", "group_id": "uid-1", "total": 3,
                  "sender": "+447700900123", "recipient": "+12025550101"}
        conn.execute(old_parts.insert(), [
            {**common, "position": 1, "body": "one", "created_at": first},
            {**common, "position": 3, "body": "three",
             "created_at": first + timedelta(seconds=5)}])

    def held(conn):
        parts = conn.execute(sa.select(inbound_parts).order_by(inbound_parts.c.position))
        return [row._asdict() for row in parts], [row._asdict() for row in conn.execute(
            sa.select(jobs.c.kind, jobs.c.provider, jobs.c.payload, jobs.c.state, jobs.c.due_at))]

    async def work(store):
        await store._db.migrate(up_to_5)
        assert await store.migrate() == [v for v, _, _ in MIGRATIONS if v >= 6]
        return await store._db.migrate(held)

    parts, [job] = on_store(empty_database_url, work)
    assert [(p["sender"], p["recipient"], p["group_id"], p["position"], p["body"])
            for p in parts] == [("+447700900123", "+12025550101", "uid-1", 1, "one"),
                                ("+447700900123", "+12025550101", "uid-1", 3, "three")]
    assert (job["kind"], job["provider"], job["state"]) == ("parts", "acu", "queued")
    assert json.loads(job["payload"]) == {"sender": "+447700900123",
                                          "recipient": "+12025550101", "group": "uid-1"}
    assert utc(job["due_at"]) == first + timedelta(seconds=60)
