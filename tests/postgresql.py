"""Throwaway PostgreSQL databases for tests, on a server named by the environment.

``ADAPTER_TEST_POSTGRESQL_URL`` is a URL of a role that may create databases,
e.g. ``postgresql://adapter:adapter@127.0.0.1:5432/postgres``; each test gets a
database of its own, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
import warnings
from collections.abc import Iterator

import asyncpg
from sqlalchemy.engine import make_url

ADMIN_URL_VARIABLE = "ADAPTER_TEST_POSTGRESQL_URL"


def admin_url() -> str | None:
    return os.environ.get(ADMIN_URL_VARIABLE) or None


async def _admin(sql: str) -> None:
    url = make_url(admin_url())
    connection = await asyncpg.connect(
        user=url.username, password=url.password, host=url.host or "127.0.0.1",
        port=url.port or 5432, database=url.database or "postgres",
    )
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def url_of(name: str) -> str:
    return make_url(admin_url()).set(database=name).render_as_string(hide_password=False)


@contextlib.contextmanager
def fresh_database(template: str | None = None) -> Iterator[str]:
    """A new database, empty or a copy of ``template`` (a database nobody
    is connected to: PostgreSQL copies it file by file, much faster than
    running the migrations again)."""
    name = f"adapter_test_{uuid.uuid4().hex[:12]}"
    copy = f' TEMPLATE "{template}" STRATEGY FILE_COPY' if template else ""
    asyncio.run(_admin(f'CREATE DATABASE "{name}"{copy}'))
    try:
        yield url_of(name)
    finally:
        try:
            asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        except asyncpg.PostgresError as exc:
            # A throwaway database left behind costs nothing; failing the
            # test for it (e.g. an autovacuum worker we may not end) would.
            warnings.warn(f"could not drop test database {name}: {exc}")
